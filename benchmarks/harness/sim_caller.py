"""The simulated caller's script: when to talk, stepped once per 20 ms media frame.

Like the pjsua2 caller: it waits for the agent's greeting (or reply) to be followed by
``quiet_ms`` of silence, then says its next turn. A turn with ``barge_after_ms`` starts that
long after the agent started replying instead, talking over it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.harness.metrics import first_voiced_ms, last_voiced_ms
from benchmarks.harness.scenarios import Turn


@dataclass
class PlayedTurn:
    """When the caller said one turn, in caller media time (ms since the call was answered)."""

    index: int
    play_start_ms: float
    speech_onset_ms: float
    speech_end_ms: float  # the last voiced frame of the recording, not the file's end
    play_end_ms: float
    barge: bool


class ScriptedCaller:
    def __init__(
        self, turns: list[tuple[Turn, np.ndarray]], frame_samples: int = 320, rate_hz: int = 16000,
        quiet_ms: int = 1500, reply_timeout_ms: int = 15000, wait_hangup_ms: int = 0,
    ) -> None:
        self.turns = turns
        self.frame_samples = frame_samples
        self.frame_ms = frame_samples * 1000 // rate_hz
        self.rate_hz = rate_hz
        self.quiet_ms = quiet_ms
        self.reply_timeout_ms = reply_timeout_ms
        self.wait_hangup_ms = wait_hangup_ms
        self.played: list[PlayedTurn] = []
        self.done = False
        self._next = 0
        self._audio: np.ndarray | None = None
        self._pos = 0
        self._wait_from = 0.0  # when the caller started waiting for the agent
        self._onset: float | None = None  # the agent's first voiced frame since then
        self._last_voiced: float | None = None
        self._silence = np.zeros(frame_samples, dtype=np.int16)

    def step(self, now_ms: float, agent_voiced: bool) -> np.ndarray:
        """One frame: note what the caller heard at ``now_ms``, return what it says next."""
        if agent_voiced:
            self._last_voiced = now_ms
            if self._onset is None:
                self._onset = now_ms
        if self._audio is None and not self.done and self._ready(now_ms):
            self._start_turn(now_ms)
        if self._audio is None:
            return self._silence
        frame = self._audio[self._pos : self._pos + self.frame_samples]
        self._pos += self.frame_samples
        if self._pos >= len(self._audio):
            self._audio = None
            self._wait_from, self._onset, self._last_voiced = now_ms + self.frame_ms, None, None
        if len(frame) < self.frame_samples:
            frame = np.concatenate([frame, self._silence[: self.frame_samples - len(frame)]])
        return frame

    def _ready(self, now_ms: float) -> bool:
        waited = now_ms - self._wait_from
        if self._next >= len(self.turns):
            # After the last turn: hear the reply out (and a hang-up, if one is expected).
            replied_out = self._onset is not None and now_ms - self._last_voiced >= self.quiet_ms
            if (replied_out or waited >= self.reply_timeout_ms) and waited >= self.wait_hangup_ms:
                self.done = True
            return False
        spec = self.turns[self._next][0]
        if spec.barge_after_ms is not None and self._onset is not None:
            if now_ms - self._onset >= spec.barge_after_ms:
                return True
        if self._onset is not None and now_ms - self._last_voiced >= self.quiet_ms:
            return True
        return waited >= self.reply_timeout_ms

    def _start_turn(self, now_ms: float) -> None:
        spec, samples = self.turns[self._next]
        barge = spec.barge_after_ms is not None and self._onset is not None and (
            now_ms - self._last_voiced < self.quiet_ms
        )
        self.played.append(PlayedTurn(
            self._next, now_ms,
            now_ms + first_voiced_ms(samples, self.rate_hz),
            now_ms + last_voiced_ms(samples, self.rate_hz),
            now_ms + len(samples) * 1000 / self.rate_hz,
            barge,
        ))
        self._next += 1
        self._audio, self._pos = samples, 0
