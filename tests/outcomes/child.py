"""A separate voicebox process for the crash tests: it runs the real ``OutcomeService`` on a data
directory and is killed (SIGKILL) by the test at the worst moments.

    python -m tests.outcomes.child record DATA_DIR URL   store one outcome, print its id, never deliver
    python -m tests.outcomes.child serve DATA_DIR URL    start the outbox (and record one outcome if
                                                         told --record); exit once nothing is pending
The webhook secret comes from the environment variable VOICEBOX_TEST_WEBHOOK_SECRET.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from voicebox.agent import AgentConfig
from voicebox.outcomes.draft import OutcomeDraft
from voicebox.outcomes.service import OutcomeService

AGENT = "clinic"


def service(data_dir: Path, url: str) -> OutcomeService:
    agent = AgentConfig(
        name="A clinic", persona="Brief.", greeting="Hello.", facts={"phone": "555"},
        outcomes={"webhook": {"url": url, "secret": {"env": "VOICEBOX_TEST_WEBHOOK_SECRET"},
                              "timeout_s": 30, "retries": {"first_delay_s": 0.2, "jitter": 0}}},
    )
    return OutcomeService(data_dir, {AGENT: agent}, retention_days=30)


def draft() -> OutcomeDraft:
    return OutcomeDraft(kind="message", agent=AGENT, session_id="c0ffee01",
                        fields={"name": "Dana", "message": "Please call back"}, summary="Message from Dana")


def main(argv: list[str]) -> int:
    mode, data_dir, url = argv[0], Path(argv[1]), argv[2]
    svc = service(data_dir, url)
    if mode == "record":
        print(svc.record(draft()), flush=True)
        time.sleep(600)  # the outbox was never started: killed here, between storing and delivering
        return 1
    svc.start()
    if "--record" in argv:
        print(svc.record(draft()), flush=True)
    while svc.store.pending_head(AGENT, "webhook") is not None:
        time.sleep(0.05)
    svc.stop()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
