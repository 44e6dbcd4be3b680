"""Ports checked before the models load: real sockets on loopback hold the ports taken."""

from __future__ import annotations

import socket

import pytest

from voicebox.config import SipTlsConfig, load_config
from voicebox.preflight import PortInUse, check_ports, free_rtp_pairs

HOST = "127.0.0.1"


def _held(kind: int, port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, kind)
    s.bind((HOST, port))
    if kind == socket.SOCK_STREAM:
        s.listen()
    return s


def _free_port() -> int:
    # A port free for UDP and TCP alike, let go at once.
    while True:
        with _held(socket.SOCK_STREAM) as t:
            port = t.getsockname()[1]
        try:
            with _held(socket.SOCK_DGRAM, port):
                return port
        except OSError:
            continue


def _free_rtp_range(width: int = 16) -> int:
    """An even first port with ``width`` UDP ports free after it."""
    for first in range(42000, 60000, 64):
        if free_rtp_pairs(HOST, first, width, width // 2) == width // 2:
            return first
    pytest.skip("no free UDP range on loopback")


def _cfg(**sets):
    overrides = {"sip.host": HOST, "sip.port": _free_port(), "sip.rtp_port": _free_rtp_range(),
                 "sip.rtp_port_range": 16, "metrics.port": _free_port()}
    overrides.update(sets)
    return load_config(None, overrides)


def test_free_ports_pass():
    check_ports(_cfg())


@pytest.mark.parametrize("kind, proto", [(socket.SOCK_DGRAM, "UDP"), (socket.SOCK_STREAM, "TCP")])
def test_a_taken_sip_port_names_the_setting(kind, proto):
    with _held(kind) as s:
        port = s.getsockname()[1]
        with pytest.raises(PortInUse) as e:
            check_ports(_cfg(**{"sip.port": port}))
    msg = str(e.value)
    assert msg.startswith("sip.port: ") and f"{HOST}:{port}/{proto} is in use" in msg
    assert "set sip.port to a free port" in msg and "\n" not in msg


def test_tcp_off_leaves_the_tcp_port_alone():
    with _held(socket.SOCK_STREAM) as s:
        port = s.getsockname()[1]
        try:
            with _held(socket.SOCK_DGRAM, port):
                pass
        except OSError:
            pytest.skip("the UDP port of the same number is taken too")
        check_ports(_cfg(**{"sip.port": port, "sip.tcp": False}))


def test_a_taken_metrics_port_names_metrics_port():
    with _held(socket.SOCK_STREAM) as s:
        port = s.getsockname()[1]
        with pytest.raises(PortInUse, match=r"^metrics\.port: .*set metrics\.port to a free port"):
            check_ports(_cfg(**{"metrics.port": port}))
        check_ports(_cfg(**{"metrics.port": port, "metrics.enabled": False}))


def test_metrics_port_zero_is_not_checked():
    check_ports(_cfg(**{"metrics.port": 0}))


def test_a_taken_tls_port_names_sip_tls_port():
    with _held(socket.SOCK_STREAM) as s:
        port = s.getsockname()[1]
        cfg = _cfg()
        # Only the port matters here: the certificate files a real [sip.tls] needs are not read.
        tls = SipTlsConfig.model_construct(port=port)
        cfg = cfg.model_copy(update={"sip": cfg.sip.model_copy(update={"tls": tls})})
        with pytest.raises(PortInUse, match=r"^sip\.tls\.port: .*/TCP is in use"):
            check_ports(cfg)


def test_an_address_not_on_this_machine_is_said_so():
    with pytest.raises(PortInUse, match=r"192\.0\.2\.1 is not an address of this machine"):
        check_ports(_cfg(**{"sip.host": "192.0.2.1"}))  # TEST-NET-1: never a local address


def test_an_rtp_range_with_too_few_free_pairs_names_the_range():
    first = _free_rtp_range()
    held = [_held(socket.SOCK_DGRAM, p) for p in range(first, first + 14)]  # 7 of 8 pairs taken
    try:
        check_ports(_cfg(**{"sip.rtp_port": first, "sip.max_calls": 1}))  # one pair is enough for one call
        with pytest.raises(PortInUse) as e:
            check_ports(_cfg(**{"sip.rtp_port": first, "sip.max_calls": 2}))
        assert str(e.value).startswith(f"sip.rtp_port: only 1 free RTP/RTCP port pairs in {HOST}:{first}-{first + 15}")
    finally:
        for s in held:
            s.close()


def test_a_pair_needs_both_ports():
    first = _free_rtp_range()
    held = [_held(socket.SOCK_DGRAM, p) for p in range(first + 1, first + 16, 2)]  # every RTCP port
    try:
        assert free_rtp_pairs(HOST, first, 16, 8) == 0
    finally:
        for s in held:
            s.close()
