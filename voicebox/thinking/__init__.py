"""Thinking: deciding what to say to a caller's turn."""
