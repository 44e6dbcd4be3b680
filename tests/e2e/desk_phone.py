"""A desk phone for the end-to-end tests (pjsua2): the person a caller is transferred to.

It answers every call (``--answer``: 200, or e.g. 486 for a busy line), records each call's
audio to its own WAV, takes an INVITE with Replaces the way phones do (pjsua swaps the calls
and hangs up the replaced one itself), and writes what it saw to a JSON file::

    python -m tests.e2e.desk_phone --port 5090 --rtp-port 60600 --dir out --calls 2

Each call: the context headers of its INVITE (X-Voicebox-Session, X-Voicebox-Reason,
User-to-User), whether it replaced another call, whether it was answered, and who ended it
("remote", "desk", or "replaced" when an INVITE with Replaces took its place).
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import sys
import time
from pathlib import Path

import pjsua2 as pj

RATE_HZ = 16000
HEADERS = ("call-id", "x-voicebox-session", "x-voicebox-reason", "user-to-user", "replaces", "require", "referred-by")


def invite_headers(whole_msg: str) -> dict[str, str]:
    """The headers of interest of a SIP request, by lower-case name."""
    head = whole_msg.replace("\r\n", "\n").split("\n\n", 1)[0]
    out: dict[str, str] = {}
    for line in head.split("\n")[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() in HEADERS:
            out[name.strip().lower()] = value.strip()
    return out


class DeskCall(pj.Call):
    def __init__(self, phone: "DeskPhone", call_id: int, headers: dict[str, str], replaces: bool) -> None:
        super().__init__(phone.acc, call_id)
        self.phone = phone
        self.index = len(phone.seen)
        self.headers = headers
        self.replaces = replaces
        self.answered = False
        self.ended = False
        self.hung_up_by = ""
        self.replaced = False  # an INVITE with Replaces took this call's place
        self.status = 0
        self.recording = ""
        phone.calls.append(self)
        phone.seen.append(self.summary())

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.answered = True
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended = True
            self.status = ci.lastStatusCode
            if not self.hung_up_by:
                self.hung_up_by = "replaced" if self.replaced else "remote"
            # pjsua hands this call id to the next call at once: the Call must go with this
            # callback (as in voicebox/telephony/server.py), only its summary stays.
            self.phone.calls.remove(self)
        self.phone.seen[self.index] = self.summary()

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        if self.recording:
            return
        ci = self.getInfo()  # held: its media list dies with it
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                path = self.phone.dir / f"desk-call-{self.index}.wav"
                rec = pj.AudioMediaRecorder()
                rec.createRecorder(str(path))
                self.getAudioMedia(mi.index).startTransmit(rec)
                self.phone.recorders.append(rec)  # freed in close(), which writes the WAV header
                self.recording = str(path)
                self.phone.seen[self.index] = self.summary()
                return

    def onCallReplaceRequest(self, prm: pj.OnCallReplaceRequestParam) -> None:  # noqa: N802
        self.phone.replacing = invite_headers(prm.rdata.wholeMsg)  # prm.statusCode stays 200: accepted

    def onCallReplaced(self, prm: pj.OnCallReplacedParam) -> None:  # noqa: N802
        self.replaced = True
        self.hung_up_by = "replaced"
        prm.newCall = DeskCall(self.phone, prm.newCallId, self.phone.replacing, replaces=True)

    def summary(self) -> dict:
        return {
            "index": self.index, "headers": self.headers, "replaces": self.replaces, "answered": self.answered,
            "ended": self.ended, "status": self.status, "hung_up_by": self.hung_up_by, "recording": self.recording,
        }


class DeskAccount(pj.Account):
    def __init__(self, phone: "DeskPhone") -> None:
        super().__init__()
        self.phone = phone

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        call = DeskCall(self.phone, prm.callId, invite_headers(prm.rdata.wholeMsg), replaces=False)
        op = pj.CallOpParam()
        op.statusCode = self.phone.answer
        call.answer(op)


class DeskPhone:
    def __init__(self, host: str, port: int, rtp_port: int, out_dir: Path, answer: int) -> None:
        self.dir = out_dir
        self.answer = answer
        self.calls: list[DeskCall] = []  # the calls up now
        self.seen: list[dict] = []  # every call so far (DeskCall.summary), by index
        self.recorders: list[pj.AudioMediaRecorder] = []
        self.replacing: dict[str, str] = {}
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = "voicebox-test-desk"
        cfg.logConfig.level = 1
        cfg.logConfig.consoleLevel = 1
        cfg.medConfig.clockRate = RATE_HZ
        cfg.medConfig.sndClockRate = RATE_HZ
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()
        tc = pj.TransportConfig()
        tc.port = port
        tc.boundAddress = host
        tc.publicAddress = host
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        self.ep.libStart()
        ac = pj.AccountConfig()
        ac.idUri = f"sip:frontdesk@{host}:{port}"
        mt = ac.mediaConfig.transportConfig
        mt.port, mt.portRange = rtp_port, 100
        mt.boundAddress = mt.publicAddress = host
        self.acc = DeskAccount(self)
        self.acc.create(ac, True)

    def run(self, calls: int, timeout_s: float) -> None:
        """Until ``calls`` calls have ended (or ``timeout_s``), then a last look at the line."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and sum(c["ended"] for c in self.seen) < calls:
            self.ep.libHandleEvents(10)
        for call in list(self.calls):
            call.hung_up_by = "desk"
            try:
                call.hangup(pj.CallOpParam(True))
            except pj.Error:
                pass
        stop = time.monotonic() + 2
        while time.monotonic() < stop and self.calls:
            self.ep.libHandleEvents(10)

    def close(self) -> list[dict]:
        """Recorders closed (that writes their WAV headers), then calls and the library freed."""
        self.recorders = []
        gc.collect()
        out = list(self.seen)
        self.calls = []
        self.acc = None
        gc.collect()
        self.ep.libDestroy()
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rtp-port", type=int, default=60600)
    p.add_argument("--dir", type=Path, required=True, help="where the recordings and desk.json go")
    p.add_argument("--answer", type=int, default=200, help="status every INVITE gets (486: a busy line)")
    p.add_argument("--calls", type=int, default=1, help="exit once this many calls have ended")
    p.add_argument("--timeout-s", type=float, default=90)
    args = p.parse_args(argv)
    faulthandler.enable()
    args.dir.mkdir(parents=True, exist_ok=True)
    phone = DeskPhone(args.host, args.port, args.rtp_port, args.dir, args.answer)
    try:
        print("ready", flush=True)
        phone.run(args.calls, args.timeout_s)
    finally:
        calls = phone.close()
        (args.dir / "desk.json").write_text(json.dumps(calls, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
