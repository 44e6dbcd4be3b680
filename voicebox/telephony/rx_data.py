"""Where pjsip keeps a received request's bytes, source and dialog identifiers: ``pjsip_rx_data``.

pjsip has no accessor for a request's raw bytes or source address, so the guard reads them at
fixed offsets into the C struct. Those offsets belong to one build: pjsua2-python 2.15.1.post1
(pjproject 2.15.1, PJSIP_MAX_PKT_LEN 4000, x86-64), the version pyproject.toml pins. Another
wheel may move them, and reading at the wrong place would let every request through unguarded
(issue #17, item 7). So the guard refuses to start unless this exact version is installed
(``check_version``) and the offsets read back a known packet it sent itself (``RxReader.verify``).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
from ctypes import Structure, c_char_p, c_int, c_ssize_t, c_void_p
from dataclasses import dataclass

DISTRIBUTION = "pjsua2-python"
PJSUA2_VERSION = "2.15.1.post1"  # the wheel the offsets below were taken from

# Inside pjsip headers and messages (PJSIP_DECL_HDR_MEMBER is 64 bytes on x86-64).
_CID_ID = 64  # pjsip_cid_hdr.id
_FROMTO_TAG = 72  # pjsip_fromto_hdr.tag
_MSG_METHOD = 8  # pjsip_msg.line.req.method
_METHOD_NAME = 8  # pjsip_method.name
PJSIP_OPTIONS_METHOD = 5  # pjsip_method_e


class PjStr(Structure):
    _fields_ = [("ptr", c_char_p), ("slen", c_ssize_t)]

    @classmethod
    def of(cls, text: str) -> "PjStr":
        data = text.encode()
        return cls(data, len(data))


@dataclass(frozen=True)
class Layout:
    """Offsets into ``pjsip_rx_data`` (see pjsip/sip_transport.h)."""

    packet: int = 320  # pkt_info.packet: a UDP datagram is received here
    src_name: int = 4368  # pkt_info.src_name, NUL-terminated text
    src_port: int = 4416  # pkt_info.src_port
    msg_buf: int = 4424  # msg_info.msg_buf; len, msg, info, cid, from, to follow, 8 bytes apart

    @property
    def msg_len(self) -> int:
        return self.msg_buf + 8

    @property
    def msg(self) -> int:
        return self.msg_buf + 16

    @property
    def cid(self) -> int:
        return self.msg_buf + 32

    @property
    def from_hdr(self) -> int:
        return self.msg_buf + 40

    @property
    def to_hdr(self) -> int:
        return self.msg_buf + 48


LAYOUT = Layout()


class GuardUnavailable(RuntimeError):
    """The guard cannot read this pjsua2 build's requests: voicebox must not answer calls."""


def installed_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "(unknown: no package metadata)"


def check_version(installed: str | None = None, expected: str | None = None) -> None:
    installed = installed_version() if installed is None else installed
    expected = PJSUA2_VERSION if expected is None else expected
    if installed != expected:
        raise GuardUnavailable(
            f"{DISTRIBUTION} {installed} is installed, but the SIP guard reads pjsip_rx_data at the offsets of "
            f"{expected}: install {DISTRIBUTION}=={expected}")


@dataclass(frozen=True)
class Probe:
    """The known packet of the self-test and what the offsets must read back from it."""

    data: bytes
    src_host: str
    src_port: int
    call_id: bytes
    from_tag: bytes
    to_tag: bytes


class RxReader:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def raw(self, rdata: int) -> bytes:
        buf = c_void_p.from_address(rdata + self.layout.msg_buf).value
        return ctypes.string_at(buf, c_int.from_address(rdata + self.layout.msg_len).value)

    def source(self, rdata: int) -> str:
        return ctypes.string_at(rdata + self.layout.src_name).decode()

    def _hdr(self, rdata: int, off: int) -> int:
        return c_void_p.from_address(rdata + off).value or 0

    def call_id(self, rdata: int) -> int:
        """Address of the parsed Call-ID (a pj_str_t), as pjsip's dialog layer reads it."""
        return self._hdr(rdata, self.layout.cid) + _CID_ID

    def from_tag(self, rdata: int) -> int:
        return self._hdr(rdata, self.layout.from_hdr) + _FROMTO_TAG

    def to_tag(self, rdata: int) -> int:
        return self._hdr(rdata, self.layout.to_hdr) + _FROMTO_TAG

    def method(self, rdata: int) -> int:
        """Address of the request line's pjsip_method."""
        return self._hdr(rdata, self.layout.msg) + _MSG_METHOD

    def verify(self, rdata: int, probe: Probe) -> str | None:
        """None when every offset reads back ``probe``; else what did not.

        The checks go from what cannot crash (a pointer compared, bytes inside rdata) to what
        dereferences pointers, so a wrong offset is reported rather than followed.
        """
        lo = self.layout
        packet = rdata + lo.packet
        if c_void_p.from_address(rdata + lo.msg_buf).value != packet:
            return f"msg_info.msg_buf (+{lo.msg_buf}) does not point at pkt_info.packet (+{lo.packet})"
        if c_int.from_address(rdata + lo.msg_len).value != len(probe.data):
            return f"msg_info.len (+{lo.msg_len}) is not the packet's length"
        if ctypes.string_at(packet, len(probe.data)) != probe.data:
            return f"pkt_info.packet (+{lo.packet}) does not hold the packet sent"
        if ctypes.string_at(rdata + lo.src_name, 64).split(b"\0")[0] != probe.src_host.encode():
            return f"pkt_info.src_name (+{lo.src_name}) is not the sender's address"
        if c_int.from_address(rdata + lo.src_port).value != probe.src_port:
            return f"pkt_info.src_port (+{lo.src_port}) is not the sender's port"
        method = self.method(rdata)
        # A known method's name is pjsip's own constant, not a pointer into the packet.
        if c_int.from_address(method).value != PJSIP_OPTIONS_METHOD or \
                PjStr.from_address(method + _METHOD_NAME).slen != len(b"OPTIONS"):
            return f"msg_info.msg (+{lo.msg}) is not the request's message"
        for what, addr, want in (("Call-ID", self.call_id(rdata), probe.call_id),
                                 ("From tag", self.from_tag(rdata), probe.from_tag),
                                 ("To tag", self.to_tag(rdata), probe.to_tag)):
            # pjsua may hand the guard a clone of rdata, whose headers are copies in its pool:
            # the strings are compared, not where they lie.
            ptr, slen = c_void_p.from_address(addr).value, c_ssize_t.from_address(addr + 8).value
            if slen != len(want) or not ptr or ctypes.string_at(ptr, slen) != want:
                return f"the request's {what} is not where msg_info says"
        return None


def probe_packet(src: tuple[str, int], dst: tuple[str, int], cseq: int, tag: str) -> Probe:
    """A tagged OPTIONS from ``src``: every field the guard reads has a value only it can have."""
    call_id, from_tag, to_tag = f"selftest-{tag}", f"f{tag}", f"t{tag}"
    host, port = src
    text = (f"OPTIONS sip:selftest@{dst[0]}:{dst[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{tag}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:selftest@{host}>;tag={from_tag}\r\n"
            f"To: <sip:selftest@{dst[0]}>;tag={to_tag}\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n")
    return Probe(text.encode(), host, port, call_id.encode(), from_tag.encode(), to_tag.encode())
