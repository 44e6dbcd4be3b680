"""A scripted SIP caller (pjsua2): plays caller turns into a call and records what it hears.

Used by the end-to-end tests and the SIP benchmark, and handy by hand::

    python -m benchmarks.harness.caller sip:agent@127.0.0.1:5060 --codec PCMU \
        --play ../shared/corpus/wav/hours_saturday_0.wav --record heard.wav --json result.json

It waits for the greeting to finish, plays each WAV, waits for the agent's reply to finish
(agent audio, then ``--quiet-ms`` of silence), and so on. All times in the JSON are
milliseconds since the call was answered, measured here, at the caller, in media time: frames
of the caller's conference bridge, whose every 20 ms tick sends one frame into the call and
hands one received frame on. ``--stereo-wav`` writes both directions on that one clock (left:
what was sent, right: what was heard; time 0 is the answer), for checking the JSON's figures
from the audio alone (benchmarks.harness.recording_v2v).
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import math
import sys
import time
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pjsua2 as pj

from benchmarks.harness.metrics import last_voiced_ms
from voicebox.audio.wavio import read_wav, write_wav

RATE_HZ = 16000
FRAME_MS = 20
FRAME = RATE_HZ * FRAME_MS // 1000
VOICE_RMS = 200.0  # agent frames louder than this count as speech (its silence is digital zero)
CODEC_IDS = {"G722": "G722/16000/1", "PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1"}


class Recorder(pj.AudioMediaPort):
    """Keeps every frame heard, and when the last voiced one was (frame counter = media time)."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []
        self.voiced_frames = 0
        self.last_voiced_index = -1
        self.first_voiced_index = -1

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802
        if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO or not frame.size:
            data = bytes(FRAME * 2)
        else:
            data = bytes(frame.buf)
        self.frames.append(data)
        x = np.frombuffer(data, dtype=np.int16).astype(np.float32)
        if x.size and float(np.sqrt(np.mean(x * x))) > VOICE_RMS:
            self.voiced_frames += 1
            self.last_voiced_index = len(self.frames) - 1
            if self.first_voiced_index < 0:
                self.first_voiced_index = self.last_voiced_index

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE


class Tap(pj.AudioMediaPort):
    """What the player sends into the call, frame by frame, as the bridge hands it on.

    The player transmits to this port as well as to the call. Each frame is filed under the
    recorder's index of the same bridge tick: the bridge hands frames on in port order, and
    this port is created after the recorder, so the recorder's frame of this tick is its last.
    """

    def __init__(self, clock: Recorder) -> None:
        super().__init__()
        self.clock = clock
        self.frames: list[tuple[int, bytes]] = []

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
            self.frames.append((len(self.clock.frames) - 1, bytes(frame.buf)))

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE


class Player(pj.AudioMediaPort):
    """Sends queued audio, then silence; notes the media time its first frame went out.

    A tick asks the player for its frame before it hands the recorder the tick's received one,
    so the recorder's frame count then is the index of the tick that sends it (``started_at``).
    With ``echo_from``, it also sends back what the agent said ``echo_delay_ms`` ago at
    ``echo_db``: a line with echo, for testing that the agent is not interrupted by its own voice.
    """

    def __init__(self, clock: Recorder, echo_from: Recorder | None = None, echo_db: float = -10.0,
                 echo_delay_ms: int = 60) -> None:
        super().__init__()
        self.clock = clock
        self.audio = np.zeros(0, dtype=np.int16)
        self.pos = 0
        self.pending: np.ndarray | None = None  # handed over whole: the media thread picks it up
        self.started_at: int | None = None  # the recorder index of the tick that sent its first frame
        self.silence = bytes(FRAME * 2)
        self.echo_from = echo_from
        self.echo_gain = 10 ** (echo_db / 20)
        self.echo_frames = max(1, echo_delay_ms // FRAME_MS)

    def play(self, samples: np.ndarray) -> None:
        self.started_at = None
        self.pending = samples.astype(np.int16)

    @property
    def busy(self) -> bool:
        return self.pending is not None or self.pos < len(self.audio)

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802
        if self.pending is not None:
            self.audio, self.pos, self.pending = self.pending, 0, None
            self.started_at = len(self.clock.frames)
        if self.pos < len(self.audio):
            chunk = self.audio[self.pos : self.pos + FRAME]
            self.pos += FRAME
            data = chunk.tobytes().ljust(FRAME * 2, b"\0")
        else:
            data = self.silence
        heard = self.echo_from.frames if self.echo_from is not None else None
        if heard and len(heard) >= self.echo_frames:
            echo = np.frombuffer(heard[-self.echo_frames], dtype=np.int16).astype(np.float32) * self.echo_gain
            mixed = np.frombuffer(data, dtype=np.int16).astype(np.float32) + echo
            data = np.clip(mixed, -32768, 32767).astype(np.int16).tobytes()
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(data)
        frame.size = FRAME * 2

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802
        pass


@dataclass
class TurnResult:
    wav: str
    play_start_ms: float = 0.0
    play_end_ms: float = 0.0
    reply_onset_ms: float | None = None
    reply_end_ms: float | None = None
    barge_after_ms: int | None = None  # played this long after the agent started talking
    speech_onset_ms: float | None = None  # when our speech (not the WAV's lead-in) began
    agent_stopped_ms: float | None = None  # the agent fell silent after that (barge-in turns)


@dataclass
class CallResult:
    uri: str
    codec_wanted: str
    sip_call_id: str = ""
    answered: bool = False
    status: int = 0
    reason: str = ""
    codec: str = ""
    disconnected_by: str = ""
    greeting_onset_ms: float | None = None
    greeting_end_ms: float | None = None
    ended_ms: float | None = None
    turns: list[TurnResult] = field(default_factory=list)
    transfer_to: str = ""  # the REFER's target, if the agent transferred us
    transfer_answered: bool = False  # the call to that target was answered
    refused_transfers: list[str] = field(default_factory=list)  # REFERs we answered 603 (--refuse-replaces)
    srtp: bool = False  # the audio stream ran over RTP/SAVP (SRTP)
    jitter_buffer_ms: float | None = None  # our receive jitter buffer's average delay (pjmedia stats)
    hold_ms: float | None = None  # we put the call on hold (re-INVITE a=sendonly) here (--hold-s)
    unhold_ms: float | None = None  # and took it off hold here, once the audio was active again
    error: str = ""


class CallerCall(pj.Call):
    def __init__(self, acc: pj.Account) -> None:
        super().__init__(acc)
        self.account = acc
        self.state = pj.PJSIP_INV_STATE_NULL
        self.media_ready = False
        self.audio_active = False  # now, not ever: false while we hold the call
        self.confirmed_at: float | None = None
        self.disconnected_at: float | None = None
        self.status = 0
        self.reason = ""
        self.transfer_to = ""
        self.transferred: CallerCall | None = None  # the new call a REFER made us place
        self.refuse_replaces = False  # a phone or PBX that does not do attended transfer
        self.refused: list[str] = []

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:  # noqa: N802
        if self.refuse_replaces and "replaces=" in prm.dstUri.lower():
            self.refused.append(prm.dstUri)
            prm.statusCode = 603  # pjsua answers the REFER with this instead of 202
            return
        self.transfer_to = prm.dstUri
        self.transferred = CallerCall(self.account)
        prm.newCall = self.transferred

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        ci = self.getInfo()
        self.state = ci.state
        self.status = ci.lastStatusCode
        self.reason = ci.lastReason
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.monotonic()
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected_at = time.monotonic()

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        ci = self.getInfo()
        self.audio_active = False
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.media_ready = True
                self.audio_active = True


class Caller:
    """One pjsua2 endpoint on loopback placing one scripted call."""

    def __init__(
        self, host: str = "127.0.0.1", codec: str = "PCMU", rtp_port: int = 46000,
        transport: str = "udp", srtp: str = "off", jitter_buffer_ms: int | None = None,
        echo_db: float | None = None, echo_delay_ms: int = 60,
    ) -> None:
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = "voicebox-test-caller"
        cfg.logConfig.level = 1
        cfg.logConfig.consoleLevel = 1
        cfg.medConfig.clockRate = RATE_HZ
        cfg.medConfig.sndClockRate = RATE_HZ
        cfg.medConfig.audioFramePtime = FRAME_MS
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        if jitter_buffer_ms is not None:
            # pjmedia's defaults prefetch for a WAN (~100 ms and more on loopback); a benchmark on
            # one machine wants a small, fixed buffer so the caller's timing is the agent's.
            cfg.medConfig.jbInit = cfg.medConfig.jbMinPre = jitter_buffer_ms
            cfg.medConfig.jbMaxPre = jitter_buffer_ms
            cfg.medConfig.jbMax = max(4 * jitter_buffer_ms, 100)
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        for info in self.ep.codecEnum2():
            self.ep.codecSetPriority(info.codecId, 0)
        if codec not in CODEC_IDS:
            # A codec the agent does not support (tests of 488): enable it by its pjsua id.
            self.ep.codecSetPriority(codec, 255)
        else:
            self.ep.codecSetPriority(CODEC_IDS[codec], 255)
        tc = pj.TransportConfig()
        tc.port = 0
        tc.boundAddress = host
        tc.publicAddress = host
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        # The URI's ;transport= picks the one used; TCP and TLS just have to exist.
        if transport == "tcp":
            self.ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tc)
        elif transport == "tls":
            tc.tlsConfig.method = pj.PJSIP_SSLV23_METHOD
            tc.tlsConfig.verifyServer = False  # tests use a self-signed certificate
            self.ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tc)
        self.ep.libStart()
        ac = pj.AccountConfig()
        ac.idUri = f"sip:caller@{host}"
        mt = ac.mediaConfig.transportConfig
        mt.port = rtp_port
        mt.portRange = 200
        mt.boundAddress = host
        mt.publicAddress = host
        srtp_use = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
                    "mandatory": pj.PJMEDIA_SRTP_MANDATORY}
        ac.mediaConfig.srtpUse = srtp_use[srtp]  # mandatory: the offer is RTP/SAVP with SDES keys
        ac.mediaConfig.srtpSecureSignaling = 0
        self.acc = pj.Account()
        self.acc.create(ac, True)
        # The call and its bridge ports outlive run(): the bridge clock thread may be inside a
        # port's callback at any moment, so they are disconnected first and freed in close().
        self._call: CallerCall | None = None
        self._ports: list[pj.AudioMediaPort] = []
        self.codec = codec
        self.echo_db, self.echo_delay_ms = echo_db, echo_delay_ms
        self.refuse_replaces = False

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ep.libHandleEvents(10)

    def run(
        self,
        uri: str,
        wavs: list[Path],
        record: Path | None,
        quiet_ms: int = 2000,
        answer_timeout_s: float = 15,
        reply_timeout_s: float = 30,
        wait_hangup_s: float = 0,
        hang_up: bool = True,
        dtmf: str = "",
        stereo: Path | None = None,
        hold_s: float = 0,
        hold_turn: int = 1,
        hold_into_reply_ms: int = 600,
    ) -> CallResult:
        """``hold_s``: put the call on hold ``hold_into_reply_ms`` into the agent's reply to turn
        ``hold_turn`` (1-based) for this long, take it off hold, and go on with the next turn."""
        res = CallResult(uri, self.codec)
        call = CallerCall(self.acc)
        call.refuse_replaces = self.refuse_replaces
        rec = Recorder()
        tap = Tap(rec)
        player = Player(rec, rec if self.echo_db is not None else None, self.echo_db or 0.0, self.echo_delay_ms)
        self._call, self._ports = call, [player, tap, rec]
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE_HZ, 1, FRAME_MS * 1000, 16)
        rec.createPort("rec", fmt)
        tap.createPort("tap", fmt)  # after the recorder: see Tap
        player.createPort("play", fmt)
        prm = pj.CallOpParam(True)
        call.makeCall(uri, prm)
        res.sip_call_id = call.getInfo().callIdString
        deadline = time.monotonic() + answer_timeout_s
        while time.monotonic() < deadline and call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ep.libHandleEvents(10)
            if call.confirmed_at is not None and call.media_ready:
                break
        if call.confirmed_at is None or not call.media_ready:
            res.status, res.reason = call.status, call.reason
            if call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                res.error = "not answered in time"
                call.hangup(pj.CallOpParam(True))
                self.pump(1)
            return self._finish(res, call, rec, record, tap, stereo)
        res.answered = True

        def connect() -> None:
            """Our ports to the call's audio (again after an unhold: the stream may be new)."""
            ci = call.getInfo()
            for mi in ci.media:
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    aud = call.getAudioMedia(mi.index)
                    aud.startTransmit(rec)
                    player.startTransmit(tap)
                    player.startTransmit(aud)
                    si = call.getStreamInfo(mi.index)
                    res.codec = si.codecName
                    res.srtp = bool(si.proto & pj.PJMEDIA_TP_PROFILE_SRTP)
                    return

        connect()
        t0 = time.monotonic()
        frame_base = len(rec.frames)  # media time: frames since the answer

        def ms_of(index: int) -> float:
            return (index - frame_base) * FRAME_MS

        def wait_reply(start_index: int, timeout_s: float, onset_only: bool = False,
                       spurt: bool = False) -> tuple[float | None, float | None]:
            """Media times of the agent's next speech onset and end (after quiet_ms of silence).

            ``onset_only``: return at the onset (the next turn will talk over this reply).
            ``spurt``: the onset is the start of a talk spurt, not audio already under way at
            ``start_index`` (a reply the caller talked over)."""
            end = time.monotonic() + timeout_s
            onset = None
            while time.monotonic() < end and call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                self.ep.libHandleEvents(10)
                if onset is None and rec.last_voiced_index >= start_index:
                    onset = next(
                        (i for i in range(start_index, len(rec.frames))
                         if _rms(rec.frames[i]) > VOICE_RMS
                         and not (spurt and i > 0 and _rms(rec.frames[i - 1]) > VOICE_RMS)),
                        None,
                    )
                    if onset is not None and onset_only:
                        return ms_of(onset), None
                if onset is not None and (len(rec.frames) - 1 - rec.last_voiced_index) * FRAME_MS >= quiet_ms:
                    return ms_of(onset), ms_of(rec.last_voiced_index + 1)
            if onset is not None:
                return ms_of(onset), ms_of(rec.last_voiced_index + 1)
            return None, None

        over_greeting = bool(wavs) and _barge_spec(wavs[0])[1] is not None and not dtmf
        res.greeting_onset_ms, res.greeting_end_ms = wait_reply(frame_base, reply_timeout_s, over_greeting)
        if dtmf and call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            call.dialDtmf(dtmf)  # RFC 4733 telephone-events by default
            turn = TurnResult(f"dtmf:{len(dtmf)} keys", ms_of(len(rec.frames)), ms_of(len(rec.frames)))
            turn.reply_onset_ms, turn.reply_end_ms = wait_reply(len(rec.frames), reply_timeout_s)
            res.turns.append(turn)
        last_onset = res.greeting_onset_ms
        barging = [_barge_spec(w)[1] is not None for w in wavs] + [False]
        for n, item in enumerate(wavs):
            if call.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                break
            wav, barge_after = _barge_spec(item)
            samples, _ = read_wav(wav, RATE_HZ)
            turn = TurnResult(str(wav), barge_after_ms=barge_after)
            if barge_after is not None and res.turns and res.turns[-1].reply_onset_ms is not None:
                last_onset = res.turns[-1].reply_onset_ms
            if barge_after is not None and last_onset is not None:
                # Talk over the agent: start barge_after ms into its reply, not after it.
                while ms_of(len(rec.frames)) < last_onset + barge_after and call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                    self.ep.libHandleEvents(5)
            start_index = len(rec.frames)
            player.play(samples)
            while player.busy and call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                self.ep.libHandleEvents(10)
            # The tick that sent the first frame, not the one when play() was called: a tick
            # already under way then (it had asked the player) sends it a frame later.
            turn.play_start_ms = ms_of(start_index if player.started_at is None else player.started_at)
            turn.play_end_ms = turn.play_start_ms + len(samples) * 1000 / RATE_HZ
            turn.speech_onset_ms = turn.play_start_ms + _speech_onset_ms(samples)
            # The reply is looked for from where our speech ended, not where the WAV did: an
            # agent quick enough starts it during the WAV's trailing silence (or noise).
            spoke_ms = last_voiced_ms(samples, RATE_HZ) or len(samples) * 1000 / RATE_HZ
            speech_end = frame_base + math.ceil((turn.play_start_ms + spoke_ms) / FRAME_MS)
            holding = hold_s > 0 and n + 1 == hold_turn
            turn.reply_onset_ms, turn.reply_end_ms = wait_reply(
                speech_end, reply_timeout_s, barging[n + 1] or holding, spurt=True)
            if holding:
                # Into the agent's reply, the way a caller's PBX puts them on hold mid-sentence.
                until = (turn.reply_onset_ms or ms_of(len(rec.frames))) + hold_into_reply_ms
                while ms_of(len(rec.frames)) < until and call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                    self.ep.libHandleEvents(5)
                self._hold(call, res, hold_s, lambda: ms_of(len(rec.frames)))
                if call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                    connect()
            if barge_after is not None:
                onset_index = frame_base + int(turn.speech_onset_ms // FRAME_MS)
                stop = _silence_start(rec.frames, onset_index, BARGE_SILENCE_MS // FRAME_MS)
                turn.agent_stopped_ms = None if stop is None else ms_of(stop)
            res.turns.append(turn)
        if wait_hangup_s > 0:
            end = time.monotonic() + wait_hangup_s
            while time.monotonic() < end and call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                self.ep.libHandleEvents(10)
        if call.transferred is not None:
            # Blind transfer: we call the target ourselves; see it answered, then leave.
            res.transfer_to = call.transfer_to
            end = time.monotonic() + 10
            while time.monotonic() < end and call.transferred.confirmed_at is None:
                self.ep.libHandleEvents(10)
                if call.transferred.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                    break
            res.transfer_answered = call.transferred.confirmed_at is not None
            if call.transferred.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                self.pump(0.5)
                call.transferred.hangup(pj.CallOpParam(True))
                self.pump(1)
        res.refused_transfers = list(call.refused)
        res.jitter_buffer_ms = _jitter_buffer_ms(call)
        if call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            if hang_up:
                res.disconnected_by = "caller"
                call.hangup(pj.CallOpParam(True))
                end = time.monotonic() + 3
                while time.monotonic() < end and call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
                    self.ep.libHandleEvents(10)
        else:
            res.disconnected_by = "agent"
        if call.disconnected_at is not None:
            res.ended_ms = (call.disconnected_at - t0) * 1000
        return self._finish(res, call, rec, record, tap, stereo, frame_base)

    def _hold(self, call: CallerCall, res: CallResult, seconds: float, media_ms: Callable[[], float]) -> None:
        """Hold (re-INVITE a=sendonly), wait ``seconds``, unhold (a=sendrecv), wait for audio."""
        if call.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            return
        res.hold_ms = media_ms()
        call.setHold(pj.CallOpParam(True))
        end = time.monotonic() + seconds
        while time.monotonic() < end and call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ep.libHandleEvents(10)
        if call.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            res.error = "hung up while on hold"
            return
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        call.reinvite(prm)
        end = time.monotonic() + 5
        while time.monotonic() < end and not call.audio_active and call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ep.libHandleEvents(10)
        if not call.audio_active:
            res.error = "audio not active after the unhold"
            return
        res.unhold_ms = media_ms()

    def _finish(self, res: CallResult, call: CallerCall, rec: Recorder, record: Path | None, tap: Tap,
                stereo: Path | None, frame_base: int = 0) -> CallResult:
        res.status = res.status or call.status
        res.reason = res.reason or call.reason
        if record is not None:
            audio = np.frombuffer(b"".join(rec.frames), dtype=np.int16) if rec.frames else np.zeros(0, np.int16)
            write_wav(record, audio, RATE_HZ)
        if stereo is not None:
            _write_stereo(stereo, tap.frames, rec.frames, frame_base)
        return res

    def close(self) -> None:
        """Tear down in an order the bridge clock survives: ports disconnected, a few ticks
        let pass, then the call, ports and account freed, and only then the library."""
        if self._ports:
            try:
                self._ports[0].stopTransmit(self._ports[1])  # player -> tap: the one link that outlives the call
            except pj.Error:
                pass  # never registered: run() failed before createPort
        self.pump(0.1)
        self._call = None
        self._ports = []
        self.acc = None
        gc.collect()
        self.ep.libDestroy()


def _write_stereo(path: Path, sent: list[tuple[int, bytes]], heard: list[bytes], frame_base: int) -> None:
    """Left: what was sent, right: what was heard, tick by tick from the answer (frame_base)."""
    n = max(0, len(heard) - frame_base)
    out = np.zeros((n, FRAME, 2), dtype=np.int16)
    for i, data in enumerate(heard[frame_base:]):
        out[i, : len(data) // 2, 1] = np.frombuffer(data, dtype=np.int16)[:FRAME]
    for index, data in sent:
        if 0 <= index - frame_base < n:
            out[index - frame_base, : len(data) // 2, 0] = np.frombuffer(data, dtype=np.int16)[:FRAME]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE_HZ)
        w.writeframes(out.tobytes())


def _jitter_buffer_ms(call: pj.Call) -> float | None:
    """Average delay of the call's receive jitter buffer so far (None once the media is gone)."""
    try:
        ci = call.getInfo()  # kept: its media vector dies with it (SWIG), garbage if iterated unowned
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                stat = call.getStreamStat(mi.index)
                return float(stat.jbuf.avgDelayMsec)
    except pj.Error:
        pass
    return None


BARGE_SILENCE_MS = 450  # longer than the agent's pauses at commas and between sentences


def _barge_spec(item: Path) -> tuple[Path, int | None]:
    """``turn.wav@900``: play this turn 900 ms into the agent's reply (talking over it)."""
    name = str(item)
    if "@" in name:
        path, _, ms = name.rpartition("@")
        if ms.isdigit():
            return Path(path), int(ms)
    return item, None


def _speech_onset_ms(samples: np.ndarray) -> float:
    """Where the WAV's speech begins: its first 20 ms frame louder than VOICE_RMS."""
    for i in range(0, len(samples) - FRAME + 1, FRAME):
        x = samples[i : i + FRAME].astype(np.float32)
        if float(np.sqrt(np.mean(x * x))) > VOICE_RMS:
            return i * 1000 / RATE_HZ
    return 0.0


def _silence_start(frames: list[bytes], start: int, run: int) -> int | None:
    """The first frame at or after ``start`` that begins ``run`` frames of agent silence."""
    quiet = 0
    for i in range(max(0, start), len(frames)):
        if _rms(frames[i]) <= VOICE_RMS:
            quiet += 1
            if quiet >= run:
                return i - run + 1
        else:
            quiet = 0
    return None


def _rms(frame: bytes) -> float:
    x = np.frombuffer(frame, dtype=np.int16).astype(np.float32)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("uri")
    p.add_argument("--codec", default="PCMU")
    p.add_argument("--play", action="append", default=[], type=Path,
                   help="caller turn WAV (repeatable); WAV@MS plays it MS ms into the agent's reply")
    p.add_argument("--record", type=Path, help="write what the caller heard to this WAV")
    p.add_argument("--stereo-wav", type=Path,
                   help="write a stereo WAV on the caller's media clock: left what it sent, right what it heard")
    p.add_argument("--json", type=Path, help="write the result here (else stdout)")
    p.add_argument("--quiet-ms", type=int, default=2000, help="silence that ends an agent reply")
    p.add_argument("--reply-timeout-s", type=float, default=30)
    p.add_argument("--wait-hangup-s", type=float, default=0, help="after the last turn, wait for the agent to hang up")
    p.add_argument("--dtmf", default="", help="keys to press (RFC 4733) after the greeting")
    p.add_argument("--rtp-port", type=int, default=46000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--transport", default="udp", choices=["udp", "tcp", "tls"],
                   help="also open this transport (the URI's ;transport= chooses)")
    p.add_argument("--srtp", default="off", choices=["off", "optional", "mandatory"])
    p.add_argument("--jitter-buffer-ms", type=int, default=None,
                   help="fixed receive jitter buffer (default: pjmedia's adaptive one)")
    p.add_argument("--echo-db", type=float, default=None,
                   help="send the agent's own audio back at this level (e.g. -10): a line with echo")
    p.add_argument("--echo-delay-ms", type=int, default=60)
    p.add_argument("--hold-s", type=float, default=0,
                   help="put the call on hold (re-INVITE a=sendonly) this long, during a reply, then unhold")
    p.add_argument("--hold-turn", type=int, default=1, help="the turn (1-based) whose reply the hold interrupts")
    p.add_argument("--hold-into-reply-ms", type=int, default=600, help="how far into that reply the hold comes")
    p.add_argument("--refuse-replaces", type=int, default=0, choices=[0, 1],
                   help="1: answer a REFER with Replaces (attended transfer) 603, as phones without it do")
    args = p.parse_args(argv)
    faulthandler.enable()  # a crash inside pjsua prints where it happened
    caller = Caller(args.host, args.codec, args.rtp_port, args.transport, args.srtp, args.jitter_buffer_ms,
                    args.echo_db, args.echo_delay_ms)
    caller.refuse_replaces = bool(args.refuse_replaces)
    try:
        res = caller.run(
            args.uri, args.play, args.record, args.quiet_ms,
            reply_timeout_s=args.reply_timeout_s, wait_hangup_s=args.wait_hangup_s, dtmf=args.dtmf,
            stereo=args.stereo_wav, hold_s=args.hold_s, hold_turn=args.hold_turn,
            hold_into_reply_ms=args.hold_into_reply_ms,
        )
        out = json.dumps(asdict(res), indent=1)
        # Written before the library's teardown: the result is complete, and must not depend on it.
        if args.json:
            args.json.write_text(out)
        else:
            print(out, flush=True)
    finally:
        caller.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
