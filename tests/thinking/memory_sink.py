"""An in-memory OutcomeSink for the form tests: it holds booking slots as the real store does,
and can be told to refuse (disk full) or to lose a race for a slot."""

from __future__ import annotations

import datetime as dt

from voicebox.outcomes.draft import OutcomeDraft, OutcomeNotStored, SlotTaken


class MemorySink:
    def __init__(self, busy: list[tuple[dt.datetime, dt.datetime]] | None = None) -> None:
        self.busy = list(busy or [])  # slots held by other calls (or a calendar)
        self.recorded: list[OutcomeDraft] = []
        self.broken = False  # record raises OutcomeNotStored
        self.race: set[dt.datetime] = set()  # starts another call takes between is_free and record
        self.free_asks: list[tuple[dt.datetime, dt.datetime]] = []

    def is_free(self, agent: str, start: dt.datetime, end: dt.datetime) -> bool:
        self.free_asks.append((start, end))
        return not any(start < b and a < end for a, b in self.busy)

    def record(self, draft: OutcomeDraft) -> str:
        if self.broken:
            raise OutcomeNotStored("disk full")
        if draft.start is not None and draft.end is not None:
            if draft.start in self.race:
                self.busy.append((draft.start, draft.end))
                raise SlotTaken(draft.start.isoformat())
            if not self.is_free(draft.agent, draft.start, draft.end):
                raise SlotTaken(draft.start.isoformat())
            self.busy.append((draft.start, draft.end))
        self.recorded.append(draft)
        return f"out-{len(self.recorded)}"
