"""The caller line's background level, so steady noise never reads as the caller talking.

webrtcvad judges spectra, not level, and adapts to what it hears: on a line with steady
background noise it can end up calling the noise itself speech (on the corpus's noisy_hours,
after a second pass over the clip it did, for the whole clip). A turn then only ends when the
noise does. A frame must therefore also stand ``margin_db`` above the line's noise floor.

The floor is the quietest frame of the last ``window_ms`` (minimum statistics): speech always
has gaps between words, so over a second or so the minimum is the noise under it, and a caller
who talks on does not drag the estimate up. Until one whole window has been heard there is no
estimate: a caller who starts talking at once must not become the "noise".
"""

from __future__ import annotations

import collections
import math

import numpy as np

SILENT_DB = -120.0  # digital silence: no floor to stand above


def level_db(frame: np.ndarray) -> float:
    """RMS level of an int16 frame in dB relative to full scale."""
    x = np.asarray(frame, dtype=np.float32)
    if not x.size:
        return SILENT_DB
    rms = math.sqrt(float(np.mean(x * x)))
    return max(SILENT_DB, 20 * math.log10(rms / 32768.0)) if rms > 0 else SILENT_DB


class NoiseFloor:
    """Sliding minimum of frame levels, O(1) amortized per frame. Owned by one thread."""

    def __init__(self, window_frames: int) -> None:
        if window_frames < 1:
            raise ValueError("window_frames must be at least 1")
        self.window = window_frames
        self._seen = 0
        # (frame number, level) with rising levels: the front is the window's minimum.
        self._mins: collections.deque[tuple[int, float]] = collections.deque()

    def update(self, db: float) -> float | None:
        """Add one frame's level; return the floor in dBFS, or None before a full window."""
        n = self._seen
        self._seen += 1
        while self._mins and self._mins[-1][1] >= db:
            self._mins.pop()
        self._mins.append((n, db))
        if self._mins[0][0] <= n - self.window:
            self._mins.popleft()
        return self._mins[0][1] if self._seen >= self.window else None


class SpeechLevelGate:
    """Is a frame loud enough to be the caller: above a fixed floor and above the line's noise."""

    def __init__(self, fixed_floor_dbfs: float, margin_db: float, window_ms: int, frame_ms: int) -> None:
        self.fixed = fixed_floor_dbfs
        self.margin = margin_db
        self.noise = NoiseFloor(max(1, window_ms // frame_ms)) if margin_db > 0 else None
        self.floor_dbfs: float | None = None  # the last noise estimate (for the call record)

    def loud(self, frame: np.ndarray) -> bool:
        db = level_db(frame)
        threshold = self.fixed
        if self.noise is not None:
            self.floor_dbfs = self.noise.update(db)
            if self.floor_dbfs is not None and self.floor_dbfs > SILENT_DB:
                threshold = max(threshold, self.floor_dbfs + self.margin)
        return db >= threshold
