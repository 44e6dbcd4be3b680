"""The SIP user agent: answers INVITEs, bridges media into call pipelines, enforces call hygiene.

One thread owns pjsua2 (``threadCnt=0``, ``mainThreadOnly=True``): it polls the library, runs the
commands other threads queue for it, and does the periodic checks (RTP timeout, maximum call
length). Pipeline threads never call pjsua2 directly.
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import pjsua2 as pj

from voicebox.agent import AgentConfig
from voicebox.agent_directory import AgentDirectory
from voicebox.audio.ringbuffer import RingBuffer
from voicebox.config import Config
from voicebox.engines import Engines
from voicebox.logs import context_log
from voicebox.outcomes.draft import OutcomeSink
from voicebox.pipeline import CallPipeline
from voicebox.records.call_events import CallEvents
from voicebox.records.content import ContentPolicy
from voicebox.records.recording import CallRecording, recording_path
from voicebox.records.store import RecordStore
from voicebox.service_notify import ServiceNotifier
from voicebox.telemetry.metrics import Metrics
from voicebox.telephony.admission import Admission
from voicebox.telephony.dialled import dialled_user, request_uri
from voicebox.telephony.digest import DigestAuth
from voicebox.telephony.drain import Drain
from voicebox.telephony.media_port import BridgePort, make_format
from voicebox.telephony.media_watch import RtpWatchdog, is_held
from voicebox.telephony.registration import Registration
from voicebox.telephony.sip_guard import SipGuard
from voicebox.telephony.transfer_context import split_refer_to
from voicebox.preflight import PortInUse
from voicebox.telephony.transports import add_tls_account, configure_account_media, create_transports
from voicebox.telephony.warm_transfer import WarmPlan, WarmTransfer

log = logging.getLogger("voicebox.sip")

CODEC_IDS = {"G722": "G722/16000/1", "PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1"}
# Asked for; pjsua clamps it to its compile-time PJSUA_MAX_CALLS (4 in the pjsua2 wheel). The guard
# answers 503 + Retry-After when pjsua's slots are full, before pjsua's own bare 486.
PJSUA_MAX_CALLS = 32
HOUSEKEEPING_S = 0.5


def _header(name: str, value: str) -> pj.SipHeader:
    h = pj.SipHeader()
    h.hName = name
    h.hValue = value
    return h


@dataclass
class CallSlot:
    """Everything one admitted call owns; touched only on the SIP thread."""

    session: str
    call: "AgentCall"
    events: CallEvents | None = None
    agent_id: str = ""  # the agent answering (admitted calls)
    agent: AgentConfig | None = None
    engines: Engines | None = None  # the shared models with that agent's router (Engines.for_agent)
    started: float = field(default_factory=time.monotonic)
    port: BridgePort | None = None
    pipeline: CallPipeline | None = None
    codec: str = ""
    watch: RtpWatchdog | None = None  # admitted calls: RTP silence against the call's limit
    held: bool = False  # the caller holds the call (see media_watch.py)
    jitter_buffer_ms: float | None = None  # inbound jitter buffer's average delay, sampled by housekeeping
    ending: bool = False
    max_length_said: bool = False
    hung_up_by: str = ""
    warm: WarmTransfer | None = None  # an attended transfer of this call in progress (warm_transfer.py)


@dataclass
class Remains:
    """What an ended call leaves for the next loop turn: its bridge port and its pipeline (no Call)."""

    port: BridgePort | None
    pipeline: CallPipeline | None


class AgentCall(pj.Call):
    def __init__(self, server: "SipServer", acc: pj.Account, call_id: int) -> None:
        super().__init__(acc, call_id)
        self.server = server
        self.session = uuid.uuid4().hex[:12]
        self.log = context_log(log, session=self.session)
        self.pipeline: CallPipeline | None = None  # read by onDtmfDigit, which may run on a media thread

    # An exception escaping a pjsua2 callback is printed by SWIG and forgotten, leaving the
    # call up and silent: every callback ends the call instead.
    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        try:
            ci = self.getInfo()
            if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.server.on_disconnected(self, ci.lastStatusCode, ci.lastReason)
        except Exception:
            self.log.exception("error sip.callback_failed", extra={"code": "sip.callback_failed"})

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        pipeline = self.pipeline  # O(1) hand-off: this can run on a media thread
        if pipeline is not None:
            pipeline.on_dtmf(prm.digit)

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:  # noqa: N802
        try:
            self.server.on_transfer_status(self, prm.statusCode, prm.finalNotify)
        except Exception:
            self.log.exception("error sip.callback_failed", extra={"code": "sip.callback_failed"})

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        try:
            self.server.on_media(self)
        except Exception:
            self.log.exception("error sip.callback_failed", extra={"code": "sip.callback_failed"})
            self.server.fail_call(self, "sip.callback_failed")


class AgentAccount(pj.Account):
    def __init__(self, server: "SipServer") -> None:
        super().__init__()
        self.server = server

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        try:
            self.server.on_incoming(self, prm)
        except Exception:
            log.exception("error sip.callback_failed", extra={"code": "sip.callback_failed"})


class SipServer:
    def __init__(
        self, cfg: Config, agents: AgentDirectory, engines: Engines,
        store: RecordStore | None = None, metrics: Metrics | None = None,
        outcomes: OutcomeSink | None = None, service: ServiceNotifier | None = None,
    ) -> None:
        self.cfg = cfg
        # systemd hears of the drain from here, and the watchdog is pinged by this loop alone.
        self.service = service or ServiceNotifier({})
        self.outcomes = outcomes  # where finished forms are stored before the caller hears "booked"
        self.agents = agents  # who answers which dialled user
        self.engines = engines
        self._engines_for = {aid: engines.for_agent(aid) for aid in agents.agents}
        self.store = store
        self.metrics = metrics
        self.policy = ContentPolicy(cfg.privacy.content)
        # Each agent's own words are never redacted as a caller's name in its calls' records.
        self._policies = {aid: ContentPolicy.for_agent(cfg.privacy.content, a) for aid, a in agents.agents.items()}
        self.ep: pj.Endpoint | None = None
        self.account: AgentAccount | None = None
        self.tls_account: pj.Account | None = None  # calls over TLS: SRTP allowed (transports.py)
        self.slots: dict[int, CallSlot] = {}  # pjsua call id -> slot
        self._graveyard: list[Remains] = []  # ended calls' ports and pipelines, handed on next tick
        self._draining: list[CallPipeline] = []  # pipelines of ended calls whose threads are finishing
        self._all_ports: list[BridgePort] = []  # never freed before libDestroy (see BridgePort.attach)
        self._free_ports: list[BridgePort] = []
        self._warm: list[WarmTransfer] = []  # attended transfers whose own call to the target may be up
        self._commands: queue.Queue[Callable[[], None]] = queue.Queue()
        self._stop = threading.Event()
        self.drain = Drain(cfg.sip.drain_timeout_s)
        self._drain_said = -1  # calls left, as last told to systemd
        self.registration: Registration | None = None
        self.total_calls = 0
        self.rejected_calls = 0
        self.admission = Admission(cfg.sip)
        # Every slot, a refused call's too, holds its RTP sockets until DISCONNECTED.
        self.admission.media.live = lambda: len(self.slots)
        self.guard: SipGuard | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        sip = self.cfg.sip
        ep = pj.Endpoint()
        ep.libCreate()
        epc = pj.EpConfig()
        epc.uaConfig.threadCnt = 0
        epc.uaConfig.mainThreadOnly = True
        epc.uaConfig.maxCalls = PJSUA_MAX_CALLS
        epc.uaConfig.userAgent = "voicebox"
        epc.logConfig.level = 2
        epc.logConfig.consoleLevel = 2
        med = epc.medConfig
        med.clockRate = self.cfg.media.clock_rate_hz
        med.sndClockRate = self.cfg.media.clock_rate_hz
        med.audioFramePtime = self.cfg.media.frame_ms
        med.channelCount = 1
        med.noVad = True  # silence suppression would starve the RTP timeout check
        med.ecTailLen = 0  # pjmedia's canceller only works with a sound device
        jb = self.cfg.media.jitter_buffer_ms
        if jb is not None:
            med.jbInit = med.jbMinPre = jb
            med.jbMaxPre = jb
            med.jbMax = max(4 * jb, 100)
        ep.libInit(epc)
        ep.audDevManager().setNullDev()
        for info in ep.codecEnum2():
            ep.codecSetPriority(info.codecId, 0)
        for rank, name in enumerate(sip.codecs):
            ep.codecSetPriority(CODEC_IDS[name], 255 - rank)
        try:
            transports = create_transports(ep, sip)
        except PortInUse:
            ep.libDestroy()  # nothing started yet: leave no half-made endpoint to abort at exit
            raise
        ep.libStart()
        self._install_guard()
        assert self.guard is not None
        if sip.max_calls > self.guard.pjsua_max_calls():
            log.warning("sip.max_calls is %d but this pjsua2 build holds %d calls at once: more get 503",
                        sip.max_calls, self.guard.pjsua_max_calls())
        ac = pj.AccountConfig()
        ac.idUri = f"sip:{sip.user}@{sip.host}:{sip.port}"
        ac.callConfig.timerUse = pj.PJSUA_SIP_TIMER_OPTIONAL  # RFC 4028: honoured when the caller asks
        ac.callConfig.timerSessExpiresSec = sip.session_expires_s
        ac.callConfig.timerMinSESec = sip.session_min_expires_s
        self.tls_account = add_tls_account(ep, ac, sip, AgentAccount(self))  # first: see add_tls_account
        configure_account_media(ac, sip)
        self.account = AgentAccount(self)
        self.account.create(ac, True)
        self.ep = ep
        if sip.registration is not None:
            self.registration = Registration(sip.registration, sip, self.on_incoming)
            self.registration.start()
        log.info(
            "listening on sip:%s@%s:%d (%s), codecs %s, srtp %s, max %d calls",
            sip.user, sip.host, sip.port, "+".join(transports), ",".join(sip.codecs), sip.srtp, sip.max_calls,
        )
        log.info("agents: %s", self.agents.describe())

    def run(self) -> None:
        """The SIP thread's loop; returns after ``stop()`` once every call is hung up."""
        assert self.ep is not None
        next_check = time.monotonic()
        while True:
            self.ep.libHandleEvents(10)
            if self._graveyard:
                self._bury()
            self._run_commands()
            now = time.monotonic()
            self.service.watchdog(now)  # here only: a stuck SIP thread stops the pings
            if now >= next_check:
                next_check = now + HOUSEKEEPING_S
                self._housekeeping(now)
                if self.registration is not None:
                    self.registration.tick(now)
                if self.drain.requested and not self.drain.active:
                    self._begin_drain(now)
                if self.drain.active:
                    self._say_draining()
                if self.drain.finished(self.calls_in_progress(), now):
                    self._stop.set()
            if self._stop.is_set():
                break
        self.service.stopping("stopping")
        self._shutdown()

    def stop(self) -> None:
        self._stop.set()

    def request_drain(self) -> None:
        """SIGTERM: refuse new calls, finish those in progress, then stop (a second one stops now)."""
        if self.drain.requested:
            self.stop()
        self.drain.request()

    def calls_in_progress(self) -> int:
        return sum(1 for s in self.slots.values() if not s.ending)

    def _begin_drain(self, now: float) -> None:
        self.drain.begin(now)
        assert self.ep is not None
        self.ep.libStopWorkerThreads()  # see voicebox/telephony/drain.py: new INVITE/OPTIONS get 480
        if self.registration is not None:
            self.registration.unregister()
        log.info("draining: new calls refused, %d in progress, waiting up to %.0f s",
                 self.calls_in_progress(), self.drain.timeout_s)

    def _say_draining(self) -> None:
        """STOPPING=1 at the drain's start, then the calls left each time that number changes."""
        left = self.calls_in_progress()
        if left != self._drain_said:
            self._drain_said = left
            self.service.stopping(f"draining {left} call{'' if left == 1 else 's'}")

    def submit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the SIP thread (the only thread that may call pjsua2)."""
        self._commands.put(fn)

    def _run_commands(self) -> None:
        while True:
            try:
                fn = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            except Exception:
                log.exception("error sip.command_failed", extra={"code": "sip.command_failed"})

    def _shutdown(self) -> None:
        for slot in list(self.slots.values()):
            self._hang_up(slot, "shutdown", None)
        slot = None  # it held the last call's Call: freed after libDestroy below, pjsua2 asserts
        for warm in self._warm:
            warm.abort()
        deadline = time.monotonic() + 3
        while (self.slots or any(w.target is not None for w in self._warm)) and time.monotonic() < deadline:
            self.ep.libHandleEvents(20)
        for warm in self._warm:
            warm.close()
        self._warm.clear()
        pipelines = [s.pipeline for s in self.slots.values()] + [r.pipeline for r in self._graveyard] + self._draining
        for pipeline in pipelines:
            if pipeline is not None:
                pipeline.stop()
                pipeline.join(2)
        self.slots.clear()
        self._graveyard.clear()
        self._draining.clear()
        self._free_ports.clear()
        self._all_ports.clear()
        self.account = None
        self.tls_account = None
        if self.registration is not None:
            deadline = time.monotonic() + 2  # the registrar's answer to our un-REGISTER, see unregister_pending
            while self.registration.unregister_pending and time.monotonic() < deadline:
                self.ep.libHandleEvents(20)
            self.registration.close()
        # pjsua2 asserts if a Call or Account is freed after libDestroy: free them all now,
        # including any a printed traceback still holds.
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                setattr(sys, name, None)
        gc.collect()
        self.ep.libDestroy()
        self.ep = None

    # -- call events (SIP thread) ------------------------------------------------------------
    def on_incoming(self, acc: AgentAccount, prm: pj.OnIncomingCallParam) -> None:
        self.admission.media.claim()  # the guard's reservation: this call's slot counts from here
        call = AgentCall(self, acc, prm.callId)
        ci = call.getInfo()
        call_id = ci.callIdString
        src = prm.rdata.srcAddress
        active = sum(1 for s in self.slots.values() if not s.ending)
        # The guard answers 404 to a user nobody answers before pjsua sees the INVITE; this
        # covers one that reaches pjsua all the same.
        agent_id = self.agents.pick(dialled_user(request_uri(prm.rdata.wholeMsg)))
        decision = self.admission.decide(active)
        if agent_id is None or not decision.admit:
            status, reason = (404, "unknown_user") if agent_id is None else (self.cfg.sip.busy_status, decision.reason)
            self.rejected_calls += 1
            op = pj.CallOpParam()
            op.statusCode = status
            if op.statusCode == 503:
                op.txOption.headers.append(_header("Retry-After", str(self.cfg.sip.retry_after_s)))
            call.log.info("call rejected status=%d reason=%s active=%d load=%s sip_call_id=%s",
                          op.statusCode, reason, active, self.admission.load_hint(), call_id)
            if self.metrics is not None:
                self.metrics.calls_rejected.labels(reason).inc()
            # Registered before answering: DISCONNECTED can fire inside answer() itself, and
            # pjsua needs the Python object alive until then.
            self.slots[ci.id] = CallSlot(call.session, call, ending=True)
            call.answer(op)
            return
        self.total_calls += 1
        events = CallEvents(call.session, self.store, self.metrics, self._policies[agent_id], self.cfg.budget, agent_id)
        sip = self.cfg.sip
        watch = RtpWatchdog(sip.rtp_timeout_s, sip.hold_timeout_s, time.monotonic())
        self.slots[ci.id] = CallSlot(
            call.session, call, events, agent_id=agent_id, agent=self.agents.agents[agent_id],
            engines=self._engines_for[agent_id], watch=watch,
        )
        # The caller's URI usually carries their phone number: kept only at content level "full".
        caller = ci.remoteUri if self.cfg.privacy.content == "full" else None
        call.log.bind(agent=agent_id)  # every later line of the call, pjsua2's callbacks' included
        call.log.info("call start agent=%s sip_call_id=%s", agent_id, call_id)
        if self.store is not None:
            self.store.open(call.session)
        events.event("call_start", sip_call_id=call_id, agent=agent_id, source=str(src).rsplit(":", 1)[0],
                     caller=caller)
        if self.metrics is not None:
            self.metrics.calls_total.labels(agent_id).inc()
            self.metrics.calls_active.labels(agent_id).inc()
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)

    def on_media(self, call: AgentCall) -> None:
        slot = self.slots.get(call.getId())
        if slot is None or slot.ending:
            return
        ci = call.getInfo()
        held = slot.pipeline is not None and is_held(ci.media)  # a call is held once it has been up
        if held != slot.held:
            slot.held = held
            call.log.info("call %s", "held" if held else "resumed")
            if slot.port is not None:
                slot.port.restart_gap_clock()  # a hold is not a late frame (media_port.py)
            assert slot.pipeline is not None
            slot.pipeline.set_held(held)
        if held:
            return  # nothing to connect: the caller hears nothing from us until the unhold
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            aud = call.getAudioMedia(mi.index)
            if slot.port is None:
                media = self.cfg.media
                rate = media.clock_rate_hz
                frame = rate * media.frame_ms // 1000
                inbound = RingBuffer(rate * media.inbound_buffer_ms // 1000)
                playout = RingBuffer(rate * media.playout_buffer_ms // 1000)
                if self._free_ports:
                    slot.port = self._free_ports.pop()
                    slot.port.attach(inbound, playout)
                else:
                    slot.port = BridgePort(inbound, playout, frame)
                    slot.port.createPort(f"bridge{len(self._all_ports)}", make_format(rate, media.frame_ms))
                    self._all_ports.append(slot.port)
                recording = None
                if self.cfg.privacy.recording:
                    recording = CallRecording(recording_path(self.cfg.data_dir, slot.session, time.time()), rate)
                slot.pipeline = CallPipeline(
                    slot.session, slot.engines, slot.agent, self.cfg, inbound, playout,
                    lambda reason, code, cid=ci.id: self.submit(lambda: self._hang_up_id(cid, reason, code)),
                    slot.events, recording,
                    lambda uri, cid=ci.id: self.submit(lambda: self._transfer_id(cid, uri)),
                    outcomes=self.outcomes, agent_id=slot.agent_id,
                )
                call.pipeline = slot.pipeline
            aud.startTransmit(slot.port)
            slot.port.startTransmit(aud)
            try:
                slot.codec = call.getStreamInfo(mi.index).codecName
            except pj.Error:
                pass
            if slot.pipeline is not None and not slot.pipeline.started:
                call.log.info("media active codec=%s", slot.codec)
                slot.events.event("media", codec=slot.codec)
                slot.pipeline.start()
            return

    def on_disconnected(self, call: AgentCall, status: int, reason: str) -> None:
        slot = self.slots.pop(call.getId(), None)
        if slot is None:
            return
        self.admission.media.release()  # pjsua closed its RTP sockets just now: their slots cool down
        # The Call object must not outlive this callback. pjsua hands the freed call id to the
        # next INVITE at once, within this same poll when one is waiting, and pjsua2's
        # Call::~Call works on the id it had: freed later, it detached and hung up (603) the new
        # call that got the id, whose DISCONNECTED then never came. The slot is its last holder
        # besides this frame; pjsua2 allows the object to go when the callback returns.
        self._graveyard.append(Remains(slot.port, slot.pipeline))
        if slot.warm is not None:
            slot.warm.abort()  # our own call to the target goes too (it is ticked until gone)
            slot.warm = None
        if slot.events is None:
            return  # a refused call: nothing was admitted, nothing to record
        duration = time.monotonic() - slot.started
        port = slot.port
        turns = slot.pipeline.turn_count if slot.pipeline is not None else 0
        if slot.pipeline is not None:
            slot.pipeline.stop()
        underruns = port.underruns if port else 0
        gap = port.max_request_gap_ms if port else 0.0
        late = port.late_requests if port else 0
        call.log.info(
            "call end status=%d reason=%s duration=%.1f s codec=%s turns=%d speculative_hits=%d underruns=%d "
            "max_frame_gap=%.0f ms",
            status, reason, duration, slot.codec or "-", turns,
            slot.pipeline.speculative_hits if slot.pipeline is not None else 0, underruns, gap,
        )
        slot.events.event(
            "call_end", status=status, reason=reason, duration_s=round(duration, 2), turns=turns,
            underruns=underruns, max_frame_gap_ms=round(gap, 1), late_frame_requests=late, hung_up_by=slot.hung_up_by or "caller",
            jitter_buffer_ms=slot.jitter_buffer_ms,
            echo_frames=slot.pipeline.echo_frames if slot.pipeline is not None else 0,
        )
        if self.store is not None:
            self.store.close(slot.session)
        if self.metrics is not None:
            self.metrics.calls_active.labels(slot.agent_id).dec()
            self.metrics.underruns.labels(slot.agent_id).inc(underruns)

    def _transfer_id(self, call_index: int, uri: str) -> None:
        """Transfer the call: attended when its agent says so (warm_transfer.py), else blind."""
        slot = self.slots.get(call_index)
        if slot is None or slot.ending or (slot.warm is not None and slot.warm.busy):
            return
        actions = slot.agent.actions if slot.agent is not None else None
        if actions is not None and actions.transfer_mode == "warm" and slot.engines is not None \
                and self.account is not None:
            self._warm_transfer(slot, uri)
        else:
            self._blind_transfer(slot, uri)

    def _warm_transfer(self, slot: CallSlot, uri: str) -> None:
        assert slot.agent is not None and slot.engines is not None and self.account is not None
        actions = slot.agent.actions
        target, headers = split_refer_to(uri)
        reason = headers.get("X-Voicebox-Reason", "") or "a caller for you"
        plan = WarmPlan(uri, target, headers, actions.warm_summary.format(agent=slot.agent.name, reason=reason),
                        actions.warm_answer_timeout_s)
        slot.call.log.info("transfer requested mode=warm")
        if slot.events is not None:
            slot.events.event("warm_transfer", stage="dialing")
        session = slot.session
        warm = WarmTransfer(
            slot.call, self.account, plan, slot.engines.tts.synthesize, self.cfg.media.clock_rate_hz, self.submit,
            blind=lambda refer_to: self._warm_fell_back(session, refer_to),
            connected=lambda: self._warm_connected(session),
            logger=slot.call.log,
        )
        slot.warm = warm
        self._warm.append(warm)
        warm.start()

    def _slot_of(self, session: str) -> CallSlot | None:
        return next((s for s in self.slots.values() if s.session == session), None)

    def _warm_fell_back(self, session: str, refer_to: str) -> None:
        slot = self._slot_of(session)
        if slot is None or slot.ending:
            return
        if slot.events is not None:
            slot.events.event("warm_transfer", stage="blind")
        self._blind_transfer(slot, refer_to)

    def _warm_connected(self, session: str) -> None:
        slot = self._slot_of(session)
        if slot is None:
            return
        if slot.events is not None:
            slot.events.event("warm_transfer", stage="connected")
        self._hang_up(slot, "transferred", None)

    def _tick_transfers(self, now: float) -> None:
        for warm in self._warm:
            warm.tick(now)
        for warm in [w for w in self._warm if w.finished]:
            warm.close()  # its player and temporary file; its TargetCall went with its DISCONNECTED
            self._warm.remove(warm)

    def _blind_transfer(self, slot: CallSlot, uri: str) -> None:
        """Blind transfer (RFC 3515 REFER); the call ends once the target has answered."""
        slot.call.log.info("transfer requested")
        try:
            slot.call.xfer(uri, pj.CallOpParam(True))
        except pj.Error as e:
            slot.call.log.warning("error sip.transfer_failed %s", e.info(), extra={"code": "sip.transfer_failed"})
            if slot.events is not None:
                slot.events.error("sip.transfer_failed")
            if slot.pipeline is not None:
                slot.pipeline.transfer_failed(500)

    def on_transfer_status(self, call: AgentCall, status: int, final: bool) -> None:
        slot = self.slots.get(call.getId())
        if slot is None or not final:
            return
        if slot.warm is not None and slot.warm.state == "referring":
            slot.warm.on_refer_status(status, final)  # the REFER with Replaces: its own fallback
            return
        if 200 <= status < 300:
            self._hang_up(slot, "transferred", None)
        else:
            call.log.info("transfer failed status=%d", status)
            if slot.events is not None:
                slot.events.error("sip.transfer_failed", status=status)
            if slot.pipeline is not None:
                slot.pipeline.transfer_failed(status)

    def fail_call(self, call: AgentCall, code: str) -> None:
        """End a call whose set-up broke (no pipeline to apologize through)."""
        slot = self.slots.get(call.getId())
        if slot is not None and slot.events is not None:
            slot.events.error(code)
        if slot is not None:
            self._hang_up(slot, "internal_error", code)

    # -- hygiene -----------------------------------------------------------------------------
    def _hang_up_id(self, call_index: int, reason: str, code: str | None) -> None:
        slot = self.slots.get(call_index)
        if slot is not None:
            self._hang_up(slot, reason, code)

    def _hang_up(self, slot: CallSlot, reason: str, code: str | None) -> None:
        if slot.ending:
            return
        slot.ending = True
        slot.hung_up_by = f"agent:{reason}"
        slot.call.log.info("hang up reason=%s%s", reason, f" error={code}" if code else "")
        if slot.events is not None:
            slot.events.event("hangup", reason=reason, error=code)
            if code == "sip.rtp_timeout":
                slot.events.error(code)
        op = pj.CallOpParam()
        op.statusCode = 200
        op.txOption.headers.append(_header("Reason", f'SIP;cause=200;text="{reason}"'))
        try:
            slot.call.hangup(op)
        except pj.Error as e:
            slot.call.log.warning("error sip.hangup_failed %s", e.info(), extra={"code": "sip.hangup_failed"})

    def _bury(self) -> None:
        """Release what ended calls held, on the loop turn after their DISCONNECTED callback.

        (Their Call objects went with that callback: see ``on_disconnected``.)
        """
        for remains in self._graveyard:
            if remains.port is not None:
                # The call's own conference port is gone, so nothing transmits to or from this
                # one any more: it waits, connected to nothing, for the next call.
                self._free_ports.append(remains.port)
            if remains.pipeline is not None:
                self._draining.append(remains.pipeline)
        self._graveyard.clear()

    def _install_guard(self) -> None:
        sip = self.cfg.sip
        auth = DigestAuth(sip.auth_user, sip.auth_password, sip.auth_realm, sip.auth_nonce_lifetime_s) \
            if sip.auth_user else None
        self.guard = SipGuard(self.admission, auth, lambda: not self.drain.active, sip.retry_after_s,
                              self._answers_uri)
        self.guard.install()

    def _answers_uri(self, uri: str) -> bool:
        """The guard asks, for a new INVITE: does an agent answer this Request-URI (else 404)?"""
        if self.agents.pick(dialled_user(uri)) is not None:
            return True
        log.info("call refused status=404 reason=unknown_user dialled=%r", (dialled_user(uri) or "")[:64])
        if self.metrics is not None:
            self.metrics.calls_rejected.labels("unknown_user").inc()
        return False

    def _housekeeping(self, now: float) -> None:
        self._draining = [p for p in self._draining if p.alive()]
        self._tick_transfers(now)
        self.admission.cpu.sample(now)
        self.admission.active_calls = self.calls_in_progress()
        sip = self.cfg.sip
        for slot in list(self.slots.values()):
            if slot.ending:
                continue
            age = now - slot.started
            if slot.pipeline is None:
                if age >= sip.rtp_timeout_s:  # answered, but media never came up
                    self._hang_up(slot, "no_media", "sip.rtp_timeout")
                continue
            if age >= sip.max_call_s and not slot.max_length_said:
                slot.max_length_said = True
                assert slot.agent is not None  # admitted calls only have a pipeline
                slot.pipeline.say_and_hang_up(slot.agent.max_call_goodbye, "max_call_length")
                continue
            if age >= sip.max_call_s + 15:  # the goodbye could not be played: end it anyway
                self._hang_up(slot, "max_call_length", None)
                continue
            assert slot.watch is not None
            dead = slot.watch.check(now, self._rx_packets(slot), slot.held)
            if dead == "rtp_timeout":
                self._hang_up(slot, "rtp_timeout", "sip.rtp_timeout")
            elif dead == "hold_timeout":
                self._hang_up(slot, "hold_timeout", None)  # the caller left us on hold: not a fault

    @staticmethod
    def _rx_packets(slot: CallSlot) -> int:
        assert slot.watch is not None
        receiving = (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD)
        try:
            ci = slot.call.getInfo()
            for mi in ci.media:
                # Music on hold counts as packets too (a held call's stream is REMOTE_HOLD).
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status in receiving:
                    st = slot.call.getStreamStat(mi.index)
                    if mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                        # The caller's audio waits here before the pipeline hears it: part of the
                        # voice-to-voice time that the turn records (on the bridge clock) cannot see.
                        slot.jitter_buffer_ms = float(st.jbuf.avgDelayMsec)
                    return int(st.rtcp.rxStat.pkt)
        except pj.Error:
            pass
        return slot.watch.pkts
