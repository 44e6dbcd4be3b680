"""`voicebox serve` under a service manager's eye (issue #21, item 3): the messages systemd hears.

The test plays systemd's part: it binds the notification socket, hands its path over in
NOTIFY_SOCKET (and a watchdog in WATCHDOG_USEC), and reads what a real server sends. READY=1 must
not come before the SIP port answers: when it arrives, one OPTIONS sent at once gets 200. A
SIGTERM with a call up then gives STOPPING=1 and "draining 1 call"; when the caller hangs up,
"draining 0 calls" and a clean exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, ROOT, free_port, sip_options
from tests.e2e.test_edge import answered_call
from tests.unix_datagram import bound_datagram_socket

pytestmark = pytest.mark.e2e

WATCHDOG_USEC = 1_000_000  # pings every 0.5 s: several arrive within the test


@pytest.fixture
def manager_socket() -> Iterator[tuple[socket.socket, str]]:
    with bound_datagram_socket(0.5) as bound:
        yield bound


def _serve(tmp: Path, port: int, notify_socket: str) -> subprocess.Popen:
    """`voicebox serve` as the unit starts it: settings from the environment, systemd's variables set."""
    log = tmp / "serve.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", NOTIFY_SOCKET=notify_socket, WATCHDOG_USEC=str(WATCHDOG_USEC),
               VOICEBOX_SIP__HOST=HOST, VOICEBOX_SIP__PORT=str(port), VOICEBOX_SIP__RTP_PORT="54700",
               VOICEBOX_SIP__RTP_PORT_RANGE="100", VOICEBOX_SIP__RTP_TIMEOUT_S="60",
               VOICEBOX_METRICS__PORT=str(free_port()),
               VOICEBOX_DATA_DIR=str(tmp / "data"))
    env.pop("WATCHDOG_PID", None)  # unset: the watchdog is for whoever reads it, as systemd allows
    return subprocess.Popen([sys.executable, "-m", "voicebox", "serve"], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=ROOT)


def _until(sock: socket.socket, proc: subprocess.Popen, log: Path, field: str, timeout_s: float,
           on_message=None) -> list[list[str]]:
    """Messages received up to and including the first one holding ``field``."""
    got: list[list[str]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            fields = sock.recv(4096).decode().split("\n")
        except TimeoutError:
            if proc.poll() is not None:
                pytest.fail(f"voicebox serve exited ({proc.returncode}) before {field}:\n{log.read_text()[-3000:]}")
            continue
        if on_message is not None:
            on_message(fields)
        got.append(fields)
        if field in fields:
            return got
    pytest.fail(f"no {field} in {timeout_s:.0f} s; got {got}:\n{log.read_text()[-3000:]}")


def test_ready_once_sip_answers_then_a_drain_on_sigterm(manager_socket, tmp_path):
    sock, path = manager_socket
    port = free_port()
    proc = _serve(tmp_path, port, path)
    log = tmp_path / "serve.log"
    answers: list[str | None] = []

    def probe_at_ready(fields: list[str]) -> None:
        if "READY=1" in fields:  # at once, before reading anything else: was the port answering?
            answers.append(sip_options(port, 1.0))

    try:
        before = _until(sock, proc, log, "READY=1", 240, probe_at_ready)
        assert answers and answers[0] is not None and " 200 " in answers[0] + " ", (answers, log.read_text()[-3000:])
        assert ["STATUS=loading models"] in before[:-1]
        assert before[-1] == ["READY=1", f"STATUS=serving on sip:agent@{HOST}:{port}"]
        assert not any("WATCHDOG=1" in m for m in before)  # the SIP loop pings, and it starts after READY

        _until(sock, proc, log, "WATCHDOG=1", 5)  # the SIP loop is turning

        call = answered_call(port)
        try:
            call.keep_media_alive(10)
            proc.send_signal(signal.SIGTERM)
            after = _until(sock, proc, log, "STOPPING=1", 15)
            assert after[-1] == ["STOPPING=1", "STATUS=draining 1 call"]
        finally:
            call.close()  # the caller hangs up: the drain has nothing left to wait for
        after = _until(sock, proc, log, "STATUS=draining 0 calls", 15)
        assert not any("STOPPING=1" in m for m in after)  # said once
        assert proc.wait(15) == 0, log.read_text()[-3000:]
        assert "draining: new calls refused, 1 in progress" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
