"""TurnDetector: the end-of-turn state machine, driven by a fake classifier and by webrtcvad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicebox.audio.wavio import read_wav
from voicebox.config import VadConfig
from voicebox.listening.turns import Growing, Paused, SpeechStarted, TurnDetector, TurnEnded, webrtc_classifier

FRAME_MS = 20
FRAME_LEN = 320  # 20 ms at 16 kHz
CORPUS_WAV = Path("/work/shared/corpus/wav/hours_saturday_0.wav")

# start 120 ms = 6 frames (4 voiced needed), hangover 200 ms = 10 frames, preroll 10 frames.
CFG = VadConfig(start_ms=120, hangover_ms=200, min_turn_ms=200, max_turn_ms=1000, preroll_ms=200)


def frame(voiced: bool, index: int) -> np.ndarray:
    """Sample 0 says voiced (1) or not (0); sample 1 is the frame's index, to trace audio."""
    f = np.zeros(FRAME_LEN, np.int16)
    f[0] = 1 if voiced else 0
    f[1] = index
    return f


def fake_is_speech(f: np.ndarray) -> bool:
    return bool(f[0])


def frames_of(pattern: str) -> list[np.ndarray]:
    bits = pattern.replace(" ", "")
    return [frame(b == "1", i) for i, b in enumerate(bits)]


def run(pattern: str, cfg: VadConfig = CFG, det: TurnDetector | None = None, pauses: bool = False):
    """Feed the pattern; starts and ends (and, with ``pauses``, the speculative Paused events)."""
    det = det or TurnDetector(cfg, FRAME_MS, fake_is_speech)
    events = []
    for f in frames_of(pattern):
        events += [e for e in det.process(f) if (pauses or not isinstance(e, Paused)) and not isinstance(e, Growing)]
    return det, events


def summarize(events) -> list[tuple]:
    """Events without their start times (those have their own test below)."""
    out = []
    for e in events:
        if isinstance(e, SpeechStarted):
            out.append(("start",))
        else:
            out.append(("end", e.last_voiced_ms, e.decided_ms, e.voiced_ms, e.reason))
    return out


def audio_frame_indices(ev: TurnEnded) -> list[int]:
    assert len(ev.audio) % FRAME_LEN == 0
    return [int(i) for i in ev.audio.reshape(-1, FRAME_LEN)[:, 1]]


# Each case: pattern of voiced (1) / unvoiced (0) 20 ms frames -> the events it must cause, as
# ("start",) and ("end", last_voiced_ms, decided_ms, voiced_ms, reason).
CASES = {
    "clean turn": (
        "0" * 10 + "1" * 20 + "0" * 10,
        # last voiced frame 29 ends at 600 ms; 10 silent frames (200 ms) later the end is decided.
        [("start",), ("end", 600, 800, 400, "silence")],
    ),
    "turn at the very first frame": (
        "1" * 15 + "0" * 10,
        [("start",), ("end", 300, 500, 300, "silence")],
    ),
    "silence only": ("0" * 60, []),
    "single click": ("0" * 10 + "1" + "0" * 30, []),
    "two clicks": ("0" * 5 + "1001" + "0" * 30, []),
    "three voiced frames are not enough": ("0" * 5 + "111" + "0" * 30, []),
    "alternating frames never reach most voiced": ("10" * 30, []),
    "three of six voiced is not enough": ("0" * 5 + ("110100" * 6) + "0" * 12, []),
    "4 of 6 ending on an unvoiced frame does not start": ("111010" + "0" * 20, []),
    "mostly voiced onset with a gap": (
        "0" * 5 + "110111" + "1" * 10 + "0" * 10,
        [("start",), ("end", 420, 620, 300, "silence")],
    ),
    "pause shorter than hangover keeps the turn": (
        "1" * 10 + "0" * 9 + "1" * 10 + "0" * 10,
        [("start",), ("end", 580, 780, 400, "silence")],
    ),
    "clicks inside the hangover restart it": (
        "1" * 10 + "0" * 9 + "1" + "0" * 9 + "1" + "0" * 10,
        [("start",), ("end", 600, 800, 240, "silence")],
    ),
    "pause as long as the hangover ends the turn": (
        "1" * 12 + "0" * 10 + "1" * 12 + "0" * 10,
        [("start",), ("end", 240, 440, 240, "silence"), ("start",), ("end", 680, 880, 240, "silence")],
    ),
    "too short a turn is dropped": ("0" * 3 + "1" * 6 + "0" * 12, [("start",)]),
    "just long enough a turn is kept": (
        "0" * 3 + "1" * 10 + "0" * 12,
        [("start",), ("end", 260, 460, 200, "silence")],
    ),
    "no end without enough silence": ("1" * 10 + "0" * 9, [("start",)]),
    "max_turn_ms cuts a long turn": (
        "1" * 56,
        # cut when 1000 ms have passed since the start; the talker goes on, so a new turn opens.
        [("start",), ("end", 1000, 1000, 1000, "max_length"), ("start",)],
    ),
}


@pytest.mark.parametrize("pattern,expected", CASES.values(), ids=CASES.keys())
def test_turn_rules(pattern, expected):
    _, events = run(pattern)
    assert summarize(events) == expected


@pytest.mark.parametrize("pattern,expected", CASES.values(), ids=CASES.keys())
def test_turn_invariants(pattern, expected):
    det, events = run(pattern)
    for e in events:
        if isinstance(e, TurnEnded):
            assert e.start_ms < e.last_voiced_ms <= e.decided_ms
            assert e.voiced_ms <= e.last_voiced_ms - e.start_ms
            if e.reason == "silence":
                assert e.decided_ms - e.last_voiced_ms == CFG.hangover_ms
            else:
                assert e.decided_ms - e.start_ms == CFG.max_turn_ms
            assert e.voiced_ms >= CFG.min_turn_ms
            # The audio runs without a gap up to the frame on which the end was decided.
            idx = audio_frame_indices(e)
            assert idx == list(range(idx[0], idx[0] + len(idx)))
            assert (idx[-1] + 1) * FRAME_MS == e.decided_ms
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    ends = [e for e in events if isinstance(e, TurnEnded)]
    assert [e.at_ms for e in starts][: len(ends)] == [e.start_ms for e in ends]


# Onset time: SpeechStarted.at_ms is documented as "media time of the first voiced frame of the
# onset", and TurnEnded.start_ms is the same instant.
ONSET_CASES = {
    "voiced from the first frame": ("1" * 15 + "0" * 10, 0),
    "second turn right after the first": ("1" * 12 + "0" * 10 + "1" * 12 + "0" * 10, 440),
    "clean onset after silence": ("0" * 10 + "1" * 20 + "0" * 10, 200),
    "onset with a gap after silence": ("0" * 5 + "110111" + "1" * 10 + "0" * 10, 100),
}


@pytest.mark.parametrize("pattern,at_ms", ONSET_CASES.values(), ids=ONSET_CASES.keys())
def test_onset_time_is_first_voiced_frame(pattern, at_ms):
    _, events = run(pattern)
    last_start = [e for e in events if isinstance(e, SpeechStarted)][-1]
    last_end = [e for e in events if isinstance(e, TurnEnded)][-1]
    assert last_start.at_ms == at_ms
    assert last_end.start_ms == at_ms
    assert pattern[at_ms // FRAME_MS] == "1"


def test_onset_needs_most_of_start_ms_voiced():
    """Detection comes only after most of a start_ms window is voiced, never on the first frames."""
    det = TurnDetector(CFG, FRAME_MS, fake_is_speech)
    first_event_frame = None
    for i, f in enumerate(frames_of("0" * 10 + "1" * 20)):
        if det.process(f) and first_event_frame is None:
            first_event_frame = i
    voiced_before = first_event_frame - 10 + 1
    window = CFG.start_ms // FRAME_MS
    assert voiced_before > window / 2  # a majority of the window
    assert voiced_before <= window


def test_max_length_after_silence():
    det, events = run("0" * 4 + "1" * 60 + "0" * 10)
    ends = [e for e in events if isinstance(e, TurnEnded)]
    first = ends[0]
    assert first.reason == "max_length"
    assert first.decided_ms - first.start_ms == CFG.max_turn_ms
    assert first.last_voiced_ms == first.decided_ms
    # The rest of the talk is a second turn, which ends on silence.
    assert ends[-1].reason == "silence"
    assert ends[-1].last_voiced_ms == 64 * FRAME_MS


def test_silence_wins_over_max_length_on_the_same_frame():
    cfg = VadConfig(start_ms=120, hangover_ms=200, min_turn_ms=0, max_turn_ms=1000, preroll_ms=200)
    # Voiced 0..39 (800 ms), then silent: the hangover (200 ms) runs out at exactly 1000 ms.
    _, events = run("1" * 40 + "0" * 10, cfg)
    end = events[-1]
    assert isinstance(end, TurnEnded)
    assert end.decided_ms == 1000
    assert end.reason == "silence"


def test_default_config_turn():
    """The shipped defaults: 120 ms onset, 700 ms hangover, 250 ms minimum."""
    cfg = VadConfig()
    _, events = run("0" * 10 + "1" * 30 + "0" * 40, cfg)
    assert summarize(events) == [("start",), ("end", 800, 1500, 600, "silence")]
    _, events = run("0" * 10 + "1" * 10 + "0" * 40, cfg)  # 200 ms voiced < 250 ms
    assert summarize(events) == [("start",)]


def test_turn_audio_includes_preroll():
    det, events = run("0" * 15 + "1" * 10 + "0" * 10)
    start, end = events
    assert isinstance(start, SpeechStarted) and isinstance(end, TurnEnded)
    idx = audio_frame_indices(end)
    first_voiced = 15
    preroll_frames = CFG.preroll_ms // FRAME_MS
    # Audio from before the first voiced frame is kept, but no more than preroll_ms of it.
    assert idx[0] < first_voiced
    assert idx[0] >= first_voiced - preroll_frames
    lead_in = end.audio.reshape(-1, FRAME_LEN)[: first_voiced - idx[0], 0]
    assert not lead_in.any()  # those frames are the unvoiced lead-in
    assert set(range(15, 25)) <= set(idx)  # every voiced frame
    assert idx[-1] == 34
    assert end.audio.dtype == np.int16


def test_preroll_zero_still_keeps_the_onset_frame():
    cfg = VadConfig(start_ms=120, hangover_ms=200, min_turn_ms=0, max_turn_ms=1000, preroll_ms=0)
    _, events = run("0" * 15 + "1" * 10 + "0" * 10, cfg)
    end = events[-1]
    assert isinstance(end, TurnEnded)
    idx = audio_frame_indices(end)
    assert idx[-1] == 34
    # Every voiced frame after onset detection is in the audio.
    assert set(range(20, 25)) <= set(idx)


def test_in_turn_flag():
    det = TurnDetector(CFG, FRAME_MS, fake_is_speech)
    assert not det.in_turn
    for i, f in enumerate(frames_of("1" * 6)):
        det.process(f)
        assert det.in_turn == (i == 5)
    for f in frames_of("0" * 10):
        det.process(f)
    assert not det.in_turn


def test_dropped_short_turn_leaves_detector_idle_and_ready():
    det, events = run("1" * 6 + "0" * 10)
    assert summarize(events) == [("start",)]
    assert not det.in_turn
    _, more = run("1" * 15 + "0" * 10, det=det)
    assert summarize(more) == [("start",), ("end", 620, 820, 300, "silence")]


def test_reset_forgets_a_partial_turn():
    det, events = run("1" * 8)
    assert det.in_turn and summarize(events) == [("start",)]
    det.reset()
    assert not det.in_turn
    _, after = run("0" * 20, det=det)
    assert after == []


def test_reset_forgets_a_partial_onset_and_keeps_media_time():
    det = TurnDetector(CFG, FRAME_MS, fake_is_speech)
    events = []
    for f in frames_of("1" * 5):  # one frame short of an onset
        events += det.process(f)
    det.reset()
    events += det.process(frame(True, 5))  # would have completed the onset without reset
    assert events == []
    for i in range(6, 11):
        events += det.process(frame(True, i))
    # Onset window after the reset: frames 5..10, media time keeps counting from the call start.
    assert [e.at_ms for e in events] == [100]


def test_reset_then_new_turn_audio_has_no_old_frames():
    det, _ = run("1" * 8)
    det.reset()
    events = []
    for i in range(8, 8 + 15):
        events += det.process(frame(True, i))
    for i in range(23, 33):
        events += det.process(frame(False, i))
    end = events[-1]
    assert isinstance(end, TurnEnded)
    assert min(audio_frame_indices(end)) >= 8


# -- the real classifier -------------------------------------------------------------------------


def test_webrtc_classifier_silence_is_not_speech():
    is_speech = webrtc_classifier(16000, 2)
    assert is_speech(np.zeros(320, np.int16)) is False
    det = TurnDetector(VadConfig(), FRAME_MS, is_speech)
    events = []
    for _ in range(100):
        events += det.process(np.zeros(320, np.int16))
    assert events == []


@pytest.mark.skipif(not CORPUS_WAV.exists(), reason="corpus recording not available")
def test_webrtc_turn_on_real_recording():
    audio, rate = read_wav(CORPUS_WAV)
    assert rate == 16000
    n = rate * FRAME_MS // 1000
    pad = (-len(audio)) % n
    stream = np.concatenate([audio, np.zeros(pad + rate, np.int16)])  # then 1 s of silence
    cfg = VadConfig()
    det = TurnDetector(cfg, FRAME_MS, webrtc_classifier(rate, cfg.aggressiveness))
    events = []
    for i in range(0, len(stream), n):
        events += det.process(stream[i : i + n])
    ended = [e for e in events if isinstance(e, TurnEnded)]
    started = [e for e in events if isinstance(e, SpeechStarted)]
    assert len(ended) == 1
    assert len(started) == 1
    turn = ended[0]
    assert turn.reason == "silence"
    assert 1000 <= turn.voiced_ms <= 3000
    assert turn.decided_ms - turn.last_voiced_ms == cfg.hangover_ms
    assert turn.last_voiced_ms <= len(audio) * 1000 // rate + FRAME_MS
    assert started[0].at_ms == turn.start_ms
    # The audio covers the whole turn, from onset to the end decision (plus preroll).
    assert len(turn.audio) >= (turn.decided_ms - turn.start_ms) * rate // 1000
    assert len(turn.audio) <= (turn.decided_ms - turn.start_ms + cfg.preroll_ms) * rate // 1000


# -- speculative pauses ---------------------------------------------------------------------------

def test_pause_is_reported_once_with_the_turn_so_far_and_matches_the_end():
    cfg = VadConfig(start_ms=120, hangover_ms=300, min_turn_ms=100, preroll_ms=0, speculate_after_ms=60)
    _, events = run("1" * 10 + "0" * 20, cfg, pauses=True)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["SpeechStarted", "Paused", "TurnEnded"]
    pause, end = events[1], events[2]
    assert pause.last_voiced_ms == end.last_voiced_ms == 200
    # The pause's audio is the turn up to its third silent frame: a prefix of the final audio.
    assert len(pause.audio) == 13 * FRAME_LEN
    assert np.array_equal(pause.audio, end.audio[: len(pause.audio)])


def test_speech_after_a_pause_reports_a_new_pause_with_a_later_last_voiced_frame():
    cfg = VadConfig(start_ms=120, hangover_ms=300, min_turn_ms=100, preroll_ms=0, speculate_after_ms=60)
    _, events = run("1" * 10 + "0" * 5 + "1" * 5 + "0" * 20, cfg, pauses=True)
    pauses = [e for e in events if isinstance(e, Paused)]
    end = [e for e in events if isinstance(e, TurnEnded)][0]
    assert [p.last_voiced_ms for p in pauses] == [200, 400]
    assert pauses[-1].last_voiced_ms == end.last_voiced_ms  # only the last one may be reused


def test_no_pause_before_enough_speech():
    cfg = VadConfig(start_ms=60, hangover_ms=300, min_turn_ms=200, preroll_ms=0, speculate_after_ms=60)
    _, events = run("1" * 5 + "0" * 20, cfg, pauses=True)
    assert not [e for e in events if isinstance(e, Paused)]


def test_speculate_after_must_be_below_hangover():
    with pytest.raises(ValueError, match="speculate_after_ms"):
        VadConfig(hangover_ms=300, speculate_after_ms=300)


def test_hangover_override_applies_to_the_current_pause_only():
    cfg = VadConfig(start_ms=60, hangover_ms=400, short_hangover_ms=200, long_hangover_ms=800,
                    min_turn_ms=60, preroll_ms=0, speculate_after_ms=60)
    det = TurnDetector(cfg, FRAME_MS, fake_is_speech)
    for f in frames_of("1" * 10 + "0" * 3):
        det.process(f)
    det.hangover_override_ms = 800  # "unfinished": wait longer than the default 400 ms
    events = []
    for f in frames_of("0" * 30):
        events += det.process(f)
    assert not [e for e in events if isinstance(e, TurnEnded)]  # 660 ms of silence: still waiting
    for f in frames_of("1" * 5):  # the caller goes on: the override is forgotten
        det.process(f)
    assert det.hangover_override_ms is None
    events = []
    for f in frames_of("0" * 25):
        events += det.process(f)
    ends = [e for e in events if isinstance(e, TurnEnded)]
    assert len(ends) == 1 and ends[0].decided_ms - ends[0].last_voiced_ms == 400


def test_growing_events_come_at_the_partial_cadence_while_speech_goes_on():
    cfg = VadConfig(start_ms=100, hangover_ms=300, min_turn_ms=0, preroll_ms=0, partial_every_ms=200, speculate_after_ms=100)
    det = TurnDetector(cfg, FRAME_MS, fake_is_speech)
    growing = []
    for f in frames_of("1" * 50 + "0" * 20):  # 1 s of speech, then 400 ms of silence
        growing += [e for e in det.process(f) if isinstance(e, Growing)]
    # Every 200 ms of turn from onset, none once the caller has paused for speculate_after_ms.
    assert len(growing) == 4
    assert all(g.start_ms == growing[0].start_ms for g in growing)
    lengths = [len(g.audio) for g in growing]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]


def test_no_growing_events_when_partials_are_off():
    cfg = VadConfig(start_ms=100, hangover_ms=300, min_turn_ms=0, preroll_ms=0, partial_every_ms=0)
    det = TurnDetector(cfg, FRAME_MS, fake_is_speech)
    assert not [e for f in frames_of("1" * 50 + "0" * 20) for e in det.process(f) if isinstance(e, Growing)]
