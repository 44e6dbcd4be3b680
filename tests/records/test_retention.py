"""Retention: expired call records and recordings go; everything else stays."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from voicebox.records.retention import DAY_S, RetentionJob, parse_age, purge

NOW = 2_000_000_000.0  # a fixed "now", far from the real clock


def _touch(path: Path, mtime: float, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def _days_ago(days: float, now: float = NOW) -> float:
    return now - days * DAY_S


def test_purge_removes_expired_files_and_keeps_newer_ones(tmp_path):
    old_call = _touch(tmp_path / "calls" / "2033-04-17" / "aaa.jsonl", _days_ago(31))
    new_call = _touch(tmp_path / "calls" / "2033-04-19" / "bbb.jsonl", _days_ago(29))
    old_rec = _touch(tmp_path / "recordings" / "2033-04-17" / "aaa.wav", _days_ago(31))
    new_rec = _touch(tmp_path / "recordings" / "2033-04-19" / "bbb.wav", _days_ago(1))
    old_flat_rec = _touch(tmp_path / "recordings" / "ccc.wav", _days_ago(400))

    n = purge(tmp_path, 30 * DAY_S, NOW)

    assert n == 3
    assert not old_call.exists() and not old_rec.exists() and not old_flat_rec.exists()
    assert new_call.read_text() == "x" and new_rec.read_text() == "x"


def test_purge_removes_emptied_day_directories_only_under_its_own_dirs(tmp_path):
    _touch(tmp_path / "calls" / "2033-04-17" / "aaa.jsonl", _days_ago(31))
    _touch(tmp_path / "calls" / "2033-04-19" / "bbb.jsonl", _days_ago(2))
    _touch(tmp_path / "recordings" / "2033-04-17" / "aaa.wav", _days_ago(31))
    models = _touch(tmp_path / "models" / "whisper" / "model.bin", _days_ago(365))
    (tmp_path / "models" / "empty").mkdir()
    stray = _touch(tmp_path / "notes.txt", _days_ago(365))

    purge(tmp_path, 30 * DAY_S, NOW)

    assert not (tmp_path / "calls" / "2033-04-17").exists()
    assert (tmp_path / "calls" / "2033-04-19").is_dir()
    assert not (tmp_path / "recordings" / "2033-04-17").exists()
    # other directories and files are none of retention's business, however old
    assert models.read_text() == "x"
    assert (tmp_path / "models" / "empty").is_dir()
    assert stray.exists()


def test_purge_uses_the_injected_now_not_the_real_clock(tmp_path):
    real_now = time.time()
    f = _touch(tmp_path / "calls" / "d" / "recent.jsonl", real_now - 60)
    # relative to NOW (years ahead) the file is long expired
    assert purge(tmp_path, 30 * DAY_S, NOW) == 1
    assert not f.exists()
    g = _touch(tmp_path / "calls" / "d" / "recent2.jsonl", real_now - 60)
    assert purge(tmp_path, 30 * DAY_S, real_now) == 0
    assert g.exists()


def test_purge_without_record_dirs_is_a_no_op(tmp_path):
    assert purge(tmp_path, 30 * DAY_S, NOW) == 0
    assert purge(tmp_path / "missing", 30 * DAY_S, NOW) == 0


class Periods:
    """The retention thread's wait: an interval ends only when the test lets one pass, so the
    periodic runs happen when the test says, not after some real time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.asked: list[float] = []  # the interval of each wait
        self._granted = 0
        self._closed = False

    def wait(self, seconds: float) -> bool:
        with self._cond:
            self.asked.append(seconds)
            mine = len(self.asked)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._granted >= mine or self._closed)
            return self._granted < mine  # True (end the job) only when closed, not let through

    def pass_one(self, timeout_s: float = 5.0) -> None:
        """Let one interval pass; returns once the run it brings is over (the thread waits again)."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.asked) > self._granted, timeout_s), "no thread is waiting"
            self._granted += 1
            self._cond.notify_all()
            assert self._cond.wait_for(lambda: len(self.asked) > self._granted, timeout_s), "the run never ended"

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def test_retention_job_purges_at_start_and_again_on_its_own_thread(tmp_path):
    clock = {"now": NOW}
    expired = _touch(tmp_path / "calls" / "2033-04-17" / "old.jsonl", _days_ago(31))
    later = _touch(tmp_path / "calls" / "2033-04-19" / "later.jsonl", _days_ago(29))
    fresh = _touch(tmp_path / "calls" / "2033-05-18" / "fresh.jsonl", _days_ago(0.5))

    periods = Periods()
    job = RetentionJob(tmp_path, retention_days=30, clock=lambda: clock["now"], wait=periods.wait)
    job.start()
    try:
        # start() purges synchronously, before the first call can be written
        assert not expired.exists()
        assert later.exists() and fresh.exists()
        for _ in range(3):
            periods.pass_one()  # several periodic runs with the clock standing still
        assert later.exists()

        clock["now"] = NOW + 2 * DAY_S  # "later" is now 31 days old
        periods.pass_one()
        assert not later.exists(), "the periodic purge did not run"
        assert fresh.exists()
        assert periods.asked == [DAY_S] * 5  # it waits a day between runs
    finally:
        job.stop()
        periods.close()
    job._thread.join(2)
    assert not job._thread.is_alive()


def test_retention_job_stop_ends_its_day_long_wait_at_once(tmp_path):
    job = RetentionJob(tmp_path, retention_days=30)  # the real wait: a whole day
    job.start()
    job.stop()
    job._thread.join(5)
    assert not job._thread.is_alive(), "stop() did not end the retention thread"


def test_retention_job_run_once_counts_and_uses_retention_days(tmp_path):
    _touch(tmp_path / "calls" / "d" / "a.jsonl", _days_ago(8))
    _touch(tmp_path / "calls" / "d" / "b.jsonl", _days_ago(6))
    job = RetentionJob(tmp_path, retention_days=7, clock=lambda: NOW)
    assert job.max_age_s == 7 * DAY_S
    assert job.run_once() == 1
    assert [p.name for p in (tmp_path / "calls" / "d").iterdir()] == ["b.jsonl"]


@pytest.mark.parametrize(
    "text,seconds",
    [("30d", 30 * 86400), ("12h", 12 * 3600), ("90m", 90 * 60), ("45s", 45), ("1.5d", 1.5 * 86400),
     (" 7D ", 7 * 86400), ("0s", 0)],
)
def test_parse_age(text, seconds):
    assert parse_age(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30", "x d", "-1d", "", "d", "30w", "1e"])
def test_parse_age_rejects(text):
    with pytest.raises(ValueError):
        parse_age(text)
