"""The caller line's background level, so steady noise never reads as the caller talking.

webrtcvad judges spectra, not level, and adapts to what it hears: on a line with steady
background noise it can end up calling the noise itself speech (on the corpus's noisy_hours,
after a second pass over the clip it did, for the whole clip). A turn then only ends when the
noise does. A frame must therefore also stand ``margin_db`` above the line's noise floor.

The floor is the quietest frame of the last ``window_ms`` (minimum statistics): speech has gaps
between words, so over a second or so the minimum is the noise under it. It is trusted only when
it is a plateau (``PLATEAU_MS`` of frames within ``PLATEAU_DB`` of it), and not before one whole
window has been heard: a caller who starts talking at once must not become the "noise".
"""

from __future__ import annotations

import math

import numpy as np

SILENT_DB = -120.0  # digital silence: no floor to stand above
PLATEAU_DB = 3.0  # stationary noise frames stay within a few dB of their quietest one
PLATEAU_MS = 160  # near-floor audio needed in the window before its minimum is called noise


def level_db(frame: np.ndarray) -> float:
    """RMS level of an int16 frame in dB relative to full scale."""
    x = np.asarray(frame, dtype=np.float32)
    if not x.size:
        return SILENT_DB
    rms = math.sqrt(float(np.mean(x * x)))
    return max(SILENT_DB, 20 * math.log10(rms / 32768.0)) if rms > 0 else SILENT_DB


class NoiseFloor:
    """The line's noise level from the last window of frame levels. Owned by one thread."""

    def __init__(self, window_frames: int, plateau_frames: int, plateau_db: float = PLATEAU_DB) -> None:
        if window_frames < 1 or not 1 <= plateau_frames <= window_frames:
            raise ValueError("need 1 <= plateau_frames <= window_frames")
        self.window = window_frames
        self.plateau_frames = plateau_frames
        self.plateau_db = plateau_db
        self._levels = np.full(window_frames, np.nan)
        self._seen = 0

    def update(self, db: float) -> float | None:
        """Add one frame's level; return the floor in dBFS, or None while there is none to trust."""
        self._levels[self._seen % self.window] = db
        self._seen += 1
        if self._seen < self.window:
            return None
        low = float(self._levels.min())
        # Noise is a plateau: many frames near the minimum. A talker who barely pauses leaves a
        # lone quiet frame or two instead, and that dip is not noise (a card number read out
        # in one breath put the "floor" at -37 dBFS on a clean line, and the turn was cut in two).
        if np.count_nonzero(self._levels <= low + self.plateau_db) < self.plateau_frames:
            return None
        return low


class SpeechLevelGate:
    """Is a frame loud enough to be the caller: above a fixed floor and above the line's noise."""

    def __init__(self, fixed_floor_dbfs: float, margin_db: float, window_ms: int, frame_ms: int) -> None:
        self.fixed = fixed_floor_dbfs
        self.margin = margin_db
        window = max(1, window_ms // frame_ms)
        plateau = min(window, max(1, PLATEAU_MS // frame_ms))
        self.noise = NoiseFloor(window, plateau) if margin_db > 0 else None
        self.floor_dbfs: float | None = None  # the last noise estimate (for the call record)

    def loud(self, frame: np.ndarray) -> bool:
        db = level_db(frame)
        threshold = self.fixed
        if self.noise is not None:
            self.floor_dbfs = self.noise.update(db)
            if self.floor_dbfs is not None and self.floor_dbfs > SILENT_DB:
                threshold = max(threshold, self.floor_dbfs + self.margin)
        return db >= threshold
