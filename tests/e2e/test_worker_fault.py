"""The model's worker process dies or hangs mid-reply on a real call: the caller hears a short
apology, the call goes on, the worker is restarted, and the next turn gets a model reply."""

from __future__ import annotations

import re
import urllib.request

import pytest

from tests.e2e.conftest import CORPUS, HOST, agent_with_model_services, call, call_events, start_server, stop_server, wait_for

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


@pytest.fixture(scope="module", params=["die", "hang"])
def faulty_worker_server(request, tmp_path_factory):
    """The default agent with "services" left to the model, whose worker dies (or hangs, with a
    4 s hang timeout) after the first token of its first request."""
    fault = request.param
    tmp = tmp_path_factory.mktemp(f"worker-{fault}")
    agent = agent_with_model_services(tmp)
    server = start_server(
        tmp, f'agent = "{agent}"\n[sip]\nrtp_port = 46400\n[models]\nllm_hang_timeout_ms = 4000\n'
        f'[testing]\nllm_worker_fault = "{fault}"\nllm_worker_fault_on_request = 1\n',
    )
    yield fault, server
    stop_server(server)


def _metric(server, name: str) -> str:
    with urllib.request.urlopen(f"http://{HOST}:{server.metrics_port}/metrics", timeout=5) as resp:
        return "\n".join(line for line in resp.read().decode().splitlines() if line.startswith(name))


def test_worker_fault_gets_an_apology_and_the_call_goes_on(faulty_worker_server, tmp_path, transcribe):
    fault, server = faulty_worker_server
    code = {"die": "llm.worker_died", "hang": "llm.worker_hung"}[fault]
    question = WAV / "barge_in_0.wav"  # "Can you tell me about all the services you offer?"
    # 8 s of quiet ends a reply: the second turn waits for a restarted worker on a busy 2-core box.
    res = call(server.uri, "PCMU", [question, question], tmp_path, quiet_ms=8000)
    assert res["disconnected_by"] == "caller", res  # the agent did not end the call
    assert all(t["reply_onset_ms"] is not None for t in res["turns"]), res

    events = call_events(server, res["sip_call_id"])
    errors = [e for e in events if e["event"] == "error"]
    turns = [e for e in events if e["event"] == "turn"]
    assert [(e["code"], e.get("turn")) for e in errors] == [(code, 1)], events
    assert len(turns) == 2, turns
    assert turns[0]["source"] == "apology", turns[0]
    if fault == "hang":  # the caller was not left in silence while the worker said nothing
        assert [e["turn"] for e in events if e["event"] == "filler"] == [1], events
    assert turns[1]["source"] != "apology" and turns[1]["first_token_ms"] is not None, turns[1]

    heard = transcribe(res["recording"]).split("help you today?", 1)[-1]
    said = re.search(r"train of thought|say that again", heard)
    assert said, heard
    assert len(heard[said.end():].split()) >= 3, heard  # the second turn's reply followed

    log = server.log_text()
    assert wait_for(lambda: "small worker restarted in" in server.log_text(), 10), log[-3000:]
    assert "hang up reason=internal_error" not in log
    assert re.search(r'voicebox_model_worker_restarts_total\{model="small"\} 1\.0', _metric(
        server, "voicebox_model_worker_restarts_total")), _metric(server, "voicebox_model")
