"""SIP health probe: one OPTIONS over UDP, the answer's status line back.

voicebox answers OPTIONS with 200 only once its models are loaded, so this is how tests, the
benchmark and monitors know it is ready.
"""

from __future__ import annotations

import socket
import uuid


def sip_options(host: str, port: int, timeout_s: float = 1.0) -> str | None:
    """Send one OPTIONS to ``host:port``; the status line of the answer, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        s.settimeout(timeout_s)
        me = s.getsockname()[1]
        tag = uuid.uuid4().hex
        msg = (
            f"OPTIONS sip:agent@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{me};branch=z9hG4bK{tag};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{host}>;tag={tag[:8]}\r\n"
            f"To: <sip:agent@{host}>\r\n"
            f"Call-ID: {tag}@{host}\r\n"
            "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        s.sendto(msg.encode(), (host, port))
        try:
            return s.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
        except OSError:  # timeout, or ICMP port unreachable while nothing listens yet
            return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP (SIP listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")
