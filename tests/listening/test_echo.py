"""Echo cancellation: the agent's own voice, coming back late and quieter, is removed; the
caller's voice mixed into it is not."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from voicebox.listening.echo import EchoCanceller

WAV = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "wav"
RATE, FRAME = 16000, 320


def read(name: str) -> np.ndarray:
    with wave.open(str(WAV / name)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) + 1e-9


def run(mic: np.ndarray, far: np.ndarray) -> tuple[np.ndarray, EchoCanceller]:
    """Both streams through one canceller, 20 ms at a time, as the listener does."""
    aec = EchoCanceller(RATE)
    n = min(len(mic), len(far)) // FRAME * FRAME
    out = np.concatenate([aec.process(mic[i : i + FRAME], far[i : i + FRAME]) for i in range(0, n, FRAME)])
    return out, aec


def test_echo_200ms_late_at_minus_10_db_is_removed():
    far = np.concatenate([read("barge_in_0.wav"), read("booking_0.wav")])
    delay = int(0.2 * RATE)
    echo = (np.concatenate([np.zeros(delay), far[:-delay]]) * 0.316).astype(np.int16)
    out, aec = run(echo, far)
    settled = slice(2 * RATE, len(out))
    assert 20 * np.log10(rms(echo[settled]) / rms(out[settled])) > 20  # more than 20 dB gone


def test_caller_speech_over_the_echo_survives():
    far = np.concatenate([read("barge_in_0.wav"), read("booking_0.wav")])
    caller = read("barge_in_1.wav")
    delay = int(0.2 * RATE)
    mic = np.concatenate([np.zeros(delay), far[:-delay]]) * 0.316
    at = 3 * RATE
    mic[at : at + len(caller)] += caller
    out, _ = run(np.clip(mic, -32768, 32767).astype(np.int16), far)
    talk = slice(at, at + len(caller))
    assert 20 * np.log10(rms(caller) / rms(out[talk])) < 6  # the caller loses little
