"""The OPTIONS probe against a real UDP listener on loopback (a tiny fake UAS)."""

from __future__ import annotations

import socket
import threading

from voicebox.telephony.probe import free_port, sip_options


def test_probe_reads_the_status_line_and_the_request_is_well_formed():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as uas:
        uas.bind(("127.0.0.1", 0))
        port = uas.getsockname()[1]
        got: list[bytes] = []

        def answer() -> None:
            data, addr = uas.recvfrom(65535)
            got.append(data)
            uas.sendto(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", addr)

        t = threading.Thread(target=answer)
        t.start()
        assert sip_options("127.0.0.1", port) == "SIP/2.0 200 OK"
        t.join(2)
    request = got[0].decode()
    assert request.startswith(f"OPTIONS sip:agent@127.0.0.1:{port} SIP/2.0\r\n")
    for header in ("Via: SIP/2.0/UDP 127.0.0.1:", ";branch=z9hG4bK", "Call-ID: ", "CSeq: 1 OPTIONS", "Max-Forwards: 70"):
        assert header in request
    assert request.endswith("\r\n\r\n")


def test_probe_of_a_silent_port_is_none():
    assert sip_options("127.0.0.1", free_port(), timeout_s=0.3) is None


def test_free_port_is_free_for_udp_and_tcp():
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
        u.bind(("127.0.0.1", port))
        t.bind(("127.0.0.1", port))
