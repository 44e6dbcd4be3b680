"""Call actions over SIP: transfer to a person (REFER) by voice and by DTMF."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import CORPUS, call, sipp_uas

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


def _frontdesk_answers(server, tmp_path, transcribe, **call_opts) -> dict:
    frontdesk = sipp_uas(server.frontdesk_port)
    try:
        res = call(server.uri, "PCMU", tmp_path=tmp_path, wait_hangup_s=20, **call_opts)
    finally:
        out, _ = frontdesk.communicate(timeout=70)
    # The REFER named the configured target, the caller's new call reached a real SIP peer
    # there (sipp exits 0 only after a complete call), and the agent then left the call.
    assert res["transfer_to"] == f"sip:frontdesk@127.0.0.1:{server.frontdesk_port}", res
    assert res["transfer_answered"], res
    assert frontdesk.returncode == 0, out[-2000:]
    assert res["disconnected_by"] == "agent", res
    assert "front desk" in transcribe(res["recording"])  # announced before transferring
    return res


def test_asking_for_a_person_is_transferred_with_refer(agent_server, tmp_path, transcribe):
    _frontdesk_answers(agent_server, tmp_path, transcribe, wavs=[WAV / "human_0.wav"])
    assert "hang up reason=transferred" in agent_server.log_text()


def test_dtmf_zero_transfers_and_the_key_is_never_logged(agent_server, tmp_path, transcribe):
    _frontdesk_answers(agent_server, tmp_path, transcribe, wavs=[], dtmf="0")
    events = [
        json.loads(line)
        for p in (agent_server.data_dir / "calls").glob("*/*.jsonl")
        for line in p.read_text().splitlines()
    ]
    presses = [e for e in events if e["event"] == "dtmf"]
    assert presses and all(e["action"] == "transfer" for e in presses)
    # "a key was pressed", never which one
    assert all(set(e) == {"ts", "session", "event", "action"} for e in presses), presses
