"""The noise floor (a sliding minimum of frame levels) and the level gate built on it."""

from __future__ import annotations

import random

import numpy as np
import pytest

from voicebox.listening.noise_floor import SILENT_DB, NoiseFloor, SpeechLevelGate, level_db

FRAME = 320


def tone(dbfs: float, seed: int = 0) -> np.ndarray:
    """A 20 ms frame of white noise at ``dbfs`` RMS."""
    x = np.random.default_rng(seed).standard_normal(FRAME)
    x *= 32768 * 10 ** (dbfs / 20) / np.sqrt(np.mean(x * x))
    return np.clip(x, -32768, 32767).astype(np.int16)


def test_level_of_full_scale_silence_and_a_known_tone():
    assert level_db(np.zeros(FRAME, np.int16)) == SILENT_DB
    assert level_db(np.zeros(0, np.int16)) == SILENT_DB
    assert level_db(tone(-30)) == pytest.approx(-30, abs=0.1)


def test_no_floor_before_one_whole_window():
    nf = NoiseFloor(5, plateau_frames=5)
    assert [nf.update(-30) for _ in range(4)] == [None] * 4
    assert nf.update(-30) == -30


@pytest.mark.parametrize("window", [1, 3, 50])
def test_the_floor_is_the_minimum_of_the_last_window(window):
    rnd = random.Random(window)
    levels = [rnd.uniform(-60, 0) for _ in range(400)]
    nf = NoiseFloor(window, plateau_frames=1)
    for i, db in enumerate(levels):
        got = nf.update(db)
        want = min(levels[max(0, i - window + 1) : i + 1]) if i + 1 >= window else None
        assert got == want, i


def test_steady_noise_stops_counting_once_its_floor_is_known():
    gate = SpeechLevelGate(-50, margin_db=6, window_ms=200, frame_ms=20)
    noise = [gate.loud(tone(-34, seed=i)) for i in range(30)]
    assert all(noise[:9]) and not any(noise[10:])  # 10 frames fill the window
    assert gate.floor_dbfs == pytest.approx(-34, abs=0.5)
    # Speech well above the noise still counts; speech buried in it does not.
    assert gate.loud(tone(-20)) and not gate.loud(tone(-31))


def test_a_caller_who_talks_on_does_not_raise_the_floor_past_their_pauses():
    gate = SpeechLevelGate(-50, margin_db=6, window_ms=1000, frame_ms=20)
    heard = []
    for i in range(200):  # 4 s: 160 ms words, 60 ms gaps with the line's noise in them
        frame = tone(-40, seed=i) if i % 11 in (8, 9, 10) else tone(-18, seed=i)
        heard.append(gate.loud(frame))
    words = [h for i, h in enumerate(heard) if i % 11 not in (8, 9, 10)]
    assert all(words) and gate.floor_dbfs == pytest.approx(-40, abs=0.5)


def test_lone_dips_in_fast_speech_are_not_noise():
    """Digits read out in one breath on a clean line: a quiet frame now and then, no plateau."""
    nf = NoiseFloor(50, plateau_frames=8)
    rnd = random.Random(1)
    floors = []
    for i in range(300):
        db = rnd.uniform(-40, -37) if i % 17 == 0 else rnd.uniform(-22, -10)
        floors.append(nf.update(db))
    assert floors == [None] * 300
    for _ in range(8):  # then the line's own noise, steady
        floor = nf.update(-45.0)
    assert floor == -45.0


def test_a_clean_line_keeps_the_fixed_floor_only():
    gate = SpeechLevelGate(-50, margin_db=6, window_ms=100, frame_ms=20)
    for _ in range(10):
        assert not gate.loud(np.zeros(FRAME, np.int16))
    assert gate.loud(tone(-45)) and not gate.loud(tone(-55))


def test_margin_zero_turns_the_noise_check_off():
    gate = SpeechLevelGate(-50, margin_db=0, window_ms=100, frame_ms=20)
    assert all(gate.loud(tone(-34, seed=i)) for i in range(20))
    assert gate.floor_dbfs is None


def test_window_must_hold_the_plateau():
    with pytest.raises(ValueError):
        NoiseFloor(0, plateau_frames=1)
    with pytest.raises(ValueError):
        NoiseFloor(5, plateau_frames=6)
