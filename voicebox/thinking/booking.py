"""Booking an appointment: collect name, service, day and time, then read them back.

Deterministic slot filling, so the confirmation repeats exactly what was understood (a small
model would happily "confirm" a day the caller never said). What can be booked, and every
sentence the booking says, come from the agent file's [booking] section.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from voicebox.agent import BookingConfig

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "tomorrow")
PARTS = ("morning", "afternoon", "evening", "lunchtime")
_CLOCK = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)", re.I)
_NAME = re.compile(
    r"\b(?:my name is|my name's|name is|this is|it's|i am|i'm)\s+([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)"
)
_NOT_NAMES = {"Calling", "Looking", "Sorry", "Just", "Not", "Here", "Fine", "Good", "Interested", "Trying"}
SLOTS = ("name", "service", "day", "time")


@dataclass
class Booking:
    """One caller's booking in progress. ``services`` maps each bookable service to the words
    that name it (``AgentConfig.service_cues()``); ``say`` is the agent's booking wording."""

    name: str | None = None
    service: str | None = None
    day: str | None = None
    time: str | None = None
    active: bool = False
    confirmed_back: bool = False
    services: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    say: BookingConfig = field(default_factory=BookingConfig, repr=False)

    @classmethod
    def for_agent(cls, services: Mapping[str, tuple[str, ...]], say: BookingConfig, active: bool = True) -> "Booking":
        return cls(active=active, services=services, say=say)

    def missing(self) -> list[str]:
        # A business with nothing listed to book does not ask which service.
        wanted = SLOTS if self.services else tuple(s for s in SLOTS if s != "service")
        return [slot for slot in wanted if getattr(self, slot) is None]

    def update(self, text: str) -> bool:
        """Take whatever slots ``text`` fills (the latest mention wins); True if any changed."""
        before = (self.name, self.service, self.day, self.time)
        low = text.lower()
        for service, cues in self.services.items():
            if any(re.search(rf"\b{re.escape(c)}\b", low) for c in cues):
                self.service = service
        # "Monday? No wait, Wednesday": the day mentioned last is the one meant.
        days = [(m.start(), m.group(0)) for d in DAYS for m in re.finditer(rf"\b{d}\b", low)]
        if days:
            self.day = max(days)[1].capitalize()
            if re.search(rf"\bnext\s+{re.escape(self.day.lower())}\b", low):
                self.day = f"next {self.day}"
        clock = _CLOCK.search(text)
        parts = [p for p in PARTS if re.search(rf"\b{p}\b", low)]
        if clock:
            ampm = clock.group(3).replace(".", "").lower()
            self.time = f"at {clock.group(1)}{':' + clock.group(2) if clock.group(2) else ''} {ampm}"
        elif parts:
            self.time = f"in the {parts[-1]}" if parts[-1] != "lunchtime" else "at lunchtime"
        name = _NAME.search(text)
        if name and name.group(1).split()[0] not in _NOT_NAMES:
            self.name = name.group(1)
        return before != (self.name, self.service, self.day, self.time)

    def forget_when(self) -> None:
        """Drop the day and time (they could not be booked) so they are asked for again."""
        self.day = self.time = None

    def next_prompt(self) -> str:
        """Ask for what is missing, or read all of it back."""
        say = self.say
        missing = self.missing()
        if not missing:
            self.confirmed_back = True
            return say.read_back.format(name=self.name, service=self.service or "", day=self.day, time=self.time)
        wanted = [say.ask_for[m] for m in missing]
        listed = wanted[0] if len(wanted) == 1 else f"{', '.join(wanted[:-1])} {say.and_word} {wanted[-1]}"
        got = []
        if self.service:
            got.append(f"a {self.service}")
        if self.day:
            got.append(f"for {self.day}")
        if self.time:
            got.append(self.time)
        lead = say.got.format(got=", ".join(got)) if got else say.start
        return f"{lead} {say.ask.format(missing=listed)}"
