"""The outbox: delivers stored outcomes, at least once, in order, surviving restarts.

One worker thread per (agent, channel) takes the oldest pending delivery of that pair from the
store, tries it once, and writes down how it went. Nothing is held in memory between tries: a
process killed at any point (even after the receiver got the outcome but before it was marked
delivered) starts again from the table and delivers whatever is still pending. The receiver
may then see an outcome twice, with the same id as its idempotency key, which is how it acts on
it exactly once.

A failed try is retried after ``min(max_delay, first_delay * 2**(tries-1))``, varied by up to
± ``jitter`` of itself (so a receiver coming back is not hit by every box at once); after
``max_tries``, or at once when the channel says the failure is permanent (a 4xx), the delivery
is dead-lettered with its last error, for ``voicebox outcomes retry``.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Callable

from voicebox.outcomes.channel import Channel, DeliveryFailed
from voicebox.outcomes.settings import Retries
from voicebox.outcomes.store import Delivery, OutcomeStore
from voicebox.privacy.redact import redact

log = logging.getLogger("voicebox.outcomes")

# How often an idle worker looks at the table anyway: deliveries another process put back to
# pending (``voicebox outcomes retry``) are picked up within this.
POLL_S = 5.0

Wait = Callable[[threading.Event, float], bool]


def real_wait(event: threading.Event, seconds: float) -> bool:
    return event.wait(seconds)


@dataclass(frozen=True)
class Route:
    """Where one agent's outcomes go over one channel, and how stubbornly."""

    agent: str
    channel: Channel
    retries: Retries


def backoff_s(retries: Retries, tries: int, rng: random.Random) -> float:
    """Seconds before the next try, after ``tries`` failed ones (``tries >= 1``)."""
    base = min(retries.max_delay_s, retries.first_delay_s * 2 ** min(tries - 1, 60))
    return max(0.0, base * (1.0 + rng.uniform(-retries.jitter, retries.jitter)))


class Outbox:
    """Delivers pending deliveries for ``routes``; ``start`` resumes what an earlier process left.

    ``clock`` and ``wait`` (``wait(event, seconds)``: block until the event is set or the time
    has passed) are injectable so retries over minutes can be tested on a fake clock.
    """

    def __init__(
        self,
        store: OutcomeStore,
        routes: list[Route],
        clock: Callable[[], float] = time.time,
        wait: Wait = real_wait,
        rng: random.Random | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.store = store
        self.routes = list(routes)
        self.clock = clock
        self._wait = wait
        self._rng = rng or random.Random()
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._wakes: dict[tuple[str, str], threading.Event] = {}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for route in self.routes:
            key = (route.agent, route.channel.name)
            self._wakes[key] = threading.Event()
            t = threading.Thread(
                target=self._run, args=(route, self._wakes[key]),
                name=f"outbox-{route.agent}-{route.channel.name}", daemon=True,
            )
            self._threads.append(t)
            t.start()

    def wake(self, agent: str | None = None) -> None:
        """A new outcome is in: its workers look now instead of at their next poll."""
        for (a, _), event in self._wakes.items():
            if agent is None or a == agent:
                event.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stops the workers; one in the middle of a try finishes it first (at most the
        channel's timeout)."""
        self._stop.set()
        self.wake()
        for t in self._threads:
            t.join(timeout_s)

    def _run(self, route: Route, wake: threading.Event) -> None:
        while not self._stop.is_set():
            wake.clear()
            try:
                next_due = self.step(route)
            except Exception as e:  # noqa: BLE001 -- a locked or full database: the worker keeps going
                log.error("error outbox.failed agent=%s channel=%s: %s", route.agent, route.channel.name,
                          type(e).__name__ if not isinstance(e, sqlite3.Error) else e,
                          extra={"code": "outbox.failed", "agent": route.agent})
                next_due = None
            if self._stop.is_set():
                break
            delay = self.poll_s if next_due is None else min(self.poll_s, next_due - self.clock())
            if delay > 0:
                self._wait(wake, delay)

    def step(self, route: Route) -> float | None:
        """Try the route's oldest pending delivery if it is due. Returns when to look again:
        a time (now, after a try) or None when nothing is pending."""
        head = self.store.pending_head(route.agent, route.channel.name)
        if head is None:
            return None
        now = self.clock()
        if head.next_try_at > now:
            return head.next_try_at
        self._try(route, head)
        return now

    def _try(self, route: Route, d: Delivery) -> None:
        name = route.channel.name
        outcome = self.store.get(d.outcome_id)
        if outcome is None:  # cannot happen while the row exists (foreign key); kept safe anyway
            self.store.mark_failed(d.seq, "outcome missing", None)
            return
        try:
            route.channel.deliver(outcome)
        except DeliveryFailed as e:
            self._failed(route, d, e.reason, e.permanent, getattr(e, "detail", ""))
        except Exception as e:  # noqa: BLE001 -- a channel's bug must not stop the outbox; it is retried
            self._failed(route, d, type(e).__name__, False, str(e))
        else:
            self.store.mark_delivered(d.seq, self.clock())
            log.info("outcome.delivered id=%s channel=%s tries=%d", d.outcome_id, name, d.tries + 1)

    def _failed(self, route: Route, d: Delivery, reason: str, permanent: bool, detail: str = "") -> None:
        """Stores the reason with the far end's own words (the database is private); logs the
        reason alone, redacted, since what a receiver echoes back may be the caller's data."""
        tries = d.tries + 1
        name = route.channel.name
        error = f"{reason}: {detail}" if detail else reason
        if permanent or tries >= route.retries.max_tries:
            self.store.mark_failed(d.seq, error, None)
            why = "permanent failure" if permanent else f"{tries} tries"
            log.error("error outcome.dead id=%s channel=%s after %s: %s", d.outcome_id, name, why, redact(reason),
                      extra={"code": "outcome.dead", "agent": route.agent})
            return
        delay = backoff_s(route.retries, tries, self._rng)
        self.store.mark_failed(d.seq, error, self.clock() + delay)
        log.warning("outcome.retry id=%s channel=%s tries=%d next_in=%.0fs: %s",
                    d.outcome_id, name, tries, delay, redact(reason))

