"""Voice-to-voice from a synthetic stereo recording: known gaps give exact figures."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from benchmarks.harness.recording_v2v import read_stereo_wav, recorded_turns, recording_v2v_ms, turn_segments

RATE = 16000


def buzz(ms: int, level: float = 6000.0) -> np.ndarray:
    t = np.arange(RATE * ms // 1000) / RATE
    return sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12)) * level


class Line:
    """Two channels on one clock; ``at`` places a sound ``ms`` into the call."""

    def __init__(self, length_ms: int) -> None:
        self.sent = np.zeros(RATE * length_ms // 1000)
        self.heard = np.zeros(RATE * length_ms // 1000)

    def say(self, at_ms: int, ms: int, lead_ms: int = 160) -> int:
        """A caller turn as a corpus WAV would play: a digital-zero lead-in, then speech. Returns its end."""
        start = RATE * (at_ms + lead_ms) // 1000
        self.sent[start : start + RATE * ms // 1000] += buzz(ms)
        return at_ms + lead_ms + ms

    def reply(self, at_ms: int, ms: int) -> None:
        start = RATE * at_ms // 1000
        self.heard[start : start + RATE * ms // 1000] += buzz(ms, 3000.0)

    def channels(self) -> tuple[np.ndarray, np.ndarray]:
        clip = lambda x: np.clip(x, -32768, 32767).astype(np.int16)  # noqa: E731
        return clip(self.sent), clip(self.heard)


def test_two_turns_with_known_gaps_give_exact_figures():
    line = Line(16000)
    line.reply(0, 1500)  # the greeting
    end1 = line.say(3000, 1200)  # speech 3160-4360
    line.reply(end1 + 640, 2000)
    end2 = line.say(end1 + 640 + 2000 + 1500, 900)
    line.reply(end2 + 500, 1000)
    first, second = recorded_turns(*line.channels(), turns=2)
    assert first.speech_start_ms == 3160  # after the lead-in
    assert first.speech_end_ms == end1
    assert first.v2v_ms == 640
    assert second.speech_end_ms == end2
    assert second.v2v_ms == 500


def test_a_pause_inside_a_turn_does_not_split_it():
    line = Line(20000)
    line.say(2000, 1000)
    end1 = line.say(3160 + 1000, 800)  # the same turn goes on after a 1 s pause
    line.reply(end1 + 700, 2500)
    end2 = line.say(end1 + 700 + 2500 + 1500, 700)
    line.reply(end2 + 420, 800)
    assert [round(v) for v in recording_v2v_ms_of(line, 2)] == [700, 420]


def test_a_barge_in_skips_the_reply_the_caller_talked_over():
    line = Line(16000)
    end1 = line.say(1000, 1000)
    line.reply(end1 + 600, 1500)  # the reply runs on past the start of the next turn...
    end2 = line.say(end1 + 600 + 900, 1400)  # ...the caller barges in 900 ms into it
    line.reply(end2 + 560, 1000)
    assert [round(v) for v in recording_v2v_ms_of(line, 2)] == [600, 560]
    # An agent that talks on past the end of the barge-in: its reply is the next talk spurt.
    line = Line(16000)
    end1 = line.say(1000, 1000)
    line.reply(end1 + 600, 3200)
    end2 = line.say(end1 + 600 + 900, 1400)
    line.reply(end2 + 1000, 1000)
    assert [round(v) for v in recording_v2v_ms_of(line, 2)] == [600, 1000]


def test_noise_in_the_callers_turn_is_not_speech():
    line = Line(8000)
    end = line.say(1000, 1000)
    noise = np.random.default_rng(3).normal(0, 340, RATE * 1700 // 1000)  # 24 dB below the speech
    line.sent[RATE * 1000 // 1000 : RATE * 2700 // 1000] += noise  # from the lead-in into the tail
    line.reply(end + 700, 1000)
    (turn,) = recorded_turns(*line.channels(), turns=1)
    assert abs(turn.speech_end_ms - end) <= 20
    assert abs(turn.v2v_ms - 700) <= 20


def test_no_reply_before_the_next_turn_and_turns_never_said_are_none():
    line = Line(12000)
    end1 = line.say(1000, 800)
    end2 = line.say(end1 + 4000, 800)  # no reply to the first turn
    line.reply(end2 + 300, 1000)
    first, second, third = recorded_turns(*line.channels(), turns=3)
    assert first.reply_onset_ms is None and first.v2v_ms is None
    assert second.v2v_ms == 300
    assert third is None  # the call ended before it: nothing in the recording
    assert turn_segments(np.zeros(10, bool), 2) == []


def test_stereo_wav_round_trip_and_mono_is_refused(tmp_path):
    line = Line(6000)
    end = line.say(500, 1000)
    line.reply(end + 380, 1000)
    sent, heard = line.channels()
    path = tmp_path / "call.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.stack([sent, heard], axis=1).tobytes())
    left, right, rate = read_stereo_wav(path)
    assert rate == RATE and np.array_equal(left, sent) and np.array_equal(right, heard)
    assert recording_v2v_ms(path, 1) == [380]
    with wave.open(str(tmp_path / "mono.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(sent.tobytes())
    with pytest.raises(ValueError, match="stereo"):
        read_stereo_wav(tmp_path / "mono.wav")


def recording_v2v_ms_of(line: Line, turns: int) -> list[float | None]:
    return [None if t is None else t.v2v_ms for t in recorded_turns(*line.channels(), turns=turns)]
