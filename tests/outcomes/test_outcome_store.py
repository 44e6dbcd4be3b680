"""The outcome store: stored before it is promised, one slot per booking, private, purged on time
(issue #19, items 1, 3 and 4)."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import pytest

from tests.outcomes.fakes import FakeClock
from voicebox.outcomes.draft import OutcomeDraft, OutcomeNotStored, SlotTaken
from voicebox.outcomes.store import OutcomeFilter, OutcomeStore, new_outcome_id

ZONE = ZoneInfo("America/New_York")
DAY = 86400.0


def booking(at: dt.datetime, agent: str = "clinic", minutes: int = 30, **fields: str) -> OutcomeDraft:
    return OutcomeDraft(
        kind="booking", agent=agent, session_id="5e551011", fields={"name": "Dana Smith", **fields},
        summary=f"Booking for Dana Smith at {at:%H:%M}", start=at, end=at + dt.timedelta(minutes=minutes),
        form="appointment",
    )


def message(agent: str = "clinic", text: str = "Please call me back about the invoice.") -> OutcomeDraft:
    return OutcomeDraft(kind="message", agent=agent, session_id="5e551012",
                        fields={"name": "Lee", "message": text}, summary="Message from Lee", form="message")


@contextmanager
def db(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection to the file (committed, then closed)."""
    c = sqlite3.connect(path)
    try:
        with c:
            yield c
    finally:
        c.close()


def count(path: Path, table: str) -> int:
    with db(path) as c:
        return c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


NINE = dt.datetime(2026, 12, 8, 9, 0, tzinfo=ZONE)


@pytest.fixture
def store(tmp_path):
    s = OutcomeStore(tmp_path / "data" / "outcomes.sqlite3", {"clinic": ["webhook", "email"]}, FakeClock())
    yield s
    s.close()


def test_record_stores_the_outcome_and_one_pending_delivery_per_channel(store):
    oid = store.record(booking(NINE, phone="+12125550123"))
    got = store.get(oid)
    assert got is not None
    assert (got.kind, got.agent, got.session_id, got.form) == ("booking", "clinic", "5e551011", "appointment")
    assert got.fields == {"name": "Dana Smith", "phone": "+12125550123"}
    assert got.start == NINE and got.start.tzinfo == ZONE  # the agent's zone comes back, not just an offset
    assert got.end == NINE + dt.timedelta(minutes=30)
    ds = store.deliveries(oid)
    assert [(d.channel, d.state, d.tries) for d in ds] == [("webhook", "pending", 0), ("email", "pending", 0)]


def test_it_is_durable_on_disk_when_record_returns(store):
    oid = store.record(message())
    # Another connection (another process, or this one after a crash) sees it committed.
    with db(store.path) as other:
        assert other.execute("SELECT kind FROM outcomes WHERE id = ?", (oid,)).fetchone() == ("message",)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_ids_are_unique_and_sort_by_time():
    ids = [new_outcome_id(1_800_000_000.0 + i * 0.001) for i in range(200)]
    assert len(set(ids)) == 200
    assert sorted(ids) == ids
    same_ms = {new_outcome_id(1_800_000_000.0) for _ in range(200)}
    assert len(same_ms) == 200


def test_an_overlapping_booking_gets_slot_taken_and_writes_nothing(store):
    store.record(booking(NINE))
    before = count(store.path, "outcomes")
    with pytest.raises(SlotTaken):
        store.record(booking(NINE + dt.timedelta(minutes=15)))
    assert count(store.path, "outcomes") == before
    assert count(store.path, "deliveries") == 2
    assert count(store.path, "booked_slots") == 1
    # Back to back is no overlap; another agent's calendar is its own.
    store.record(booking(NINE + dt.timedelta(minutes=30)))
    store.record(booking(NINE, agent="garage"))
    assert not store.is_free("clinic", NINE + dt.timedelta(minutes=20), NINE + dt.timedelta(minutes=40))
    assert store.is_free("clinic", NINE + dt.timedelta(hours=1), NINE + dt.timedelta(hours=2))


def test_two_calls_racing_for_one_slot_one_gets_it(tmp_path):
    # Each racer has its own store, so its own SQLite connection: exactly what separate processes
    # have. Only the database's write lock (BEGIN IMMEDIATE) keeps them apart.
    path = tmp_path / "outcomes.sqlite3"
    racers = [OutcomeStore(path, {"clinic": ["webhook"]}) for _ in range(6)]
    start = threading.Barrier(len(racers))
    results: list[str] = []

    def race(s: OutcomeStore) -> None:
        assert s.is_free("clinic", NINE, NINE + dt.timedelta(minutes=30))  # all were offered the slot
        start.wait()
        try:
            s.record(booking(NINE))
            results.append("booked")
        except SlotTaken:
            results.append("taken")

    threads = [threading.Thread(target=race, args=(s,)) for s in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["booked"] + ["taken"] * 5
    assert count(path, "booked_slots") == 1 and count(path, "outcomes") == 1
    for s in racers:
        s.close()


def test_a_full_disk_raises_outcome_not_stored_and_leaves_nothing_half_written(tmp_path):
    path = tmp_path / "outcomes.sqlite3"
    OutcomeStore(path, {"clinic": ["webhook"]}).close()
    with db(path) as c:
        pages = c.execute("PRAGMA page_count").fetchone()[0]
    # SQLite itself reports SQLITE_FULL once the file would grow past this many pages.
    store = OutcomeStore(path, {"clinic": ["webhook"]}, max_pages=pages + 2)
    store.record(message())  # a small one still fits
    kept = (count(path, "outcomes"), count(path, "deliveries"), count(path, "booked_slots"))
    with pytest.raises(OutcomeNotStored, match="full"):
        store.record(booking(NINE, notes="x" * 200_000))
    assert (count(path, "outcomes"), count(path, "deliveries"), count(path, "booked_slots")) == kept
    assert store.is_free("clinic", NINE, NINE + dt.timedelta(minutes=30))  # the slot is not held
    store.close()
    with db(path) as c:
        assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # Once there is room again, storing works.
    roomy = OutcomeStore(path, {"clinic": ["webhook"]})
    assert roomy.record(booking(NINE))
    roomy.close()


def test_the_database_files_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        data = tmp_path / "data"
        s = OutcomeStore(data / "outcomes.sqlite3", {"clinic": ["webhook"]})
        s.record(message())
        files = sorted(p.name for p in data.iterdir())
        assert files == ["outcomes.sqlite3", "outcomes.sqlite3-shm", "outcomes.sqlite3-wal"]
        for p in data.iterdir():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        s.close()
    finally:
        os.umask(old)


def test_an_existing_readable_database_is_made_private(tmp_path):
    path = tmp_path / "outcomes.sqlite3"
    OutcomeStore(path).close()
    os.chmod(path, 0o644)
    OutcomeStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_retention_purges_old_outcomes_but_keeps_undelivered_ones(tmp_path):
    clock = FakeClock()
    store = OutcomeStore(tmp_path / "o.sqlite3", {"clinic": ["webhook"]}, clock)
    old_delivered = store.record(booking(NINE))
    store.mark_delivered(store.pending_head("clinic", "webhook").seq, clock())
    old_pending = store.record(message())
    old_dead = store.record(message())
    d = store.deliveries(old_dead)[0]
    store.mark_delivered(store.pending_head("clinic", "webhook").seq, clock())  # old_pending's turn...
    store.mark_failed(d.seq, "HTTP 410 Gone", None)  # ...and old_dead dead-lettered
    with db(store.path) as c:  # old_pending is still pending after all
        c.execute("UPDATE deliveries SET state = 'pending' WHERE outcome_id = ?", (old_pending,))
    clock.advance(40 * DAY)
    new = store.record(message())
    assert store.purge(30 * DAY) == 2
    left = {o.id for o in store.query()}
    assert left == {old_pending, new}
    assert old_delivered not in left and old_dead not in left
    assert count(store.path, "booked_slots") == 0  # the purged booking's slot went with it
    assert count(store.path, "deliveries") == 2
    store.close()


def test_query_filters_by_agent_kind_state_and_time(store):
    clock: FakeClock = store.clock  # type: ignore[assignment]
    a = store.record(booking(NINE))
    clock.advance(3600)
    b = store.record(message())
    c = store.record(message(agent="garage"))  # no channels for garage: stored, not delivered
    store.mark_failed(store.deliveries(b)[0].seq, "HTTP 400 Bad Request", None)
    assert [o.id for o in store.query()] == [a, b, c]
    assert [o.id for o in store.query(OutcomeFilter(kind="message"))] == [b, c]
    assert [o.id for o in store.query(OutcomeFilter(agent="garage"))] == [c]
    assert [o.id for o in store.query(OutcomeFilter(state="dead"))] == [b]
    assert [o.id for o in store.query(OutcomeFilter(since=clock() - 10))] == [b, c]
    assert [o.id for o in store.query(OutcomeFilter(limit=2))] == [b, c]
    assert store.deliveries(c) == []


def test_retry_puts_a_dead_delivery_back_to_pending_with_fresh_tries(store):
    oid = store.record(message())
    wh = store.deliveries(oid)[0]
    store.mark_failed(wh.seq, "HTTP 404 Not Found", None)
    assert store.retry(oid, "email") == 0  # email was never dead
    assert store.retry(oid) == 1
    again = store.deliveries(oid)[0]
    assert (again.state, again.tries) == ("pending", 0)
    assert store.pending_head("clinic", "webhook").outcome_id == oid


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 256 KiB filesystem (tmpfs), where writes fail with ENOSPC. Mounting needs
    privileges (root or CAP_SYS_ADMIN); without them the test is skipped and the
    max_page_count test above still covers a full database."""
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "--lazy", str(mnt)], check=False)


def test_a_really_full_disk_raises_outcome_not_stored_and_leaves_nothing_half_written(small_filesystem):
    path = small_filesystem / "outcomes.sqlite3"
    store = OutcomeStore(path, {"clinic": ["webhook"]})
    kept = store.record(message())
    with pytest.raises(OutcomeNotStored):
        store.record(booking(NINE, notes="x" * 400_000))  # more than the whole filesystem
    store.close()
    c = sqlite3.connect(path)  # a fresh connection, as after a restart
    try:
        assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert c.execute("SELECT id FROM outcomes").fetchall() == [(kept,)]
        assert c.execute("SELECT COUNT(*) FROM deliveries").fetchone() == (1,)
        assert c.execute("SELECT COUNT(*) FROM booked_slots").fetchone() == (0,)
    finally:
        c.close()
