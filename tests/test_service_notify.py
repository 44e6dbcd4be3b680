"""The sd_notify protocol against real unix datagram sockets, as systemd's manager would receive it."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unix_datagram import bound_datagram_socket
from voicebox.service_notify import ServiceNotifier, socket_address, watchdog_interval


@pytest.fixture
def path_socket() -> Iterator[tuple[socket.socket, str]]:
    with bound_datagram_socket(2) as bound:
        yield bound


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"voicebox-test-{uuid.uuid4().hex}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(b"\0" + name.encode())
    s.settimeout(2)
    yield s, "@" + name
    s.close()


def _fields(s: socket.socket) -> list[str]:
    return s.recv(4096).decode().split("\n")


def test_ready_reaches_a_path_socket(path_socket):
    s, path = path_socket
    n = ServiceNotifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    n.ready("serving on sip:agent@127.0.0.1:5060")
    assert _fields(s) == ["READY=1", "STATUS=serving on sip:agent@127.0.0.1:5060"]


def test_the_at_sign_names_an_abstract_socket(abstract_socket):
    s, name = abstract_socket
    n = ServiceNotifier({"NOTIFY_SOCKET": name})
    n.status("loading models")
    assert _fields(s) == ["STATUS=loading models"]


def test_stopping_is_said_once_then_only_the_status_changes(path_socket):
    s, path = path_socket
    n = ServiceNotifier({"NOTIFY_SOCKET": path})
    n.stopping("draining 2 calls")
    n.stopping("draining 1 call")
    assert _fields(s) == ["STOPPING=1", "STATUS=draining 2 calls"]
    assert _fields(s) == ["STATUS=draining 1 call"]


def test_a_newline_in_a_status_cannot_add_a_field(path_socket):
    s, path = path_socket
    ServiceNotifier({"NOTIFY_SOCKET": path}).status("one\nREADY=1")
    assert _fields(s) == ["STATUS=one READY=1"]


def test_without_notify_socket_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    sent = []
    monkeypatch.setattr(socket.socket, "sendto", lambda *a: sent.append(a))
    n = ServiceNotifier()  # the real environment, without NOTIFY_SOCKET
    assert not n.enabled
    n.ready("x")
    n.stopping("y")
    n.watchdog()
    assert n.notify("READY=1") is False
    assert sent == []


def test_an_unreachable_socket_is_logged_once_and_never_raises(caplog):
    with tempfile.TemporaryDirectory(prefix="vb-") as d:
        n = ServiceNotifier({"NOTIFY_SOCKET": str(Path(d) / "nobody-listens")})
        with caplog.at_level(logging.WARNING, logger="voicebox.service"):
            assert n.notify("READY=1") is False
            n.status("loading models")
            n.stopping("stopping")
    failures = [r for r in caplog.records if "service notification failed" in r.message]
    assert len(failures) == 1


def test_an_unusable_address_disables_notifications(caplog):
    with caplog.at_level(logging.WARNING, logger="voicebox.service"):
        n = ServiceNotifier({"NOTIFY_SOCKET": "relative/socket"})
    assert not n.enabled
    assert "not a socket voicebox can notify" in caplog.text
    assert socket_address("vsock:2:1234") is None
    assert socket_address("@") is None


def test_watchdog_pings_at_half_the_interval(path_socket):
    s, path = path_socket
    n = ServiceNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())})
    assert n.watchdog_interval_s == 2.0
    n.watchdog(100.0)
    n.watchdog(101.9)  # not due yet
    n.watchdog(102.0)
    assert _fields(s) == ["WATCHDOG=1"]
    assert _fields(s) == ["WATCHDOG=1"]
    s.setblocking(False)
    with pytest.raises(BlockingIOError):
        s.recv(4096)


def test_watchdog_for_another_process_or_none_is_not_pinged():
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}, pid=4242) is None
    assert watchdog_interval({}, pid=4242) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, pid=4242) is None
    assert watchdog_interval({"WATCHDOG_USEC": "3000000"}, pid=4242) == 1.5
    # No socket, no pings, whatever the watchdog variables say.
    assert ServiceNotifier({"WATCHDOG_USEC": "3000000"}).watchdog_interval_s is None


def test_a_full_manager_queue_never_holds_up_the_caller(path_socket):
    # The SIP thread pings; it also reads the calls' RTP, so a send must not wait for room.
    s, path = path_socket
    n = ServiceNotifier({"NOTIFY_SOCKET": path})
    for _ in range(100_000):  # nobody reads: the queue fills (max_dgram_qlen, a few hundred at most)
        t0 = time.monotonic()
        if not n.notify("WATCHDOG=1"):
            break
    else:
        pytest.fail("the receiver's queue never filled")
    assert time.monotonic() - t0 < 0.1
    assert s.recv(4096) == b"WATCHDOG=1"  # what was queued before is still there


def test_text_that_is_not_valid_unicode_is_still_sent(path_socket):
    s, path = path_socket
    ServiceNotifier({"NOTIFY_SOCKET": path}).status("caller \udcff")  # a surrogate from a raw byte
    assert _fields(s) == ["STATUS=caller ?"]
