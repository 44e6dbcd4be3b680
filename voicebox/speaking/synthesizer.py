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
            yield resample(chunk.audio_int16_array, self.rate_hz, self.out_rate_hz)

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
