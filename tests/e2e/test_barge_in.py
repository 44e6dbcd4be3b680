"""Barge-in over SIP: the caller talks over the agent, on a clean line and on one with echo;
a line that returns only the agent's own echo never interrupts it."""

from __future__ import annotations


import pytest

from tests.e2e.conftest import CORPUS, call, call_events, metric

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


def _events(server, sip_call_id: str, kind: str) -> list[dict]:
    return [e for e in call_events(server, sip_call_id) if e["event"] == kind]


def test_caller_talking_over_the_agent_stops_it_and_gets_an_answer(agent_server, tmp_path, transcribe):
    # The corpus barge_in scenario: the second turn starts 900 ms into the agent's first reply.
    stopped = lambda: metric(agent_server, "voicebox_barge_ins_total", agent="agent", outcome="stopped")  # noqa: E731
    before = stopped()
    res = call(agent_server.uri, "PCMU", [WAV / "barge_in_0.wav", f"{WAV / 'barge_in_1.wav'}@900"], tmp_path)
    first, second = res["turns"]
    assert first["reply_onset_ms"] is not None, res
    assert second["agent_stopped_ms"] is not None, res
    stop_ms = second["agent_stopped_ms"] - second["speech_onset_ms"]
    # The bound is 300 ms; a loaded CI box gets slack here, the benchmark reports the
    # tight median and p95.
    assert 0 <= stop_ms < 800, (stop_ms, res)
    heard = transcribe(res["recording"])
    assert "250" in heard or "two hundred" in heard, heard  # the new question is answered
    # (A breath at the end of the first turn may hold the reply for a moment and resume it.)
    barges = [b for b in _events(agent_server, res["sip_call_id"], "barge_in") if b["resumed"] is False]
    assert len(barges) == 1, barges
    # Only what the caller heard of the first reply stays in the conversation.
    assert barges[0]["cut"] is True and barges[0]["heard_words"] < barges[0]["reply_words"], barges
    assert stopped() - before == 1  # the operator's counter saw the same barge-in


def test_echo_with_speech_mixed_in_does_interrupt(agent_server, tmp_path):
    res = call(
        agent_server.uri, "PCMU", [WAV / "barge_in_0.wav", f"{WAV / 'barge_in_1.wav'}@900"], tmp_path,
        echo_db=-10, echo_delay_ms=60,
    )
    second = res["turns"][1]
    assert second["agent_stopped_ms"] is not None and second["agent_stopped_ms"] - second["speech_onset_ms"] < 800, res
    barges = [b for b in _events(agent_server, res["sip_call_id"], "barge_in") if b["resumed"] is False]
    assert barges, (_events(agent_server, res["sip_call_id"], "barge_in"), _events(agent_server, res["sip_call_id"], "turn"))


def test_echo_of_the_agent_alone_never_interrupts_it(agent_server, tmp_path):
    # The caller asks for the services (a long reply), then only returns the agent's own voice
    # at -10 dB, 60 ms later, until the reply is over.
    res = call(agent_server.uri, "PCMU", [WAV / "barge_in_0.wav"], tmp_path, echo_db=-10, echo_delay_ms=60)
    assert res["turns"][0]["reply_onset_ms"] is not None, res
    barges = _events(agent_server, res["sip_call_id"], "barge_in")
    assert barges == [], barges  # not even a hold that resumed: the caller would hear the gap
    ignored = _events(agent_server, res["sip_call_id"], "turn")
    assert len(ignored) == 1, ignored  # the echo never became a turn of its own
