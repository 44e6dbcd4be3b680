"""One way an outcome reaches the business (a webhook, an email, a calendar).

The outbox calls ``deliver`` from its own thread, once per try, and keeps the state: a channel
does one attempt and says how it went. It never retries itself and never touches the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class StoredOutcome:
    """An outcome as the database holds it; what every channel delivers."""

    id: str  # unique, stable: the idempotency key of every delivery of it
    kind: str  # booking | message | callback | transfer
    agent: str
    session_id: str
    created_at: dt.datetime  # aware, UTC
    fields: dict[str, str]
    summary: str
    start: dt.datetime | None = None  # aware, in the agent's time zone (bookings)
    end: dt.datetime | None = None
    form: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class DeliveryFailed(Exception):
    """One try failed. ``permanent`` (a 4xx, a rejected recipient, bad credentials) sends the
    delivery to dead-letter at once; otherwise the outbox backs off and tries again."""

    def __init__(self, reason: str, *, permanent: bool = False, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        # What the far end said (a response body): kept with the delivery for `voicebox outcomes`,
        # never logged, since it may echo the outcome's personal data back.
        self.detail = detail


class Channel(Protocol):
    name: str  # "webhook" | "email" | "calendar": the outbox row's channel column

    def deliver(self, outcome: StoredOutcome) -> None:
        """Deliver once; return on success, raise ``DeliveryFailed`` otherwise."""
        ...
