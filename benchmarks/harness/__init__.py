"""The benchmark harness: recorded calls through the real agent, timed stage by stage."""
