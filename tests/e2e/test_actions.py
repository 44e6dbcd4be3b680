"""Call actions over SIP: transfer to a person (REFER) by voice and by DTMF."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest

from tests.e2e.conftest import CORPUS, call, sipp_uas
from voicebox.telephony.transfer_context import decode_uui

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


def _desk_invite(messages) -> dict[str, str]:
    """The headers of the INVITE the front desk received (sipp's message trace)."""
    text = messages.read_text(errors="replace")
    invite = text[text.index("INVITE sip:"):]
    invite = invite[: invite.index("\n\n")] if "\n\n" in invite else invite
    headers = {}
    for line in invite.splitlines()[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def _frontdesk_answers(server, tmp_path, transcribe, reason: str, **call_opts) -> dict:
    messages = tmp_path / "frontdesk_messages.log"
    frontdesk = sipp_uas(server.frontdesk_port, messages=messages)
    try:
        res = call(server.uri, "PCMU", tmp_path=tmp_path, wait_hangup_s=20, **call_opts)
    finally:
        out, _ = frontdesk.communicate(timeout=70)
    # The REFER named the configured target, the caller's new call reached a real SIP peer
    # there (sipp exits 0 only after a complete call), and the agent then left the call.
    target = re.search(r"<([^?>]+)", res["transfer_to"])
    assert target and target.group(1) == f"sip:frontdesk@127.0.0.1:{server.frontdesk_port}", res
    # Why, and which call: carried on the Refer-To URI and copied by the caller's phone (a real
    # pjsua2 transferee) onto its INVITE, where the desk's phone or PBX shows it.
    desk = _desk_invite(messages)
    assert decode_uui(desk["user-to-user"]).startswith(reason), desk
    assert "purpose=voicebox" in desk["user-to-user"]
    assert unquote(desk["x-voicebox-reason"]).startswith(reason), desk
    session = desk["x-voicebox-session"]
    assert list((server.data_dir / "calls").glob(f"*/{session}.jsonl")), session  # the call's own record
    assert "referred-by" in desk, desk
    assert res["transfer_answered"], res
    assert frontdesk.returncode == 0, out[-2000:]
    assert res["disconnected_by"] == "agent", res
    assert "front desk" in transcribe(res["recording"])  # announced before transferring
    return res


def test_asking_for_a_person_is_transferred_with_refer(agent_server, tmp_path, transcribe):
    _frontdesk_answers(agent_server, tmp_path, transcribe, "caller asked for a person", wavs=[WAV / "human_0.wav"])
    assert "hang up reason=transferred" in agent_server.log_text()


def test_dtmf_zero_transfers_and_the_key_is_never_logged(agent_server, tmp_path, transcribe):
    _frontdesk_answers(agent_server, tmp_path, transcribe, "caller pressed a key for a person", wavs=[], dtmf="0")
    events = [
        json.loads(line)
        for p in (agent_server.data_dir / "calls").glob("*/*.jsonl")
        for line in p.read_text().splitlines()
    ]
    presses = [e for e in events if e["event"] == "dtmf"]
    assert presses and all(e["action"] == "transfer" for e in presses)
    # "a key was pressed", never which one
    assert all(set(e) == {"ts", "session", "event", "action"} for e in presses), presses
