"""RFC 4475 torture messages, each sent over UDP to a running `voicebox serve`.

What we answer to each, and why, is in rfc4475_answers.toml next to this file: the test checks
the server does exactly that, and still answers OPTIONS (and so is alive) after every message.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest

from tests.e2e.conftest import SHARED, sip_options, start_server, stop_server
from tests.e2e.rawsip import Peer, rtp_socket
from tests.e2e.torture import adapt, exchange

pytestmark = pytest.mark.e2e
TORTURE = SHARED / "rfc4475"
ANSWERS = tomllib.loads((Path(__file__).parent / "rfc4475_answers.toml").read_text())


@pytest.fixture(scope="module")
def torture_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("torture"), "[sip]\nrtp_port = 55000\n")
    yield server
    stop_server(server)


def test_every_rfc4475_message_has_a_documented_answer():
    names = sorted(p.stem for p in TORTURE.glob("*.dat"))
    assert len(names) == 49
    assert sorted(ANSWERS) == names


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_rfc4475_message_is_answered_as_documented(torture_server, name):
    expected = ANSWERS[name]["answer"]
    sink = rtp_socket()  # where a valid INVITE's media goes (its SDP is pointed here)
    try:
        with Peer(torture_server.port) as peer:
            data = adapt((TORTURE / f"{name}.dat").read_bytes(), peer.me, sink.getsockname()[1])
            outcome = exchange(peer, data, window_s=1.0 if expected == "drop" else 4.0)
    finally:
        sink.close()
    got = "drop" if outcome.final is None else outcome.final
    assert got == expected, f"{name}: answered {got}, documented {expected} ({ANSWERS[name]['why']}); saw {outcome.statuses}"
    if "reason" in ANSWERS[name]:
        final = next(r for r in outcome.responses if r.status >= 200)
        assert final.reason == ANSWERS[name]["reason"], final.raw
        # Copied from the request, so the sender's transaction matches the answer.
        assert final.header("Call-ID") in (None, _header_of(data, "Call-ID")), final.raw
        assert final.header("CSeq") == _header_of(data, "CSeq"), final.raw
    assert sip_options(torture_server.port, 2.0) == "SIP/2.0 200 OK", f"server not answering after {name}"
    assert torture_server.proc.poll() is None


def _header_of(data: bytes, name: str) -> str | None:
    for line in data.partition(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip()
    return None


def test_unparsable_requests_are_answered_within_the_source_limit(torture_server):
    """The answers to what pjsip cannot parse come out of the same per-source bucket as the rest
    (burst 100 by default): 300 broken requests from one socket get at most the burst and what
    refills meanwhile, never one answer each, and a source that waits is answered again."""
    raw = (TORTURE / "badvers.dat").read_bytes()
    with Peer(torture_server.port) as peer:
        data = adapt(raw, peer.me, 9)
        for _ in range(300):
            peer.send(data)
        answers = [m for m in peer.recv_all(2.0) if getattr(m, "status", None) == 505]
        # At least most of the burst (a loaded box's UDP receive buffer may drop a few of
        # 300 datagrams sent at once), and far fewer than one answer each.
        assert 90 <= len(answers) < 200, len(answers)
        time.sleep(2.5)  # the bucket refills at 50 requests/s
        peer.send(data)
        assert any(getattr(m, "status", None) == 505 for m in peer.recv_all(2.0))
    assert sip_options(torture_server.port, 2.0) == "SIP/2.0 200 OK"


def test_server_log_has_no_tracebacks_after_torture(torture_server):
    log = torture_server.log_text()
    assert "Traceback" not in log and "sip.guard_failed" not in log and "guard ready" in log
    assert "Dropping" in log  # pjsip's parser did refuse messages: the answers above were ours
