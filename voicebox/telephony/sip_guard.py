"""The SIP edge's gate: a pjsip module that sees every request before pjsua does.

pjsua2 hands Python only INVITEs (onIncomingCall); OPTIONS, REGISTER, CANCEL floods and unknown
methods never reach it, and pjsip silently drops requests no module handles (REGISTER, unknown
methods). So two small pjsip modules are registered through ctypes on the library pjsua2 already
loaded:

* ``voicebox-guard`` (priority 15, before the transaction layer): drops requests from sources
  outside ``sip.allow_networks``; rate-limits out-of-dialog requests per source (INVITE gets
  503 + Retry-After, the rest is dropped so a flood gets nothing to amplify); refuses what
  sip_lint finds wrong; asks for digest credentials on INVITE when configured; answers
  out-of-dialog OPTIONS itself, the same for every user part, with an ``X-Voicebox-Load`` hint.
  A new INVITE (not a retransmission, which its transaction absorbs) must then fit its source's
  INVITE bucket, a free pjsua call slot and the media budget (``media_budget.py``), or it gets
  503 + Retry-After here: pjsua opens a call's RTP sockets as soon as an INVITE reaches it,
  refused or not, and answers a bare 486 when its call slots (4 in the wheel) are all taken.
* ``voicebox-fallback`` (priority 100, after every pjsua module): answers what nobody handled,
  405 for REGISTER and 501 for other methods, instead of pjsip's silence.

Both run on the SIP thread (inside ``libHandleEvents``), do O(1) work and never block.

pjsip's ``pjsip_rx_data`` is a C struct with no accessor for the raw message or source address,
so their offsets are found once, on the first request, by looking for the pointer to the packet
buffer and checking what it implies (see ``_calibrate``); if that fails the guard lets every
request through, unless allow-list or digest auth is configured, in which case it drops them
(fail closed) and says so in the log.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import time
from ctypes import POINTER, Structure, byref, c_char_p, c_int, c_ssize_t, c_void_p
from typing import Callable

import pjsua2

from voicebox.telephony import sip_lint
from voicebox.telephony.admission import QUIET_S, Admission
from voicebox.telephony.digest import DigestAuth

log = logging.getLogger("voicebox.sip.guard")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, MESSAGE, PRACK"
LOAD_HEADER = "X-Voicebox-Load"
_PKT_MIN_OFFSET, _PKT_MAX_OFFSET = 256, 512  # where pjsip_rx_data.pkt_info.packet may start (320 in 2.15)
_MAX_SCAN = 1 << 17
PJSIP_ROLE_UAS = 1


class PjStr(Structure):
    _fields_ = [("ptr", c_char_p), ("slen", c_ssize_t)]

    @classmethod
    def of(cls, text: str) -> "PjStr":
        data = text.encode()
        return cls(data, len(data))


class PjsipHdr(Structure):  # PJSIP_DECL_HDR_MEMBER: a list head for respond_stateless
    _fields_ = [("prev", c_void_p), ("next", c_void_p), ("type", c_int), ("name", PjStr), ("sname", PjStr),
                ("vptr", c_void_p)]


_RX = ctypes.CFUNCTYPE(c_int, c_void_p)


class PjsipModule(Structure):
    _fields_ = [("prev", c_void_p), ("next", c_void_p), ("name", PjStr), ("id", c_int), ("priority", c_int),
                ("load", c_void_p), ("start", c_void_p), ("stop", c_void_p), ("unload", c_void_p),
                ("on_rx_request", _RX), ("on_rx_response", _RX), ("on_tx_request", c_void_p),
                ("on_tx_response", c_void_p), ("on_tsx_state", c_void_p)]


def _lib() -> ctypes.CDLL:
    lib = ctypes.CDLL(pjsua2._pjsua2.__file__)  # the copy already loaded: same handle, same globals
    lib.pjsua_get_pjsip_endpt.restype = c_void_p
    lib.pjsip_endpt_register_module.argtypes = [c_void_p, c_void_p]
    lib.pjsip_rx_data_get_info.restype = c_char_p
    lib.pjsip_rx_data_get_info.argtypes = [c_void_p]
    lib.pjsip_generic_string_hdr_create.restype = c_void_p
    lib.pjsip_generic_string_hdr_create.argtypes = [c_void_p, POINTER(PjStr), POINTER(PjStr)]
    lib.pj_list_insert_before.argtypes = [c_void_p, c_void_p]
    lib.pjsip_endpt_respond_stateless.argtypes = [c_void_p, c_void_p, c_int, POINTER(PjStr), c_void_p, c_void_p]
    lib.pjsip_get_invite_method.restype = c_void_p
    lib.pjsua_call_get_count.restype = ctypes.c_uint
    lib.pjsua_call_get_max_count.restype = ctypes.c_uint
    lib.pjsip_tsx_create_key.argtypes = [c_void_p, POINTER(PjStr), c_int, c_void_p, c_void_p]
    lib.pjsip_tsx_layer_find_tsx2.restype = c_void_p
    lib.pjsip_tsx_layer_find_tsx2.argtypes = [POINTER(PjStr), c_int]
    return lib


class SipGuard:
    def __init__(self, admission: Admission, auth: DigestAuth | None, answer_options: Callable[[], bool],
                 retry_after_s: int) -> None:
        self.admission = admission
        self.auth = auth
        self.answer_options = answer_options  # false while draining: pjsua's own 480 then goes out
        self.retry_after_s = retry_after_s
        self.fail_closed = bool(admission.networks.networks) or auth is not None
        self._lib = _lib()
        self._endpt: int | None = None
        self._msg_off: int | None = None  # offset of msg_info.msg_buf in pjsip_rx_data
        self._broken = False
        self.counts: dict[str, int] = {}
        # pjsip keeps pointers to these until libDestroy: they live as long as the guard.
        self._cb_guard = _RX(self._on_guard)
        self._cb_fallback = _RX(self._on_fallback)
        self._cb_response = _RX(self._on_response)
        self._invite_method = self._lib.pjsip_get_invite_method()
        self._budget_full_at = float("-inf")  # last log line about a full media budget
        self._mods = [
            PjsipModule(name=PjStr.of("voicebox-guard"), id=-1, priority=15,
                        on_rx_request=self._cb_guard, on_rx_response=self._cb_response),
            PjsipModule(name=PjStr.of("voicebox-fallback"), id=-1, priority=100,
                        on_rx_request=self._cb_fallback, on_rx_response=_RX()),
        ]

    def install(self) -> None:
        """Register both modules; call on the SIP thread after ``libStart``."""
        self._endpt = self._lib.pjsua_get_pjsip_endpt()
        for mod in self._mods:
            status = self._lib.pjsip_endpt_register_module(self._endpt, byref(mod))
            if status != 0:
                raise RuntimeError(f"pjsip_endpt_register_module({mod.name.ptr!r}) failed: {status}")

    def pjsua_max_calls(self) -> int:
        """pjsua's call slots: what was asked for, clamped to the build's PJSUA_MAX_CALLS."""
        return int(self._lib.pjsua_call_get_max_count())

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # -- rdata access ----------------------------------------------------------------------
    def _calibrate(self, rdata: int) -> bool:
        info = self._lib.pjsip_rx_data_get_info(rdata) or b""
        words = info.split()
        if len(words) < 3 or words[0] != b"Request":
            return False
        method = words[2].split(b"/")[0] + b" "
        # pkt_info.packet follows tp_info (whose ioqueue key differs between builds) and a timestamp.
        starts = [o for o in range(_PKT_MIN_OFFSET, _PKT_MAX_OFFSET, 8) if ctypes.string_at(rdata + o, len(method)) == method]
        if not starts:
            return False
        packet = rdata + starts[0]
        for off in range(starts[0] + 64, starts[0] + _MAX_SCAN, 8):
            if c_void_p.from_address(rdata + off).value == packet:
                src = ctypes.string_at(rdata + off - 56)
                port = c_int.from_address(rdata + off - 8).value
                length = c_int.from_address(rdata + off + 8).value
                try:
                    ipaddress.ip_address(src.decode())
                except ValueError:
                    return False
                if not (0 < port < 65536 and 0 < length <= off):
                    return False
                self._msg_off = off
                log.info("guard ready (pjsip_rx_data: msg_buf at +%d)", off)
                return True
        return False

    def _read(self, rdata: int) -> tuple[bytes, str]:
        off = self._msg_off
        assert off is not None
        buf = c_void_p.from_address(rdata + off).value
        length = c_int.from_address(rdata + off + 8).value
        src = ctypes.string_at(rdata + off - 56).decode()
        return ctypes.string_at(buf, length), src

    def _respond(self, rdata: int, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
        pool = c_void_p.from_address(rdata).value  # tp_info.pool: lives while pjsip handles rdata
        head = PjsipHdr()
        head.prev = head.next = ctypes.addressof(head)
        for name, value in headers:
            hdr = self._lib.pjsip_generic_string_hdr_create(pool, byref(PjStr.of(name)), byref(PjStr.of(value)))
            self._lib.pj_list_insert_before(ctypes.addressof(head), hdr)
        self._lib.pjsip_endpt_respond_stateless(self._endpt, rdata, status, byref(PjStr.of(reason)),
                                                ctypes.addressof(head), None)

    def _retransmission(self, rdata: int) -> bool:
        """An INVITE whose server transaction exists already (pjsip absorbs it; it costs nothing)."""
        pool = c_void_p.from_address(rdata).value
        key = PjStr()
        if self._lib.pjsip_tsx_create_key(pool, byref(key), PJSIP_ROLE_UAS, self._invite_method, rdata) != 0:
            return False
        return bool(self._lib.pjsip_tsx_layer_find_tsx2(byref(key), 0))

    def _refuse_invite(self, rdata: int, why: str) -> bool:
        self._count(why)
        self._respond(rdata, 503, "Service Unavailable", [("Retry-After", str(self.retry_after_s))])
        return True

    def _admit_invite(self, rdata: int, src: str) -> bool:
        """True when a new INVITE was refused here, before pjsua opened any media for it."""
        adm = self.admission
        if self._retransmission(rdata):
            return False
        limit = adm.invites.check(src)
        if limit != "ok":
            if limit == "limited_first":
                log.warning("source INVITE rate-limited src=%s (%.0f INVITEs/s, burst %d): 503",
                            src, adm.invites.rate_per_s, adm.invites.burst)
            return self._refuse_invite(rdata, "invite_rate_limited")
        # pjsua's own count is exact here: it changes only on this thread, inside these callbacks.
        if self._lib.pjsua_call_get_count() >= self.pjsua_max_calls():
            return self._refuse_invite(rdata, "pjsua_calls_full")
        now = time.monotonic()
        if not adm.media.try_reserve(now):
            if now - self._budget_full_at > QUIET_S:
                log.warning("media budget full: %d of %d RTP socket pairs in use or cooling, INVITEs get 503",
                            adm.media.in_use(now), adm.media.pairs)
            self._budget_full_at = now
            return self._refuse_invite(rdata, "media_budget_full")
        return False

    # -- callbacks (SIP thread) ------------------------------------------------------------
    def _ready(self, rdata: int) -> bool:
        if self._msg_off is None and not self._broken:
            if not self._calibrate(rdata):
                self._broken = True
                log.error("error sip.guard_unavailable cannot read pjsip_rx_data; %s",
                          "dropping every request (allow-list or auth is configured)" if self.fail_closed
                          else "requests pass unguarded")
        return self._msg_off is not None

    def _on_response(self, rdata: int) -> int:
        try:
            if self._msg_off is None or not self.admission.networks.networks:
                return 0
            _, src = self._read(rdata)
            return 0 if self.admission.networks.allows(src) else 1
        except Exception:
            log.exception("error sip.guard_failed")
            return 0

    def _on_guard(self, rdata: int) -> int:
        try:
            if not self._ready(rdata):
                return 1 if self.fail_closed else 0
            raw, src = self._read(rdata)
            return 1 if self._decide(rdata, raw, src) else 0
        except Exception:
            log.exception("error sip.guard_failed")
            return 1 if self.fail_closed else 0

    def _decide(self, rdata: int, raw: bytes, src: str) -> bool:
        """True when the request is dealt with here (answered or dropped)."""
        adm = self.admission
        if not adm.networks.allows(src):
            if "not_allowed" not in self.counts:
                log.warning("dropping requests from sources outside sip.allow_networks (first: %s)", src)
            self._count("not_allowed")
            return True
        req = sip_lint.parse(raw)
        if req is None:
            return False
        limit = "ok" if req.in_dialog or req.method == "ACK" else adm.limiter.check(src)
        if limit != "ok":
            self._count("rate_limited")
            if limit == "limited_first":
                log.warning("source rate-limited src=%s (%.0f requests/s, burst %d): INVITE gets 503, the rest is dropped",
                            src, adm.limiter.rate_per_s, adm.limiter.burst)
            if req.method == "INVITE":
                self._respond(rdata, 503, "Service Unavailable", [("Retry-After", str(self.retry_after_s))])
            return True
        verdict = sip_lint.check(req, datagram=True)
        if verdict is not None:
            self._count(f"lint_{verdict.status}")
            self._respond(rdata, verdict.status, verdict.reason, verdict.headers)
            return True
        if req.in_dialog:
            return False
        # A retransmission belongs to an INVITE that passed already, and reusing its nonce
        # count would read as a replay: its transaction absorbs it.
        if req.method == "INVITE" and self.auth is not None and not self._retransmission(rdata):
            creds = req.get("authorization")
            result = self.auth.verify(creds[0], "INVITE", req.uri, src) if creds else "bad"
            if result != "ok":
                self._count("auth_challenged")
                self._respond(rdata, 401, "Unauthorized",
                              [("WWW-Authenticate", self.auth.challenge(src, stale=result == "stale"))])
                return True
        if req.method == "INVITE" and self._admit_invite(rdata, src):
            return True
        if req.method == "OPTIONS" and self.answer_options():
            self._respond(rdata, 200, "OK", [
                ("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", ", ".join(sorted(sip_lint.SUPPORTED_OPTIONS))),
                (LOAD_HEADER, adm.load_hint()),
            ])
            return True
        return False

    def _on_fallback(self, rdata: int) -> int:
        try:
            if self._msg_off is None:
                return 0
            raw, _ = self._read(rdata)
            req = sip_lint.parse(raw)
            if req is None or req.method == "ACK":
                return 0
            if req.method == "REGISTER":
                self._count("register_405")
                self._respond(rdata, 405, "Method Not Allowed", [("Allow", ALLOW)])
            else:
                self._count("unknown_501")
                self._respond(rdata, 501, "Not Implemented", [("Allow", ALLOW)])
            return 1
        except Exception:
            log.exception("error sip.guard_failed")
            return 0

