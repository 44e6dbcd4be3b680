"""DeadlineGate: one model slot for all calls, earliest deadline first; StageTimings predicts."""

from __future__ import annotations

import random
import threading
import time
from typing import Callable

import pytest

from voicebox.scheduling import DeadlineGate, StageTimings


class WatchedGate(DeadlineGate):
    """A gate a test can wait on: every change of its slot or queue wakes ``until``, so a test
    waits for the state it needs instead of polling for it."""

    def __init__(self, name: str = "") -> None:
        self._watch = threading.Condition()
        super().__init__(name, on_change=self.changed)

    def changed(self) -> None:
        with self._watch:
            self._watch.notify_all()

    def until(self, cond: Callable[[], bool], timeout: float = 5.0) -> None:
        with self._watch:
            if not self._watch.wait_for(cond, timeout):
                raise AssertionError("condition not reached")


def _queue_jobs(gate: WatchedGate, deadlines: list[tuple[float, str]], order: list[str]) -> list[threading.Thread]:
    """Start one thread per (deadline, label), each queued before the next starts."""
    threads = []
    for deadline, label in deadlines:
        def run(deadline: float = deadline, label: str = label) -> None:
            with gate.job(deadline, "final"):
                order.append(label)
        t = threading.Thread(target=run)
        before = gate.waiting()
        t.start()
        gate.until(lambda: gate.waiting() == before + 1)
        threads.append(t)
    return threads


def test_waiters_run_in_deadline_order() -> None:
    gate = WatchedGate("stt")
    order: list[str] = []
    release = threading.Event()

    def holder() -> None:
        with gate.job(0.0, "final"):
            release.wait(5)

    h = threading.Thread(target=holder)
    h.start()
    gate.until(lambda: gate.running() is not None)
    threads = _queue_jobs(gate, [(5.0, "e"), (1.0, "a"), (4.0, "d"), (2.0, "b"), (3.0, "c")], order)
    release.set()
    for t in [h, *threads]:
        t.join(5)
    assert order == ["a", "b", "c", "d", "e"]


def test_equal_deadlines_run_first_come_first_served() -> None:
    gate = WatchedGate()
    order: list[str] = []
    release = threading.Event()
    def holder() -> None:
        with gate.job(0.0, "final"):
            release.wait(5)

    h = threading.Thread(target=holder)
    h.start()
    gate.until(lambda: gate.running() is not None)
    threads = _queue_jobs(gate, [(2.0, f"j{i}") for i in range(6)] + [(1.0, "early")], order)
    release.set()
    for t in [h, *threads]:
        t.join(5)
    assert order == ["early", "j0", "j1", "j2", "j3", "j4", "j5"]


def test_try_job_runs_only_on_an_idle_slot() -> None:
    gate = DeadlineGate()
    slot = gate.try_job("partial")
    assert slot is not None
    with slot:
        assert gate.running() is not None and gate.running().stage == "partial"
        assert gate.try_job("partial") is None  # busy: dropped, never waits
    assert gate.running() is None
    again = gate.try_job("partial")
    assert again is not None
    with again:
        pass


def test_try_job_gives_way_to_a_queued_job() -> None:
    gate = WatchedGate()
    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def holder() -> None:
        with gate.job(0.0, "final"):
            holding.set()
            release.wait(5)

    def waiter() -> None:
        with gate.job(1.0, "final"):
            done.set()

    threading.Thread(target=holder).start()
    holding.wait(5)
    w = threading.Thread(target=waiter)
    w.start()
    gate.until(lambda: gate.waiting() == 1)
    assert gate.try_job("partial") is None
    release.set()
    w.join(5)
    assert done.is_set()


def test_try_job_never_waits() -> None:
    gate = DeadlineGate()
    with gate.job(0.0, "final"):
        start = time.perf_counter()
        assert gate.try_job("partial") is None
        assert time.perf_counter() - start < 0.5


def test_the_slot_is_handed_over_not_grabbed() -> None:
    # When a job ends with one queued, the queued one holds the slot at once: a partial
    # decode arriving in that instant is dropped rather than slipping in ahead of it.
    gate = WatchedGate()
    release, got = threading.Event(), threading.Event()

    def holder() -> None:
        with gate.job(0.0, "final"):
            release.wait(5)

    def waiter() -> None:
        with gate.job(1.0, "synth"):
            got.wait(5)

    threading.Thread(target=holder).start()
    gate.until(lambda: gate.running() is not None)
    threading.Thread(target=waiter).start()
    gate.until(lambda: gate.waiting() == 1)
    release.set()
    gate.until(lambda: gate.running() is not None and gate.running().stage == "synth")
    assert gate.try_job("partial") is None
    got.set()
    gate.until(lambda: gate.running() is None)


def test_on_change_follows_the_slot_and_may_look_at_the_gate() -> None:
    # Called outside the gate's lock: an observer that asks the gate must not deadlock.
    seen: list[tuple[str | None, int]] = []

    def look() -> None:
        running = gate.running()
        seen.append((running.stage if running else None, gate.waiting()))

    gate = DeadlineGate(on_change=look)

    def use() -> None:
        with gate.job(0.0, "llm"):
            pass
        slot = gate.try_job("partial")
        assert slot is not None
        with slot:
            pass

    t = threading.Thread(target=use, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "on_change deadlocked on the gate's lock"
    assert seen == [("llm", 0), (None, 0), ("partial", 0), (None, 0)]


def test_an_exception_releases_the_slot() -> None:
    gate = DeadlineGate()
    with pytest.raises(RuntimeError):
        with gate.job(0.0, "llm"):
            raise RuntimeError("model failed")
    assert gate.running() is None
    slot = gate.try_job("partial")
    assert slot is not None
    with pytest.raises(ValueError):
        with slot:
            raise ValueError("decode failed")
    assert gate.running() is None
    with gate.job(0.0, "llm"):
        pass


def test_an_exception_hands_the_slot_to_the_next_waiter() -> None:
    gate = WatchedGate()
    release, ran = threading.Event(), threading.Event()

    def failing_holder() -> None:
        with pytest.raises(RuntimeError):
            with gate.job(0.0, "llm"):
                release.wait(5)
                raise RuntimeError

    def waiter() -> None:
        with gate.job(1.0, "llm"):
            ran.set()

    h = threading.Thread(target=failing_holder)
    h.start()
    gate.until(lambda: gate.running() is not None)
    w = threading.Thread(target=waiter)
    w.start()
    gate.until(lambda: gate.waiting() == 1)
    release.set()
    for t in (h, w):
        t.join(5)
    assert ran.is_set() and gate.running() is None


def test_many_threads_no_overlap_no_starvation() -> None:
    gate = WatchedGate()
    inside = 0
    overlap = []
    finished: list[int] = []
    finals_ran = 0
    lock = threading.Lock()
    rng = random.Random(7)
    plans = [[(rng.random(), rng.random() < 0.3) for _ in range(40)] for _ in range(12)]

    def worker(n: int) -> None:
        nonlocal inside, finals_ran
        for deadline_offset, droppable in plans[n]:
            slot = gate.try_job("partial") if droppable else None
            ctx = slot if slot is not None else (None if droppable else gate.job(time.perf_counter() + deadline_offset, "final"))
            if ctx is None:
                continue
            with ctx:
                with lock:
                    inside += 1
                    finals_ran += 0 if slot is not None else 1  # a final: never dropped
                    if inside > 1:
                        overlap.append(n)
                # Hold the slot until another worker has queued behind it (or none is left to
                # come), so every job runs with the gate contended: one let in beside it shows.
                gate.until(lambda: gate.waiting() > 0 or len(finished) == len(plans) - 1)
                with lock:
                    inside -= 1
        with lock:
            finished.append(n)
        gate.changed()  # a worker holding the slot may be waiting for this one

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(finished) == list(range(12)), "a worker starved or deadlocked"
    assert overlap == []
    assert gate.running() is None and gate.waiting() == 0
    assert finals_ran == sum(1 for plan in plans for _, droppable in plan if not droppable)


def test_backlog_predicts_the_wait_ahead() -> None:
    gate = WatchedGate()
    timings = StageTimings(defaults_ms={"llm": 400.0, "synth": 100.0})
    release = threading.Event()

    def holder() -> None:
        with gate.job(0.0, "llm"):
            release.wait(5)

    h = threading.Thread(target=holder)
    h.start()
    gate.until(lambda: gate.running() is not None)
    order: list[str] = []
    threads = _queue_jobs(gate, [(1.0, "a")], order)  # stage "final": no timing, 0 ms
    started = gate.running().started_at
    # 100 ms into a 400 ms job, with a job of unknown cost queued ahead.
    assert gate.backlog_ms(2.0, timings, now=started + 0.1) == pytest.approx(300.0)
    assert gate.backlog_ms(0.5, timings, now=started + 0.5) == 0.0  # overran: nothing left to wait
    timings.record("final", 50)
    assert gate.backlog_ms(2.0, timings, now=started + 0.1) == pytest.approx(350.0)
    assert gate.backlog_ms(0.5, timings, now=started + 0.1) == pytest.approx(300.0)  # "a" goes after
    release.set()
    for t in [h, *threads]:
        t.join(5)
    assert gate.backlog_ms(1.0, timings) == 0.0


def test_stage_timings_median_window() -> None:
    t = StageTimings(window=5, defaults_ms={"llm": 700})
    assert t.expected_ms("llm") == 700
    assert t.expected_ms("synth") == 0.0
    assert t.expected_ms("synth", default_ms=120) == 120
    for ms in (100, 110, 5000, 90, 105):
        t.record("llm", ms)
    assert t.expected_ms("llm") == 105  # the 5 s outlier does not move the median
    for ms in (200, 210, 220):
        t.record("llm", ms)  # the window forgets the oldest
    assert t.expected_ms("llm") == 200
    with pytest.raises(ValueError):
        StageTimings(window=0)


def test_stage_timings_threads() -> None:
    # Calls record while fillers ask for the median: the median is taken over a window that
    # another thread may be appending to, so both hold the lock.
    t = StageTimings(window=50)
    errors: list[BaseException] = []

    def rec() -> None:
        for _ in range(2000):
            t.record("x", 7)

    def ask() -> None:
        try:
            for _ in range(2000):
                assert t.expected_ms("x", default_ms=7) == 7
        except BaseException as e:  # noqa: BLE001 -- reported by the assert below
            errors.append(e)

    threads = [threading.Thread(target=f) for f in (rec, rec, ask, ask)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    assert t.expected_ms("x") == 7
