"""The language model in a supervised worker process: a real child running the embedded SmolLM2,
killed and hung on purpose (testing faults), restarted, and never left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_for
from voicebox.config import load_config
from voicebox.model_store import resolve
from voicebox.thinking.llm_worker import ModelStartFailed, WorkerFailed, WorkerModel

ROOT = Path(__file__).resolve().parents[2]
QUESTION = [
    {"role": "system", "content": "You are the receptionist of a dental clinic. Answer in one short sentence."},
    {"role": "user", "content": "What is a dental cleaning?"},
]
SLOW_BOX_S = 60.0  # a normal reply's token gap, generous: this box is shared and has 2 cores


@pytest.fixture(scope="module")
def gguf() -> Path:
    cfg = load_config(None, {})
    return resolve(cfg.models.llm, "llm", ROOT / cfg.data_dir)


def gone(pid: int) -> bool:
    """No such process, or only its zombie left (exited, waiting for a reaper that is not us)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def wait_gone(pid: int, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if gone(pid):
            return True
        time.sleep(0.1)
    return gone(pid)


def reply(model, max_tokens: int = 24, cancelled: threading.Event | None = None) -> str:
    return "".join(model.stream(QUESTION, max_tokens, 0.0, cancelled))


def in_process_reply(gguf: Path, **settings) -> dict:
    """What ``LanguageModel`` in one process answers: run in a child of its own, so that a native
    crash in llama.cpp fails this test with its signal instead of ending the whole test run."""
    code = (
        "import json, sys; from pathlib import Path\n"
        "from voicebox.thinking.language_model import LanguageModel\n"
        "from tests.thinking.test_llm_worker import QUESTION, reply\n"
        f"lm = LanguageModel(Path({str(gguf)!r}), 2, 2048, **{settings!r})\n"
        "text = reply(lm)\n"
        "print(json.dumps({'text': text, 'tokens': lm.tokens_so_far(), 'mean': lm.mean_logprob(),\n"
        "                  'mean5': lm.mean_logprob(5), 'variant': lm.backend.variant}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    if out.returncode < 0:
        pytest.fail(f"llama.cpp in process died with {signal.Signals(-out.returncode).name}:\n{out.stderr[-2000:]}")
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_worker_streams_what_the_in_process_model_would(gguf):
    """Same text and same token log-probabilities at temperature 0: the pipe changes nothing."""
    local = in_process_reply(gguf)
    worker = WorkerModel(gguf, 2, 2048, hang_timeout_ms=int(SLOW_BOX_S * 1000))
    try:
        assert worker.pid is not None and worker.pid != os.getpid()
        pieces = list(worker.stream(QUESTION, 24, 0.0))
        assert len(pieces) > 3
        assert "".join(pieces) == local["text"]
        assert worker.tokens_so_far() == local["tokens"] > 0
        assert worker.mean_logprob() == pytest.approx(local["mean"], abs=1e-3)
        assert worker.mean_logprob(5) == pytest.approx(local["mean5"], abs=1e-3)
        assert worker.variant == local["variant"]
    finally:
        worker.close()


def test_without_extra_buffers_the_model_says_the_same(gguf):
    """models.llm_extra_buffers = false (the escape hatch from repacking kernels) loads and answers."""
    assert in_process_reply(gguf, extra_buffers=False)["text"] == in_process_reply(gguf)["text"]


def test_a_worker_killed_by_a_signal_at_start_is_reported_in_one_line(gguf):
    """A kernel that faults on the first prompt: the start fails with the model, the signal, the CPU
    variant and the fix, in one line, and no child is left behind."""
    t0 = time.monotonic()
    with pytest.raises(ModelStartFailed) as failed:
        WorkerModel(gguf, 2, 2048, name="small", fault="segv", fault_on_request=0)
    line = str(failed.value)
    assert "\n" not in line
    assert line.startswith("llm.cannot_generate: the small model SmolLM2-135M-Instruct.Q4_1.gguf died with SIGSEGV")
    variant = failed.value.variant
    assert variant, line
    assert f"llama.cpp CPU variant: {variant}" in line
    assert ("models.llm_cpu_exclude" in line) if variant != "built-in" else ("LLAMA_BUILD=portable" in line)
    assert time.monotonic() - t0 < SLOW_BOX_S


def test_a_worker_that_fails_every_restart_is_not_respawned_per_request(gguf):
    worker = WorkerModel(gguf, 2, 2048, hang_timeout_ms=int(SLOW_BOX_S * 1000))
    try:
        # From now on every start dies (as a bad kernel would on each warm-up).
        worker.fault, worker.fault_on_request = "segv", 0
        os.kill(worker.pid, signal.SIGKILL)
        with pytest.raises(WorkerFailed):
            reply(worker)  # waits for the restart, which fails
        assert wait_for(lambda: worker._failed_starts == 1 and not worker._restarting, SLOW_BOX_S)
        spawns = []
        spawn = worker._spawn
        worker._spawn = lambda: spawns.append(1) or spawn()
        for _ in range(5):
            with pytest.raises(WorkerFailed, match="backing off"):
                reply(worker)
        assert spawns == []  # refused at once during the back-off, no start attempted per request
        assert worker._failed_starts == 1 and worker.pid is None
    finally:
        worker.close()



def test_cancel_stops_between_tokens_and_the_next_request_starts_clean(gguf):
    worker = WorkerModel(gguf, 2, 2048, hang_timeout_ms=int(SLOW_BOX_S * 1000))
    try:
        cancel = threading.Event()
        got = []
        for piece in worker.stream(QUESTION, 40, 0.0, cancel):
            got.append(piece)
            if len(got) == 3:
                cancel.set()
        assert len(got) == 3  # nothing yielded after the cancel
        # The consumer walking away mid-reply (what dialog does after two sentences) also drains.
        pieces = worker.stream(QUESTION, 40, 0.0)
        assert next(pieces) and next(pieces)
        pieces.close()
        # Neither reply's leftovers leak into the next one.
        assert reply(worker, 12) == reply(worker, 12)
        assert len(reply(worker, 40)) > len("".join(got))
        assert worker.restarts == 0
    finally:
        worker.close()


def test_a_worker_that_dies_mid_reply_fails_that_reply_and_is_restarted(gguf):
    worker = WorkerModel(gguf, 2, 2048, hang_timeout_ms=int(SLOW_BOX_S * 1000), fault="die", fault_on_request=2)
    try:
        first = reply(worker)
        old = worker.pid
        got = []
        with pytest.raises(WorkerFailed) as err:
            for piece in worker.stream(QUESTION, 24, 0.0):
                got.append(piece)
        assert err.value.code == "llm.worker_died"
        assert len(got) == 1  # the fault strikes after the first token
        assert gone(old)
        # The next request waits for the restart, then is served; only the one request faulted.
        assert reply(worker) == first  # a fresh worker, as the first one was
        assert len(reply(worker)) > 10
        assert worker.restarts == 1 and worker.pid not in (None, old)
    finally:
        worker.close()


def test_a_call_waiting_behind_the_failed_one_is_served_by_the_restarted_worker(gguf):
    """Another call's request, queued on the worker while it dies, goes on once it is back."""
    worker = WorkerModel(gguf, 2, 2048, hang_timeout_ms=int(SLOW_BOX_S * 1000), fault="die", fault_on_request=1)
    try:
        first = worker.stream(QUESTION, 24, 0.0)
        assert next(first)  # request 1 holds the worker; it dies right after this token
        results: dict[str, object] = {}

        def other_call() -> None:
            try:
                results["other"] = reply(worker)
            except Exception as e:  # noqa: BLE001 - reported below
                results["other"] = e

        waiting = threading.Thread(target=other_call)
        waiting.start()
        time.sleep(0.3)  # it now waits for the worker's lock
        with pytest.raises(WorkerFailed):
            list(first)
        waiting.join(SLOW_BOX_S * 2)
        assert isinstance(results.get("other"), str) and len(results["other"]) > 10, results
        assert worker.restarts == 1
    finally:
        worker.close()


def test_a_hung_worker_is_killed_within_the_hang_timeout_and_restarted(gguf):
    hang_s = 3.0
    worker = WorkerModel(gguf, 2, 2048, hang_timeout_ms=int(hang_s * 1000), fault="hang", fault_on_request=1)
    try:
        old = worker.pid
        t0 = time.monotonic()
        with pytest.raises(WorkerFailed) as err:
            reply(worker)
        took = time.monotonic() - t0
        assert err.value.code == "llm.worker_hung"
        assert hang_s <= took < hang_s + 30, took  # the slack: a first token on a loaded box
        assert gone(old)  # killed before the caller heard of it
        worker.hang_timeout_s = SLOW_BOX_S  # the restart and a normal reply, on a loaded box
        assert len(reply(worker)) > 10
        assert worker.restarts == 1
    finally:
        worker.close()


def test_close_leaves_no_child(gguf):
    worker = WorkerModel(gguf, 2, 2048)
    pid = worker.pid
    assert pid is not None and not gone(pid)
    worker.close()
    assert gone(pid) and worker.pid is None
    with pytest.raises(WorkerFailed):
        reply(worker)


def test_the_parent_alone_ends_the_worker(gguf):
    """Ctrl-C and a service manager's SIGTERM reach the whole process group; the worker stays for
    the calls its parent is still draining."""
    worker = WorkerModel(gguf, 2, 2048, hang_timeout_ms=int(SLOW_BOX_S * 1000))
    try:
        pid = worker.pid
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
        assert len(reply(worker)) > 10
        assert worker.pid == pid and worker.restarts == 0
    finally:
        worker.close()
    assert gone(pid)


PARENT = """
import sys, time
from voicebox.thinking.llm_worker import WorkerModel
w = WorkerModel(sys.argv[1], 2, 2048, fault="hang", fault_on_request=1)
pieces = w.stream([{"role": "user", "content": "Hi"}], 20, 0.0)
next(pieces)  # the child now hangs mid-reply, as stuck as it gets
print(w.pid, flush=True)
time.sleep(600)
"""


def test_the_child_exits_when_its_parent_is_killed(gguf):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(gguf)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), line
        child = int(line)
        assert not gone(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert wait_gone(child, 10), f"worker pid {child} outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
