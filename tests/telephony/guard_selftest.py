"""Install the SIP guard on a bare pjsua2 endpoint and print how its self-test went (one JSON line).

Run as a child process (pjsua2 has one library per process):

    python tests/telephony/guard_selftest.py PORT [--msg-buf N] [--expect-version V]

``--msg-buf`` and ``--expect-version`` swap the guard's layout or pinned version for this run
only, the way a different pjsua2 wheel would look to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import pjsua2 as pj

from voicebox.config import SipConfig
from voicebox.telephony import rx_data
from voicebox.telephony.admission import Admission
from voicebox.telephony.sip_guard import GuardUnavailable, SipGuard


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--msg-buf", type=int)
    ap.add_argument("--expect-version")
    args = ap.parse_args()
    if args.msg_buf is not None:
        rx_data.LAYOUT = dataclasses.replace(rx_data.LAYOUT, msg_buf=args.msg_buf)
    if args.expect_version is not None:
        rx_data.PJSUA2_VERSION = args.expect_version
    ep = pj.Endpoint()
    ep.libCreate()
    epc = pj.EpConfig()
    epc.uaConfig.threadCnt = 0
    epc.uaConfig.mainThreadOnly = True  # as the server runs it
    epc.logConfig.level = epc.logConfig.consoleLevel = 1
    ep.libInit(epc)
    ep.audDevManager().setNullDev()
    tc = pj.TransportConfig()
    tc.port = args.port
    tc.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
    ep.libStart()
    guard = SipGuard(Admission(SipConfig()), None, lambda: True, 5)
    try:
        guard.install()
        result = {"installed": True, "error": ""}
    except GuardUnavailable as e:
        result = {"installed": False, "error": str(e)}
    ep.libDestroy()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
