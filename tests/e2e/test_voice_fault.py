"""The voice (Piper) fails on every reply synthesized during a real call (testing.fail_stage =
"tts"; the phrases made at start still play): the first failure gets the "say that again" line
and the call goes on; the second in a row means the voice is broken, and the caller is put
through to a person, or told so and the call ended. Never silence, never a dead thread."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import (
    CORPUS, agent_with_model_services, call, call_events, free_port, sipp_uas, start_server, stop_server,
)

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"
QUESTION = WAV / "barge_in_0.wav"  # "Can you tell me about all the services you offer?": left to the model


def _server(tmp_path_factory, name: str, rtp_port: int, transfer_port: int | None):
    tmp = tmp_path_factory.mktemp(name)
    agent = agent_with_model_services(tmp)
    text = agent.read_text()
    if transfer_port is None:
        text = re.sub(r'transfer_uri = "[^"]*"\n', "", text)
    else:
        text = re.sub(r'transfer_uri = "[^"]*"', f'transfer_uri = "sip:frontdesk@127.0.0.1:{transfer_port}"', text)
    agent.write_text(text)
    server = start_server(tmp, f'agent = "{agent}"\n[sip]\nrtp_port = {rtp_port}\n[testing]\nfail_stage = "tts"\n')
    server.frontdesk_port = transfer_port
    return server


@pytest.fixture(scope="module")
def mute_server(tmp_path_factory):
    server = _server(tmp_path_factory, "tts-fault", 61000, None)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def mute_server_with_desk(tmp_path_factory):
    server = _server(tmp_path_factory, "tts-fault-desk", 61200, free_port())
    yield server
    stop_server(server)


def _errors(events: list[dict]) -> list[tuple[str, int | None]]:
    return [(e["code"], e.get("turn")) for e in events if e["event"] == "error"]


def test_one_failed_reply_gets_say_that_again_and_a_second_ends_the_call_honestly(mute_server, tmp_path, transcribe):
    res = call(mute_server.uri, "PCMU", [QUESTION, QUESTION], tmp_path, quiet_ms=6000, wait_hangup_s=30,
               rtp_port=61100)
    assert res["disconnected_by"] == "agent", res
    assert all(t["reply_onset_ms"] is not None for t in res["turns"]), res  # no turn met silence
    heard = transcribe(res["recording"]).split("help you today?", 1)[-1]
    again = re.search(r"train of thought|say that again", heard)
    assert again, heard
    assert re.search(r"went wrong|call again", heard[again.end():]), heard
    events = call_events(mute_server, res["sip_call_id"])
    assert _errors(events) == [("tts.failed", 1), ("tts.failed", 2)], events
    log = mute_server.log_text()
    assert "synthesis failed: injected failure" in log
    assert "hang up reason=internal_error error=tts.failed" in log


def test_a_broken_voice_puts_the_caller_through_to_a_person(mute_server_with_desk, tmp_path, transcribe):
    server = mute_server_with_desk
    frontdesk = sipp_uas(server.frontdesk_port, timeout_s=90)
    try:
        res = call(server.uri, "PCMU", [QUESTION, QUESTION], tmp_path, quiet_ms=6000, wait_hangup_s=30,
                   rtp_port=61300)
    finally:
        out, _ = frontdesk.communicate(timeout=100)
    assert res["transfer_to"] and f"frontdesk@127.0.0.1:{server.frontdesk_port}" in res["transfer_to"], res
    assert res["transfer_answered"] and frontdesk.returncode == 0, (res, out[-2000:])
    assert "front desk" in transcribe(res["recording"])  # the announcement, made at start, still plays
    events = call_events(server, res["sip_call_id"])
    assert _errors(events) == [("tts.failed", 1), ("tts.failed", 2)], events
    assert "hang up reason=transferred" in server.log_text()
