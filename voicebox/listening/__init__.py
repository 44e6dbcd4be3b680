"""Listening: turning the caller's audio into turns and text."""
