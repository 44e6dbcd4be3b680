"""Attended (warm) transfer: the agent calls the person first, tells them who is coming, then
connects the caller (REFER with Replaces, RFC 3891/5589); the blind REFER when that fails.

One ``WarmTransfer`` per transfer, owned by the SIP thread: its pjsua2 callbacks only record
what happened and move the state on, synthesis runs on a thread of its own and comes back
through ``submit``. The steps:

- ``dialing``: the agent's own call to the target, with the same context headers the blind
  REFER's Refer-To carries (transfer_context.py), while the summary sentence is synthesized;
- ``announcing``: once the target has answered and the sentence is ready, it plays into that
  call (an ``AudioMediaPlayer``; the caller meanwhile hears silence from the agent);
- ``referring``: the caller's leg is sent a REFER whose Refer-To replaces the target call;
  the caller's phone calls the target, whose phone swaps the calls and hangs up ours;
- ``connected``: the caller's NOTIFY said 2xx, the server ends the caller's leg (transferred);
- ``blind``: the target did not answer (timeout, busy, error) or the caller's side refused the
  REFER with Replaces: our leg to the target is hung up and the blind REFER goes out instead;
- ``aborted``: the caller hung up meanwhile.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pjsua2 as pj

from voicebox.audio.wavio import write_wav

log = logging.getLogger("voicebox.sip")

ANNOUNCE_TAIL_S = 0.4  # the far end's jitter buffer still holds the end of the sentence
CONNECT_GRACE_S = 10.0  # after the 2xx NOTIFY, the target's phone hangs up our leg itself


@dataclass(frozen=True)
class WarmPlan:
    """What the server knows when the pipeline asks for a transfer."""

    refer_to: str  # the blind REFER's Refer-To value (with its context headers): the fallback
    target: str  # the target's plain SIP URI
    headers: dict[str, str]  # the context headers our INVITE to the target carries
    summary: str  # the one sentence the target hears
    answer_timeout_s: float


class TargetCall(pj.Call):
    """The agent's outgoing leg to the transfer target: no slot, no pipeline, never admitted."""

    def __init__(self, owner: "WarmTransfer", acc: pj.Account) -> None:
        super().__init__(acc)
        self.owner = owner

    # Exceptions escaping a pjsua2 callback are printed by SWIG and forgotten: log them here.
    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        try:
            ci = self.getInfo()
            self.owner.on_target_state(ci.state, ci.lastStatusCode)
        except Exception:
            log.exception("error sip.callback_failed", extra={"code": "sip.callback_failed"})

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        try:
            self.owner.on_target_media()
        except Exception:
            log.exception("error sip.callback_failed", extra={"code": "sip.callback_failed"})


class WarmTransfer:
    """One attended transfer of ``caller`` (the caller's pjsua2 call) to ``plan.target``."""

    def __init__(
        self, caller: pj.Call, account: pj.Account, plan: WarmPlan,
        synthesize: Callable[[str], np.ndarray], rate_hz: int,
        submit: Callable[[Callable[[], None]], None],
        blind: Callable[[str], None], connected: Callable[[], None],
        logger: logging.LoggerAdapter | logging.Logger = log, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.caller = caller
        self.account = account
        self.plan = plan
        self._synthesize = synthesize
        self.rate_hz = rate_hz
        self._submit = submit
        self._blind = blind
        self._connected = connected
        self.log = logger
        self.clock = clock
        self.state = "new"
        self.target: TargetCall | None = None  # dropped in its DISCONNECTED callback (see server.py)
        self.answered = False
        self.media_ready = False
        self._summary: Path | None = None
        self._summary_s = 0.0
        self._summary_failed = False
        self._player: pj.AudioMediaPlayer | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="voicebox-warm-"))
        self._dir_lock = threading.Lock()  # the synthesis thread may still be writing when we close
        self._closed = False
        self._deadline = 0.0
        self.outcome = ""  # why it ended: "replaces", "blind: <why>", "aborted"

    # -- steps (SIP thread) ------------------------------------------------------------------
    def start(self) -> None:
        self.state = "dialing"
        self._deadline = self.clock() + self.plan.answer_timeout_s
        threading.Thread(target=self._synth, name="warm-summary", daemon=True).start()
        call = TargetCall(self, self.account)
        self.target = call  # before makeCall: its callbacks can fire inside it
        prm = pj.CallOpParam(True)
        for name, value in self.plan.headers.items():
            h = pj.SipHeader()
            h.hName, h.hValue = name, value
            prm.txOption.headers.append(h)
        self.log.info("warm transfer dialing")
        try:
            call.makeCall(self.plan.target, prm)
        except pj.Error as e:
            self.target = None
            self._fall_back(f"dial failed: {e.reason}")

    def tick(self, now: float) -> None:
        """Housekeeping: the target's answer timeout, and the end of the summary."""
        if self.state == "dialing" and now >= self._deadline:
            self._fall_back("no answer")
        elif self.state == "announcing" and now >= self._deadline:
            self._refer()
        elif self.state == "connected" and self.target is not None and now >= self._deadline:
            self._hang_up_target()  # the target's phone did not hang up the replaced call

    def on_target_state(self, state: int, status: int) -> None:
        if state == pj.PJSIP_INV_STATE_CONFIRMED and self.state == "dialing":
            self.answered = True
            self.log.info("warm transfer answered")
            self._maybe_announce()
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.target = None  # the Call must not outlive this callback (server.on_disconnected)
            self._stop_player()
            if self.state in ("dialing", "announcing"):
                self._fall_back(f"target ended status={status}")
            elif self.state == "referring":
                # The target's phone took the caller's INVITE with Replaces: the 2xx NOTIFY is due.
                self.log.info("warm transfer target leg replaced status=%d", status)

    def on_target_media(self) -> None:
        call = self.target
        if call is None:
            return
        ci = call.getInfo()  # held: its media list dies with it
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE and not self.media_ready:
                self.media_ready = True
                self.log.info("warm transfer media active")
        self._maybe_announce()

    def on_refer_status(self, status: int, final: bool) -> None:
        """The caller's NOTIFY about our REFER with Replaces (or its refusal)."""
        if self.state != "referring" or not final:
            return
        if 200 <= status < 300:
            self.state = "connected"
            self.outcome = "replaces"
            self._deadline = self.clock() + CONNECT_GRACE_S
            self.log.info("warm transfer connected")
            self._connected()
        else:
            self._fall_back(f"replaces refused status={status}")

    def abort(self) -> None:
        """The caller's leg ended: nothing to connect any more."""
        if self.busy:
            self.state = "aborted"
            self.outcome = "aborted"
            self.log.info("warm transfer aborted: the caller left")
            self._hang_up_target()
        # connected: the target's phone hangs up the replaced leg itself (else ``tick`` does)

    @property
    def busy(self) -> bool:
        """Still deciding between the warm and the blind transfer."""
        return self.state in ("new", "dialing", "announcing", "referring")

    @property
    def finished(self) -> bool:
        """Nothing of ours is up: the server may drop this (and with it the player)."""
        return not self.busy and self.target is None

    def close(self) -> None:
        """Free the player and the temporary file (SIP thread, before ``libDestroy``)."""
        self._stop_player()
        self._player = None
        with self._dir_lock:
            self._closed = True
            shutil.rmtree(self._dir, ignore_errors=True)

    # -- internals ---------------------------------------------------------------------------
    def _synth(self) -> None:
        try:
            audio = self._synthesize(self.plan.summary)
            path = self._dir / "summary.wav"
            with self._dir_lock:
                if self._closed:
                    return  # the transfer ended before the sentence was ready
                write_wav(path, audio, self.rate_hz)
            seconds = len(audio) / self.rate_hz
            self._submit(lambda: self._summary_ready(path, seconds))
        except Exception:
            self.log.exception("error sip.warm_summary_failed", extra={"code": "sip.warm_summary_failed"})
            self._submit(self._summary_lost)

    def _summary_ready(self, path: Path, seconds: float) -> None:
        self._summary, self._summary_s = path, seconds
        self.log.info("warm transfer summary ready %.1f s", seconds)
        self._maybe_announce()

    def _summary_lost(self) -> None:
        self._summary_failed = True  # the person still gets the caller, without the sentence
        self._maybe_announce()

    def _maybe_announce(self) -> None:
        if self.state != "dialing" or not (self.answered and self.media_ready):
            return
        if self._summary is None and not self._summary_failed:
            return
        self.state = "announcing"
        self._deadline = self.clock() + self._summary_s + ANNOUNCE_TAIL_S
        if self._summary is None or self.target is None:
            return
        aud = self._target_audio()
        if aud is None:
            return
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(self._summary), pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(aud)
        self._player = player
        self.log.info("warm transfer announcing %.1f s", self._summary_s)

    def _target_audio(self) -> pj.AudioMedia | None:
        call = self.target
        if call is None:
            return None
        ci = call.getInfo()  # held: its media list dies with it
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                return call.getAudioMedia(mi.index)
        return None

    def _refer(self) -> None:
        self._stop_player()
        if self.target is None:
            self._fall_back("target gone")
            return
        self.state = "referring"
        self.log.info("warm transfer referring with replaces")
        try:
            self.caller.xferReplaces(self.target, pj.CallOpParam(True))
        except pj.Error as e:
            self._fall_back(f"refer failed: {e.reason}")

    def _fall_back(self, why: str) -> None:
        self.state = "blind"
        self.outcome = f"blind: {why}"
        self.log.info("warm transfer falls back to blind: %s", why)
        self._hang_up_target()  # first: the desk must be free for the caller's own INVITE
        # Next loop turn: this may run inside a callback of the REFER subscription it replaces.
        refer_to = self.plan.refer_to
        self._submit(lambda: self._blind(refer_to))

    def _stop_player(self) -> None:
        if self._player is not None:
            try:
                aud = self._target_audio()
                if aud is not None:
                    self._player.stopTransmit(aud)
            except pj.Error:
                pass

    def _hang_up_target(self) -> None:
        call = self.target
        if call is None:
            return
        self._stop_player()
        try:
            call.hangup(pj.CallOpParam(True))
        except pj.Error as e:
            self.log.warning("error sip.warm_hangup_failed %s", e.info(), extra={"code": "sip.warm_hangup_failed"})
