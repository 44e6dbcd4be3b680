"""Attended (warm) transfer over SIP: the agent calls the desk, says who is coming, then
connects the caller with a REFER with Replaces; the blind REFER when that cannot be done.

Every peer is real: a `voicebox serve`, the pjsua2 caller (benchmarks/harness/caller.py, which
follows REFERs) and a pjsua2 desk phone (tests/e2e/desk_phone.py, which takes INVITEs with
Replaces the way phones do). RTP stays in 60000-60999.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import CORPUS, HOST, ROOT, agent_with_frontdesk, call, free_port, start_server, stop_server
from voicebox.telephony.transfer_context import decode_uui

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"
ASKED = "caller asked for a person"


@pytest.fixture(scope="module")
def warm_server(tmp_path_factory):
    """The built-in agent with warm transfers to a desk on a port of the test's choosing."""
    tmp = tmp_path_factory.mktemp("warm")
    desk = free_port()
    agent = agent_with_frontdesk(tmp, desk)
    text = agent.read_text()
    text = text.replace("[actions]\n", '[actions]\ntransfer_mode = "warm"\nwarm_answer_timeout_s = 10\n', 1)
    agent.write_text(text)
    server = start_server(tmp, f'agent = "{agent}"\n[sip]\nrtp_port = 60000\n')
    server.frontdesk_port = desk
    yield server
    stop_server(server)


def _desk(server, out: Path, answer: int = 200, calls: int = 2) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.desk_phone", "--port", str(server.frontdesk_port), "--rtp-port", "60600",
         "--dir", str(out), "--answer", str(answer), "--calls", str(calls), "--timeout-s", "100"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # pjlib's start-up lines come first
        seen.append(line)
        if line.strip() == "ready":
            return proc
    raise AssertionError("desk phone did not start:\n" + "".join(seen[-30:]))


def _desk_calls(proc: subprocess.Popen, out: Path) -> list[dict]:
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, text[-2000:]
    return json.loads((out / "desk.json").read_text())


def _events(server, session: str) -> list[dict]:
    [path] = (server.data_dir / "calls").glob(f"*/{session}.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def _context(call: dict) -> str:
    """The session the desk's call came with, after checking its reason headers."""
    headers = call["headers"]
    assert decode_uui(headers["user-to-user"]).startswith(ASKED), headers
    assert "purpose=voicebox" in headers["user-to-user"]
    assert headers["x-voicebox-reason"].startswith(ASKED), headers
    return headers["x-voicebox-session"]


def _heard_summary(transcribe, call: dict) -> None:
    heard = transcribe(call["recording"])
    # The ear (tiny.en on Piper through G.711) has heard "asked" as "ask", and lost the "a" in
    # "for a person": the reason is there either way.
    assert "connecting you" in heard and re.search(r"\bask(ed)? for (an? )?person", heard), heard


def test_warm_transfer_announces_then_replaces(warm_server, tmp_path, transcribe):
    out = tmp_path / "desk"
    desk = _desk(warm_server, out)
    try:
        res = call(warm_server.uri, "PCMU", [WAV / "human_0.wav"], tmp_path, wait_hangup_s=60, rtp_port=60500)
    finally:
        calls = _desk_calls(desk, out)
    # First the agent's own call: the context headers, and the summary sentence, heard at the desk.
    first, second = calls[0], calls[1]
    assert not first["replaces"] and first["answered"], calls
    session = _context(first)
    _heard_summary(transcribe, first)
    # Then the caller's phone, sent a REFER with Replaces, called the desk, which swapped the calls
    # (hanging up the agent's) and answered the caller.
    assert "replaces=" in res["transfer_to"].lower(), res
    assert second["replaces"] and second["headers"]["replaces"].split(";")[0] == first["headers"]["call-id"], calls
    assert second["answered"] and res["transfer_answered"], (calls, res)
    assert first["hung_up_by"] == "replaced", calls
    assert res["disconnected_by"] == "agent", res
    log = warm_server.log_text()
    assert "warm transfer connected" in log and "hang up reason=transferred" in log
    stages = [e["stage"] for e in _events(warm_server, session) if e["event"] == "warm_transfer"]
    assert stages == ["dialing", "connected"], stages


def test_a_phone_without_replaces_gets_the_blind_refer(warm_server, tmp_path, transcribe):
    out = tmp_path / "desk"
    desk = _desk(warm_server, out)
    try:
        res = call(warm_server.uri, "PCMU", [WAV / "human_0.wav"], tmp_path, wait_hangup_s=60, rtp_port=60520,
                   refuse_replaces=1)
    finally:
        calls = _desk_calls(desk, out)
    assert len(res["refused_transfers"]) == 1 and "replaces=" in res["refused_transfers"][0].lower(), res
    first, second = calls[0], calls[1]
    session = _context(first)
    _heard_summary(transcribe, first)
    assert first["hung_up_by"] == "remote", calls  # the agent left its own call before the blind REFER
    # The blind REFER: the caller's own INVITE, carrying the same context, answered at the desk.
    target = re.search(r"<([^?>]+)", res["transfer_to"])
    assert target and target.group(1) == f"sip:frontdesk@{HOST}:{warm_server.frontdesk_port}", res
    assert not second["replaces"] and second["answered"] and res["transfer_answered"], (calls, res)
    assert _context(second) == session
    assert "referred-by" in second["headers"], second
    assert res["disconnected_by"] == "agent", res
    assert "falls back to blind: replaces refused status=603" in warm_server.log_text()
    stages = [e["stage"] for e in _events(warm_server, session) if e["event"] == "warm_transfer"]
    assert stages == ["dialing", "blind"], stages


def test_a_busy_desk_gets_the_blind_refer_and_then_the_honest_line(warm_server, tmp_path, transcribe):
    out = tmp_path / "desk"
    desk = _desk(warm_server, out, answer=486)
    try:
        res = call(warm_server.uri, "PCMU", [WAV / "human_0.wav"], tmp_path, wait_hangup_s=30, rtp_port=60540)
    finally:
        calls = _desk_calls(desk, out)
    # Busy for the agent's call, busy again for the caller's own (blind) one.
    assert [c["replaces"] for c in calls] == [False, False] and not any(c["answered"] for c in calls), calls
    session = _context(calls[0])
    assert _context(calls[1]) == session
    assert not res["transfer_answered"], res
    assert "falls back to blind: target ended status=486" in warm_server.log_text()
    events = _events(warm_server, session)
    assert [e["status"] for e in events if e["event"] == "transfer_failed"] == [486], events
    assert "nobody i can put you through" in transcribe(res["recording"])


def test_a_caller_who_leaves_during_the_summary_takes_the_agents_call_to_the_desk_along(warm_server, tmp_path):
    out = tmp_path / "desk"
    desk = _desk(warm_server, out, calls=1)
    try:
        # No waiting for the agent to hang up: the caller leaves right after the announcement.
        res = call(warm_server.uri, "PCMU", [WAV / "human_0.wav"], tmp_path, rtp_port=60560)
    finally:
        calls = _desk_calls(desk, out)
    assert res["disconnected_by"] == "caller" and not res["transfer_to"], res
    [only] = calls
    assert only["answered"] and only["hung_up_by"] == "remote", calls  # the agent hung up its own call
    session = _context(only)
    log = warm_server.log_text()
    assert f"[{session}] warm transfer aborted: the caller left" in log
    assert f"[{session}] warm transfer falls back" not in log
