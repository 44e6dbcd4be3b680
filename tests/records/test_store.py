"""RecordStore: one JSONL file per call, written by one thread; emit never waits on the disk."""

from __future__ import annotations

import json
import os
import threading
import time
import types
from datetime import datetime, timezone
from pathlib import Path

import pytest

from voicebox.records import store as store_mod
from voicebox.records.store import RecordStore, call_path

# 2023-11-14 22:13:20 UTC: late enough in the UTC day that UTC+14 is already on the 15th.
STARTED = 1_700_000_000.0


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


@pytest.fixture
def blocked_json(monkeypatch):
    """Make the writer thread stall inside json.dumps until ``release`` is set."""
    entered, release = threading.Event(), threading.Event()
    real_dumps = json.dumps

    def dumps(obj, **kw):
        entered.set()
        release.wait(5)  # bounded: a broken implementation cannot hang the suite forever
        return real_dumps(obj, **kw)

    monkeypatch.setattr(store_mod, "json", types.SimpleNamespace(dumps=dumps))
    yield entered, release
    release.set()


def test_events_of_one_session_land_in_one_file_under_the_utc_day(tmp_path):
    store = RecordStore(tmp_path)
    path = store.open("sess1", started=STARTED)
    assert path == tmp_path / "calls" / "2023-11-14" / "sess1.jsonl"

    before = time.time()
    store.emit("sess1", "call_start", caller=None, source="10.0.0.1")
    store.emit("sess1", "turn", turn=1, budget_misses=["transcript"])
    store.emit("sess1", "call_end", status=200)
    store.flush()
    after = time.time()

    assert path.is_file()
    recs = _lines(path)
    assert [r["event"] for r in recs] == ["call_start", "turn", "call_end"]
    assert all(r["session"] == "sess1" for r in recs)
    assert all(before - 0.01 <= r["ts"] <= after + 0.01 for r in recs)
    assert recs[0]["source"] == "10.0.0.1" and recs[0]["caller"] is None
    assert recs[1]["turn"] == 1 and recs[1]["budget_misses"] == ["transcript"]
    assert recs[2]["status"] == 200
    # exactly one file was written
    assert list((tmp_path / "calls").rglob("*.jsonl")) == [path]
    store.close("sess1")
    store.flush()


def test_day_directory_is_the_utc_date_not_the_local_one(tmp_path):
    if not hasattr(time, "tzset"):
        pytest.skip("no time.tzset on this platform")
    old = os.environ.get("TZ")
    os.environ["TZ"] = "XXX-14"  # POSIX: local time is UTC+14
    time.tzset()
    try:
        assert datetime.fromtimestamp(STARTED).strftime("%Y-%m-%d") == "2023-11-15"  # precondition
        assert call_path(tmp_path, "s", STARTED) == tmp_path / "calls" / "2023-11-14" / "s.jsonl"
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_without_open_the_file_is_dated_by_the_first_event(tmp_path):
    store = RecordStore(tmp_path)
    store.emit("nopen", "call_start")
    store.flush()
    files = list((tmp_path / "calls").glob("*/nopen.jsonl"))
    assert len(files) == 1
    rec = _lines(files[0])[0]
    assert files[0].parent.name == _utc_day(rec["ts"])
    store.close("nopen")
    store.flush()


def test_flush_makes_queued_events_visible(tmp_path):
    store = RecordStore(tmp_path)
    path = store.open("f1", started=STARTED)
    for i in range(200):
        store.emit("f1", "tick", i=i)
    store.flush()
    recs = _lines(path)
    assert [r["i"] for r in recs] == list(range(200))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_close_closes_the_file(tmp_path):
    def open_on(path: Path) -> bool:
        for fd in Path("/proc/self/fd").iterdir():
            try:
                if os.readlink(fd) == str(path):
                    return True
            except OSError:
                continue
        return False

    store = RecordStore(tmp_path)
    path = store.open("c1", started=STARTED)
    store.emit("c1", "call_start")
    store.flush()
    assert open_on(path)  # the writer keeps the call's file open while the call lasts
    store.close("c1")
    store.flush()
    assert not open_on(path)
    assert [r["event"] for r in _lines(path)] == ["call_start"]


def test_two_sessions_two_files(tmp_path):
    store = RecordStore(tmp_path)
    pa = store.open("aaaa", started=STARTED)
    pb = store.open("bbbb", started=STARTED)
    for i in range(5):
        store.emit("aaaa", "tick", i=i)
        store.emit("bbbb", "tick", i=i * 10)
    store.flush()
    assert pa != pb
    ra, rb = _lines(pa), _lines(pb)
    assert [r["i"] for r in ra] == [0, 1, 2, 3, 4]
    assert [r["i"] for r in rb] == [0, 10, 20, 30, 40]
    assert {r["session"] for r in ra} == {"aaaa"}
    assert {r["session"] for r in rb} == {"bbbb"}


def test_emit_never_blocks_and_counts_drops_when_the_queue_is_full(tmp_path, blocked_json):
    entered, release = blocked_json
    store = RecordStore(tmp_path, max_queue=2)
    path = store.open("full", started=STARTED)
    store.emit("full", "e", n=0)
    assert entered.wait(2), "writer never picked up the first event"
    # the writer is stuck on event 0; two more fill the queue, the next seven are dropped
    t0 = time.perf_counter()
    for n in range(1, 10):
        store.emit("full", "e", n=n)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5, f"emit waited {elapsed:.2f}s with a full queue"
    assert store.lost == 7

    release.set()
    store.flush()
    assert [r["n"] for r in _lines(path)] == [0, 1, 2]
    assert store.lost == 7


def test_close_on_a_full_queue_does_not_block_and_is_counted(tmp_path, blocked_json):
    entered, release = blocked_json
    store = RecordStore(tmp_path, max_queue=1)
    store.open("full", started=STARTED)
    store.emit("full", "e", n=0)
    assert entered.wait(2)
    store.emit("full", "e", n=1)  # fills the queue
    t0 = time.perf_counter()
    store.close("full")
    assert time.perf_counter() - t0 < 0.5
    assert store.lost == 1
    release.set()
    store.flush()


def test_unwritable_day_directory_counts_lost_and_the_writer_survives(tmp_path):
    bad_day = tmp_path / "calls" / "2020-01-01"
    bad_day.parent.mkdir(parents=True)
    bad_day.write_text("a file where the day directory should be")

    store = RecordStore(tmp_path)
    store.open("bad", started=datetime(2020, 1, 1, 12, tzinfo=timezone.utc).timestamp())
    store.emit("bad", "call_start")
    store.emit("bad", "turn", turn=1)
    store.flush()
    assert store.lost == 2

    good = store.open("good", started=STARTED)
    store.emit("good", "call_start")
    store.flush()
    assert [r["event"] for r in _lines(good)] == ["call_start"]
    assert store.lost == 2
    assert bad_day.read_text() == "a file where the day directory should be"


def test_data_dir_that_is_a_file_counts_every_event_lost(tmp_path):
    data = tmp_path / "data"
    data.write_text("not a directory")
    store = RecordStore(data)
    store.emit("x", "call_start")
    store.emit("y", "call_start")
    t0 = time.perf_counter()
    store.flush(timeout=2)
    assert time.perf_counter() - t0 < 1.5, "flush timed out: the writer thread died"
    assert store.lost == 2


def test_an_event_that_cannot_be_encoded_does_not_kill_the_writer(tmp_path):
    """A bad field costs that one event (counted in ``lost``), not every later event of every call.

    The writer only catches OSError, so e.g. a TypeError from json.dumps ends the thread for good.
    """
    store = RecordStore(tmp_path)
    path = store.open("enc", started=STARTED)
    store.emit("enc", "bad", value=object())
    store.emit("enc", "after")
    store.flush(timeout=0.5)
    assert store.lost == 1
    assert [r["event"] for r in _lines(path)] == ["after"]


def test_flush_honours_its_timeout_when_the_writer_is_stuck(tmp_path, blocked_json):
    """flush(timeout) must return even if the queue is full and the writer does not drain it
    (shutdown calls flush; a stuck or dead writer must not hang the process)."""
    entered, release = blocked_json
    store = RecordStore(tmp_path, max_queue=1)
    store.open("stuck", started=STARTED)
    store.emit("stuck", "e", n=0)
    assert entered.wait(2)
    store.emit("stuck", "e", n=1)  # queue now full

    t = threading.Thread(target=store.flush, kwargs={"timeout": 0.2}, daemon=True)
    t.start()
    t.join(1.0)
    returned = not t.is_alive()
    release.set()
    t.join(2)
    assert returned, "flush(timeout=0.2) was still blocked after 1 s"
