"""A fake clock for the outbox: waiting on it moves time forward instead of sleeping."""

from __future__ import annotations

import threading


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += max(0.0, seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """The outbox's wait: time jumps ahead by ``seconds`` unless it was woken."""
        if event.is_set():
            return True
        self.advance(seconds)
        # A real 2 ms on the event, not a sleep: it lets the test thread and the receiver run
        # between jumps, and a wake-up in that time is seen at once.
        return event.wait(0.002)
