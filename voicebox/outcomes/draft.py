"""What a finished form hands over to be kept and delivered: the contract between the dialog
(which collects it) and the outcome store (which keeps it before the caller hears "booked").

The dialog never talks to a database, a webhook or a calendar: it builds an ``OutcomeDraft``
and asks an ``OutcomeSink`` to record it. Only when ``record`` returns is the caller told the
booking, message or callback is in; ``OutcomeNotStored`` makes the agent say so honestly and
offer a person, ``SlotTaken`` makes it offer the next free time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal, Protocol

OutcomeKind = Literal["booking", "message", "callback", "transfer"]


@dataclass(frozen=True)
class OutcomeDraft:
    """One completed form, before it has an id.

    ``fields`` are the values as read back to the caller (name, service, phone in E.164, party
    size, the message...), keyed by the form's field names. ``start``/``end`` are set for a
    booking: aware datetimes in the agent's time zone, the slot the caller confirmed.
    """

    kind: OutcomeKind
    agent: str  # the agent's id (its file stem)
    session_id: str
    fields: dict[str, str]
    summary: str  # one sentence a person at the business reads first
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    form: str = ""  # the form's name in the agent file
    extra: dict[str, str] = field(default_factory=dict)


class OutcomeNotStored(Exception):
    """The outcome could not be written durably (disk full, database locked or broken)."""


class SlotTaken(Exception):
    """Another call holds this booking's slot (or the calendar shows it busy)."""


class OutcomeSink(Protocol):
    def is_free(self, agent: str, start: dt.datetime, end: dt.datetime) -> bool:
        """Whether the slot can still be offered (the local table, and the calendar's free/busy
        when one is configured). A later ``record`` may still raise ``SlotTaken``."""
        ...

    def record(self, draft: OutcomeDraft) -> str:
        """Store the draft durably (and, for a booking, hold its slot) in one transaction;
        return the outcome's id. Raises ``SlotTaken`` or ``OutcomeNotStored``."""
        ...
