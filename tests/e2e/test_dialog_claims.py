"""A To tag is only a claim to be in a dialog (issue #17, item 1).

A request counts as in-dialog, and so skips the per-source limit and digest auth, only when its
Call-ID, To tag and From tag name a dialog pjsua holds (or a transaction in progress). Anything
else with a tag is limited like any request and answered 481, and never reaches pjsua.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.e2e.conftest import HOST, start_server, stop_server
from tests.e2e.rawsip import Peer, Response, count_rtp, new_tag, request, sdp
from tests.e2e.test_edge import Dialog, remote_rtp_port

pytestmark = pytest.mark.e2e
RATE, BURST = 5, 20
FLOOD = 5000


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    config = f"[sip]\nrtp_port = 54000\nsource_requests_per_s = {RATE}\nsource_burst_requests = {BURST}\n"
    server = start_server(tmp_path_factory.mktemp("claims"), config)
    yield server
    stop_server(server)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def answers(peer: Peer, window_s: float) -> list[Response]:
    return [m for m in peer.recv_all(window_s) if isinstance(m, Response)]


def tagged_flood(port: int, count: int) -> tuple[list[Response], float, int]:
    """``count`` requests from one socket, each claiming a dialog nobody holds: every 10th an
    INVITE with an offer, the rest OPTIONS. Returns the answers, the seconds it took to send them, and how many INVITEs went."""
    got: list[Response] = []
    invites = 0
    with Peer(port) as p:
        p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        t0 = time.monotonic()
        for i in range(count):
            if i % 10 == 0:
                invites += 1
                p.send(request(p, "INVITE", to_tag=new_tag(), body=sdp(40000)))
            else:
                p.send(request(p, "OPTIONS", to_tag=new_tag()))
            if i % 100 == 99:
                got += answers(p, 0.001)
        took = time.monotonic() - t0
        got += answers(p, 1.0)
    return got, took, invites


def test_tagged_flood_is_limited_and_the_call_in_progress_is_untouched(limited_server):
    server = limited_server
    time.sleep(BURST / RATE + 0.5)  # start_server's OPTIONS took tokens: let the bucket fill
    d = Dialog(server.port)
    try:
        d.send("INVITE", body=d.sdp())
        r = d.final()
        assert r.status == 200, r.raw
        d.remote_rtp = remote_rtp_port(r)
        d.send("ACK", cseq=1)
        d.keep_media_alive()
        assert count_rtp(d.rtp, 1.0)[0] > 10
        calls_before = server.log_text().count("call start")

        # The call's own tags under another Call-ID are not that call: pjsip's dialog layer
        # alone matches on the tags and would have let this BYE end it.
        with Peer(server.port) as p:
            p.send(request(p, "BYE", call_id=f"{new_tag()}@{HOST}", from_tag=d.from_tag, to_tag=d.to_tag, cseq=9))
            r = p.final()
        assert r is not None and r.status == 481, r and r.raw

        rss0 = rss_kib(server.proc.pid)
        got, took, invites = tagged_flood(server.port, FLOOD)
        # Right after the flood the source's bucket is empty: the call's own requests still pass.
        d.send("UPDATE")
        assert d.final("UPDATE").status == 200

        statuses = [(r.header("CSeq") or "").split()[-1] + f" {r.status}" for r in got]
        allowed = BURST + RATE * (took + 1.0) + 1  # what the bucket can give while the flood runs and drains
        passed = [s for s in statuses if not s.endswith(" 503")]
        assert 0 < len(passed) <= allowed, (len(passed), allowed, took)
        assert set(passed) <= {"OPTIONS 481", "INVITE 481"}, set(passed)
        # Limited INVITEs get 503 + Retry-After, as untagged ones do; OPTIONS past the limit nothing.
        refused = [r for r in got if r.status == 503]
        assert refused and all(r.header("Retry-After") for r in refused)
        assert all((r.header("CSeq") or "").endswith("INVITE") for r in refused)
        assert len(got) <= invites + allowed, (len(got), invites, allowed)

        assert server.log_text().count("call start") == calls_before, "a tagged INVITE started a call"
        assert "source rate-limited src=127.0.0.1" in server.log_text()
        assert rss_kib(server.proc.pid) - rss0 < 16 * 1024, "memory grew under the flood"
        d.keep_media_alive()
        assert count_rtp(d.rtp, 1.0)[0] > 10, "the call in progress lost its audio"
    finally:
        d.close()
