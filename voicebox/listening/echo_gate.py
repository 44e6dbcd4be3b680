"""Is a frame of caller audio only the agent's own voice coming back?

The echo canceller (echo.py) removes a line echo whose delay holds still. On a VoIP line the
delay does not: an adaptive jitter buffer at either end moves it by a packet or more whenever
it adapts, and the canceller leaks for a second or so while it re-converges. The leak is loud
enough, and speech-like enough, to pass the voice detector and stop the agent mid-sentence.

This check does not model the echo path; it asks whether the caller's raw audio of the last
``window_ms`` is, at any delay up to ``max_delay_ms``, a scaled copy of what the agent played:
the peak normalized cross-correlation. A pure echo scores near 1 whatever the delay and however
it jumps; the caller's own voice is unrelated to the agent's and pulls the score down to 0.1-0.3
within a window, even when the echo under it is as loud. A level rule (Geigel's) would also
need the caller to be louder than the echo, which a quiet "sorry" under a loud agent is not.
"""

from __future__ import annotations

import numpy as np


class EchoGate:
    """One call's gate, owned by its listener thread (not thread-safe)."""

    def __init__(self, rate_hz: int, window_ms: int = 100, max_delay_ms: int = 600, threshold: float = 0.6) -> None:
        self.window = rate_hz * window_ms // 1000
        self.max_lag = rate_hz * max_delay_ms // 1000
        self.threshold = threshold
        self._mic = np.zeros(self.window, np.float32)
        self._ref = np.zeros(self.window + self.max_lag, np.float32)
        self._fft_n = 1 << int(np.ceil(np.log2(len(self._ref) + self.window)))
        self._since_ref = len(self._ref)  # samples since the reference last held sound

    def push(self, mic: np.ndarray, reference: np.ndarray) -> None:
        """The caller's raw audio (before echo cancellation) and what the agent played in the
        same bridge tick; equal lengths."""
        n = len(mic)
        self._mic = np.concatenate([self._mic[n:], mic.astype(np.float32)])
        self._ref = np.concatenate([self._ref[n:], reference.astype(np.float32)])
        self._since_ref = 0 if np.any(reference) else self._since_ref + n

    def agent_audible(self) -> bool:
        """Could anything the agent played still be coming back now?"""
        return self._since_ref < len(self._ref)

    def score(self) -> float:
        """Peak normalized cross-correlation of the mic window with the reference, over all
        delays from 0 to ``max_delay_ms`` (the echo never comes back before it was played)."""
        w, h = self._mic, self._ref
        mic_energy = float(np.dot(w, w))
        if mic_energy < 1.0 or not self.agent_audible():
            return 0.0
        n = self._fft_n
        num = np.fft.irfft(np.fft.rfft(h, n) * np.conj(np.fft.rfft(w, n)), n)[: len(h) - len(w) + 1]
        c = np.concatenate([[0.0], np.cumsum(h.astype(np.float64) ** 2)])
        ref_energy = c[len(w):] - c[: -len(w)]
        # A silent stretch of reference (under an RMS of 10) explains nothing.
        valid = ref_energy > len(w) * 100.0
        denom = np.sqrt(np.maximum(ref_energy, 0.0) * mic_energy)
        if not np.any(valid):
            return 0.0
        return float(np.max(num[valid] / denom[valid]))

    def is_echo(self) -> bool:
        return self.score() >= self.threshold
