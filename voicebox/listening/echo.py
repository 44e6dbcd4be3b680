"""Line echo out of the caller's audio, so the agent's own voice never counts as the caller.

pjmedia's echo canceller only works on a sound device port, and a call here has none: the
agent's outgoing audio is the reference (tapped from the playout ring buffer frame by frame, on
the same bridge tick as the caller audio it echoes into) and WebRTC's AEC3, as shipped in
livekit's AudioProcessingModule, removes it.

On a VoIP line the echo comes back 150-350 ms late (a jitter buffer at each end, packetization,
the far end's own path), and that delay jumps whenever an adaptive jitter buffer resizes. AEC3
converged slowly or not at all on such delays in our calls (measured: the echo passed through
nearly untouched for seconds after a jump). So the bulk delay is found here, by correlating
the level envelopes of the caller audio and the reference over the last few seconds, and the
reference is handed to AEC3 that much later: it only has to model the last few tens of
milliseconds, which it does within a second.
"""

from __future__ import annotations

from collections import deque

import numpy as np

APM_FRAME_MS = 10  # the audio processing module works on 10 ms frames
MAX_DELAY_FRAMES = 40  # the longest echo path searched for, in frames of the caller audio
HEADROOM_FRAMES = 2  # hand the reference over a little early: AEC3 needs it causal
WINDOW_FRAMES = 150  # envelopes correlated over this many frames (3 s of 20 ms frames)
ESTIMATE_EVERY = 25  # frames between delay estimates
MIN_CORRELATION = 0.35  # weaker evidence keeps the previous estimate
LOUD_REFERENCE_RMS = 300.0  # reference frames this loud teach the echo's return loss
DOUBLE_TALK_FACTOR = 2.0  # caller audio 6 dB over the echo expected now is the caller talking


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
        self._refs: deque[np.ndarray] = deque(maxlen=MAX_DELAY_FRAMES + 1)
        self._mic_env: deque[float] = deque(maxlen=WINDOW_FRAMES + MAX_DELAY_FRAMES)
        self._ref_env: deque[float] = deque(maxlen=WINDOW_FRAMES + MAX_DELAY_FRAMES)
        self.delay_frames = 0  # the bulk delay in use
        self.echo_delay_frames = 0  # the measured echo path delay (before headroom)
        self._since_estimate = 0
        self._raw_rms: deque[float] = deque(maxlen=WINDOW_FRAMES + MAX_DELAY_FRAMES)
        self._ref_rms: deque[float] = deque(maxlen=WINDOW_FRAMES + MAX_DELAY_FRAMES)
        self.return_loss = 1.0  # echo level / reference level; 1.0 (0 dB) until measured
        self.near_end = False  # was the last frame louder than its echo could be?

    def process(self, mic: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """``mic``: what the caller's side sent; ``reference``: what the agent played in the
        same tick. Both int16, the same length, a multiple of 10 ms. Returns the cleaned mic."""
        if len(mic) != len(reference) or len(mic) % self.sub:
            raise ValueError(f"frames must be equal multiples of {self.sub} samples")
        self._refs.append(np.asarray(reference, dtype=np.int16))
        self._mic_env.append(_level(mic))
        self._ref_env.append(_level(reference))
        self._raw_rms.append(_rms(mic))
        self._ref_rms.append(_rms(reference))
        self._since_estimate += 1
        if self._since_estimate >= ESTIMATE_EVERY:
            self._since_estimate = 0
            found = estimate_delay(list(self._mic_env), list(self._ref_env), MAX_DELAY_FRAMES)
            if found is not None:
                self.echo_delay_frames = found
                if abs(found - HEADROOM_FRAMES - self.delay_frames) >= 2:
                    self.delay_frames = max(0, found - HEADROOM_FRAMES)
                self._learn_return_loss()
        self.near_end = self._raw_rms[-1] > DOUBLE_TALK_FACTOR * self._expected_echo()
        index = len(self._refs) - 1 - self.delay_frames
        far_end = self._refs[index] if index >= 0 else np.zeros_like(reference)
        out = np.empty_like(mic)
        for i in range(0, len(mic), self.sub):
            self.apm.process_reverse_stream(self._frame(far_end[i : i + self.sub]))
            near = self._frame(mic[i : i + self.sub])
            self.apm.process_stream(near)  # in place
            out[i : i + self.sub] = np.frombuffer(near.data, dtype=np.int16)
        return out

    def _expected_echo(self) -> float:
        """The loudest this frame's echo could be: the reference one echo delay ago (a frame
        either side, for jitter) times the measured return loss."""
        refs = list(self._ref_rms)
        at = len(refs) - 1 - self.echo_delay_frames
        window = refs[max(0, at - 1) : max(0, at + 2)]
        return self.return_loss * max(window, default=0.0)

    def _learn_return_loss(self) -> None:
        """Median ratio of caller-side level to the reference one echo delay earlier, over loud
        reference frames: the line's echo return loss (the caller talking only raises it)."""
        raw, ref, d = list(self._raw_rms), list(self._ref_rms), self.echo_delay_frames
        ratios = [raw[i] / ref[i - d] for i in range(d, len(raw)) if ref[i - d] > LOUD_REFERENCE_RMS]
        if len(ratios) >= 20:
            self.return_loss = float(min(1.0, max(0.001, np.median(ratios))))

    def _frame(self, samples: np.ndarray):
        return self._rtc.AudioFrame(np.ascontiguousarray(samples, dtype=np.int16).tobytes(), self.rate, 1, self.sub)


def _rms(frame: np.ndarray) -> float:
    return float(np.sqrt(np.mean(frame.astype(np.float32) ** 2))) if len(frame) else 0.0


def _level(frame: np.ndarray) -> float:
    return float(np.log1p(np.sqrt(np.mean(frame.astype(np.float32) ** 2)))) if len(frame) else 0.0


def estimate_delay(mic_env: list[float], ref_env: list[float], max_lag: int) -> int | None:
    """The lag (in frames) at which the caller audio's level envelope best follows the
    reference's, or None without clear evidence (the agent was quiet, or the caller talked)."""
    n = len(mic_env)
    if n < max_lag + 25 or len(ref_env) != n:
        return None
    mic = np.asarray(mic_env)
    ref = np.asarray(ref_env)
    if ref.std() < 1e-3:
        return None
    best, best_lag = -1.0, None
    tail = mic[max_lag:]
    tail = tail - tail.mean()
    for lag in range(max_lag + 1):
        seg = ref[max_lag - lag : n - lag]
        seg = seg - seg.mean()
        denom = float(np.linalg.norm(tail) * np.linalg.norm(seg))
        if denom <= 0:
            continue
        c = float(np.dot(tail, seg)) / denom
        if c > best:
            best, best_lag = c, lag
    return best_lag if best >= MIN_CORRELATION else None
