"""Retention: records and recordings older than the configured age are deleted."""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger("voicebox.records")

KEPT_DIRS = ("calls", "recordings")
DAY_S = 86400.0


def purge(data_dir: Path, older_than_s: float, now: float | None = None) -> int:
    """Delete call files last written more than ``older_than_s`` before ``now``; return the count.

    ``now`` is injectable so retention can be tested without waiting days.
    """
    now = time.time() if now is None else now
    cutoff = now - older_than_s
    removed = 0
    for sub in KEPT_DIRS:
        root = data_dir / sub
        if not root.is_dir():
            continue
        for f in root.rglob("*"):
            if f.is_file() and f.stat().st_mtime < cutoff:
                f.unlink()
                removed += 1
        for d in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
            if not any(d.iterdir()):
                d.rmdir()
    return removed


def parse_age(text: str) -> float:
    """'30d', '12h', '90m', '45s' → seconds."""
    units = {"d": DAY_S, "h": 3600.0, "m": 60.0, "s": 1.0}
    text = text.strip().lower()
    if not text or text[-1] not in units:
        raise ValueError(f"age {text!r}: use a number followed by d, h, m or s (e.g. 30d)")
    try:
        value = float(text[:-1])
    except ValueError:
        raise ValueError(f"age {text!r}: {text[:-1]!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"age {text!r} must be a finite, non-negative number")
    return value * units[text[-1]]


class RetentionJob:
    """Purges at start-up and then every ``interval_s`` (a day) on its own thread.

    ``clock`` (wall-clock seconds) and ``wait`` are injectable so the daily runs can be tested
    without waiting a day: ``wait(seconds)`` blocks for one interval and returns True when the
    job should end. The default waits on the job's own stop event, so ``stop()`` ends it at once;
    an injected wait is ended by whoever injected it.
    """

    def __init__(
        self, data_dir: Path, retention_days: float, interval_s: float = DAY_S,
        clock: Callable[[], float] = time.time, wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.max_age_s = retention_days * DAY_S
        self.interval_s = interval_s
        self.clock = clock
        self._stop = threading.Event()
        self._wait = wait if wait is not None else self._stop.wait
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def run_once(self) -> int:
        n = purge(self.data_dir, self.max_age_s, self.clock())
        if n:
            log.info("retention removed %d expired files", n)
        return n

    def start(self) -> None:
        self.run_once()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._wait(self.interval_s):
            try:
                self.run_once()
            except OSError as e:
                log.error("error records.purge_failed %s", e, extra={"code": "records.purge_failed"})
