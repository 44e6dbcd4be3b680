"""What the speculative decoder saw of each turn while the caller spoke, kept for its timeline.

Two threads share it: the speculator counts partial decodes (and notes the first intent a
partial revealed), and the brain takes a turn's counts when the turn ends, dropping any older
turn's. So every access holds one lock: unguarded, the brain's sweep over older turns iterates
the dict while the speculator may add the next turn to it, which raises "dictionary changed size
during iteration" on the brain thread and fails the call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class PartialStats:
    """One turn's partial decodes; ``intent_at_ms`` is the last voiced frame the intent's partial covered."""

    partials: int = 0  # partial decodes done
    skipped: int = 0  # ... and skipped because the recognizer had more urgent work
    intent: str | None = None
    intent_at_ms: int | None = None


class PartialStatsBook:
    """Per-turn ``PartialStats``, keyed by the turn's ``start_ms``; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_turn: dict[int, PartialStats] = {}

    def skipped(self, start_ms: int) -> None:
        with self._lock:
            self._by_turn.setdefault(start_ms, PartialStats()).skipped += 1

    def decoded(self, start_ms: int) -> None:
        with self._lock:
            self._by_turn.setdefault(start_ms, PartialStats()).partials += 1

    def wants_intent(self, start_ms: int) -> bool:
        """Whether no partial of this turn has revealed an intent yet (routing is then worth it)."""
        with self._lock:
            stats = self._by_turn.get(start_ms)
            return stats is None or stats.intent is None

    def intent_found(self, start_ms: int, intent: str, at_ms: int) -> None:
        """The first intent found wins: a later partial's guess does not move the lead time."""
        with self._lock:
            stats = self._by_turn.setdefault(start_ms, PartialStats())
            if stats.intent is None:
                stats.intent, stats.intent_at_ms = intent, at_ms

    def take(self, start_ms: int) -> PartialStats | None:
        """This turn's counts, removed with those of every older turn; None if none.

        Once popped they are the caller's alone: a partial still running for this turn counts
        into a fresh entry, which the next turn's ``take`` drops."""
        with self._lock:
            stats = self._by_turn.pop(start_ms, None)
            for old in [k for k in self._by_turn if k < start_ms]:
                del self._by_turn[old]
            return stats
