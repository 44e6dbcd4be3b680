"""A slow model: the agent fills the silence once, then answers (testing.slow_llm_ms)."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import CORPUS, agent_with_model_services, call, call_events, metric, start_server, stop_server

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    """The default agent with "services" left to the model, and a model 2.5 s slow to start."""
    tmp = tmp_path_factory.mktemp("slow")
    agent = agent_with_model_services(tmp)
    server = start_server(tmp, f'agent = "{agent}"\n[sip]\nrtp_port = 45000\n[testing]\nslow_llm_ms = 2500\n')
    yield server
    stop_server(server)


def test_slow_model_gets_exactly_one_filler_then_the_reply(slow_server, tmp_path, transcribe):
    agent = "agent"  # the agent file is agent.toml: its name is the label
    before = metric(slow_server, "voicebox_fillers_total", agent=agent)
    res = call(slow_server.uri, "PCMU", [WAV / "barge_in_0.wav"], tmp_path, quiet_ms=3500)
    events = call_events(slow_server, res["sip_call_id"])
    fillers = [e for e in events if e["event"] == "filler"]
    turns = [e for e in events if e["event"] == "turn"]
    assert len(fillers) == 1, events
    assert metric(slow_server, "voicebox_fillers_total", agent=agent) - before == 1
    assert turns and turns[0]["fillers"] == 1 and turns[0]["first_token_ms"] >= 2500, turns
    heard = transcribe(res["recording"]).split("help you today?", 1)[-1]
    said = re.search(r"one moment|let me check that", heard)
    assert said, heard
    assert len(heard[said.end():].split()) >= 3, heard  # the reply itself followed the filler
