"""Voice-to-voice from the caller's stereo recording alone: an independent check of its live stamps.

The pjsua2 caller can write what it sent (left) and what it heard (right) on its one
conference-bridge clock, frame by frame. From that recording alone, with no timestamps, each
turn's v2v is: the end of the caller's speech in the sent channel -> the start of the agent's
next talk spurt in the received channel. The live figure (``play_start_ms`` + the WAV's last
voiced frame -> ``reply_onset_ms``) must agree with it; where it does not, a stamp is off.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.harness.metrics import VOICE_RMS, last_voiced_ms

FRAME_MS = 20  # the caller's bridge frame: both channels are cut into these
DIGITAL_SILENCE_RMS = 1.0  # quieter than this is the player's (or a WAV's) digital zero


@dataclass
class RecordedTurn:
    """One caller turn as the recording shows it, in ms from the recording's start."""

    speech_start_ms: float  # first sent frame of the turn's audio
    speech_end_ms: float  # the caller's last voiced frame (the project's energy rule)
    reply_onset_ms: float | None  # the agent's first voiced frame after it (None: no reply before the next turn)

    @property
    def v2v_ms(self) -> float | None:
        return None if self.reply_onset_ms is None else self.reply_onset_ms - self.speech_end_ms


def read_stereo_wav(path: Path | str) -> tuple[np.ndarray, np.ndarray, int]:
    """The sent (left) and received (right) channels of a caller's stereo recording, and its rate."""
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 2 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected a 16-bit stereo WAV (left sent, right received)")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, 2)
        return data[:, 0].copy(), data[:, 1].copy(), w.getframerate()


def _frame_rms(samples: np.ndarray, n: int) -> np.ndarray:
    frames = len(samples) // n
    x = samples[: frames * n].astype(np.float64).reshape(frames, n)
    return np.sqrt((x * x).mean(axis=1))


def turn_segments(active: np.ndarray, turns: int) -> list[tuple[int, int]]:
    """Split the caller's active frames into ``turns`` spans (first, last frame), at the widest gaps.

    Between turns the caller waits for the agent's whole reply and then some quiet (or, barging
    in, most of a second of it), while within a turn its recording pauses only briefly (the
    corpus's mid_pause turn included): the ``turns - 1`` widest silent gaps are the boundaries.
    Fewer spans than turns when fewer were said (the call ended early).
    """
    idx = np.nonzero(active)[0]
    if idx.size == 0 or turns < 1:
        return []
    gaps = np.diff(idx)  # frames from one active frame to the next; 1 = contiguous
    breaks = np.nonzero(gaps > 1)[0]
    cut = sorted(breaks[np.argsort(-gaps[breaks], kind="stable")[: turns - 1]])
    starts = [int(idx[0])] + [int(idx[c + 1]) for c in cut]
    ends = [int(idx[c]) for c in cut] + [int(idx[-1])]
    return list(zip(starts, ends))


def recorded_turns(sent: np.ndarray, received: np.ndarray, turns: int, rate_hz: int = 16000) -> list[RecordedTurn | None]:
    """Each turn's speech end and reply onset, found in the recording alone (one per turn).

    Assumes the sent channel carries only the caller's turns (no echo of the agent mixed in).
    The reply onset is the start of a talk spurt (a voiced frame after an unvoiced one) at or
    after the speech end: an agent still talking over a barge-in is not its reply.
    """
    n = rate_hz * FRAME_MS // 1000
    sent_rms, heard_rms = _frame_rms(sent, n), _frame_rms(received, n)
    heard = heard_rms > VOICE_RMS
    spans = turn_segments(sent_rms > VOICE_RMS, turns)
    out: list[RecordedTurn | None] = []
    for k, (first, last) in enumerate(spans):
        # The speech end is judged on the turn's whole clip, as the live figure judges its WAV:
        # out to its digital silence, so that its noise floor is the WAV's (see last_voiced_ms).
        lo, hi = first, last
        while lo > 0 and sent_rms[lo - 1] >= DIGITAL_SILENCE_RMS:
            lo -= 1
        while hi + 1 < len(sent_rms) and sent_rms[hi + 1] >= DIGITAL_SILENCE_RMS:
            hi += 1
        end_ms = lo * FRAME_MS + last_voiced_ms(sent[lo * n : (hi + 1) * n], rate_hz)
        limit = spans[k + 1][0] if k + 1 < len(spans) else len(heard)
        onset = None
        for i in range(int(np.ceil(end_ms / FRAME_MS)), limit):
            if heard[i] and (i == 0 or not heard[i - 1]):
                onset = float(i * FRAME_MS)
                break
        out.append(RecordedTurn(float(first * FRAME_MS), end_ms, onset))
    return out + [None] * (turns - len(out))


def recording_v2v_ms(path: Path | str, turns: int) -> list[float | None]:
    """Per turn, voice-to-voice (ms) from a caller's stereo recording; None where not measurable."""
    sent, received, rate = read_stereo_wav(path)
    return [None if t is None else t.v2v_ms for t in recorded_turns(sent, received, turns, rate)]
