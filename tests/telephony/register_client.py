"""Drive voicebox's Registration against a registrar for a while; print what happened as JSON.

Run by test_registration.py in its own process (pjsua2 allows one library per process):
    python tests/telephony/register_client.py REGISTRAR USER PASSWORD SECONDS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pjsua2 as pj  # noqa: E402

from voicebox.config import SipConfig, SipRegisterConfig  # noqa: E402
from voicebox.telephony.probe import free_port  # noqa: E402
from voicebox.telephony.registration import Registration  # noqa: E402
from voicebox.telephony.transports import create_transports  # noqa: E402


def main() -> int:
    registrar, user, password, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    sip = SipConfig(port=free_port(), rtp_port=49000, tcp=False)
    reg = SipRegisterConfig(registrar=registrar, user=user, password=password, expiry_s=10, retry_min_s=1, retry_max_s=4)
    ep = pj.Endpoint()
    ep.libCreate()
    epc = pj.EpConfig()
    epc.uaConfig.threadCnt = 0
    epc.uaConfig.mainThreadOnly = True
    epc.logConfig.consoleLevel = 1
    ep.libInit(epc)
    ep.audDevManager().setNullDev()
    create_transports(ep, sip)
    ep.libStart()
    registration = Registration(reg, sip, lambda acc, prm: None)
    registration.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        ep.libHandleEvents(20)
        now = time.monotonic()
        registration.tick(now)
    result = {
        "registered": registration.registered,
        "registrations": registration.registrations,
        "failures": len(registration.waits_s),
        "waits_s": registration.waits_s,
    }
    registration.unregister()
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        ep.libHandleEvents(20)
    registration.close()
    ep.libDestroy()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
