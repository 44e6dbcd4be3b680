"""The SIP edge over real UDP: SDP and dialog cases, session timers, scanners, digest auth, allow-list."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import HOST, ROOT, free_port, sip_options, sipp, start_server, stop_server
from tests.e2e.rawsip import (
    Peer, Response, count_rtp, new_tag, request, rtp_socket, sdp, send_rtp_silence, to_tag,
)

pytestmark = pytest.mark.e2e
LOAD = re.compile(r"^calls=(\d+)/(\d+); cpu=(\d+\.\d\d)$")


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("edge"), "[sip]\nrtp_port = 45400\n")
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    config = '[sip]\nrtp_port = 45600\nauth_user = "alice"\nauth_password = "s3cret"\n'
    server = start_server(tmp_path_factory.mktemp("auth"), config)
    yield server
    stop_server(server)


def options(port: int, user: str = "agent") -> Response:
    with Peer(port) as p:
        p.send(request(p, "OPTIONS", user=user))
        r = p.final()
    assert r is not None, "no answer to OPTIONS"
    return r


def load(port: int) -> tuple[int, int, float]:
    value = options(port).header("X-Voicebox-Load") or ""
    m = LOAD.match(value)
    assert m, value
    return int(m.group(1)), int(m.group(2)), float(m.group(3))


def wait_idle(port: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while load(port)[0] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert load(port)[0] == 0, "a call was left behind"


class Dialog:
    """A call placed from a raw socket: we are the caller, the server is the agent."""

    def __init__(self, port: int) -> None:
        self.peer = Peer(port)
        self.rtp = rtp_socket()
        self.call_id = f"{new_tag()}@{HOST}"
        self.from_tag = new_tag()
        self.to_tag = ""
        self.cseq = 1
        self.seq = 0
        self.invite_branch = ""
        self.inbox: list[Response] = []

    def send(self, method: str, body: str = "", extra: list[str] | None = None, cseq: int | None = None) -> None:
        if cseq is None and method not in ("ACK", "CANCEL"):
            self.cseq += 1 if method != "INVITE" or self.to_tag else 0
        branch = None
        if method == "CANCEL":
            branch = self.invite_branch  # a CANCEL names the INVITE transaction it cancels
        elif method == "INVITE":
            branch = self.invite_branch = "z9hG4bK" + new_tag()
        self.peer.send(request(self.peer, method, call_id=self.call_id, from_tag=self.from_tag, to_tag=self.to_tag,
                               cseq=cseq or self.cseq, body=body, extra=extra, branch=branch))

    def final(self, method: str = "INVITE") -> Response:
        deadline = time.monotonic() + 5
        while True:
            for r in self.inbox:
                if r.status >= 200 and (r.header("CSeq") or "").split()[-1] == method:
                    self.inbox.remove(r)
                    if method == "INVITE" and not self.to_tag:
                        self.to_tag = to_tag(r)
                    return r
            assert time.monotonic() < deadline, f"no final answer to {method}"
            self.inbox += [m for m in self.peer.recv_all(0.1) if isinstance(m, Response)]

    def sdp(self, **kw) -> str:
        return sdp(self.rtp.getsockname()[1], **kw)

    def keep_media_alive(self, packets: int = 50) -> None:
        send_rtp_silence(self.rtp, self.remote_rtp, packets, self.seq)
        self.seq += packets

    def close(self) -> None:
        if self.to_tag:
            self.send("BYE")
            self.final("BYE")
        self.peer.close()
        self.rtp.close()

    remote_rtp = 0


def remote_rtp_port(r: Response) -> int:
    m = re.search(r"m=audio (\d+)", r.body)
    assert m, r.body
    return int(m.group(1))


def answered_call(port: int) -> Dialog:
    """A call placed from a raw socket and answered: INVITE, 200, ACK."""
    d = Dialog(port)
    d.send("INVITE", body=d.sdp())
    r = d.final()
    assert r.status == 200, r.raw
    d.remote_rtp = remote_rtp_port(r)
    d.send("ACK", cseq=d.cseq)
    return d


def media_lines(r: Response) -> list[str]:
    return [x for x in r.body.split("\r\n") if x.startswith(("m=", "a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"))]


def test_no_common_codec_is_488_with_warning(edge_server):
    with Peer(edge_server.port) as p:
        p.send(request(p, "INVITE", body=sdp(40000, "18", ("a=rtpmap:18 G729/8000",))))
        r = p.final()
    assert r.status == 488 and r.header("Warning"), r.raw
    assert re.match(r'399 \S+ ".*codec', r.header("Warning")), r.header("Warning")


@pytest.mark.parametrize("body", [
    "v=0\r\nm=audio notaport RTP/AVP 0\r\n",
    "this is not sdp\r\n",
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n",  # no media line at all
])
def test_malformed_sdp_is_refused(edge_server, body):
    with Peer(edge_server.port) as p:
        p.send(request(p, "INVITE", body=body))
        r = p.final()
    assert r is not None and r.status in (400, 488), r and r.raw
    assert sip_options(edge_server.port) == "SIP/2.0 200 OK"


def test_late_offer_invite_gets_offer_and_call_works(edge_server):
    d = Dialog(edge_server.port)
    try:
        d.send("INVITE")  # no SDP: the agent must offer in its 200
        r = d.final()
        assert r.status == 200 and "m=audio" in r.body and r.header("Content-Type") == "application/sdp", r.raw
        d.remote_rtp = remote_rtp_port(r)
        d.send("ACK", body=d.sdp(payloads="0"), cseq=1)  # the answer, in the ACK
        d.keep_media_alive()
        n, types = count_rtp(d.rtp, 2.0)
        assert n >= 40 and types == {0}, (n, types)  # the greeting, as PCMU
    finally:
        d.close()


def test_reinvite_hold_unhold_and_codec_change(edge_server):
    d = Dialog(edge_server.port)
    try:
        d.send("INVITE", body=d.sdp())
        r = d.final()
        assert r.status == 200
        d.remote_rtp = remote_rtp_port(r)
        d.send("ACK", cseq=1)
        d.keep_media_alive()
        assert count_rtp(d.rtp, 1.0)[0] > 10
        d.send("INVITE", body=d.sdp(direction="sendonly"))  # hold
        r = d.final()
        assert r.status == 200 and "a=recvonly" in media_lines(r), media_lines(r)
        d.send("ACK", cseq=d.cseq)
        time.sleep(0.3)
        count_rtp(d.rtp, 0.2)  # drain what was in flight
        assert count_rtp(d.rtp, 1.0)[0] == 0, "audio sent to a caller who put us on hold"
        d.keep_media_alive()
        d.send("UPDATE", body=d.sdp(payloads="8", attrs=("a=rtpmap:8 PCMA/8000",)))  # unhold, PCMA now
        r = d.final("UPDATE")
        assert r.status == 200 and "a=sendrecv" in media_lines(r) and "m=audio" in r.body, r.raw
        assert re.search(r"m=audio \d+ RTP/AVP 8\b", r.body), r.body
        d.keep_media_alive()
        n, types = count_rtp(d.rtp, 1.5)
        assert n > 10 and types == {8}, (n, types)
    finally:
        d.close()
    wait_idle(edge_server.port)


def test_cancel_during_answer_leaves_nothing_behind(edge_server):
    for _ in range(3):
        d = Dialog(edge_server.port)
        d.send("INVITE", body=d.sdp())
        d.send("CANCEL", cseq=1)
        inv, cancel = d.final("INVITE"), d.final("CANCEL")
        # Either the CANCEL won (487) or the 200 had already gone (the CANCEL then changes nothing).
        assert (inv.status, cancel.status) in ((487, 200), (200, 200), (200, 481)), (inv.status, cancel.status)
        d.send("ACK", cseq=1)
        if inv.status != 200:
            d.to_tag = ""  # nothing to hang up
        d.close()
    wait_idle(edge_server.port)


def test_bye_for_unknown_dialog_is_481(edge_server):
    with Peer(edge_server.port) as p:
        p.send(request(p, "BYE", to_tag="nosuchdialog"))
        r = p.final()
    assert r.status == 481, r.raw


def test_session_timer_is_honoured(edge_server):
    d = Dialog(edge_server.port)
    try:
        d.send("INVITE", body=d.sdp(), extra=["Supported: timer", "Session-Expires: 120;refresher=uac", "Min-SE: 90"])
        r = d.final()
        assert r.status == 200, r.raw
        assert re.match(r"120\s*;\s*refresher=uac", r.header("Session-Expires") or ""), r.raw
        assert "timer" in (r.header("Require") or ""), r.raw
        d.send("ACK", cseq=1)
        # The caller refreshes with UPDATE: the interval is confirmed again.
        d.send("UPDATE", extra=["Supported: timer", "Session-Expires: 120;refresher=uac"])
        r = d.final("UPDATE")
        assert r.status == 200 and (r.header("Session-Expires") or "").startswith("120"), r.raw
    finally:
        d.close()
    with Peer(edge_server.port) as p:  # shorter than our Min-SE (90 s): 422 names the minimum
        p.send(request(p, "INVITE", body=sdp(40000), extra=["Supported: timer", "Session-Expires: 30"]))
        r = p.final()
    assert r.status == 422 and (r.header("Min-SE") or "").strip().startswith("90"), r.raw


def test_options_carries_load_hint(edge_server):
    wait_idle(edge_server.port)
    calls, max_calls, cpu = load(edge_server.port)
    assert (calls, max_calls) == (0, 4) and 0.0 <= cpu <= 1.0


def _shape(r: Response | None) -> tuple:
    """What a scanner can compare between answers: status and which headers came."""
    if r is None:
        return (None,)
    skip = {"via", "call-id", "from", "to", "cseq", "content-length"}
    return (r.status, r.reason, tuple(sorted(h for h in r.header_names() if h not in skip)))


USERS = ["agent", "admin", "1001", "root", "nosuchuser"]


def _answers(port: int, method: str, user: str) -> Response | None:
    with Peer(port) as p:
        body = sdp(40000, "18", ("a=rtpmap:18 G729/8000",)) if method == "INVITE" else ""
        p.send(request(p, method, user=user, body=body))
        r = p.final(2)
        if r is not None and method == "INVITE":
            p.send(request(p, "ACK", user=user, call_id=r.header("Call-ID"), to_tag=to_tag(r),
                           from_tag=re.search(r"tag=(\w+)", r.header("From")).group(1)).replace("CSeq: 1 ACK", "CSeq: 1 ACK"))
        return r


@pytest.mark.parametrize("method", ["OPTIONS", "REGISTER", "INVITE"])
def test_answers_do_not_reveal_which_users_exist(edge_server, auth_server, method):
    for server in (edge_server, auth_server):
        shapes = {user: _shape(_answers(server.port, method, user)) for user in USERS}
        assert len(set(shapes.values())) == 1, shapes
        assert shapes["agent"][0] is not None


def test_invite_without_credentials_is_challenged(auth_server):
    with Peer(auth_server.port) as p:
        p.send(request(p, "INVITE", body=sdp(40000)))
        r = p.final()
    assert r.status == 401 and r.header("WWW-Authenticate").startswith('Digest realm="voicebox"'), r.raw
    assert sip_options(auth_server.port) == "SIP/2.0 200 OK", "OPTIONS need no credentials"


def test_invite_with_digest_credentials_is_answered(auth_server):
    # -auth_uri: sipp's digest uri is otherwise sip:HOST:PORT, not the Request-URI, and an answer
    # must name the request it is for (issue #17, item 2).
    proc = sipp("invite_digest_auth.xml", auth_server.port,
                extra=["-au", "alice", "-ap", "s3cret", "-s", "agent", "-auth_uri", f"agent@{HOST}:{auth_server.port}"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "call start" in auth_server.log_text()


def test_invite_with_wrong_password_is_refused(auth_server):
    before = auth_server.log_text().count("call start")
    proc = sipp("invite_digest_auth.xml", auth_server.port, timeout_s=8,
                extra=["-au", "alice", "-ap", "guess", "-s", "agent", "-auth_uri", f"agent@{HOST}:{auth_server.port}"])
    assert proc.returncode != 0, "a wrong password got a call through"
    assert auth_server.log_text().count("call start") == before


def test_allow_list_drops_everyone_else(tmp_path):
    """A server that allows only 192.0.2.0/24 gives 127.0.0.1 no answer at all, to anything."""
    port = free_port()
    cfg = tmp_path / "voicebox.toml"
    cfg.write_text('[sip]\nrtp_port = 45800\nallow_networks = ["192.0.2.0/24"]\n[metrics]\nenabled = false\n')
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicebox", "serve", "--config", str(cfg), "--sip-host", HOST, "--sip-port", str(port),
         "--data-dir", str(tmp_path / "data")],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 180
        while "listening on" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        for method in ("OPTIONS", "REGISTER", "INVITE"):
            assert _answers(port, method, "agent") is None, method
        assert "outside sip.allow_networks (first: 127.0.0.1)" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(20)


def test_tagged_invite_without_credentials_gets_no_call(auth_server):
    """A To tag does not skip the challenge: a dialog nobody holds is 481, never a call (issue #17)."""
    time.sleep(2.5)  # the source's bucket refills after the tests before
    before = auth_server.log_text().count("call start")
    with Peer(auth_server.port) as p:
        p.send(request(p, "INVITE", to_tag=new_tag(), body=sdp(40000)))
        r = p.final()
        assert r is not None and r.status == 481, r and r.raw
        # A flood of them is limited like untagged INVITEs: past the source's burst, 503.
        for _ in range(150):
            p.send(request(p, "INVITE", to_tag=new_tag(), body=sdp(40000)))
        statuses = [m.status for m in p.recv_all(2.0) if isinstance(m, Response)]
    assert set(statuses) <= {481, 503} and 503 in statuses, statuses
    assert auth_server.log_text().count("call start") == before
    time.sleep(2.5)
