"""Shared model workers taken in deadline order, and the recent timings that predict them.

One recognizer, one language model and one synthesizer serve every call. Each is a single slot:
two decodes at once only share the same two cores and both finish late. So jobs from all calls
queue for the slot, and the one whose turn is due soonest goes first (earliest deadline first):
a final transcript or a first-audio synthesis due in 300 ms overtakes a later sentence due in 2 s.
Droppable work (partial decodes while the caller is still talking) never queues at all; it runs
only on an idle slot, because a partial that waits is stale by the time it runs.
"""

from __future__ import annotations

import heapq
import itertools
import statistics
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator


@dataclass(order=True)
class _Waiter:
    deadline: float
    seq: int  # ties go to whoever came first
    stage: str = field(compare=False)
    ready: threading.Event = field(compare=False, default_factory=threading.Event)


@dataclass(frozen=True)
class Running:
    """The job holding the slot: its stage and when it started (``time.perf_counter()``)."""

    stage: str
    started_at: float
    deadline: float | None  # None for droppable work


class _Slot:
    """The slot taken by ``try_job``; released when its ``with`` block ends."""

    def __init__(self, gate: "DeadlineGate") -> None:
        self._gate = gate
        self._released = False

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        if not self._released:
            self._released = True
            self._gate._release()


class DeadlineGate:
    """One worker slot shared by all calls, handed out in deadline order.

    ``deadline`` values are ``time.perf_counter()`` seconds. The slot is handed straight from the
    job that ends to the next waiter, so a job arriving at that moment cannot barge in ahead of
    one that was already queued.

    ``on_change`` is called (on the thread that made the change, outside the gate's lock) after
    the slot is taken or released and after a job joins the queue: what ``running()`` and
    ``waiting()`` say has just changed, so an observer (a test) can wait for a state instead
    of polling for it.
    """

    def __init__(self, name: str = "", on_change: Callable[[], None] | None = None) -> None:
        self.name = name
        self._on_change = on_change
        self._lock = threading.Lock()
        self._waiters: list[_Waiter] = []
        self._running: Running | None = None
        self._seq = itertools.count()

    # -- taking the slot ------------------------------------------------------------------------
    @contextmanager
    def job(self, deadline: float, stage: str) -> Iterator[None]:
        """Hold the slot for the ``with`` block; waits until no earlier deadline is ahead."""
        with self._lock:
            if self._running is None and not self._waiters:
                self._running = Running(stage, time.perf_counter(), deadline)
                waiter = None
            else:
                waiter = _Waiter(deadline, next(self._seq), stage)
                heapq.heappush(self._waiters, waiter)
        self._changed()
        if waiter is not None:
            try:
                waiter.ready.wait()
            except BaseException:
                # Interrupted while queued: leave the queue, or pass on a slot just handed over.
                with self._lock:
                    if waiter.ready.is_set():
                        self._release_locked()
                    else:
                        self._waiters.remove(waiter)
                        heapq.heapify(self._waiters)
                self._changed()
                raise
        try:
            yield
        finally:
            self._release()

    def try_job(self, stage: str) -> _Slot | None:
        """The slot now, for droppable work, or None if anything is running or waiting.

        Never waits. The slot is already taken when this returns, so use the result at once:
        ``if (slot := gate.try_job("partial")) is not None: with slot: ...``.
        """
        with self._lock:
            if self._running is not None or self._waiters:
                return None
            self._running = Running(stage, time.perf_counter(), None)
        self._changed()
        return _Slot(self)

    def _release(self) -> None:
        with self._lock:
            self._release_locked()
        self._changed()

    def _changed(self) -> None:
        # Outside the lock: the observer may call running() or waiting(), which take it.
        if self._on_change is not None:
            self._on_change()

    def _release_locked(self) -> None:
        if self._waiters:
            nxt = heapq.heappop(self._waiters)
            self._running = Running(nxt.stage, time.perf_counter(), nxt.deadline)
            nxt.ready.set()
        else:
            self._running = None

    # -- looking at the queue -------------------------------------------------------------------
    def running(self) -> Running | None:
        with self._lock:
            return self._running

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiters)

    def ahead_of(self, deadline: float) -> tuple[Running | None, list[str]]:
        """What a job with ``deadline`` would wait for: the running job and the stages queued first."""
        with self._lock:
            ahead = sorted(w for w in self._waiters if w.deadline <= deadline)
            return self._running, [w.stage for w in ahead]

    def backlog_ms(self, deadline: float, timings: "StageTimings", now: float | None = None) -> float:
        """Predicted wait for a job with ``deadline``: the running job's expected remainder plus
        the expected time of every queued job that would go first."""
        now = time.perf_counter() if now is None else now
        running, ahead = self.ahead_of(deadline)
        total = 0.0
        if running is not None:
            elapsed_ms = (now - running.started_at) * 1000
            total += max(0.0, timings.expected_ms(running.stage) - elapsed_ms)
        return total + sum(timings.expected_ms(stage) for stage in ahead)


class StageTimings:
    """The median of each stage's recent durations, in milliseconds; thread-safe.

    A windowed median rather than a mean: one slow outlier (a full-window re-decode, a page
    fault) should not make the next prediction call for a filler that is not needed.
    """

    def __init__(self, window: int = 20, defaults_ms: dict[str, float] | None = None) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self._defaults = dict(defaults_ms or {})
        self._recent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def record(self, stage: str, duration_ms: float) -> None:
        with self._lock:
            self._recent.setdefault(stage, deque(maxlen=self.window)).append(float(duration_ms))

    def expected_ms(self, stage: str, default_ms: float | None = None) -> float:
        """The recent median; before any sample, ``default_ms`` or the constructor's default, else 0."""
        with self._lock:
            recent = self._recent.get(stage)
            if recent:
                return statistics.median(recent)
        if default_ms is not None:
            return default_ms
        return self._defaults.get(stage, 0.0)
