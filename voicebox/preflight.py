"""Checks the ports ``voicebox serve`` will bind, before the models take seconds to load.

A port that is taken (a second ``voicebox serve`` on the same box, a softphone on 5060, another
exporter on the metrics port) used to be found only after the models had loaded, as a Python
traceback or an abort inside pjlib. Here each port is bound once and let go, and a conflict is
one line naming the setting to change (the caller exits 2). Binding is the only honest test of
"free": the port can still be taken between this check and the real bind, so the real binds are
handled as cleanly (``cli._serve``).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from voicebox.config import Config


class PortInUse(Exception):
    """One line for the operator: which setting, which address, what to do."""


@dataclass(frozen=True)
class _Want:
    setting: str  # what the operator changes, as `--set` and the TOML spell it
    host: str
    port: int
    kind: int  # socket.SOCK_DGRAM or socket.SOCK_STREAM


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _try_bind(host: str, port: int, kind: int) -> OSError | None:
    with socket.socket(_family(host), kind) as s:
        if kind == socket.SOCK_STREAM:
            # pjsip and prometheus_client set it too: a port in TIME_WAIT is free to them, a
            # listening one is not.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            return e
    return None


def _why(e: OSError, want: _Want) -> str:
    proto = "UDP" if want.kind == socket.SOCK_DGRAM else "TCP"
    where = f"{want.host}:{want.port}/{proto}"
    if e.errno == errno.EADDRINUSE:
        return f"{where} is in use by another program (another voicebox?)"
    if e.errno == errno.EADDRNOTAVAIL:
        return f"{want.host} is not an address of this machine"
    if e.errno == errno.EACCES:
        return f"{where} needs privileges this user does not have"
    return f"{where} cannot be bound: {e.strerror or e}"


def _fixed_ports(cfg: Config) -> list[_Want]:
    host = cfg.sip.host
    wants = [_Want("sip.port", host, cfg.sip.port, socket.SOCK_DGRAM)]
    if cfg.sip.tcp:
        wants.append(_Want("sip.port", host, cfg.sip.port, socket.SOCK_STREAM))
    if cfg.sip.tls is not None:
        wants.append(_Want("sip.tls.port", host, cfg.sip.tls.port, socket.SOCK_STREAM))
    if cfg.metrics.enabled and cfg.metrics.port:
        wants.append(_Want("metrics.port", cfg.metrics.host, cfg.metrics.port, socket.SOCK_STREAM))
    return wants


def free_rtp_pairs(host: str, first: int, count: int, enough: int) -> int:
    """RTP/RTCP port pairs (even, odd) in ``first .. first+count`` that bind now; stops at ``enough``."""
    pairs = 0
    start = first + (first % 2)
    for port in range(start, first + count - 1, 2):
        if _try_bind(host, port, socket.SOCK_DGRAM) is None and _try_bind(host, port + 1, socket.SOCK_DGRAM) is None:
            pairs += 1
            if pairs >= enough:
                break
    return pairs


def check_ports(cfg: Config) -> None:
    """PortInUse naming the first setting whose port cannot be bound; returns quietly otherwise."""
    for want in _fixed_ports(cfg):
        err = _try_bind(want.host, want.port, want.kind)
        if err is not None:
            raise PortInUse(f"{want.setting}: {_why(err, want)}; set {want.setting} to a free port")
    need = cfg.sip.max_calls
    got = free_rtp_pairs(cfg.sip.host, cfg.sip.rtp_port, cfg.sip.rtp_port_range, need)
    if got < need:
        last = cfg.sip.rtp_port + cfg.sip.rtp_port_range - 1
        raise PortInUse(
            f"sip.rtp_port: only {got} free RTP/RTCP port pairs in {cfg.sip.host}:{cfg.sip.rtp_port}-{last}/UDP "
            f"for sip.max_calls = {need} calls; set sip.rtp_port (or widen sip.rtp_port_range) to a free range")
