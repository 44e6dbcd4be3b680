"""The SIP edge's gate: a pjsip module that sees every request before pjsua does.

pjsua2 hands Python only INVITEs (onIncomingCall); OPTIONS, REGISTER, CANCEL floods and unknown
methods never reach it, and pjsip silently drops requests no module handles (REGISTER, unknown
methods). So two small pjsip modules are registered through ctypes on the library pjsua2 already
loaded:

* ``voicebox-guard`` (priority 15, before the transaction layer): drops requests from sources
  outside ``sip.allow_networks``; looks up the dialog a request with a To tag names (Call-ID,
  To tag as ours, From tag as theirs) or its transaction, and answers 481 itself when pjsua
  holds neither, so a tag alone earns nothing; rate-limits every other request per source (INVITE gets
  503 + Retry-After, the rest is dropped so a flood gets nothing to amplify); refuses what
  sip_lint finds wrong; asks for digest credentials on INVITE when configured; answers
  out-of-dialog OPTIONS itself, the same for every user part, with an ``X-Voicebox-Load`` hint.
  A new INVITE (not a retransmission, which its transaction absorbs) must then fit its source's
  INVITE bucket, a free pjsua call slot and the media budget (``media_budget.py``), or it gets
  503 + Retry-After here: pjsua opens a call's RTP sockets as soon as an INVITE reaches it,
  refused or not, and answers a bare 486 when its call slots (4 in the wheel) are all taken.
* ``voicebox-fallback`` (priority 100, after every pjsua module): answers what nobody handled,
  405 for REGISTER and 501 for other methods, instead of pjsip's silence.
* a transport state callback (chained before pjsua's own): every TCP/TLS connection pjsip
  accepts is counted against ``connection_budget``, and what does not fit is closed at once.
  The offsets it reads in ``pjsip_transport`` are checked at start on a connection of its own;
  if they do not read back, connections go uncounted and a warning says so.
* a transport manager "dropped data" callback: a UDP request pjsip's parser refused (or one
  without Call-ID/From/To) reaches no module, and pjsip says nothing. ``sip_unparsed`` builds
  the answer RFC 4475 expects from the raw bytes (400, 505, 416, 405), sent from the SIP port
  to the datagram's source, under the same allow-list and per-source limit as the rest.

Both run on the SIP thread (inside ``libHandleEvents``), do O(1) work and never block.

pjsip's ``pjsip_rx_data`` is a C struct with no accessor for the raw message or source address;
``rx_data.py`` reads it at the offsets of the pinned pjsua2 wheel. ``install`` refuses to go on
(``GuardUnavailable``) unless that wheel is installed and the offsets read back a known packet
the guard sends itself; until then every request is dropped.
"""

from __future__ import annotations

import ctypes
import logging
import secrets
import socket
import time
from ctypes import POINTER, Structure, byref, c_char_p, c_int, c_void_p
from typing import Callable

import pjsua2

from voicebox.telephony import rx_data, sip_lint, sip_unparsed
from voicebox.telephony.ioqueue_slots import IoqueueSlots
from voicebox.telephony.rx_data import GuardUnavailable, PjStr
from voicebox.telephony.admission import QUIET_S, Admission
from voicebox.telephony.digest import DigestAuth

log = logging.getLogger("voicebox.sip.guard")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, MESSAGE, PRACK"
LOAD_HEADER = "X-Voicebox-Load"
PJSIP_ROLE_UAS = 1
SELF_TEST_S = 2.0  # the guard's own packet crosses loopback in well under a millisecond

__all__ = ["GuardUnavailable", "SipGuard"]


class PjsipHdr(Structure):  # PJSIP_DECL_HDR_MEMBER: a list head for respond_stateless
    _fields_ = [("prev", c_void_p), ("next", c_void_p), ("type", c_int), ("name", PjStr), ("sname", PjStr),
                ("vptr", c_void_p)]


_RX = ctypes.CFUNCTYPE(c_int, c_void_p)
TP_INFO_TRANSPORT = 8  # pjsip_rx_data.tp_info.transport, right after tp_info.pool
PJSIP_EINVALIDMSG = 171020  # pjsip/sip_errno.h: the parser refused the message
PJSIP_EMISSINGHDR = 171050  # parsed, but Call-ID, From, To, Via or CSeq is missing


class DroppedData(Structure):  # pjsip_tp_dropped_data
    _fields_ = [("tp", c_void_p), ("data", c_void_p), ("len", ctypes.c_size_t), ("status", c_int)]


_DROPPED = ctypes.CFUNCTYPE(None, POINTER(DroppedData))
_TP_STATE = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_void_p)  # pjsip_tp_state_callback
PJSIP_TP_STATE_CONNECTED = 0
PJSIP_TP_STATE_DESTROY = 3  # the transport's socket leaves the ioqueue right after this callback
PJSIP_TP_DIR_INCOMING = 2
# Inside pjsip_transport (pjsip/sip_transport.h, x86-64, the pinned wheel): obj_name is its first
# member; remote_name is a pjsip_host_port (pj_str_t host, int port); dir follows it.
_TP_REMOTE_HOST = 200
_TP_REMOTE_PORT = 216
_TP_DIR = 224


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
    lib.pjsip_ua_find_dialog.restype = c_void_p
    lib.pjsip_ua_find_dialog.argtypes = [c_void_p, c_void_p, c_void_p, c_int]
    lib.pjsip_endpt_get_tpmgr.restype = c_void_p
    lib.pjsip_tpmgr_get_state_cb.restype = c_void_p
    lib.pjsip_tpmgr_get_state_cb.argtypes = [c_void_p]
    lib.pjsip_tpmgr_set_state_cb.argtypes = [c_void_p, c_void_p]
    lib.pjsip_transport_shutdown2.argtypes = [c_void_p, c_int]
    lib.pjsip_endpt_get_tpmgr.argtypes = [c_void_p]
    lib.pjsip_endpt_get_ioqueue.restype = c_void_p
    lib.pjsip_endpt_get_ioqueue.argtypes = [c_void_p]
    lib.pjsip_tpmgr_set_drop_data_cb.argtypes = [c_void_p, c_void_p]
    lib.pj_sockaddr_init.argtypes = [ctypes.c_int, c_void_p, POINTER(PjStr), ctypes.c_uint16]
    lib.pj_sockaddr_get_len.restype = ctypes.c_uint
    lib.pj_sockaddr_get_len.argtypes = [c_void_p]
    lib.pjsip_endpt_send_raw.argtypes = [c_void_p, c_int, c_void_p, c_void_p, ctypes.c_size_t, c_void_p, c_int,
                                         c_void_p, c_void_p]
    return lib


def _udp_listener(ep: pjsua2.Endpoint) -> tuple[str, int]:
    """Where the UDP transport listens, as an address a socket on this host can send to."""
    for tid in ep.transportEnum():
        info = ep.transportGetInfo(tid)
        if info.typeName.upper().startswith("UDP"):
            host, _, port = info.localAddress.rpartition(":")
            host = host.strip("[]")
            return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host), int(port)
    raise GuardUnavailable("no UDP transport to send the SIP guard's self-test packet to")


class SipGuard:
    def __init__(self, admission: Admission, auth: DigestAuth | None, answer_options: Callable[[], bool],
                 retry_after_s: int, answers_uri: Callable[[str], bool] | None = None) -> None:
        self.admission = admission
        # A new INVITE's Request-URI reaches an agent (several agents: by its user part); else 404.
        self.answers_uri = answers_uri
        self.auth = auth
        self.answer_options = answer_options  # false while draining: pjsua's own 480 then goes out
        self.retry_after_s = retry_after_s
        self.fail_closed = bool(admission.networks.networks) or auth is not None
        self._lib = _lib()
        self._endpt: int | None = None
        self._rx = rx_data.RxReader(rx_data.LAYOUT)  # looked up now: a test may swap the layout
        self._verified = False  # the offsets read back the self-test packet; until then, drop all
        self._probe: rx_data.Probe | None = None
        self._probe_info = b""  # pjsip_rx_data_get_info's words for the probe: found without offsets
        self._probe_result: str | None = None  # "" when the probe read back right, else what did not
        self.counts: dict[str, int] = {}
        # pjsip keeps pointers to these until libDestroy: they live as long as the guard.
        self._cb_guard = _RX(self._on_guard)
        self._cb_fallback = _RX(self._on_fallback)
        self._cb_response = _RX(self._on_response)
        self._cb_dropped = _DROPPED(self._on_dropped)
        self._udp_transport = 0  # the UDP pjsip_transport the probe came in on
        self._cb_state = _TP_STATE(self._on_tp_state)
        self._pjsua_state_cb: _TP_STATE | None = None  # pjsua's own, called first
        self._tp_layout_ok = False  # pjsip_transport's offsets read back our own connection
        self._tp_probe: tuple[str, int] | None = None
        self._conn_logged_at = float("-inf")
        self._keys_logged_at = float("-inf")
        self.slots: IoqueueSlots | None = None  # the SIP ioqueue's keys (ioqueue_slots.py)
        self._invite_method = self._lib.pjsip_get_invite_method()
        self._budget_full_at = float("-inf")  # last log line about a full media budget
        self._mods = [
            PjsipModule(name=PjStr.of("voicebox-guard"), id=-1, priority=15,
                        on_rx_request=self._cb_guard, on_rx_response=self._cb_response),
            PjsipModule(name=PjStr.of("voicebox-fallback"), id=-1, priority=100,
                        on_rx_request=self._cb_fallback, on_rx_response=_RX()),
        ]

    def install(self) -> None:
        """Register both modules and test the rx_data layout; call on the SIP thread after ``libStart``.

        GuardUnavailable (one line, naming the pjsua2 version) when this build cannot be read.
        """
        rx_data.check_version()
        self._endpt = self._lib.pjsua_get_pjsip_endpt()
        for mod in self._mods:
            status = self._lib.pjsip_endpt_register_module(self._endpt, byref(mod))
            if status != 0:
                raise RuntimeError(f"pjsip_endpt_register_module({mod.name.ptr!r}) failed: {status}")
        self._self_test()
        tpmgr = self._lib.pjsip_endpt_get_tpmgr(self._endpt)
        prev = self._lib.pjsip_tpmgr_get_state_cb(tpmgr)
        self._pjsua_state_cb = _TP_STATE(prev) if prev else None
        self._lib.pjsip_tpmgr_set_state_cb(tpmgr, ctypes.cast(self._cb_state, c_void_p))
        self._connection_self_test()
        slots = IoqueueSlots(self._lib.pjsip_endpt_get_ioqueue(self._endpt))
        if slots.probe():
            self.slots = slots
            log.info("SIP ioqueue watched: %d keys, %d in use, %d kept free",
                     slots.maximum, slots.live(), slots.reserve)
        else:
            log.warning("SIP ioqueue not watched (%s): a fast enough connection flood can abort pjlib", slots.why)
        if not self._udp_transport:
            log.warning("pjsip_rx_data.tp_info.transport is not where the guard reads it: requests pjsip "
                        "cannot parse stay unanswered")
        elif self._lib.pjsip_tpmgr_set_drop_data_cb(tpmgr, ctypes.cast(self._cb_dropped, c_void_p)) != 0:
            raise RuntimeError("pjsip_tpmgr_set_drop_data_cb failed")

    def _self_test(self) -> None:
        """Send a known OPTIONS to our own UDP port and check every offset against it."""
        ep = pjsua2.Endpoint.instance()
        host, port = _udp_listener(ep)
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host, 0))
            cseq = secrets.randbelow(1 << 30) + 1
            self._probe = rx_data.probe_packet(sock.getsockname()[:2], (host, port), cseq, secrets.token_hex(8))
            self._probe_info = b"Request msg OPTIONS/cseq=%d " % cseq
            sock.sendto(self._probe.data, (host, port))
            deadline = time.monotonic() + SELF_TEST_S
            while self._probe_result is None and time.monotonic() < deadline:
                ep.libHandleEvents(10)
        version = rx_data.installed_version()
        if self._probe_result is None:
            raise GuardUnavailable(f"the SIP guard's self-test packet to {host}:{port} never arrived "
                                   f"({rx_data.DISTRIBUTION} {version})")
        if self._probe_result:
            raise GuardUnavailable(
                f"{rx_data.DISTRIBUTION} {version}: pjsip_rx_data is not laid out as the SIP guard reads it "
                f"({self._probe_result}); its offsets are for {rx_data.PJSUA2_VERSION}")
        self._verified = True
        log.info("guard ready (%s %s, pjsip_rx_data layout checked)", rx_data.DISTRIBUTION, version)

    def _connection_self_test(self) -> None:
        """Open a TCP connection to our own listener; the state callback must read it back."""
        ep = pjsua2.Endpoint.instance()
        listener = next((ep.transportGetInfo(t).localAddress for t in ep.transportEnum()
                         if ep.transportGetInfo(t).typeName.upper() == "TCP"), None)
        if listener is not None:
            host, _, port = listener.rpartition(":")
            host = {"0.0.0.0": "127.0.0.1"}.get(host.strip("[]"), host.strip("[]"))
            with socket.create_connection((host, int(port)), timeout=SELF_TEST_S) as sock:
                self._tp_probe = sock.getsockname()[:2]
                deadline = time.monotonic() + SELF_TEST_S
                while not self._tp_layout_ok and time.monotonic() < deadline:
                    ep.libHandleEvents(10)
            self._tp_probe = None
        if self._tp_layout_ok:
            log.info("connection budget on: %d TCP/TLS connections per source, %d in all",
                     self.admission.connections.per_source, self.admission.connections.total)
        else:
            log.warning("connection budget off: %s", "no TCP listener to check pjsip_transport's layout on"
                        if listener is None else "pjsip_transport is not laid out as the guard reads it")

    def _read_peer(self, tp: int) -> tuple[str, int, int]:
        """(remote host, remote port, direction) of a connection-oriented pjsip_transport."""
        # pj_str_t read as address and length: its text is not NUL-terminated.
        ptr = c_void_p.from_address(tp + _TP_REMOTE_HOST).value
        slen = ctypes.c_ssize_t.from_address(tp + _TP_REMOTE_HOST + 8).value
        text = ctypes.string_at(ptr, slen).decode(errors="replace") if ptr and 0 < slen < 64 else ""
        return text, c_int.from_address(tp + _TP_REMOTE_PORT).value, c_int.from_address(tp + _TP_DIR).value

    def _on_tp_state(self, tp, state, info) -> None:  # noqa: ANN001 -- ctypes arguments
        try:
            if self._pjsua_state_cb is not None:
                self._pjsua_state_cb(tp, state, info)
            if not tp:
                return
            # A socket has just taken an ioqueue key (connected) or is about to give it back
            # (destroy): the next accept must still find a free key (ioqueue_slots.py).
            if self.slots is not None and self.slots.update(leaving=state == PJSIP_TP_STATE_DESTROY):
                self._count("ioqueue_hold")
                now = time.monotonic()
                if now - self._keys_logged_at > QUIET_S:
                    self._keys_logged_at = now
                    log.warning("SIP ioqueue down to %d free keys (connections opened and closed fast): new "
                                "connections are closed until keys come back", self.slots.reserve)
            if state != PJSIP_TP_STATE_CONNECTED:
                self.admission.connections.closed(tp)
                return
            kind = ctypes.string_at(tp, 3)
            if kind not in (b"tcp", b"tls"):
                return
            if not self._tp_layout_ok:
                if self._tp_probe is not None and kind == b"tcp":
                    host, port, direction = self._read_peer(tp)
                    self._tp_layout_ok = (host, port, direction) == (*self._tp_probe, PJSIP_TP_DIR_INCOMING)
                return
            host, _, direction = self._read_peer(tp)
            if direction != PJSIP_TP_DIR_INCOMING:
                return  # our own connection (a TLS registrar): not the budget's
            for key in self.admission.connections.opened(tp, host):
                self._count("connection_closed")
                now = time.monotonic()
                if now - self._conn_logged_at > QUIET_S:
                    self._conn_logged_at = now
                    log.warning("TCP/TLS connections past the budget are closed (from %s: %d kept, %d in all; "
                                "sip.max_connections_per_source, sip.max_connections)",
                                host, self.admission.connections.live(host), self.admission.connections.live())
                self._lib.pjsip_transport_shutdown2(key, 1)
        except Exception:
            log.exception("error sip.guard_failed", extra={"code": "sip.guard_failed"})

    def pjsua_max_calls(self) -> int:
        """pjsua's call slots: what was asked for, clamped to the build's PJSUA_MAX_CALLS."""
        return int(self._lib.pjsua_call_get_max_count())

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    # -- rdata access ----------------------------------------------------------------------
    def _read(self, rdata: int) -> tuple[bytes, str]:
        return self._rx.raw(rdata), self._rx.source(rdata)

    def _respond(self, rdata: int, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
        pool = c_void_p.from_address(rdata).value  # tp_info.pool: lives while pjsip handles rdata
        head = PjsipHdr()
        head.prev = head.next = ctypes.addressof(head)
        for name, value in headers:
            hdr = self._lib.pjsip_generic_string_hdr_create(pool, byref(PjStr.of(name)), byref(PjStr.of(value)))
            self._lib.pj_list_insert_before(ctypes.addressof(head), hdr)
        self._lib.pjsip_endpt_respond_stateless(self._endpt, rdata, status, byref(PjStr.of(reason)),
                                                ctypes.addressof(head), None)

    def _has_tsx(self, rdata: int, method: int) -> bool:
        """A server transaction for this request's branch and ``method`` exists already."""
        pool = c_void_p.from_address(rdata).value
        key = PjStr()
        if self._lib.pjsip_tsx_create_key(pool, byref(key), PJSIP_ROLE_UAS, method, rdata) != 0:
            return False
        return bool(self._lib.pjsip_tsx_layer_find_tsx2(byref(key), 0))

    def _retransmission(self, rdata: int) -> bool:
        """An INVITE whose server transaction exists already (pjsip absorbs it; it costs nothing)."""
        return self._has_tsx(rdata, self._invite_method)

    def _known_dialog(self, rdata: int) -> bool:
        """pjsua holds the dialog this request names, or a transaction for it (a retransmission).

        Two hash lookups on pjsip's own parse of the headers: the UAS dialog's local tag is the
        To tag of requests the caller sends in it, and its remote tag their From tag.
        """
        rx = self._rx
        if self._lib.pjsip_ua_find_dialog(rx.call_id(rdata), rx.to_tag(rdata), rx.from_tag(rdata), 0):
            return True
        return self._has_tsx(rdata, rx.method(rdata))

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
    def _on_probe(self, rdata: int) -> int:
        """Before the layout is checked: test it on the probe, drop everything."""
        info = self._lib.pjsip_rx_data_get_info(rdata) or b""
        if self._probe is not None and info.startswith(self._probe_info):
            try:
                self._probe_result = self._rx.verify(rdata, self._probe) or ""
                transport = c_void_p.from_address(rdata + TP_INFO_TRANSPORT).value or 0
                # pjsip_transport begins with its object name, "udp0x..." for the UDP transport.
                if transport and ctypes.string_at(transport, 3) == b"udp":
                    self._udp_transport = transport
            except Exception as e:  # noqa: BLE001 -- reported by install, in its one line
                self._probe_result = f"reading the packet failed: {e}"
        return 1

    def _on_dropped(self, dd_ptr) -> None:  # noqa: ANN001 -- a ctypes pointer
        """pjsip dropped a message it could not parse: answer it if it is a UDP request."""
        try:
            dd = dd_ptr.contents
            if not self._verified or dd.status not in (PJSIP_EINVALIDMSG, PJSIP_EMISSINGHDR):
                return
            lo = self._rx.layout
            # A UDP datagram is parsed where it was received, in the packet buffer of the UDP
            # transport's pjsip_rx_data, and pjsip points msg_info.msg_buf at the message it is
            # parsing: both must hold before rdata is read. TCP and TLS stay unanswered.
            if not self._udp_transport or dd.tp != self._udp_transport:
                self._count("unparsed_not_udp")
                return
            rdata = dd.data - lo.packet
            if c_void_p.from_address(rdata + lo.msg_buf).value != dd.data or \
                    c_void_p.from_address(rdata + TP_INFO_TRANSPORT).value != dd.tp:
                self._count("unparsed_unlocated")
                return
            src = self._rx.source(rdata)
            port = c_int.from_address(rdata + lo.src_port).value
            adm = self.admission
            if not adm.networks.allows(src) or adm.limiter.check(src) != "ok":
                self._count("unparsed_dropped")
                return
            found = sip_unparsed.answer(ctypes.string_at(dd.data, dd.len), ALLOW)
            if found is None:
                self._count("unparsed_unanswerable")
                return
            reply, copied = found
            self._count(f"unparsed_{reply.status}")
            self._send_raw(reply.render(copied, "voicebox"), src, port)
        except Exception:
            log.exception("error sip.guard_failed", extra={"code": "sip.guard_failed"})

    def _send_raw(self, data: bytes, host: str, port: int) -> None:
        """Send ``data`` from the SIP UDP port to ``host:port`` (pjsip copies it before returning)."""
        v6 = ":" in host
        af = ctypes.c_uint16.in_dll(self._lib, "PJ_AF_INET6" if v6 else "PJ_AF_INET").value
        addr = ctypes.create_string_buffer(128)  # pj_sockaddr is 28 bytes; room to spare
        if self._lib.pj_sockaddr_init(af, addr, byref(PjStr.of(host)), port) != 0:
            return
        tp_type = pjsua2.PJSIP_TRANSPORT_UDP6 if v6 else pjsua2.PJSIP_TRANSPORT_UDP
        self._lib.pjsip_endpt_send_raw(self._endpt, tp_type, None, data, len(data), addr,
                                       self._lib.pj_sockaddr_get_len(addr), None, None)

    def _on_response(self, rdata: int) -> int:
        try:
            if not self._verified:
                return 1
            if not self.admission.networks.networks:
                return 0
            _, src = self._read(rdata)
            return 0 if self.admission.networks.allows(src) else 1
        except Exception:
            log.exception("error sip.guard_failed", extra={"code": "sip.guard_failed"})
            return 0

    def _on_guard(self, rdata: int) -> int:
        try:
            if not self._verified:
                return self._on_probe(rdata)
            raw, src = self._read(rdata)
            if self.admission.networks.allows(src):  # its connection, if any, carries SIP: a peer's
                self.admission.connections.spoke(c_void_p.from_address(rdata + TP_INFO_TRANSPORT).value or 0)
            return 1 if self._decide(rdata, raw, src) else 0
        except Exception:
            log.exception("error sip.guard_failed", extra={"code": "sip.guard_failed"})
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
        # A To tag is a claim: it exempts a request from the limit and from auth only when pjsua
        # holds that dialog (issue #17: ";tag=x" on every request walked past both).
        known = req.claims_dialog and self._known_dialog(rdata)
        limit = "ok" if known or req.method == "ACK" else adm.limiter.check(src)
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
        if known:
            return False
        if req.claims_dialog:
            # pjsip's dialog layer would answer 481 too, but it matches on the To tag alone; this
            # way nothing with an unknown dialog reaches pjsua. An ACK is never answered.
            self._count("no_dialog")
            if req.method != "ACK":
                self._respond(rdata, 481, "Call/Transaction Does Not Exist", [])
            return True
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
        if req.method == "INVITE" and self.answers_uri is not None and not self.answers_uri(req.uri):
            # Before admission: nobody answers here, so no media is reserved or opened for it.
            self._count("unknown_user")
            self._respond(rdata, 404, "Not Found", [])
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
            if not self._verified:
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
            log.exception("error sip.guard_failed", extra={"code": "sip.guard_failed"})
            return 0

