"""The benchmark's pure parts: scenario loading, figures from given timelines, the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness.metrics import (
    barge_stop_ms, false_barge_ins, first_voiced_ms, last_voiced_ms, normalize_text, percentiles,
    reply_onset_ms, word_error_rate,
)
from benchmarks.harness.report import to_markdown, write_plots
from benchmarks.harness.results import CallResult, TurnResult, judge, summarize_calls, summarize_turns
from benchmarks.harness.run import parse_levels, select
from benchmarks.harness.scenarios import Turn, load_scenarios
from benchmarks.harness.sim_caller import ScriptedCaller
from voicebox.config import ConfigError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpus"


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
        ('{"scenarios": [{"id": "x", "turns": [{"wav": "a.wav", "barge_after_ms": -5}]}]}', "barge_after_ms"),
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


def test_scenario_selection_and_levels_are_checked():
    scenarios, _ = load_scenarios(SHARED / "scenarios.json")
    assert [s.id for s in select(scenarios, "goodbye,location")] == ["location", "goodbye"]
    with pytest.raises(ConfigError, match="no scenario named nope"):
        select(scenarios, "nope")
    assert parse_levels("8,1,2,4,2") == [1, 2, 4, 8]
    for bad in ("", "0", "a,b", "99"):
        with pytest.raises(ConfigError, match="--concurrency"):
            parse_levels(bad)


def test_percentiles_skip_missing_values():
    p = percentiles([100.0, None, 200.0, 300.0, float("nan")])
    assert p["n"] == 3 and p["p50"] == 200.0 and p["max"] == 300.0
    assert 280.0 <= p["p95"] <= 300.0
    assert percentiles([None]) == {"n": 0, "p50": None, "p95": None, "max": None}


def _buzz(ms_on: int, ms_off_before: int = 0, ms_off_after: int = 0, rate: int = 16000) -> np.ndarray:
    t = np.arange(rate * ms_on // 1000) / rate
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 12)) * 6000
    return np.concatenate([np.zeros(rate * ms_off_before // 1000), buzz, np.zeros(rate * ms_off_after // 1000)]).astype(np.int16)


def test_where_speech_starts_and_ends_in_a_recording():
    audio = _buzz(600, ms_off_before=200, ms_off_after=400)
    assert 190 <= first_voiced_ms(audio, 16000) <= 210
    assert 780 <= last_voiced_ms(audio, 16000) <= 810
    assert last_voiced_ms(np.zeros(16000, np.int16), 16000) == 0


def test_speech_end_in_a_noisy_recording_is_where_the_speech_ends_not_the_noise():
    # Noise all through the file (the corpus's noisy_hours has it 23 dB below its loudest frames): its
    # frames are within 35 dB of the peak, so a peak-relative rule alone ran to the file's end.
    audio = _buzz(600, ms_off_before=200, ms_off_after=600).astype(np.float64)
    audio += np.random.default_rng(1).normal(0, 6000 / 16, audio.size)  # 24 dB below it
    audio = np.clip(audio, -32768, 32767).astype(np.int16)
    assert 190 <= first_voiced_ms(audio, 16000) <= 210
    assert 780 <= last_voiced_ms(audio, 16000) <= 810


# A timeline of what the caller heard, one flag per 20 ms frame.
def heard(*spans: tuple[int, int], length_ms: int = 10000) -> list[bool]:
    flags = [False] * (length_ms // 20)
    for start, end in spans:
        for i in range(start // 20, end // 20):
            flags[i] = True
    return flags


def test_voice_to_voice_from_a_timeline():
    tl = heard((0, 2000), (5600, 7000))  # greeting, then the reply
    # The caller's speech ended at 4800 ms; the reply was first heard at 5600 ms.
    assert reply_onset_ms(tl, 20, from_ms=3000) - 4800 == 800
    assert reply_onset_ms(tl, 20, from_ms=7000) is None


def test_barge_in_stop_time_and_false_barge_ins_from_a_timeline():
    # The agent talks 2000-6000 ms; the caller starts at 3000 ms; the agent cuts at 3400 ms and
    # its audio stops at the caller at 3440 ms.
    tl = heard((2000, 3440))
    assert barge_stop_ms(tl, 20, speech_onset_ms=3000, cuts_ms=[3400]) == 440
    # No cut: the agent never stopped for the caller, however its audio ended.
    assert barge_stop_ms(tl, 20, speech_onset_ms=3000, cuts_ms=[]) is None
    caller_speech = [(3000, 4500)]
    assert false_barge_ins([3400], caller_speech) == 0
    assert false_barge_ins([3400, 9000, 500], caller_speech) == 2


def test_word_error_rate_normalizes_case_punctuation_and_numbers():
    assert normalize_text("Hi, what time do you open on Saturday? 9 A.M.!") == "hi what time do you open on saturday nine a m"
    assert word_error_rate("We open at 9.", "we open at nine") == 0.0
    assert word_error_rate("what time do you open", "what time you open") == pytest.approx(0.2)
    assert word_error_rate("hello there", "") == 1.0
    assert word_error_rate("", "anything") is None


def test_judging_turns():
    t = Turn(wav="x.wav", expect_any=["9", "nine"])
    assert judge(t, "We open at 9 am.")[0] is True
    assert judge(t, "We open at ten.")[0] is False
    assert judge(Turn(wav="x.wav", expect="transfer"), "", transfer_to="sip:desk@h")[0] is True
    assert judge(Turn(wav="x.wav", expect="hangup"), "Bye", hung_up_by_agent=False)[0] is False
    assert judge(Turn(wav="x.wav", expect="reprompt_or_silence"), "", replied=False)[0] is True
    assert judge(Turn(wav="x.wav", expect="no_reply_during_pause"), "", talked_during_turn=True)[0] is False
    assert judge(Turn(wav="x.wav"), "anything") == (None, "")


def test_scripted_caller_waits_for_quiet_then_talks_and_barges_in():
    speech = _buzz(400, ms_off_after=100)
    turns = [(Turn(wav="a.wav"), speech), (Turn(wav="b.wav", barge_after_ms=300), speech)]
    caller = ScriptedCaller(turns, quiet_ms=200, reply_timeout_ms=3000)
    agent_talks = heard((0, 1000), (2000, 4000), length_ms=8000)
    sent = [caller.step(i * 20, agent_talks[i]) for i in range(len(agent_talks))]
    first, second = caller.played
    assert first.play_start_ms == 1180 and not first.barge  # 200 ms after the greeting's last voiced frame
    assert second.play_start_ms == 2300 and second.barge  # 300 ms into the reply, talking over it
    assert 1570 <= first.speech_end_ms <= 1590
    assert np.abs(sent[60]).max() > 0 and np.abs(sent[90]).max() == 0
    assert caller.done  # after the last reply was heard out


def _turn(**kw) -> TurnResult:
    base = dict(scenario="a", turn=0, codec="PCMU", expect_intent="hours", intent="hours", tier="template",
                agent={"endpoint_ms": 700.0, "transcript_ms": 0.0, "first_token_ms": None,
                       "first_audio_ms": 10.0, "voice_to_voice_ms": 710.0},
                caller_v2v_ms=730.0, task_ok=True, mode="inprocess", wer=0.1)
    base.update(kw)
    return TurnResult(**base)


def test_summary_markdown_and_plots_from_given_timelines(tmp_path):
    turns = [_turn(), _turn(scenario="b", turn=1, intent="prices", expect_intent="human", task_ok=False, why="why",
                            caller_v2v_ms=700.0, agent={"voice_to_voice_ms": 730.0, "endpoint_ms": 700.0},
                            barge=True, barge_stop_ms=250.0, wer=0.3, budget_misses=["transcript"])]
    calls = [CallResult("a", "inprocess", "voicebox", duration_s=10.0, cpu_s=5.0, false_barge_ins=1),
             CallResult("b", "inprocess", "voicebox", duration_s=10.0, cpu_s=3.0, underruns=2)]
    ts, cs = summarize_turns(turns), summarize_calls(calls)
    assert cs["max_frame_gap_ms"] is None and cs["frame_gaps_over_40ms"] == 0  # in-process: no bridge clock
    sip = summarize_calls([CallResult("a", "sip", "voicebox", duration_s=10.0, max_frame_gap_ms=23.5, late_frame_requests=0),
                           CallResult("b", "sip", "voicebox", duration_s=12.0, max_frame_gap_ms=67.0, late_frame_requests=3)])
    assert sip["max_frame_gap_ms"] == 67.0 and sip["frame_gaps_over_40ms"] == 1 and sip["late_frame_requests"] == 3
    assert ts["intent_accuracy"] == 0.5 and ts["task_success"] == 0.5
    assert ts["agent_vs_caller_v2v_abs_diff_ms"]["max"] == 30.0
    assert ts["mean_wer"] == pytest.approx(0.2) and ts["budget_misses"] == 1 and ts["barge_stopped"] == 1
    assert cs["cpu_s_per_call_s"] == pytest.approx(0.4) and cs["false_barge_ins"] == 1 and cs["underruns"] == 2
    run = {"name": "inprocess voicebox PCMU", "mode": "inprocess", "pipeline": "voicebox", "codec": "PCMU",
           "concurrency": 1, "turns_summary": ts, "calls_summary": cs}
    report = {
        "meta": {"command": "python -m benchmarks.harness", "git_revision": "x", "cores": 2, "machine": "m", "python": "3",
                 "started": "t", "duration_s": 1, "repeat": 1, "scenarios": "s", "scenario_count": 2,
                 "channel": "PCMU", "peak_rss_mb": 800.0},
        "runs": [run], "speedup": [{"run": run["name"], "baseline": "b", "p50_ratio": 5.0, "p95_ratio": 6.0}],
        "sweep": [{"mode": "inprocess", "concurrency": c, "calls": c, "v2v_caller_p95": 700.0 + c, "v2v_agent_p95": 690.0,
                   "underruns": 0, "rejected": 0, "cpu_s_per_call_s": 0.5, "max_frame_gap_ms": 20.0 + c,
                   "frame_gaps_over_40ms": 0} for c in (1, 2)],
        "turns": [dict(t, run=run["name"], concurrency=1) for t in (vars(x) for x in turns)],
        "calls": [],
    }
    json.dumps(report)  # machine-readable as it stands
    pngs = write_plots(report, tmp_path / "bench")
    assert set(pngs) == {"latency CDF", "stages", "p95 vs concurrency"}
    assert all((tmp_path / name).stat().st_size > 1000 for name in pngs.values())
    md = to_markdown(report, pngs)
    assert "| inprocess voicebox PCMU | 2 |" in md and "FAIL why" in md and "5.00x" in md
    assert "1 (barge)" in md and "| 250 |" in md and "![stages](bench-stages.png)" in md
    assert "| inprocess | 2 | 2 | 702 | 690 | 0 | 22 | 0 | 0 | 0.50 |" in md  # the media thread's worst gap
    assert "## Media thread" not in md  # in-process runs have no bridge clock
    run.update(name="sip voicebox x4", mode="sip", concurrency=4, calls_summary=sip)
    assert "| sip voicebox x4 | 4 | 2 | 22 | 67 | 1 | 3 | 0 |" in to_markdown(report, pngs)


def test_the_agreement_section_compares_the_headline_with_the_callers_recording():
    turns = [_turn(mode="sip", caller_v2v_ms=500.0, recording_v2v_ms=480.0),
             _turn(mode="sip", turn=1, caller_v2v_ms=600.0, recording_v2v_ms=690.0),
             _turn(mode="sip", turn=2, caller_v2v_ms=None, recording_v2v_ms=400.0)]
    ts = summarize_turns(turns)
    assert ts["caller_vs_recording_v2v_abs_diff_ms"] == {"n": 2, "p50": 55.0, "p95": pytest.approx(86.5), "max": 90.0}
    assert ts["stages"]["voice_to_voice_ms (caller recording)"]["n"] == 3
    runs = [{"name": "sip voicebox PCMU", "mode": "sip", "pipeline": "voicebox", "codec": "PCMU", "concurrency": 1,
             "turns_summary": ts, "calls_summary": summarize_calls([])},
            {"name": "inprocess voicebox PCMU", "mode": "inprocess", "pipeline": "voicebox", "codec": "PCMU",
             "concurrency": 1, "turns_summary": summarize_turns([_turn()]), "calls_summary": summarize_calls([])}]
    report = {
        "meta": {"command": "python -m benchmarks.harness", "git_revision": "x", "cores": 2, "machine": "m", "python": "3",
                 "started": "t", "duration_s": 1, "repeat": 1, "scenarios": "s", "scenario_count": 1,
                 "channel": "PCMU"},
        "runs": runs, "speedup": [], "sweep": [], "calls": [],
        "turns": [dict(vars(t), run="sip voicebox PCMU", concurrency=1) for t in turns],
    }
    md = to_markdown(report)
    assert "The headline figure is \"v2v caller\"" in md
    assert "| sip voicebox PCMU | the caller's recording | 2 | 55 | 86 | 90 | no |" in md
    assert "| inprocess voicebox PCMU | the agent's call record | 1 | 20 | 20 | 20 | yes |" in md
    assert "| 500 | 480 |" in md  # the turns table: v2v caller, then v2v recording


def test_the_agent_jitter_buffer_knob_is_validated():
    from voicebox.config import load_config

    assert load_config(None, {"media.jitter_buffer_ms": 20}).media.jitter_buffer_ms == 20
    with pytest.raises(ConfigError, match="media.jitter_buffer_ms"):
        load_config(None, {"media.jitter_buffer_ms": 5})


def test_the_agent_figure_with_its_own_jitter_buffer():
    from benchmarks.harness.results import agent_v2v_with_jitter

    assert agent_v2v_with_jitter(_turn(agent_jitter_ms=50.0)) == 760.0
    assert agent_v2v_with_jitter(_turn()) is None
    s = summarize_turns([_turn(agent_jitter_ms=50.0)])
    assert s["agent_with_jitter_vs_caller_v2v_abs_diff_ms"]["max"] == 30.0


def test_the_bench_command_is_python_m_benchmarks_harness_not_voicebox_bench(capsys):
    from benchmarks.harness.__main__ import parser
    from voicebox.cli import main as voicebox_main

    argv = ["--mode", "sip", "--concurrency", "4", "--repeat", "3", "--only", "hours_saturday,location",
            "--agent", "benchmarks/agents/model_answers.toml", "--no-progress", "--out", "benchmarks/results/media-x4"]
    args = parser().parse_args(argv)
    assert (args.mode, args.concurrency, args.repeat, args.codec, args.no_progress) == ("sip", "4", 3, "PCMU", True)
    assert args.scenarios.endswith("shared/corpus/scenarios.json") and args.baseline == "" and args.rtp_ports == ""
    with pytest.raises(SystemExit) as e:  # the runtime's command line has no bench
        voicebox_main(["bench", "--help"])
    assert e.value.code == 2 and "invalid choice: 'bench'" in capsys.readouterr().err
