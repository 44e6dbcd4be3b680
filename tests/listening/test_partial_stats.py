"""PartialStatsBook: the speculator counts a turn's partials, the brain takes them, from two threads."""

from __future__ import annotations

import sys
import threading

from voicebox.listening.partial_stats import PartialStats, PartialStatsBook


def test_a_turn_counts_are_taken_once_and_older_turns_dropped() -> None:
    book = PartialStatsBook()
    book.decoded(100)  # a turn whose end the brain never saw (e.g. dropped as noise)
    book.decoded(500)
    book.decoded(500)
    book.skipped(500)
    assert book.wants_intent(500)
    book.intent_found(500, "hours", 900)
    book.intent_found(500, "booking", 1200)  # the first intent found wins
    assert not book.wants_intent(500)
    assert book.take(500) == PartialStats(partials=2, skipped=1, intent="hours", intent_at_ms=900)
    assert book.take(500) is None
    assert book.take(100) is None  # dropped when turn 500 was taken


def test_a_partial_finishing_after_its_turn_was_taken_is_dropped_later() -> None:
    book = PartialStatsBook()
    book.decoded(500)
    assert book.take(500) == PartialStats(partials=1)
    book.decoded(500)  # the decode in flight when the turn ended
    book.decoded(2000)
    assert book.take(2000) == PartialStats(partials=1)
    assert book.take(500) is None


def test_speculator_and_brain_at_once() -> None:
    # Unguarded, the brain's sweep over older turns met the speculator adding a turn:
    # "dictionary changed size during iteration". A tiny switch interval makes that meeting
    # likely within these loops (without the lock this fails most runs); the test asserts only
    # that nothing raised and the counts stayed whole.
    turns, per_turn = 20000, 2
    errors: list[BaseException] = []
    book = PartialStatsBook()

    def guarded(work) -> None:  # noqa: ANN001
        try:
            work()
        except BaseException as e:  # noqa: BLE001 -- reported by the assert below
            errors.append(e)

    def speculator() -> None:
        for start_ms in range(turns):
            for _ in range(per_turn):
                book.decoded(start_ms)
                book.skipped(start_ms)
            if book.wants_intent(start_ms):
                book.intent_found(start_ms, "hours", start_ms)

    taken: list[PartialStats] = []

    def brain() -> None:
        for start_ms in range(turns):
            stats = book.take(start_ms)
            if stats is not None:
                taken.append(stats)

    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=guarded, args=(f,), daemon=True) for f in (speculator, brain)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sys.setswitchinterval(before)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert all(s.partials <= per_turn and s.skipped <= per_turn for s in taken)
