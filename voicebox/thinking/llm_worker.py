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
from typing import Callable, Iterator, Literal

import numpy as np

log = logging.getLogger("voicebox.llm_worker")

Fault = Literal["", "die", "hang"]
POLL_S = 0.05  # how often a waiting parent looks at its ``cancelled`` event


class WorkerFailed(RuntimeError):
    """The worker died or hung during a request; it is being restarted. ``code`` names which."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


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
    ) -> None:
        self.name = name
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
                    self._restart_locked(None, None)  # the last restart failed: try again
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerFailed("llm.worker_unavailable", "still restarting")
                self._state.wait(min(left, 0.2))

    def _failed(self, proc: subprocess.Popen, code: str, detail: str) -> None:
        """Take the child out of service and restart it in the background."""
        log.error("%s worker (pid %d) failed: %s (%s); restarting", self.name, proc.pid, code, detail)
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
        except Exception as e:  # noqa: BLE001 - logged; the next request tries again
            log.error("%s worker restart failed: %s", self.name, e)
            with self._state:
                self._restarting = False
                self._state.notify_all()
            return
        with self._state:
            self._restarting = False
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
            conn.send(("init", {
                "gguf": str(self.gguf), "threads": self.threads, "context_tokens": self.context_tokens,
                "name": self.name, "warm_messages": self.warm_messages, "parent_pid": os.getpid(),
            }))
            if not conn.poll(self.start_timeout_s):
                raise RuntimeError(f"not ready in {self.start_timeout_s:.0f} s")
            msg = conn.recv()
            if msg[0] != "ready":
                raise RuntimeError(f"failed to start: {msg[1] if len(msg) > 1 else msg}")
        except (EOFError, OSError, RuntimeError) as e:
            _stop(proc, conn)
            raise RuntimeError(f"{self.name} model worker: {e}") from e
        self.warm_up_s = msg[3]
        self.start_s = time.perf_counter() - t0
        log.info("%s worker pid %d ready in %.0f ms (load %.0f ms, warm-up %.0f ms)",
                 self.name, proc.pid, self.start_s * 1000, msg[2] * 1000, msg[3] * 1000)
        return proc, conn


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

    kind, init = conn.recv()
    assert kind == "init", kind
    threading.Thread(target=_watch_parent, args=(init["parent_pid"],), daemon=True).start()
    t0 = time.perf_counter()
    try:
        lm = LanguageModel(Path(init["gguf"]), init["threads"], init["context_tokens"], init["name"])
        t1 = time.perf_counter()
        warm = lm.warm_up(init["warm_messages"]) if init["warm_messages"] else 0.0
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
            if fault == "die":
                os._exit(1)  # test-only: dies after the first token, mid-reply
            if fault == "hang":
                while True:  # test-only: alive but silent after the first token
                    time.sleep(3600)
            if conn.poll(0) and _cancelled(conn, rid):
                break
    except (EOFError, OSError):
        os._exit(0)  # the parent is gone
    except Exception as e:  # noqa: BLE001 - told to the parent with the done message
        error = f"{type(e).__name__}: {e}"
    finally:
        pieces.close()
    conn.send(("done", rid, error))


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
