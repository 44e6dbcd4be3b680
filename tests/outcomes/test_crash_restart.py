"""A voicebox killed with SIGKILL loses no outcome, and the business acts on each one once
(issue #19: "stored before it is promised, delivered at least once, acted on exactly once")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.outcomes.receiver import SECRET, Receiver
from voicebox.outcomes.store import OutcomeStore, outcomes_path

ROOT = Path(__file__).resolve().parents[2]


def child(mode: str, data_dir: Path, url: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "VOICEBOX_TEST_WEBHOOK_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.outcomes.child", mode, str(data_dir), url, *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def states(data_dir: Path) -> list[tuple[str, str, int]]:
    s = OutcomeStore(outcomes_path(data_dir))
    try:
        return [(d.outcome_id, d.state, d.tries) for o in s.query() for d in s.deliveries(o.id)]
    finally:
        s.close()


def test_killed_between_storing_and_delivering_then_restarted_delivers_once(tmp_path):
    data = tmp_path / "data"
    with Receiver() as rx:
        first = child("record", data, rx.url)
        oid = first.stdout.readline().strip()  # record returned: the caller was told "noted"
        assert len(oid) == 28, first.stderr.read()
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        assert first.returncode == -signal.SIGKILL
        assert not rx.arrivals  # nothing was sent before the kill
        assert states(data) == [(oid, "pending", 0)]

        again = child("serve", data, rx.url)
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        assert rx.order == [oid] and rx.seen()[oid] == 1 and rx.bad_signatures == 0
        assert rx.acted[oid]["fields"] == {"name": "Dana", "message": "Please call back"}
        assert states(data) == [(oid, "delivered", 1)]


def test_killed_after_the_receiver_got_it_but_before_marking_it_delivered(tmp_path):
    # The worst moment: the receiver has the outcome, the sender dies before hearing back. The
    # restarted sender sends it again; the idempotency key lets the receiver act on it once.
    data = tmp_path / "data"
    with Receiver() as rx:
        first = child("serve", data, rx.url, "--record")
        killed = threading.Event()

        def kill_sender(key: str) -> None:
            if not killed.is_set():
                first.send_signal(signal.SIGKILL)
                first.wait(30)
                killed.set()

        rx.on_request = kill_sender
        oid = first.stdout.readline().strip()
        assert len(oid) == 28, first.stderr.read()
        assert killed.wait(60)
        assert first.returncode == -signal.SIGKILL
        assert states(data) == [(oid, "pending", 0)]  # the try never came back

        rx.on_request = lambda key: None
        again = child("serve", data, rx.url)
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        assert rx.seen()[oid] == 2  # delivered at least once: here, twice...
        assert rx.order == [oid]  # ...acted on exactly once
        assert states(data) == [(oid, "delivered", 1)]
