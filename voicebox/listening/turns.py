"""Turn detection: voiced/unvoiced frames in, "the caller started/finished a turn" out.

The state machine is pure (frames are classified by whatever ``is_speech`` callable it is given),
so the rules can be tested with a list of booleans; ``webrtc_classifier`` supplies the real one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from voicebox.config import VadConfig


@dataclass(frozen=True)
class SpeechStarted:
    """The caller began speaking. ``at_ms``: media time of the first voiced frame of the onset."""

    at_ms: int


@dataclass(frozen=True)
class TurnEnded:
    """A finished caller turn.

    ``audio``: int16 samples at the detector's rate, from just before onset to the end decision.
    Times are milliseconds of media time since the call's first frame.
    """

    audio: np.ndarray
    start_ms: int
    last_voiced_ms: int  # end of the last voiced frame
    decided_ms: int  # when the end of turn was decided
    voiced_ms: int
    reason: str  # "silence" | "max_length"


@dataclass(frozen=True)
class Paused:
    """The caller went quiet mid-turn; the turn may be over. ``audio`` is the turn so far.

    A transcript of it equals the final one if the turn then ends with no more speech (same
    ``last_voiced_ms``), so decoding can start now and be ready when the hangover runs out.
    """

    audio: np.ndarray
    last_voiced_ms: int
    voiced_ms: int


@dataclass(frozen=True)
class Growing:
    """The caller is still speaking; ``audio`` is the turn so far, for a partial decode."""

    audio: np.ndarray
    start_ms: int  # identifies the turn
    last_voiced_ms: int


TurnEvent = SpeechStarted | Growing | Paused | TurnEnded


class TurnDetector:
    """Feed it fixed-size frames in order; it returns the events each frame caused."""

    def __init__(self, cfg: VadConfig, frame_ms: int, is_speech: Callable[[np.ndarray], bool]) -> None:
        self.cfg = cfg
        self.frame_ms = frame_ms
        self.is_speech = is_speech
        self._now_ms = 0
        onset_frames = max(1, cfg.start_ms // frame_ms)
        # The pre-roll holds the onset window too, so that preroll_ms of audio from before the
        # first voiced frame survives.
        self._preroll: deque[np.ndarray] = deque(maxlen=onset_frames + cfg.preroll_ms // frame_ms)
        self._onset: deque[bool] = deque(maxlen=onset_frames)
        self._in_turn = False
        self._frames: list[np.ndarray] = []
        self._start_ms = 0
        self._last_voiced_ms = 0
        self._voiced_ms = 0
        self._silence_ms = 0
        self._pause_reported = False
        self._grown_at_ms = 0  # media time of the last Growing event
        # Set from outside once the turn so far has been judged (endpointing.judge); it applies
        # to the current pause only and is forgotten when the caller speaks again.
        self.hangover_override_ms: int | None = None

    @property
    def last_voiced_ms(self) -> int:
        return self._last_voiced_ms

    @property
    def silence_ms(self) -> int:
        """Unvoiced audio since the last voiced frame of the current turn."""
        return self._silence_ms

    @property
    def voiced_ms(self) -> int:
        """Voiced audio in the current turn so far."""
        return self._voiced_ms

    @property
    def start_ms(self) -> int:
        """Media time the current (or last) turn started: identifies it."""
        return self._start_ms

    @property
    def in_turn(self) -> bool:
        return self._in_turn

    def reset(self) -> None:
        """Forget any partial turn (e.g. while the agent's own greeting is echoing back)."""
        self._in_turn = False
        self._frames = []
        self._preroll.clear()
        self._onset.clear()

    def process(self, frame: np.ndarray) -> list[TurnEvent]:
        voiced = bool(self.is_speech(frame))
        t0 = self._now_ms
        self._now_ms += self.frame_ms
        events: list[TurnEvent] = []
        if not self._in_turn:
            self._preroll.append(frame)
            self._onset.append(voiced)
            needed = self._onset.maxlen or 1
            # Onset: 80% of the last start_ms voiced, so one click does not open a turn.
            if voiced and len(self._onset) == needed and sum(self._onset) >= max(1, math.ceil(needed * 0.8)):
                self._in_turn = True
                first_voiced = self._onset.index(True)
                frames = list(self._preroll)
                onset_at = len(frames) - needed + first_voiced
                self._frames = frames[max(0, onset_at - self.cfg.preroll_ms // self.frame_ms) :]
                self._start_ms = t0 - (needed - 1 - first_voiced) * self.frame_ms
                self._voiced_ms = sum(self._onset) * self.frame_ms
                self._last_voiced_ms = self._now_ms
                self._silence_ms = 0
                self._onset.clear()
                self._grown_at_ms = self._now_ms
                events.append(SpeechStarted(self._start_ms))
            return events
        self._frames.append(frame)
        if voiced:
            self._voiced_ms += self.frame_ms
            self._last_voiced_ms = self._now_ms
            self._silence_ms = 0
            self._pause_reported = False
            self.hangover_override_ms = None
        else:
            self._silence_ms += self.frame_ms
            if (
                not self._pause_reported
                and self._silence_ms >= self.cfg.speculate_after_ms
                and self._voiced_ms >= self.cfg.min_turn_ms
            ):
                self._pause_reported = True
                events.append(Paused(np.concatenate(self._frames), self._last_voiced_ms, self._voiced_ms))
        every = self.cfg.partial_every_ms
        # Only while speech goes on: a pause has its own (speculative) decode.
        if every and self._now_ms - self._grown_at_ms >= every and self._silence_ms < self.cfg.speculate_after_ms:
            self._grown_at_ms = self._now_ms
            events.append(Growing(np.concatenate(self._frames), self._start_ms, self._last_voiced_ms))
        length_ms = self._now_ms - self._start_ms
        reason = None
        hangover = self.hangover_override_ms or self.cfg.hangover_ms
        if self._silence_ms >= hangover:
            reason = "silence"
        elif length_ms >= self.cfg.max_turn_ms:
            reason = "max_length"
        if reason is not None:
            self._in_turn = False
            self.hangover_override_ms = None
            audio = np.concatenate(self._frames) if self._frames else np.zeros(0, np.int16)
            self._frames = []
            self._preroll.clear()
            if self._voiced_ms >= self.cfg.min_turn_ms:
                events.append(
                    TurnEnded(audio, self._start_ms, self._last_voiced_ms, self._now_ms, self._voiced_ms, reason)
                )
        return events


def webrtc_classifier(rate_hz: int, aggressiveness: int) -> Callable[[np.ndarray], bool]:
    """webrtcvad's speech/non-speech decision for one 10/20/30 ms int16 frame."""
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)

    def is_speech(frame: np.ndarray) -> bool:
        return vad.is_speech(frame.tobytes(), rate_hz)

    return is_speech
