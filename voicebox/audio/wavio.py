"""Reading and writing mono 16-bit WAV files."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from voicebox.audio.resample import resample


def read_wav(path: Path | str, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Mono int16 samples and their rate; resampled to ``rate`` when given."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit WAV is supported")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        ch, sr = w.getnchannels(), w.getframerate()
    if ch > 1:
        data = data.reshape(-1, ch).mean(axis=1).astype(np.int16)
    if rate is not None and rate != sr:
        return resample(data, sr, rate), rate
    return data.copy(), sr


def write_wav(path: Path | str, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype=np.int16).tobytes())
