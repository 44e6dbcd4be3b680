"""Text to speech with Piper, resampled to the conference bridge rate with soxr."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from voicebox.audio.resample import resample
from voicebox.speaking.normalize import for_speech


class Synthesizer:
    """One Piper voice shared by all calls; output is int16 at ``out_rate_hz``."""

    def __init__(self, model_path: Path, out_rate_hz: int) -> None:
        from piper import PiperVoice

        config = Path(str(model_path) + ".json")
        self.voice = PiperVoice.load(model_path, config_path=config if config.exists() else None)
        self.rate_hz = self.voice.config.sample_rate
        self.out_rate_hz = out_rate_hz
        self._cache: dict[str, np.ndarray] = {}
        self._cache_lock = threading.Lock()

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """One clip per sentence of ``text``, as soon as each is synthesized. Numbers, times,
        prices and abbreviations are spelled out first (``normalize.for_speech``)."""
        for chunk in self.voice.synthesize(for_speech(text)):
            yield _trim_lead_in(resample(chunk.audio_int16_array, self.rate_hz, self.out_rate_hz), self.out_rate_hz)

    def synthesize(self, text: str) -> np.ndarray:
        parts = list(self.stream(text))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    def cached(self, text: str) -> np.ndarray:
        """Fixed phrases (greeting, goodbye, apology) are synthesized once and reused."""
        with self._cache_lock:
            hit = self._cache.get(text)
        if hit is None:
            hit = self.synthesize(text)
            with self._cache_lock:
                self._cache[text] = hit
        return hit

    def peek(self, text: str) -> np.ndarray | None:
        """A phrase already in the cache, or None: never synthesizes (for when synthesis has
        just failed, and the call must still hear the phrases made at start)."""
        with self._cache_lock:
            return self._cache.get(text)


LEAD_IN_LEVEL = 64  # below this, a sample is Piper's silence (about -54 dBFS)
LEAD_IN_KEEP_MS = 5


def _trim_lead_in(clip: np.ndarray, rate_hz: int) -> np.ndarray:
    """Piper starts every clip with 40-55 ms of silence: dead air the caller waits through, and
    that the agent would count as its first audio. Keep only a few milliseconds of it."""
    loud = np.flatnonzero(np.abs(clip.astype(np.int32)) >= LEAD_IN_LEVEL)
    if loud.size == 0:
        return clip
    start = max(0, int(loud[0]) - rate_hz * LEAD_IN_KEEP_MS // 1000)
    return clip[start:]
