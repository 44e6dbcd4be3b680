"""The large tier as an OpenAI-compatible server on the LAN: a real llama.cpp server
(llama-cpp-python's, serving the embedded SmolLM2 GGUF) started on loopback by the test."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from voicebox.agent import load_agent
from voicebox.config import ModelsConfig, load_config
from voicebox.model_store import resolve
from voicebox.telephony.probe import free_port
from voicebox.thinking.dialog import Dialog, unsupported_numbers
from voicebox.thinking.intent_router import IntentRouter
from voicebox.thinking.language_model import RemoteModel


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    cfg = load_config(None, {})
    gguf = resolve(cfg.models.llm, "llm", cfg.data_dir)
    port = free_port("127.0.0.1")
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    proc = subprocess.Popen(
        # The portable llama.cpp build needs its CPU variant loaded first (llama_backend.main).
        [sys.executable, "-m", "voicebox.thinking.llama_backend", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--chat_format", "chatml"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/v1/models", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server not ready:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_remote_model_streams_a_reply(server_url):
    model = RemoteModel(server_url, timeout_s=30)
    pieces = list(model.stream([{"role": "user", "content": "Say hello."}], 16, 0.0))
    assert len(pieces) > 1  # streamed piece by piece, not in one block
    assert "".join(pieces).strip()


def test_out_of_scope_question_goes_to_the_large_server_and_is_fact_checked(server_url):
    agent = load_agent("riverside_dental")
    router = IntentRouter.for_agent(agent)
    dialog = Dialog(agent, router, None, ModelsConfig(), RemoteModel(server_url, timeout_s=30))
    decision = dialog.decide("Do you sell toothbrushes?")
    assert decision.kind == "model" and decision.tier == "large"
    sentences = list(dialog.model_reply("Do you sell toothbrushes?", "large", threading.Event()))
    assert sentences
    facts = " ".join(agent.facts.values())
    if dialog.last_tier == "large":  # trusted: every number it said is backed by a fact
        assert all(not unsupported_numbers(s, facts) for s in sentences)
    else:  # not trusted: the honest answer and an offer of a person, never the model's guess
        assert dialog.last_tier == "person" and sentences == [agent.no_information]


def test_a_large_server_that_is_down_hands_the_caller_to_a_person():
    agent = load_agent("riverside_dental")
    router = IntentRouter.for_agent(agent)
    dead = RemoteModel(f"http://127.0.0.1:{free_port('127.0.0.1')}", timeout_s=1)
    dialog = Dialog(agent, router, None, ModelsConfig(), dead)
    sentences = list(dialog.model_reply("Do you do heart surgery?", "large", threading.Event()))
    assert sentences == [agent.no_information]
    assert dialog.last_tier == "person" and "unavailable" in dialog.last_reason
