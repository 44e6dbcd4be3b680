"""The benchmark's pure parts: scenario loading, percentiles, where speech ends, the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voicebox.bench.metrics import last_voiced_ms, percentiles
from voicebox.bench.scenarios import load_scenarios
from voicebox.bench.sip_bench import TurnResult, summarize, to_markdown
from voicebox.config import ConfigError

SHARED = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "corpus"


def test_the_corpus_scenarios_load():
    scenarios, base = load_scenarios(SHARED / "scenarios.json")
    ids = {s.id for s in scenarios}
    assert {"hours_saturday", "barge_in", "human", "goodbye"} <= ids
    assert all((base / t.wav).exists() for s in scenarios for t in s.turns)


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ('{"scenarios": []}', "scenarios"),
        ('{"scenarios": [{"id": "x", "turns": [{"text": "hi"}]}]}', r"scenarios\.0\.turns\.0\.wav"),
        ('{"scenarios": [{"id": "x", "turns": [{"wav": "a.wav", "expect": "dance"}]}]}', r"scenarios\.0\.turns\.0\.expect"),
        ('{"scenarios": [{"id": "x", "turns": [{"wav": "missing.wav"}]}]}', "WAV files not found: missing.wav"),
    ],
)
def test_bad_scenario_files_get_clear_errors(tmp_path, content, match):
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_scenarios(path)


def test_missing_scenario_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_scenarios(tmp_path / "nope.json")


def test_percentiles_skip_missing_values():
    p = percentiles([100.0, None, 200.0, 300.0, float("nan")])
    assert p["n"] == 3 and p["p50"] == 200.0 and p["max"] == 300.0
    assert 280.0 <= p["p95"] <= 300.0
    assert percentiles([None]) == {"n": 0, "p50": None, "p95": None, "max": None}


def test_last_voiced_ms_finds_the_end_of_speech_not_of_the_file():
    rate = 16000
    t = np.arange(rate) / rate
    # A voice-like buzz (harmonics of 150 Hz) for 600 ms, then 400 ms of silence.
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12))
    audio = np.zeros(rate, dtype=np.int16)
    audio[: int(0.6 * rate)] = (buzz[: int(0.6 * rate)] * 6000).astype(np.int16)
    assert 500 <= last_voiced_ms(audio, rate) <= 640
    assert last_voiced_ms(np.zeros(rate, np.int16), rate) == 0


def test_summary_and_markdown_from_given_timelines():
    turns = [
        TurnResult("a", 0, "PCMU", "hours", "hours", "template",
                   {"endpoint_ms": 700.0, "transcript_ms": 0.0, "first_token_ms": None,
                    "first_audio_ms": 10.0, "voice_to_voice_ms": 710.0}, 730.0, True),
        TurnResult("b", 0, "PCMU", "human", "prices", "template",
                   {"endpoint_ms": 700.0, "transcript_ms": 400.0, "first_token_ms": None,
                    "first_audio_ms": 30.0, "voice_to_voice_ms": 730.0}, 700.0, False, "why"),
    ]
    report = summarize(turns, {"command": "voicebox bench", "git_revision": "x", "cores": 2, "machine": "m",
                               "python": "3", "started": "t", "duration_s": 1, "repeat": 1,
                               "scenarios": "s", "codec": "PCMU"})
    assert report["intent_accuracy"] == 0.5 and report["task_success"] == 0.5
    assert report["stages"]["first_audio_ms (template turns)"]["max"] == 30.0
    assert report["agent_vs_caller_v2v_abs_diff_ms"]["max"] == 30.0
    md = to_markdown(report)
    assert "| voice_to_voice_ms | 2 |" in md and "FAIL why" in md
    json.dumps(report)  # machine-readable as it stands
