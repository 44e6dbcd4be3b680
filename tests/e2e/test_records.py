"""Call records, `voicebox calls` and the metrics endpoint, after real calls."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.e2e.conftest import CORPUS, ROOT, call

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


def _records(server) -> dict[str, list[dict]]:
    out = {}
    for path in (server.data_dir / "calls").glob("*/*.jsonl"):
        out[path.stem] = [json.loads(line) for line in path.read_text().splitlines()]
    return out


def _all_text(server) -> str:
    files = [p for p in server.data_dir.rglob("*") if p.is_file() and p.suffix != ".bin"]
    return "\n".join(p.read_text(errors="replace") for p in files) + server.log_text()


def test_call_record_holds_the_timeline_and_no_words(agent_server, tmp_path):
    before = set(_records(agent_server))
    res = call(agent_server.uri, "PCMU", [WAV / "hours_saturday_0.wav"], tmp_path)
    assert res["turns"][0]["reply_onset_ms"] is not None
    # The record is written by its own thread: wait (boundedly) for the call's last event.
    deadline = time.monotonic() + 10
    while True:
        new = {k: v for k, v in _records(agent_server).items() if k not in before}
        if (len(new) == 1 and next(iter(new.values()))[-1]["event"] == "call_end") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(new) == 1, new.keys()
    session, events = next(iter(new.items()))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "call_start" and "media" in kinds and "turn" in kinds and kinds[-1] == "call_end", kinds
    start = events[0]
    assert start["sip_call_id"] and start["caller"] is None  # the caller's URI is personal data
    assert next(e for e in events if e["event"] == "media")["codec"] == "PCMU"
    turn = next(e for e in events if e["event"] == "turn")
    assert (turn["source"], turn["intent"]) == ("template", "hours") and turn["confidence"] > 0.5
    for stage in ("endpoint_ms", "transcript_ms", "first_audio_ms", "voice_to_voice_ms"):
        assert turn[stage] is not None and turn[stage] >= 0, (stage, turn)
    assert turn["first_token_ms"] is None  # a templated answer involves no model
    assert turn["voice_to_voice_ms"] == pytest.approx(turn["endpoint_ms"] + turn["first_audio_ms"], abs=0.2)
    # Metadata level (the default): no words of the caller or the agent, anywhere.
    assert "caller_text" not in turn and "agent_text" not in turn
    everything = _all_text(agent_server).lower()
    for word in ("saturday", "riverside", "what time"):
        assert word not in everything, word
    # Every log line of the call carries its session id.
    assert f"[{session}] call start" in agent_server.log_text()

    listing = subprocess.run(
        [sys.executable, "-m", "voicebox", "calls", "--data-dir", str(agent_server.data_dir)],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout
    assert session in listing and "PCMU" in listing
    timeline = subprocess.run(
        [sys.executable, "-m", "voicebox", "calls", session[:8], "--data-dir", str(agent_server.data_dir)],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout
    assert "call_start" in timeline and "template/hours" in timeline and "v2v=" in timeline and "call_end" in timeline


def _metric(text: str, name: str) -> float:
    """``name`` (``metric{label="v"}``): the sum of its series with those labels, over the rest (agent)."""
    want, _, labels = name.partition("{")
    wanted = {pair for pair in labels.rstrip("}").split(",") if pair}
    values = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            metric, _, have = series.partition("{")
            if metric == want and wanted <= set(have.rstrip("}").split(",")):
                values.append(float(value))
    if not values:
        raise AssertionError(f"{name} not in metrics")
    return sum(values)


def test_metrics_endpoint_after_a_real_call(agent_server, tmp_path):
    call(agent_server.uri, "G722", [WAV / "location_0.wav"], tmp_path)
    with urllib.request.urlopen(f"http://127.0.0.1:{agent_server.metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert _metric(text, "voicebox_calls_total") >= 1
    assert _metric(text, "voicebox_calls_active") == 0
    assert _metric(text, 'voicebox_turn_stage_seconds_count{stage="transcript"}') >= 1
    assert _metric(text, 'voicebox_turn_stage_seconds_sum{stage="first_audio"}') > 0
    assert _metric(text, "voicebox_voice_to_voice_seconds_count") >= 1
    assert _metric(text, "voicebox_voice_to_voice_seconds_sum") > 0
