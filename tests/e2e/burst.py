"""A burst of INVITEs, each CANCELled at once, from one or many source addresses (issue #17).

Every INVITE is followed by its CANCEL in the same instant; whatever final answer the INVITE gets
is acknowledged, and a call that was answered anyway (the 200 beat the CANCEL) is hung up with
BYE at once. Like any UA over UDP, it sends an INVITE or BYE that got no answer again (RFC 3261 timers A and
E: 0.5 s, doubling). One UDP socket per source address, one thread, no waiting between calls: this is
what a caller on the internet can do with a few dozen lines, and what used to abort the server
(pjlib's ioqueue out of slots for RTP sockets).

Run by hand against a local `voicebox serve`::

    python -m tests.e2e.burst 5060 --sources 20 --count 300 --interval-ms 10
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import selectors
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from tests.e2e.rawsip import Request, Response, parse, sdp

HOST = "127.0.0.1"
T1_S = 0.5
MAX_RESENDS = 6  # 0.5 + 1 + 2 + 4 + 4 + 4 s: a UA would go on to 32 s, a test need not


@dataclass
class _Call:
    src: int  # index of the source socket
    call_id: str
    from_tag: str
    branch: str
    invite: bytes = b""
    sent_at: float = 0.0
    resent: int = 0
    heard: bool = False  # any answer to the INVITE, provisional included: no more retransmissions
    final: int = 0
    to_tag: str = ""
    bye: bytes = b""
    bye_sent_at: float = 0.0
    bye_answered: int = 0


@dataclass
class BurstResult:
    sent: int = 0
    finals: Counter = field(default_factory=Counter)  # INVITE final status -> count
    retry_after: int = 0  # 503s that carried Retry-After
    answered: int = 0
    byes_ok: int = 0
    requests_from_server: int = 0

    @property
    def unanswered(self) -> int:
        return self.sent - sum(self.finals.values())

    def summary(self) -> dict:
        return {"sent": self.sent, "finals": dict(self.finals), "retry_after": self.retry_after,
                "answered": self.answered, "byes_ok": self.byes_ok, "unanswered": self.unanswered,
                "requests_from_server": self.requests_from_server}


def _tag() -> str:
    return uuid.uuid4().hex[:10]


class Burst:
    def __init__(self, port: int, sources: list[str], media_port: int) -> None:
        self.port = port
        self.sources = sources
        self.media_port = media_port  # every offer points here: a sink the caller never reads
        self.socks: list[socket.socket] = []
        for ip in sources:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            s.bind((ip, 0))
            s.setblocking(False)
            self.socks.append(s)
        self.calls: dict[str, _Call] = {}
        self.result = BurstResult()
        self._due: list[tuple[float, int, str, _Call]] = []  # (when, seq, "INVITE" or "BYE", call)
        self._seq = itertools.count()
        self.sel = selectors.DefaultSelector()
        for i, s in enumerate(self.socks):
            self.sel.register(s, selectors.EVENT_READ, i)

    def close(self) -> None:
        self.sel.close()
        for s in self.socks:
            s.close()

    # -- messages ----------------------------------------------------------------------------
    def _msg(self, c: _Call, method: str, cseq: int, branch: str, body: str = "") -> bytes:
        ip = self.sources[c.src]
        me = self.socks[c.src].getsockname()[1]
        lines = [
            f"{method} sip:agent@{HOST}:{self.port} SIP/2.0",
            f"Via: SIP/2.0/UDP {ip}:{me};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:burst@{ip}>;tag={c.from_tag}",
            f"To: <sip:agent@{HOST}>" + (f";tag={c.to_tag}" if c.to_tag else ""),
            f"Call-ID: {c.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:burst@{ip}:{me}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def _send(self, c: _Call, data: bytes) -> None:
        try:
            self.socks[c.src].sendto(data, (HOST, self.port))
        except (BlockingIOError, ConnectionRefusedError):
            pass  # a full socket buffer or an ICMP error from a dying server: the count shows it

    def start_call(self, src: int) -> None:
        c = _Call(src, f"burst-{_tag()}@{self.sources[src]}", _tag(), "z9hG4bK" + _tag())
        self.calls[c.call_id] = c
        c.invite, c.sent_at = self._msg(c, "INVITE", 1, c.branch, sdp(self.media_port)), time.monotonic()
        self._send(c, c.invite)
        self._later(c.sent_at + T1_S, "INVITE", c)
        self._send(c, self._msg(c, "CANCEL", 1, c.branch))  # a CANCEL names its INVITE's branch
        self.result.sent += 1

    def _later(self, when: float, what: str, c: _Call) -> None:
        heapq.heappush(self._due, (when, next(self._seq), what, c))

    def _bye(self, c: _Call, now: float) -> None:
        c.bye_sent_at = now
        c.bye = self._msg(c, "BYE", 2, "z9hG4bK" + _tag())
        self._send(c, c.bye)
        self._later(now + T1_S, "BYE", c)

    def _retransmit(self, now: float) -> None:
        """Timers A and E: what got no answer yet goes again, 0.5 s, 1 s, 2 s, then every 4 s."""
        while self._due and self._due[0][0] <= now:
            _, _, what, c = heapq.heappop(self._due)
            waiting = not c.heard if what == "INVITE" else not c.bye_answered
            if not waiting or c.resent >= MAX_RESENDS:
                continue
            c.resent += 1
            self._send(c, c.invite if what == "INVITE" else c.bye)
            self._later(now + min(T1_S * 2 ** c.resent, 4.0), what, c)

    def waiting(self) -> bool:
        """Something is still to be sent again, or an INVITE still has no final answer."""
        return bool(self._due) or any(c.final == 0 for c in self.calls.values())

    def _on_response(self, c: _Call, r: Response, now: float) -> None:
        cseq = (r.header("CSeq") or "").split()
        method = cseq[-1] if cseq else ""
        if method == "BYE" and r.status >= 200:
            if not c.bye_answered:
                self.result.byes_ok += r.status == 200
            c.bye_answered = r.status
            return
        if method != "INVITE":
            return  # the CANCEL's own answer (200, or 481 once the INVITE is done)
        c.heard = True
        if r.status < 200:
            return
        first = not c.final
        if first:
            c.final = r.status
            self.result.finals[r.status] += 1
            if r.status == 503 and r.header("Retry-After"):
                self.result.retry_after += 1
        m = (r.header("To") or "").split("tag=")
        c.to_tag = m[1].split(";")[0].strip() if len(m) > 1 else ""
        if r.status >= 300:  # non-2xx: the ACK belongs to the INVITE transaction (its branch)
            self._send(c, self._msg(c, "ACK", 1, c.branch))
            return
        # 2xx (or its retransmission): a new ACK, then hang up once.
        self._send(c, self._msg(c, "ACK", 1, "z9hG4bK" + _tag()))
        if first:
            self.result.answered += 1
            c.resent = 0  # the BYE's own retransmissions from here
            self._bye(c, now)

    def _on_request(self, src: int, q: Request) -> None:
        """The server's own requests (a BYE for a call it timed out): 200, so it can forget them."""
        self.result.requests_from_server += 1
        if q.method == "ACK":
            return
        keep = [f"{k}: {v}" for k, v in q.headers if k.lower() in ("via", "from", "to", "call-id", "cseq")]
        data = "\r\n".join(["SIP/2.0 200 OK", *keep, "Content-Length: 0"]) + "\r\n\r\n"
        try:
            self.socks[src].sendto(data.encode(), (HOST, self.port))
        except (BlockingIOError, ConnectionRefusedError):
            pass

    def poll(self, timeout_s: float) -> None:
        for key, _ in self.sel.select(max(0.0, timeout_s)):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            while True:
                try:
                    data = sock.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                msg = parse(data)
                now = time.monotonic()
                if isinstance(msg, Response):
                    c = self.calls.get(msg.header("Call-ID") or "")
                    if c is not None:
                        self._on_response(c, msg, now)
                elif isinstance(msg, Request):
                    self._on_request(key.data, msg)

    def run(self, count: int, interval_s: float, settle_s: float) -> BurstResult:
        """``count`` INVITE+CANCEL pairs from every source, ``interval_s`` apart; then answer what comes
        until every INVITE has its final answer (or has been sent MAX_RESENDS times), ``settle_s`` at most."""
        t0 = time.monotonic()
        for k in range(count):
            for i in range(len(self.socks)):
                self.start_call(i)
            while (left := t0 + (k + 1) * interval_s - time.monotonic()) > 0:
                self.poll(left)
                self._retransmit(time.monotonic())
        end = time.monotonic() + settle_s
        next_check = 0.0
        while (now := time.monotonic()) < end:
            self._retransmit(now)
            self.poll(min(0.1, end - now))
            if now >= next_check:
                next_check = now + 0.5
                if not self.waiting():
                    break
        return self.result


def invite_cancel_burst(port: int, sources: list[str], count: int = 300, interval_s: float = 0.01,
                        settle_s: float = 20.0) -> BurstResult:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((HOST, 0))
    burst = Burst(port, sources, sink.getsockname()[1])
    try:
        return burst.run(count, interval_s, settle_s)
    finally:
        burst.close()
        sink.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("port", type=int)
    p.add_argument("--sources", type=int, default=1, help="source addresses 127.0.0.1 (1) or 127.0.0.2.. (more)")
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--interval-ms", type=float, default=10)
    p.add_argument("--settle-s", type=float, default=20)
    a = p.parse_args()
    sources = [HOST] if a.sources == 1 else [f"127.0.0.{2 + i}" for i in range(a.sources)]
    res = invite_cancel_burst(a.port, sources, a.count, a.interval_ms / 1000, a.settle_s)
    print(json.dumps(res.summary()))


if __name__ == "__main__":
    main()
