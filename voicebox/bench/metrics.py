"""Benchmark figures: percentiles that tolerate missing values, and where speech really ends."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np



def percentiles(values: Iterable[float | None]) -> dict[str, float | None]:
    """n, p50, p95 and max of the values that exist (None: a stage a turn never reached)."""
    xs = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if xs.size == 0:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {
        "n": int(xs.size),
        "p50": float(np.percentile(xs, 50)),
        "p95": float(np.percentile(xs, 95)),
        "max": float(xs.max()),
    }


def last_voiced_ms(samples: np.ndarray, rate_hz: int, frame_ms: int = 10, floor_db: float = -35.0) -> float:
    """End of the last frame within ``floor_db`` of the clip's loudest frame, in ms (0 if silent).

    Recorded turns carry trailing silence; a caller-side voice-to-voice must start where the
    speech ends, not where the file does. Energy, not a VAD: webrtcvad keeps saying "speech"
    for up to ~100 ms after it ends (measured on a synthetic buzz), which would bias the figure.
    """
    n = rate_hz * frame_ms // 1000
    frames = len(samples) // n
    if frames == 0:
        return 0.0
    x = samples[: frames * n].astype(np.float64).reshape(frames, n)
    rms = np.sqrt((x * x).mean(axis=1))
    peak = rms.max()
    if peak < 1.0:
        return 0.0
    loud = np.nonzero(rms >= peak * 10 ** (floor_db / 20))[0]
    return float((loud[-1] + 1) * frame_ms)
