"""Paths of the edge that had no test (issue #17, "Also"): 486 when busy, the metrics endpoint's
bind, the drain timeout on SIGTERM, and the purge command. Real `voicebox serve`, raw UDP calls."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.e2e.conftest import HOST, ROOT, sip_options, start_server, stop_server
from tests.e2e.rawsip import Peer, Request, request
from tests.e2e.test_edge import answered_call

pytestmark = pytest.mark.e2e
DRAIN_S = 4


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory):
    """One call at a time, refused with 486; a short drain; no RTP timeout within a test."""
    server = start_server(tmp_path_factory.mktemp("busy"), (
        "[sip]\nmax_calls = 1\nbusy_status = 486\nrtp_timeout_s = 120\n"
        f"drain_timeout_s = {DRAIN_S}\nrtp_port = 55400\nrtp_port_range = 100\n"
    ))
    yield server
    if server.proc.poll() is None:
        stop_server(server)


def test_metrics_listen_on_loopback_only(busy_server):
    url = f"http://{HOST}:{busy_server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200 and b"voicebox" in resp.read()
    # Bound to 127.0.0.1 itself, not to every address: another loopback address is refused.
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.settimeout(3)
        s.connect(("127.0.0.2", busy_server.metrics_port))
    listening = [line.split()[1] for line in open("/proc/net/tcp").read().splitlines()[1:]
                 if line.split()[3] == "0A"]  # state LISTEN; local address as hex ip:port
    port_hex = f"{busy_server.metrics_port:04X}"
    assert f"0100007F:{port_hex}" in listening and f"00000000:{port_hex}" not in listening, listening


def test_a_call_past_max_calls_gets_486(busy_server):
    first = answered_call(busy_server.port)
    try:
        with Peer(busy_server.port) as p:
            p.send(request(p, "INVITE", body=first.sdp()))
            r = p.final(10)
            assert r is not None and r.status == 486, r and r.raw
            assert r.header("Retry-After") is None, "486 is busy here, not 'come back later'"
    finally:
        first.close()
    assert "call rejected status=486 reason=" in busy_server.log_text()


def test_sigterm_drains_then_hangs_up_at_the_drain_timeout(busy_server):
    d = answered_call(busy_server.port)
    try:
        d.keep_media_alive(10)
        busy_server.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        # Draining: new calls and OPTIONS get 480, so a PBX's dispatcher sends calls elsewhere.
        assert sip_options(busy_server.port, 3.0).startswith("SIP/2.0 480"), busy_server.log_text()[-2000:]
        with Peer(busy_server.port) as p:
            p.send(request(p, "INVITE", body=d.sdp()))
            r = p.final(5)
            assert r is not None and r.status == 480, r and r.raw
        # The call in progress goes on until the drain timeout, then the agent hangs it up.
        bye = None
        deadline = time.monotonic() + DRAIN_S + 15
        early = time.monotonic() + DRAIN_S - 2.5
        while bye is None and time.monotonic() < deadline:
            d.keep_media_alive(5)
            for m in d.peer.recv_all(0.2):
                if isinstance(m, Request) and m.method == "BYE":
                    bye = m
                    assert time.monotonic() > early, "hung up before the drain timeout"
                    d.peer.send("SIP/2.0 200 OK\r\n" + "".join(
                        f"{k}: {v}\r\n" for k, v in m.headers if k.lower() in ("via", "from", "to", "call-id", "cseq"))
                        + "Content-Length: 0\r\n\r\n")
        assert bye is not None, busy_server.log_text()[-3000:]
        assert 'text="shutdown"' in (bye.header("Reason") or ""), bye.raw
        d.to_tag = ""  # the call is over: nothing to BYE at close
        assert busy_server.proc.wait(20) == 0, busy_server.log_text()[-3000:]
    finally:
        d.close()
    log = busy_server.log_text()
    assert "draining: new calls refused, 1 in progress" in log, log[-3000:]


def _touch(path, age_days: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    then = time.time() - age_days * 86400
    os.utime(path, (then, then))


def test_purge_command_removes_old_records_only(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    old_call = data / "calls" / "2020-01-01" / "aaa.jsonl"
    old_rec = data / "recordings" / "2020-01-01" / "aaa.wav"
    new_call = data / "calls" / "2099-01-01" / "bbb.jsonl"
    _touch(old_call, 40)
    _touch(old_rec, 40)
    _touch(new_call, 1)
    proc = subprocess.run([sys.executable, "-m", "voicebox", "purge", "--older-than", "30d", "--data-dir", str(data)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "removed 2 files older than 30d" in proc.stdout, proc.stdout
    assert not old_call.exists() and not old_rec.exists() and new_call.exists()
    bad = subprocess.run([sys.executable, "-m", "voicebox", "purge", "--older-than", "soon", "--data-dir", str(data)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "voicebox:" in bad.stderr and new_call.exists()
