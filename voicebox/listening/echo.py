"""Line echo out of the caller's audio, so the agent's own voice never counts as the caller.

pjmedia's echo canceller only works on a sound device port, and a call here has none: the
agent's outgoing audio is the reference (tapped from the playout ring buffer frame by frame, on
the same bridge tick as the caller audio it echoes into) and WebRTC's AEC3, as shipped in
livekit's AudioProcessingModule, removes it. AEC3 finds the echo path's delay itself: on
synthetic echo it removed 50-60 dB at 60, 200 and 300 ms alike. Shifting the reference to help
it (a bulk-delay estimate from level envelopes) was tried and made it worse: every shift forced
it to re-converge. What it does not absorb is a delay that jumps mid-call, as an adaptive jitter
buffer at either end makes it do on a VoIP line: echo leaks for a second or so after each jump.
"""

from __future__ import annotations

import numpy as np

APM_FRAME_MS = 10  # the audio processing module works on 10 ms frames


class EchoCanceller:
    """One call's canceller. Not thread-safe: the listener thread owns it."""

    def __init__(self, rate_hz: int, noise_suppression: bool = False) -> None:
        from livekit import rtc

        self._rtc = rtc
        self.rate = rate_hz
        self.sub = rate_hz * APM_FRAME_MS // 1000
        self.apm = rtc.AudioProcessingModule(
            echo_cancellation=True, noise_suppression=noise_suppression, high_pass_filter=True, auto_gain_control=False
        )

    def process(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """``mic``: what the caller's side sent; ``reference``: what the agent played in the
        same tick. Both int16, the same length, a multiple of 10 ms. Returns the cleaned mic."""
        if len(mic) != len(reference) or len(mic) % self.sub:
            raise ValueError(f"frames must be equal multiples of {self.sub} samples")
        out = np.empty_like(mic)
        for i in range(0, len(mic), self.sub):
            self.apm.process_reverse_stream(self._frame(reference[i : i + self.sub]))
            near = self._frame(mic[i : i + self.sub])
            self.apm.process_stream(near)  # in place
            out[i : i + self.sub] = np.frombuffer(near.data, dtype=np.int16)
        return out

    def _frame(self, samples: np.ndarray):
        return self._rtc.AudioFrame(np.ascontiguousarray(samples, dtype=np.int16).tobytes(), self.rate, 1, self.sub)
