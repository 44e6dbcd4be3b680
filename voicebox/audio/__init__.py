"""Audio plumbing shared by every stage: ring buffers, resampling, WAV files."""
