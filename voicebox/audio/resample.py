"""Sample-rate conversion with libsoxr (never a hand-written resampler)."""

from __future__ import annotations

import numpy as np
import soxr


def resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample a whole mono int16 clip (e.g. one synthesized sentence)."""
    samples = np.asarray(samples, dtype=np.int16)
    if in_rate == out_rate or len(samples) == 0:
        return samples.copy()
    return soxr.resample(samples, in_rate, out_rate, quality="HQ")


class StreamResampler:
    """Resample a stream chunk by chunk without clicks at chunk edges (keeps filter state)."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._rs = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ")

    def process(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.int16)
        if self._rs is None:
            return chunk.copy()
        return self._rs.resample_chunk(chunk, last=last)
