"""Raw SIP over UDP for the edge tests: hand-built requests, byte-exact torture messages.

pjsua2 and sipp would refuse to send most of what these tests need (broken headers, missing
SDP, requests for dialogs that do not exist), so the tests speak SIP from a plain socket.
"""

from __future__ import annotations

import re
import socket
import time
import uuid
from dataclasses import dataclass, field

HOST = "127.0.0.1"


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: str
    raw: str

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_names(self) -> list[str]:
        return [k.lower() for k, _ in self.headers]


@dataclass
class Request:
    method: str
    uri: str
    headers: list[tuple[str, str]]
    body: str
    raw: str

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def parse(data: bytes) -> Response | Request | None:
    text = data.decode("utf-8", errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    first = lines[0]
    if first.startswith("SIP/2.0 "):
        parts = first.split(" ", 2)
        return Response(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body, text)
    parts = first.split(" ")
    if len(parts) >= 3:
        return Request(parts[0], parts[1], headers, body, text)
    return None


@dataclass
class Peer:
    """One UDP socket on loopback speaking to the server at ``port``."""

    port: int
    sock: socket.socket = field(init=False)
    me: int = field(init=False)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.me = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Peer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes | str) -> None:
        self.sock.sendto(data.encode() if isinstance(data, str) else data, (HOST, self.port))

    def recv_all(self, window_s: float) -> list[Response | Request]:
        """Everything that arrives within ``window_s``."""
        out: list[Response | Request] = []
        deadline = time.monotonic() + window_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except (TimeoutError, socket.timeout):
                return out
            except ConnectionRefusedError:
                continue
            msg = parse(data)
            if msg is not None:
                out.append(msg)

    def final(self, timeout_s: float = 3.0, cseq_method: str | None = None) -> Response | None:
        """The first final (>= 200) response, optionally for one CSeq method."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in self.recv_all(min(0.2, deadline - time.monotonic())):
                if isinstance(msg, Response) and msg.status >= 200:
                    if cseq_method is None or (msg.header("CSeq") or "").split()[-1] == cseq_method:
                        return msg
        return None


def new_tag() -> str:
    return uuid.uuid4().hex[:10]


def request(peer: Peer, method: str, *, user: str = "agent", call_id: str | None = None, cseq: int = 1,
            from_tag: str | None = None, to_tag: str = "", branch: str | None = None, body: str = "",
            extra: list[str] | None = None, uri: str | None = None) -> str:
    """A well-formed request from ``peer`` to the server."""
    call_id = call_id or f"{new_tag()}@{HOST}"
    from_tag = from_tag or new_tag()
    branch = branch or "z9hG4bK" + new_tag()
    uri = uri or f"sip:{user}@{HOST}:{peer.port}"
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {HOST}:{peer.me};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:tester@{HOST}>;tag={from_tag}",
        f"To: <sip:{user}@{HOST}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:tester@{HOST}:{peer.me}>",
        *(extra or []),
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def sdp(rtp_port: int, payloads: str = "0", attrs: tuple[str, ...] = ("a=rtpmap:0 PCMU/8000",),
        direction: str = "sendrecv") -> str:
    lines = ["v=0", f"o=tester 1 {int(time.time())} IN IP4 {HOST}", "s=-", f"c=IN IP4 {HOST}", "t=0 0",
             f"m=audio {rtp_port} RTP/AVP {payloads}", *attrs, f"a={direction}"]
    return "\r\n".join(lines) + "\r\n"


def to_tag(resp: Response) -> str:
    m = re.search(r";\s*tag=([^;>\s]+)", resp.header("To") or "")
    return m.group(1) if m else ""


def contact_uri(resp: Response) -> str:
    m = re.search(r"<([^>]+)>", resp.header("Contact") or "")
    return m.group(1) if m else ""


def rtp_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    return s


def count_rtp(sock: socket.socket, window_s: float) -> tuple[int, set[int]]:
    """RTP packets arriving on ``sock`` in ``window_s``, and their payload types."""
    n, types = 0, set()
    deadline = time.monotonic() + window_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(2048)
        except (TimeoutError, socket.timeout):
            break
        if len(data) >= 12 and data[0] >> 6 == 2:
            n += 1
            types.add(data[1] & 0x7F)
    return n, types


def send_rtp_silence(sock: socket.socket, port: int, packets: int, seq0: int = 0, ssrc: int = 0x1234) -> None:
    """PCMU silence, so the server's RTP timeout does not end the call under test."""
    for i in range(packets):
        hdr = bytes([0x80, 0]) + ((seq0 + i) & 0xFFFF).to_bytes(2, "big") + ((seq0 + i) * 160).to_bytes(4, "big")
        sock.sendto(hdr + ssrc.to_bytes(4, "big") + b"\xff" * 160, (HOST, port))
