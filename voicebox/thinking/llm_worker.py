"""A GGUF chat model in a supervised child process: a crash or a hang costs one reply, not the service.

The parent (``WorkerModel``) speaks the same ``ChatModel`` protocol as the in-process
``LanguageModel``; the child (``python -m voicebox.thinking.llm_worker``) loads the GGUF with that
class, warms it up, and serves one request at a time over a Unix socket pair:

    parent -> child   ("gen", id, messages, max_tokens, temperature, fault) | ("cancel", id)
    child -> parent   ("ready", pid, load_s, warm_s) | ("piece", id, text, logprobs) | ("done", id, error)

Each piece carries the token log-probabilities recorded since the previous one, so the parent's
``mean_logprob``/``tokens_so_far`` see exactly what the in-process model would. A cancel is
checked between tokens; the parent always reads up to ``done`` so the next request starts clean.

Why a plain ``subprocess`` and not ``multiprocessing``: its "spawn" start re-imports the parent's
``__main__`` (pytest, ``voicebox serve``, the bench) in the child; ``python -m`` runs only this
module, shows up as such in ``ps``, and ``Popen`` gives the pid to kill and reap. The socket pair
still carries pickled messages through ``multiprocessing.connection.Connection``.

Why no PR_SET_PDEATHSIG: it fires when the *thread* that started the child exits, and restarts
happen on short-lived threads. The child instead exits on EOF from the parent, and a watchdog
thread exits it when its parent process is gone, even mid-reply or while a test fault hangs it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

import numpy as np

log = logging.getLogger("voicebox.llm_worker")

Fault = Literal["", "die", "hang", "segv"]
POLL_S = 0.05  # how often a waiting parent looks at its ``cancelled`` event
RESTART_BACKOFF_S = 1.0  # after a failed start; doubled per failure in a row, up to the max
RESTART_BACKOFF_MAX_S = 60.0
# Warm-up when the caller gave no prompt: several tokens, since a faulting kernel showed only on
# prompts of two or more (a start that prefills a real prompt proves the model runs).
PROBE_MESSAGES = [
    {"role": "system", "content": "You answer the phone for a small business."},
    {"role": "user", "content": "Hello, are you open today?"},
]


class WorkerFailed(RuntimeError):
    """The worker died or hung during a request; it is being restarted. ``code`` names which."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class ModelStartFailed(RuntimeError):
    """The model could not load or generate in a fresh worker. ``str()`` is one line for a
    person: the model, what happened to the process, and the setting or build that fixes it."""

    code = "llm.cannot_generate"

    def __init__(self, name: str, gguf: Path, how: str, variant: str | None) -> None:
        self.name, self.gguf, self.how, self.variant = name, gguf, how, variant
        super().__init__(
            f"{self.code}: the {name} model {gguf.name} {how} (llama.cpp CPU variant: {variant or 'not chosen yet'}). "
            f"Fix: {_fix_for(variant)}"
        )


def _fix_for(variant: str | None) -> str:
    if variant is None:
        return "this llama-cpp-python does not load here; rebuild it portable: rm -rf .venv && make setup"
    if variant == "built-in":
        return ("this llama-cpp-python has one fixed CPU build (native?); rebuild it portable: "
                "rm -rf .venv && make setup LLAMA_BUILD=portable, or set models.llm_extra_buffers = false")
    return (f"add {variant!r} to models.llm_cpu_exclude (the next best variant then runs), "
            "or set models.llm_extra_buffers = false")


def _how_it_ended(proc: subprocess.Popen, detail: str) -> str:
    """"died with SIGSEGV" / "exited with status 1: ..." for a child that is gone or going."""
    try:
        rc = proc.wait(2)
    except subprocess.TimeoutExpired:
        return detail
    if rc < 0:
        try:
            return f"died with {signal.Signals(-rc).name}"
        except ValueError:
            return f"died with signal {-rc}"
    if detail:
        return f"could not start ({detail})"
    return f"exited with status {rc}"


class WorkerModel:
    """A ``ChatModel`` whose llama.cpp context lives in a child process, restarted on failure.

    One request at a time, as with the in-process model (one lock). After a death or a hang the
    child is replaced on a background thread; a request that arrives meanwhile waits for it, for
    at most the hang timeout.
    """

    def __init__(
        self, gguf: Path, threads: int, context_tokens: int, name: str = "small", *,
        hang_timeout_ms: int = 8000, warm_messages: list[dict[str, str]] | None = None,
        fault: Fault = "", fault_on_request: int = 1, start_timeout_s: float = 120.0,
        cpu_exclude: Sequence[str] = (), cpu_variant: str = "auto", extra_buffers: bool = True,
    ) -> None:
        self.name = name
        self.cpu_exclude, self.cpu_variant, self.extra_buffers = list(cpu_exclude), cpu_variant, extra_buffers
        self.variant: str | None = None  # the CPU variant the last child chose
        self.gguf = Path(gguf)
        self.threads = threads
        self.context_tokens = context_tokens
        self.hang_timeout_s = hang_timeout_ms / 1000
        self.warm_messages = warm_messages
        self.fault, self.fault_on_request = fault, fault_on_request
        self.start_timeout_s = start_timeout_s
        self.restarts = 0
        self.on_restart: Callable[[], None] | None = None  # e.g. a metrics counter
        self.warm_up_s = 0.0
        self.start_s = 0.0  # spawn to ready, of the child now serving
        self.lock = threading.Lock()  # one request at a time
        self._state = threading.Condition()  # guards the fields below
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._restarting = False
        self._closed = False
        self._requests = 0
        self._failed_starts = 0  # in a row: each one doubles the wait before the next try
        self._next_start_at = 0.0
        self._logprobs: list[float] = []
        proc, conn = self._spawn()  # the first start is synchronous: serve only when ready
        with self._state:
            self._proc, self._conn = proc, conn

    # -- the ChatModel protocol --------------------------------------------------------------
    def stream(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
        cancelled: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield reply text piece by piece; stops between tokens once ``cancelled`` is set.

        Raises ``WorkerFailed`` if the worker dies or falls silent mid-reply (unless the reply
        was already cancelled: then nobody is waiting for it, and only the restart follows).
        """
        with self.lock:
            proc, conn = self._ready_worker()
            self._logprobs = []
            self._requests += 1
            fault = self.fault if self._requests == self.fault_on_request else ""
            rid = self._requests
            try:
                conn.send(("gen", rid, messages, max_tokens, temperature, fault))
            except OSError as e:
                self._failed(proc, "llm.worker_died", f"send: {e}")
                raise WorkerFailed("llm.worker_died", "the worker was gone when the request was sent") from e
            done = False
            cancel_sent = False
            try:
                last = time.monotonic()
                while True:
                    if cancelled is not None and cancelled.is_set() and not cancel_sent:
                        cancel_sent = self._send_cancel(conn, rid)
                    msg = self._next_message(proc, conn, last)
                    if msg[0] == "tick":
                        continue
                    last = time.monotonic()
                    if msg[0] == "piece" and msg[1] == rid:
                        self._logprobs.extend(msg[3])
                        if not cancel_sent and msg[2] and not (cancelled is not None and cancelled.is_set()):
                            yield msg[2]
                    elif msg[0] == "done" and msg[1] == rid:
                        done = True
                        if msg[2]:
                            # llama.cpp raised in the child (e.g. a prompt over the context):
                            # the worker is fine, the request was not.
                            raise RuntimeError(f"{self.name} model: {msg[2]}")
                        return
            except WorkerFailed:
                if cancel_sent or (cancelled is not None and cancelled.is_set()):
                    return  # nobody waits for this reply; the restart is under way
                raise
            finally:
                if not done and self._conn is conn:
                    # The consumer stopped reading (GeneratorExit): cancel, then drain to done.
                    self._drain(proc, conn, rid, cancel_sent)

    def tokens_so_far(self) -> int:
        return len(self._logprobs)

    def mean_logprob(self, since: int = 0) -> float | None:
        values = self._logprobs[since:]
        return float(np.mean(values)) if values else None

    def close(self) -> None:
        """Stop the child (EOF, then a kill if it lingers); idempotent."""
        with self._state:
            self._closed = True
            proc, conn = self._proc, self._conn
            self._proc = self._conn = None
            self._state.notify_all()
        _stop(proc, conn)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    # -- the request's plumbing ----------------------------------------------------------------
    def _next_message(self, proc: subprocess.Popen, conn: Connection, since: float) -> tuple:
        """The child's next message; ``WorkerFailed`` if it died or said nothing for too long."""
        while True:
            try:
                if conn.poll(POLL_S):
                    return conn.recv()
            except (EOFError, OSError) as e:
                self._failed(proc, "llm.worker_died", f"{type(e).__name__} from the worker")
                raise WorkerFailed("llm.worker_died", f"exit status {proc.poll()}") from e
            if proc.poll() is not None:
                self._failed(proc, "llm.worker_died", f"exit status {proc.returncode}")
                raise WorkerFailed("llm.worker_died", f"exit status {proc.returncode}")
            if time.monotonic() - since > self.hang_timeout_s:
                self._failed(proc, "llm.worker_hung", f"silent for {self.hang_timeout_s * 1000:.0f} ms")
                raise WorkerFailed("llm.worker_hung", f"silent for {self.hang_timeout_s * 1000:.0f} ms")
            # The caller's cancel must not wait for a token: the loop in stream() sends it.
            return ("tick",)

    def _send_cancel(self, conn: Connection, rid: int) -> bool:
        try:
            conn.send(("cancel", rid))
        except OSError:
            pass  # a dead child is noticed by the next read
        return True

    def _drain(self, proc: subprocess.Popen, conn: Connection, rid: int, cancel_sent: bool) -> None:
        if not cancel_sent:
            self._send_cancel(conn, rid)
        last = time.monotonic()
        try:
            while True:
                msg = self._next_message(proc, conn, last)
                if msg[0] != "tick":
                    last = time.monotonic()
                if msg[0] == "done" and msg[1] == rid:
                    return
        except WorkerFailed as e:
            log.warning("%s worker failed while a cancelled reply drained: %s", self.name, e)

    # -- lifecycle -----------------------------------------------------------------------------
    def _ready_worker(self) -> tuple[subprocess.Popen, Connection]:
        """The live child, waiting (at most the hang timeout) for one being restarted."""
        deadline = time.monotonic() + self.hang_timeout_s
        with self._state:
            while True:
                if self._closed:
                    raise WorkerFailed("llm.worker_closed", "the model was closed")
                proc, conn = self._proc, self._conn
                if proc is not None and conn is not None:
                    if proc.poll() is None:
                        return proc, conn
                    # Died between requests (OOM killer, a signal): replace it, then wait.
                    log.warning("%s worker (pid %d) exited while idle (status %s)",
                                self.name, proc.pid, proc.returncode)
                    self._proc = self._conn = None
                    self._restart_locked(proc, conn)
                elif not self._restarting:
                    if time.monotonic() < self._next_start_at:
                        # A worker that fails at every start is not respawned per request.
                        raise WorkerFailed("llm.worker_unavailable", "failed to start; backing off")
                    self._restart_locked(None, None)  # the last restart failed: try again
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerFailed("llm.worker_unavailable", "still restarting")
                self._state.wait(min(left, 0.2))

    def _failed(self, proc: subprocess.Popen, code: str, detail: str) -> None:
        """Take the child out of service and restart it in the background."""
        log.error("%s worker (pid %d) failed: %s (%s); restarting", self.name, proc.pid, code, detail,
                  extra={"code": code, "stage": "llm"})
        _kill(proc)  # SIGKILL before the caller hears of it: a hung llama.cpp may never read again
        with self._state:
            conn = self._conn if self._proc is proc else None
            if self._proc is proc:
                self._proc = self._conn = None
            self._restart_locked(None, conn)

    def _restart_locked(self, old: subprocess.Popen | None, old_conn: Connection | None) -> None:
        if self._closed or self._restarting:
            if old is not None:
                _kill(old)
            return
        self._restarting = True
        threading.Thread(
            target=self._restart, args=(old, old_conn), name=f"{self.name}-worker-restart", daemon=True
        ).start()

    def _restart(self, old: subprocess.Popen | None, old_conn: Connection | None) -> None:
        t0 = time.perf_counter()
        if old is not None:
            _kill(old)
        if old_conn is not None:
            old_conn.close()
        try:
            proc, conn = self._spawn()
        except Exception as e:  # noqa: BLE001 - logged; a later request tries again, after a back-off
            with self._state:
                self._restarting = False
                self._failed_starts += 1
                wait = min(RESTART_BACKOFF_MAX_S, RESTART_BACKOFF_S * 2 ** (self._failed_starts - 1))
                self._next_start_at = time.monotonic() + wait
                self._state.notify_all()
            log.error("%s worker restart failed (%d in a row; next try in %.0f s): %s",
                      self.name, self._failed_starts, wait, e)
            return
        with self._state:
            self._restarting = False
            self._failed_starts = 0
            if self._closed:
                _stop(proc, conn)
                return
            self._proc, self._conn = proc, conn
            self.restarts += 1
            self._state.notify_all()
        log.warning(
            "%s worker restarted in %.0f ms (pid %d, restarts %d)",
            self.name, (time.perf_counter() - t0) * 1000, proc.pid, self.restarts,
        )
        if self.on_restart is not None:
            self.on_restart()

    def _spawn(self) -> tuple[subprocess.Popen, Connection]:
        t0 = time.perf_counter()
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "voicebox.thinking.llm_worker", "--fd", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True,
            )
        finally:
            theirs.close()  # the child's copy is its own; ours closed means EOF for it
        conn = Connection(ours.detach())
        try:
            msg = self._start(proc, conn)
        except ModelStartFailed:
            _stop(proc, conn)
            raise
        self.warm_up_s = msg[3]
        self.start_s = time.perf_counter() - t0
        log.info("%s worker pid %d ready in %.0f ms (load %.0f ms, warm-up %.0f ms)",
                 self.name, proc.pid, self.start_s * 1000, msg[2] * 1000, msg[3] * 1000)
        return proc, conn


    def _start(self, proc: subprocess.Popen, conn: Connection) -> tuple:
        """Hand the child its model and wait for "ready"; ``ModelStartFailed`` says why not."""
        deadline = time.monotonic() + self.start_timeout_s
        self.variant = None
        try:
            conn.send(("init", {
                "gguf": str(self.gguf), "threads": self.threads, "context_tokens": self.context_tokens,
                "name": self.name, "warm_messages": self.warm_messages, "parent_pid": os.getpid(),
                "cpu_exclude": self.cpu_exclude, "cpu_variant": self.cpu_variant,
                "extra_buffers": self.extra_buffers,
                "fault": self.fault if self.fault_on_request == 0 else "",
            }))
            while True:
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    _kill(proc)
                    raise ModelStartFailed(self.name, self.gguf, f"was not ready in {self.start_timeout_s:.0f} s",
                                           self.variant)
                msg = conn.recv()
                if msg[0] == "backend":
                    self.variant = msg[1]
                elif msg[0] == "ready":
                    return msg
                else:
                    raise ModelStartFailed(self.name, self.gguf, _how_it_ended(proc, str(msg[1])), self.variant)
        except (EOFError, OSError) as e:
            raise ModelStartFailed(self.name, self.gguf, _how_it_ended(proc, type(e).__name__), self.variant) from e


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(5)  # reaped: no zombie
    except subprocess.TimeoutExpired:
        log.error("worker pid %d survived SIGKILL for 5 s", proc.pid)


def _stop(proc: subprocess.Popen | None, conn: Connection | None) -> None:
    if conn is not None:
        conn.close()  # EOF: the child's main loop exits
    if proc is None:
        return
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        _kill(proc)  # busy in a long prefill, or hung


# -- the child --------------------------------------------------------------------------------
def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent is gone, whatever the main thread is doing (a reply, a test hang)."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


def _serve(conn: Connection) -> None:
    from voicebox.thinking.language_model import LanguageModel
    from voicebox.thinking.llama_backend import load_cpu_backend

    kind, init = conn.recv()
    assert kind == "init", kind
    threading.Thread(target=_watch_parent, args=(init["parent_pid"],), daemon=True).start()
    t0 = time.perf_counter()
    try:
        # Told before the model loads: if a kernel kills this process, the parent knows which.
        backend = load_cpu_backend(init["cpu_exclude"], init["cpu_variant"])
        conn.send(("backend", backend.variant))
        lm = LanguageModel(Path(init["gguf"]), init["threads"], init["context_tokens"], init["name"],
                           cpu_exclude=init["cpu_exclude"], cpu_variant=init["cpu_variant"],
                           extra_buffers=init["extra_buffers"])
        t1 = time.perf_counter()
        _fault(init["fault"])  # test-only: a worker that fails at every start
        warm = lm.warm_up(init["warm_messages"] or PROBE_MESSAGES)
    except Exception as e:  # noqa: BLE001 - told to the parent, which raises it
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", os.getpid(), t1 - t0, warm))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the parent closed us, or is gone
        if msg[0] == "gen":
            _generate(conn, lm, *msg[1:])
        # A cancel for a request already done is stale: ignored.


def _generate(
    conn: Connection, lm, rid: int, messages: list, max_tokens: int, temperature: float, fault: Fault
) -> None:
    sent = 0
    error = ""
    pieces = lm.stream(messages, max_tokens, temperature)
    try:
        for piece in pieces:
            values = lm._logprobs.values
            conn.send(("piece", rid, piece, values[sent:]))
            sent = len(values)
            _fault(fault)  # test-only: after the first token, mid-reply
            if conn.poll(0) and _cancelled(conn, rid):
                break
    except (EOFError, OSError):
        os._exit(0)  # the parent is gone
    except Exception as e:  # noqa: BLE001 - told to the parent with the done message
        error = f"{type(e).__name__}: {e}"
    finally:
        pieces.close()
    conn.send(("done", rid, error))


def _fault(fault: Fault) -> None:
    """Test-only failures: exit, fall silent, or die of a signal the way a bad kernel would."""
    if fault == "die":
        os._exit(1)
    if fault == "hang":
        while True:
            time.sleep(3600)
    if fault == "segv":
        signal.signal(signal.SIGSEGV, signal.SIG_DFL)  # past Python's faulthandler, if any
        os.kill(os.getpid(), signal.SIGSEGV)


def _cancelled(conn: Connection, rid: int) -> bool:
    """Read what the parent sent mid-reply: only a cancel can be waiting then."""
    while conn.poll(0):
        msg = conn.recv()
        if msg[0] == "cancel" and msg[1] == rid:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="A GGUF chat model serving one parent over a socket (internal).")
    p.add_argument("--fd", type=int, required=True, help="the socket inherited from the parent")
    args = p.parse_args(argv)
    # Ctrl-C or a service manager's SIGTERM reaches the whole process group: the parent decides
    # when this worker ends (it may drain calls first), and its EOF or death ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s llm_worker %(message)s")
    _serve(Connection(args.fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
