"""Sending an RFC 4475 torture message to a server under test, and ending what it starts.

The message is adapted in memory only as /work/shared/rfc4475/README.md allows: the top Via's
sent-by (and transport) point at our socket, SDP ``c=``/``m=`` lines at our RTP sink, and
Content-Length is fixed only where it matched the body before. Request-URI, header oddities and
the rest stay byte-exact.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from tests.e2e.rawsip import HOST, Peer, Request, Response, contact_uri, to_tag

_VIA_NAME = re.compile(rb"^(via|v)[ \t]*:", re.I)
_SENT_BY = re.compile(rb"(SIP[ \t\r\n]*/[ \t\r\n]*2\.0[ \t\r\n]*/[ \t\r\n]*)([A-Za-z0-9]+)([ \t\r\n]+)([^ \t\r\n;,]+)")
_CL = re.compile(rb"^(content-length|l)([ \t]*:[ \t]*)(\d+)", re.I | re.M)


def adapt(raw: bytes, my_port: int, rtp_port: int) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if raw.startswith(b"SIP/"):
        return raw  # a response: sent as it is (a UAS drops stray responses)
    lines = head.split(b"\r\n")
    for i, line in enumerate(lines):
        if _VIA_NAME.match(line):
            j = i + 1
            while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
                j += 1
            value = b"\r\n".join(lines[i:j])
            value = _SENT_BY.sub(lambda m: m.group(1) + b"UDP" + m.group(3) + f"{HOST}:{my_port}".encode(),
                                 value, count=1)
            lines[i:j] = value.split(b"\r\n")
            break
    head = b"\r\n".join(lines)
    m = _CL.search(head)
    matched = m is not None and int(m.group(3)) == len(body)
    body = re.sub(rb"(?m)^c=IN IP4 [^\r\n]+", f"c=IN IP4 {HOST}".encode(), body)
    body = re.sub(rb"(?m)^m=audio \d+", f"m=audio {rtp_port}".encode(), body)
    if matched:
        head = _CL.sub(lambda mm: mm.group(1) + mm.group(2) + str(len(body)).encode(), head, count=1)
    return head + sep + body


@dataclass
class Outcome:
    final: int | None  # the first final status, None when nothing final came back
    statuses: list[int]
    responses: list[Response]
    warning: str | None = None


def exchange(peer: Peer, data: bytes, window_s: float = 1.5) -> Outcome:
    """Send ``data``; collect answers; ACK and BYE any call it set up, so nothing is left behind.

    The ACK and BYE are ours to send: a torture INVITE's Contact names hosts on example.com, and
    the server must never be made to send anything there.
    """
    peer.send(data)
    msgs: list = []
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline and not any(isinstance(m, Response) and m.status >= 200 for m in msgs):
        msgs += peer.recv_all(0.1)
    responses = [m for m in msgs if isinstance(m, Response)]
    statuses = [r.status for r in responses]
    finals = [r for r in responses if r.status >= 200]
    for r in finals:
        method = (r.header("CSeq") or "0 X").split()[-1]
        if method == "INVITE":
            end_invite(peer, r)
            break
    for m in msgs:  # server-side requests (none expected): answer them so no transaction lingers
        if isinstance(m, Request):
            peer.send(_reply_200(m))
    return Outcome(finals[0].status if finals else None, statuses, responses,
                   finals[0].header("Warning") if finals else None)


def end_invite(peer: Peer, final: Response) -> None:
    """ACK a final answer to our INVITE, and BYE the call a 2xx set up."""
    _ack(peer, final)
    if 200 <= final.status < 300:
        _bye(peer, final)


def _in_dialog(peer: Peer, r: Response, method: str, cseq: int) -> str:
    target = contact_uri(r) or f"sip:agent@{HOST}:{peer.port}"
    return "\r\n".join([
        f"{method} {target} SIP/2.0",
        f"Via: SIP/2.0/UDP {HOST}:{peer.me};branch=z9hG4bK{method.lower()}{cseq}x{to_tag(r) or 'none'};rport",
        "Max-Forwards: 70",
        f"From: {r.header('From')}",
        f"To: {r.header('To')}",
        f"Call-ID: {r.header('Call-ID')}",
        f"CSeq: {cseq} {method}",
        "Content-Length: 0",
    ]) + "\r\n\r\n"


def _ack(peer: Peer, r: Response) -> None:
    cseq = int((r.header("CSeq") or "1").split()[0])
    peer.send(_in_dialog(peer, r, "ACK", cseq))


def _bye(peer: Peer, r: Response) -> None:
    cseq = int((r.header("CSeq") or "1").split()[0])
    peer.send(_in_dialog(peer, r, "BYE", cseq + 1))
    peer.recv_all(0.5)


def _reply_200(req: Request) -> str:
    keep = [f"{k}: {v}" for k, v in req.headers if k.lower() in ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")]
    return "SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
