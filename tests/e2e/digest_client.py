"""A real pjsua2 client with digest credentials: two calls, the first with a re-INVITE.

Run by test_digest_replay.py in its own process (pjsua2 allows one library per process):
    python tests/e2e/digest_client.py URI USER PASSWORD
Prints JSON: per call, whether it was answered, whether its re-INVITE was answered, and how it ended.
The second call's INVITE carries the credentials pjsip cached from the first challenge (the same
nonce, the next nonce count): the case replay protection must not break.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pjsua2 as pj  # noqa: E402

from voicebox.telephony.probe import free_port  # noqa: E402


class Call(pj.Call):
    def __init__(self, acc: pj.Account) -> None:
        super().__init__(acc)
        self.state = pj.PJSIP_INV_STATE_NULL
        self.status = 0
        self.media_updates = 0

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        ci = self.getInfo()
        self.state, self.status = ci.state, ci.lastStatusCode

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        self.media_updates += 1  # once for the INVITE's answer, once more per re-INVITE answered


def pump(ep: pj.Endpoint, until, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not until():
        ep.libHandleEvents(20)
    return bool(until())


def one_call(ep: pj.Endpoint, acc: pj.Account, uri: str, reinvite: bool) -> dict:
    call = Call(acc)
    call.makeCall(uri, pj.CallOpParam(True))
    answered = pump(ep, lambda: call.state == pj.PJSIP_INV_STATE_CONFIRMED and call.media_updates >= 1, 20)
    out = {"answered": answered, "status": call.status, "reinvite_answered": None}
    if answered and reinvite:
        time.sleep(0.5)
        call.reinvite(pj.CallOpParam(True))
        out["reinvite_answered"] = pump(ep, lambda: call.media_updates >= 2, 10)
        out["confirmed_after_reinvite"] = call.state == pj.PJSIP_INV_STATE_CONFIRMED
    if call.state != pj.PJSIP_INV_STATE_DISCONNECTED:
        call.hangup(pj.CallOpParam(True))
    pump(ep, lambda: call.state == pj.PJSIP_INV_STATE_DISCONNECTED, 10)
    out["ended_status"] = call.status
    return out


def main() -> int:
    uri, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
    ep = pj.Endpoint()
    ep.libCreate()
    epc = pj.EpConfig()
    epc.uaConfig.threadCnt = 0
    epc.uaConfig.mainThreadOnly = True
    epc.logConfig.consoleLevel = 1
    epc.medConfig.noVad = True
    ep.libInit(epc)
    ep.audDevManager().setNullDev()
    tcfg = pj.TransportConfig()
    tcfg.port = free_port("127.0.0.1")
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{user}@127.0.0.1"
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
    acfg.mediaConfig.transportConfig.port = 53900
    acfg.mediaConfig.transportConfig.portRange = 40
    acc = pj.Account()
    acc.create(acfg)
    calls = [one_call(ep, acc, uri, reinvite=True), one_call(ep, acc, uri, reinvite=False)]
    print(json.dumps({"calls": calls}), flush=True)
    acc.shutdown()
    ep.libDestroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
