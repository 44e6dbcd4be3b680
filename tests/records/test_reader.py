"""Reading call records back: summaries, the call list, prefix lookup and the timeline."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from voicebox.cli import main

from voicebox.records.reader import (
    find_call,
    format_calls,
    format_timeline,
    list_calls,
    read_events,
    summarize,
)

T0 = 1_700_000_000.0


def _write_call(data_dir: Path, session: str, t0: float, *, day: str = "2023-11-14",
                truncated: bool = False, end: bool = True, codec: str = "PCMU", agent: str | None = None) -> Path:
    start = {"ts": t0, "event": "call_start", "sip_call_id": "abc@host", "source": "10.0.0.9", "caller": None}
    if agent is not None:
        start["agent"] = agent
    events = [
        start,
        {"ts": t0 + 0.5, "event": "media", "codec": codec},
        {"ts": t0 + 3.2, "event": "turn", "turn": 1, "source": "topic:hours", "end_reason": "silence",
         "endpoint_ms": 640.0, "transcript_ms": 310.4, "first_token_ms": None, "first_audio_ms": 1350.0,
         "voice_to_voice_ms": 1990.0, "budget_misses": ["transcript"], "caller_words": 4},
        {"ts": t0 + 4.0, "event": "error", "code": "llm.failed", "turn": 2},
        {"ts": t0 + 5.0, "event": "hangup", "reason": "goodbye", "error": None},
    ]
    if end:
        events.append({"ts": t0 + 5.1, "event": "call_end", "status": 200, "reason": "Normal call clearing",
                       "duration_s": 5.1, "turns": 1, "hung_up_by": "agent:goodbye"})
    path = data_dir / "calls" / day / f"{session}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps({"session": session, **e}) + "\n" for e in events)
    if truncated:
        text += '{"ts": %.1f, "session": "%s", "event": "tu' % (t0 + 6, session)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (t0 + 6, t0 + 6))
    return path


def test_summarize_reads_every_field(tmp_path):
    s = summarize(_write_call(tmp_path, "abc123def456", T0, agent="riverside_dental"))
    assert s.session == "abc123def456"
    assert s.agent == "riverside_dental"
    assert s.started == T0
    assert s.codec == "PCMU"
    assert s.turns == 1
    assert s.errors == ["llm.failed"]
    assert s.budget_misses == 1
    assert s.duration_s == 5.1
    assert s.status == 200
    assert s.end_reason == "agent:goodbye"


def test_truncated_last_line_is_skipped_not_fatal(tmp_path):
    path = _write_call(tmp_path, "crash0000000", T0, truncated=True, end=False)
    events = read_events(path)
    assert [e["event"] for e in events] == ["call_start", "media", "turn", "error", "hangup"]
    s = summarize(path)
    assert s.turns == 1 and s.duration_s is None and s.status is None
    text = format_timeline(path)
    assert "hangup" in text
    assert '"tu' not in text
    row = next(line for line in format_calls([s]).splitlines() if line.startswith("crash0000000"))
    assert "(open)" in row


def test_list_calls_newest_first(tmp_path):
    _write_call(tmp_path, "middle000000", T0 + 100, day="2023-11-14")
    _write_call(tmp_path, "oldest000000", T0, day="2023-11-14")
    _write_call(tmp_path, "newest000000", T0 + 90_000, day="2023-11-15")
    calls = list_calls(tmp_path)
    assert [c.session for c in calls] == ["newest000000", "middle000000", "oldest000000"]
    assert [c.session for c in list_calls(tmp_path, limit=2)] == ["newest000000", "middle000000"]


def test_list_calls_orders_by_start_even_when_file_times_disagree(tmp_path):
    a = _write_call(tmp_path, "early0000000", T0)
    b = _write_call(tmp_path, "late00000000", T0 + 50)
    os.utime(a, (T0 + 500, T0 + 500))  # the earlier call's file was written to last
    os.utime(b, (T0 + 60, T0 + 60))
    assert [c.session for c in list_calls(tmp_path)] == ["late00000000", "early0000000"]


def test_list_calls_with_no_records(tmp_path):
    assert list_calls(tmp_path) == []
    assert format_calls([]) == "no calls recorded"


def test_find_call_by_unique_prefix(tmp_path):
    p1 = _write_call(tmp_path, "abc123def456", T0)
    p2 = _write_call(tmp_path, "abc999000111", T0 + 10, day="2023-11-15")
    p3 = _write_call(tmp_path, "ffff00001111", T0 + 20)
    assert find_call(tmp_path, "ffff") == p3
    assert find_call(tmp_path, "abc1") == p1
    assert find_call(tmp_path, "abc9") == p2  # found in another day's directory
    assert find_call(tmp_path, "abc123def456") == p1
    assert find_call(tmp_path, "abc") is None  # ambiguous
    assert find_call(tmp_path, "zzz") is None  # missing
    assert find_call(tmp_path / "nowhere", "abc1") is None


@pytest.mark.parametrize("pattern", ["*", "?", "[a-f]", "[!z]*", "abc*", "a?c", "**", "../2023-11-14/abc1"])
def test_find_call_does_not_treat_the_argument_as_a_pattern(tmp_path, pattern):
    # one call on disk: as a glob, every one of these matched it (and so "found" it)
    _write_call(tmp_path, "abc123def456", T0)
    assert find_call(tmp_path, pattern) is None


def test_find_call_cannot_leave_the_calls_directory(tmp_path):
    data_dir = tmp_path / "data"
    _write_call(data_dir, "abc123def456", T0)
    # a record-shaped file outside data/: "../../../x/calls/d/abc9" would have reached it as a glob
    outside = _write_call(tmp_path / "x", "abc999000111", T0, day="d")
    assert outside.exists()
    assert find_call(data_dir, "../../../x/calls/d/abc9") is None
    assert find_call(data_dir, "../" * 3) is None
    assert find_call(data_dir, "abc9") is None
    assert find_call(data_dir, "abc1") == data_dir / "calls" / "2023-11-14" / "abc123def456.jsonl"


def test_find_call_checks_the_session_id_format(tmp_path):
    path = _write_call(tmp_path, "abc123def456", T0)
    _write_call(tmp_path, "not-a-session", T0)  # not an id voicebox makes: never a match
    assert find_call(tmp_path, "") is None  # would list nothing useful, and "" is no id
    assert find_call(tmp_path, "abc123def4567") is None  # longer than an id
    assert find_call(tmp_path, "ABC123") == path  # a pasted upper-case id still finds its call
    assert find_call(tmp_path, "not") is None
    assert find_call(tmp_path, "abc1 ") is None


@pytest.mark.parametrize("arg", ["*", "../x", "[0-9]", ""])
def test_calls_command_refuses_what_is_not_a_session_id(tmp_path, capsys, arg):
    _write_call(tmp_path, "abc123def456", T0)
    assert main(["calls", "--data-dir", str(tmp_path), arg]) == 2
    err = capsys.readouterr().err
    assert "is not a session id" in err and len(err.strip().splitlines()) == 1


def test_calls_command_shows_a_call_by_prefix(tmp_path, capsys):
    _write_call(tmp_path, "abc123def456", T0)
    assert main(["calls", "--data-dir", str(tmp_path), "abc1"]) == 0
    assert "call_start" in capsys.readouterr().out


def test_format_calls_row(tmp_path):
    _write_call(tmp_path, "abc123def456", T0, codec="G722", agent="harbor_plumbing")
    text = format_calls(list_calls(tmp_path))
    lines = text.splitlines()
    header = lines[0].split()
    assert header == ["session", "agent", "started", "length", "codec", "turns", "sip", "ended", "errors", "misses"]
    row = next(line for line in lines if line.startswith("abc123def456"))
    session, agent, _date, _time, length, codec, turns, sip, ended, errors, misses = row.split()
    assert (session, agent, length, codec, turns, sip, ended, errors, misses) == (
        "abc123def456", "harbor_plumbing", "5.1s", "G722", "1", "200", "agent:goodbye", "llm.failed", "1",
    )


def test_a_record_without_an_agent_reads_as_none(tmp_path):
    # Records written before multi-agent serving carry no agent id.
    s = summarize(_write_call(tmp_path, "old000000000", T0))
    assert s.agent == ""
    row = next(line for line in format_calls([s]).splitlines() if line.startswith("old000000000"))
    assert row.split()[1] == "-"


def test_format_timeline_relative_times_and_turn_row(tmp_path):
    text = format_timeline(_write_call(tmp_path, "abc123def456", T0))
    lines = text.splitlines()
    assert lines[0].split() == ["t", "(s)", "event", "detail"]
    rows = {line.split()[1]: line for line in lines[2:]}
    assert rows["call_start"].split()[0] == "0.00"
    assert rows["media"].split()[0] == "0.50"
    assert "codec=PCMU" in rows["media"]
    assert rows["turn"].split()[0] == "3.20"
    assert rows["error"].split()[0] == "4.00"
    assert "code=llm.failed" in rows["error"]
    assert rows["call_end"].split()[0] == "5.10"
    assert "hung_up_by=agent:goodbye" in rows["call_end"]
    turn = rows["turn"]
    assert "#1 topic:hours" in turn
    assert "endpoint=640 transcript=310 first_token=- first_audio=1350 v2v=1990 ms" in turn
    assert turn.rstrip().endswith("MISSED transcript")
    # fields that are None are left out of ordinary rows; the session is not repeated
    assert "error=" not in rows["hangup"] and "reason=goodbye" in rows["hangup"]
    assert "abc123def456" not in text


def test_format_timeline_shows_texts_when_recorded_and_no_miss_marker_without_misses(tmp_path):
    path = tmp_path / "calls" / "2023-11-14" / "txt000000000.jsonl"
    path.parent.mkdir(parents=True)
    events = [
        {"ts": T0, "session": "txt000000000", "event": "call_start"},
        {"ts": T0 + 1.25, "session": "txt000000000", "event": "turn", "turn": 1, "source": "llm",
         "endpoint_ms": 500.0, "transcript_ms": 200.0, "first_token_ms": 400.0, "first_audio_ms": 700.0,
         "voice_to_voice_ms": 1200.0, "budget_misses": [], "caller_text": "are you open",
         "agent_text": "Yes, until five."},
    ]
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    turn = next(line for line in format_timeline(path).splitlines() if " turn " in line)
    assert turn.split()[0] == "1.25"
    assert "MISSED" not in turn
    assert "| caller: are you open" in turn
    assert "| agent: Yes, until five." in turn


def test_format_timeline_of_an_empty_record(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert "empty record" in format_timeline(path)
