"""The webhook channel and the outbox against a real HTTP receiver: signed, retried in order
through an outage, dead-lettered on a 4xx (issue #19, item 2)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import threading

import pytest

from tests.outcomes.fakes import FakeClock
from tests.outcomes.receiver import SECRET, Receiver
from voicebox.outcomes.channel import DeliveryFailed, StoredOutcome
from voicebox.outcomes.draft import OutcomeDraft
from voicebox.outcomes.outbox import Outbox, Route, backoff_s
from voicebox.outcomes.settings import Retries, Secret, WebhookConfig
from voicebox.outcomes.store import OutcomeStore
from voicebox.outcomes.webhook import WebhookChannel, verify

RETRIES = Retries(max_tries=12, first_delay_s=5, max_delay_s=300, jitter=0.2)


def webhook(url: str, clock=None, retries: Retries = RETRIES, secret: str = SECRET) -> WebhookChannel:
    cfg = WebhookConfig(url=url, secret=Secret(value=secret), timeout_s=5, retries=retries)
    return WebhookChannel(cfg, clock) if clock else WebhookChannel(cfg)


def draft(n: int) -> OutcomeDraft:
    return OutcomeDraft(kind="callback", agent="clinic", session_id=f"5e55{n:04x}",
                        fields={"name": f"Caller {n}", "phone": "+12125550123"},
                        summary=f"Call back caller {n}", form="callback")


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    s = OutcomeStore(tmp_path / "outcomes.sqlite3", {"clinic": ["webhook"]}, clock)
    yield s
    s.close()


def run_outbox(store, route, clock, until, timeout_s: float = 60.0) -> None:
    """The real dispatcher thread on the fake clock, until ``until()`` holds."""
    box = Outbox(store, [route], clock, clock.wait, random.Random(7), poll_s=30)
    box.start()
    try:
        done = threading.Event()
        deadline = threading.Timer(timeout_s, done.set)
        deadline.start()
        while not until() and not done.is_set():
            done.wait(0.01)
        deadline.cancel()
        assert until(), "the outbox did not get there"
    finally:
        box.stop()


def test_a_delivery_is_a_signed_json_post_keyed_by_the_outcome_id(store, clock):
    with Receiver() as rx:
        oid = store.record(draft(1))
        route = Route("clinic", webhook(rx.url, clock), RETRIES)
        Outbox(store, [route], clock, clock.wait).step(route)
        assert rx.bad_signatures == 0 and rx.order == [oid]
        h = rx.headers[0]
        assert h["Idempotency-Key"] == oid
        assert h["Content-Type"] == "application/json"
        assert h["X-Voicebox-Timestamp"] == str(int(clock()))
        # The documented scheme, recomputed by hand: sha256=HMAC(secret, "<timestamp>.<body>").
        body = rx.bodies[0]
        mac = hmac.new(SECRET.encode(), f"{h['X-Voicebox-Timestamp']}.".encode() + body, hashlib.sha256)
        assert h["X-Voicebox-Signature"] == "sha256=" + mac.hexdigest()
        assert verify(SECRET, h["X-Voicebox-Timestamp"], body, h["X-Voicebox-Signature"], clock())
        assert not verify("another-secret", h["X-Voicebox-Timestamp"], body, h["X-Voicebox-Signature"], clock())
        sent = json.loads(body)
        assert sent["id"] == oid and sent["kind"] == "callback" and sent["agent"] == "clinic"
        assert sent["fields"] == {"name": "Caller 1", "phone": "+12125550123"}
        assert sent["session_id"] == "5e550001" and sent["summary"] == "Call back caller 1"
        assert dt.datetime.fromisoformat(sent["created_at"]).timestamp() == pytest.approx(clock())
        d = store.deliveries(oid)[0]
        assert (d.state, d.tries, d.delivered_at) == ("delivered", 1, clock())


def test_a_wrong_secret_is_rejected_by_the_receiver_and_not_retried(store, clock):
    with Receiver() as rx:
        oid = store.record(draft(1))
        route = Route("clinic", webhook(rx.url, clock, secret="not-the-shared-one"), RETRIES)
        Outbox(store, [route], clock, clock.wait).step(route)
        assert rx.bad_signatures == 1 and not rx.acted
        d = store.deliveries(oid)[0]
        assert d.state == "dead" and d.last_error.startswith("HTTP 401")


def test_a_ten_minute_outage_delays_everything_then_delivers_all_once_in_order(store, clock):
    t0 = clock()
    with Receiver() as rx:
        rx.answer = lambda key: 503 if clock() < t0 + 600 else 200
        ids = [store.record(draft(n)) for n in range(5)]
        route = Route("clinic", webhook(rx.url, clock), RETRIES)
        run_outbox(store, route, clock, until=lambda: len(rx.acted) == 5)
        assert rx.order == ids  # in the order they were stored
        assert all(n == 1 for k, n in rx.seen().items() if k != ids[0])
        # While the receiver was down only the oldest was tried: later ones never overtook it.
        tries_of_first = rx.seen()[ids[0]]
        assert tries_of_first > 3
        assert rx.arrivals[:tries_of_first] == [ids[0]] * tries_of_first
        first = store.deliveries(ids[0])[0]
        assert first.state == "delivered" and first.delivered_at >= t0 + 600
        assert first.tries == rx.seen()[ids[0]]
        assert all(store.deliveries(i)[0].state == "delivered" for i in ids)


def test_a_4xx_dead_letters_at_once_with_the_reason(store, clock):
    with Receiver() as rx:
        rx.answer = lambda key: 422
        oid = store.record(draft(1))
        later = store.record(draft(2))
        route = Route("clinic", webhook(rx.url, clock), RETRIES)
        box = Outbox(store, [route], clock, clock.wait)
        box.step(route)
        d = store.deliveries(oid)[0]
        assert (d.state, d.tries) == ("dead", 1)
        assert d.last_error.startswith("HTTP 422 Unprocessable Entity") and "not a number" in d.last_error
        # A dead one no longer holds up the next.
        assert store.pending_head("clinic", "webhook").outcome_id == later


def test_after_max_tries_a_failing_delivery_is_dead_lettered(store, clock):
    retries = Retries(max_tries=3, first_delay_s=5, max_delay_s=60, jitter=0)
    with Receiver() as rx:
        rx.answer = lambda key: 500
        oid = store.record(draft(1))
        route = Route("clinic", webhook(rx.url, clock, retries), retries)
        run_outbox(store, route, clock, until=lambda: store.deliveries(oid)[0].state == "dead")
        d = store.deliveries(oid)[0]
        assert d.tries == 3 and len(rx.arrivals) == 3
        assert d.last_error.startswith("HTTP 500")


def test_a_refused_connection_is_retried_with_back_off(store, clock):
    from voicebox.telephony.probe import free_port

    oid = store.record(draft(1))
    route = Route("clinic", webhook(f"http://127.0.0.1:{free_port()}/x", clock), RETRIES)
    box = Outbox(store, [route], clock, clock.wait, random.Random(1))
    box.step(route)
    d = store.deliveries(oid)[0]
    assert (d.state, d.tries) == ("pending", 1)
    assert 4 <= d.next_try_at - clock() <= 6  # first_delay 5 s ± 20 %
    assert box.step(route) == d.next_try_at  # not due yet: nothing is tried early
    assert store.deliveries(oid)[0].tries == 1


def test_backoff_doubles_up_to_the_cap_and_jitters_within_bounds():
    flat = Retries(first_delay_s=5, max_delay_s=60, jitter=0)
    rng = random.Random(3)
    assert [backoff_s(flat, n, rng) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    jittered = Retries(first_delay_s=10, max_delay_s=1000, jitter=0.2)
    delays = [backoff_s(jittered, 2, rng) for _ in range(200)]
    assert all(16 <= x <= 24 for x in delays) and len(set(delays)) > 100


class Broken:
    name = "webhook"

    def __init__(self) -> None:
        self.calls = 0

    def deliver(self, outcome: StoredOutcome) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("a bug in a channel")
        if self.calls == 2:
            raise DeliveryFailed("mailbox full")


def test_a_channel_that_raises_is_retried_and_the_outbox_goes_on(store, clock):
    oid = store.record(draft(1))
    channel = Broken()
    route = Route("clinic", channel, Retries(first_delay_s=1, jitter=0))
    run_outbox(store, route, clock, until=lambda: store.deliveries(oid)[0].state == "delivered")
    d = store.deliveries(oid)[0]
    assert channel.calls == 3 and d.tries == 3 and d.last_error is None


def test_the_readme_example_request_verifies_with_its_secret():
    # The README shows a real request so a business can test its receiver against it.
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Outcomes"):]
    ts = re.search(r"^X-Voicebox-Timestamp: (\d+)$", section, re.M).group(1)
    sig = re.search(r"^X-Voicebox-Signature: (sha256=[0-9a-f]{64})$", section, re.M).group(1)
    key = re.search(r"^Idempotency-Key: (\w+)$", section, re.M).group(1)
    body = re.search(r"^(\{\"id\":.*\})$", section, re.M).group(1).encode()
    assert verify("s3cret", ts, body, sig, now=int(ts))
    assert json.loads(body)["id"] == key
