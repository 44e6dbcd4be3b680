"""A language model that cannot generate on this machine (a kernel that faults on the first
prompt, simulated by a worker that kills itself with SIGSEGV at every start): `voicebox serve`
says so in one line before it answers OPTIONS, then either exits with status 2 or answers calls
without the model, as models.llm_on_failure says."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.conftest import CORPUS, HOST, ROOT, agent_with_model_services, call, call_events, free_port, start_server, stop_server

pytestmark = pytest.mark.e2e
SEGV_AT_START = '[testing]\nllm_worker_fault = "segv"\nllm_worker_fault_on_request = 0\n'


def test_serve_exits_2_with_one_clear_line(tmp_path):
    cfg = tmp_path / "voicebox.toml"
    cfg.write_text(f'[models]\nllm_on_failure = "exit"\n[metrics]\nenabled = false\n{SEGV_AT_START}')
    out = subprocess.run(
        [sys.executable, "-m", "voicebox", "serve", "--config", str(cfg), "--sip-host", HOST,
         "--sip-port", str(free_port()), "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, stdin=subprocess.DEVNULL,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 2, text[-3000:]
    assert "Traceback" not in text and "Segmentation fault" not in text, text[-3000:]
    lines = [line for line in text.splitlines() if "llm.cannot_generate" in line]
    assert len(lines) == 1, text[-3000:]
    assert "small model SmolLM2-135M-Instruct.Q4_1.gguf died with SIGSEGV" in lines[0]
    assert "Fix:" in lines[0]
    assert "listening on sip:" not in text, text[-3000:]  # it never answered SIP


def test_serve_without_the_model_answers_and_offers_a_person(tmp_path):
    agent = agent_with_model_services(tmp_path)  # "services" left to the model, which is not there
    server = start_server(tmp_path, f'agent = "{agent}"\n[sip]\nrtp_port = 46600\n{SEGV_AT_START}')
    try:
        log = server.log_text()
        assert log.count("llm.cannot_generate") == 1, log[-3000:]
        assert "Serving without this model" in log
        question = CORPUS / "wav" / "barge_in_0.wav"  # "Can you tell me about all the services you offer?"
        res = call(server.uri, "PCMU", [question], tmp_path)
        assert res["turns"][0]["reply_onset_ms"] is not None, res
        turns = [e for e in call_events(server, res["sip_call_id"]) if e["event"] == "turn"]
        assert [t["source"] for t in turns] == ["person"], turns
        # The worker is not respawned over and over in the background.
        assert server.log_text().count("died with SIGSEGV") == 1
    finally:
        stop_server(server)
