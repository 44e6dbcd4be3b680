"""Speaking: text to audio at the bridge's rate."""
