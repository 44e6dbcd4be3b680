"""Booking an appointment: collect name, service, day and time, then read them back.

Deterministic slot filling, so the confirmation repeats exactly what was understood (a small
model would happily "confirm" a day the caller never said).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SERVICES = {
    "check-up": ("checkup", "check-up", "check up", "exam", "examination"),
    "cleaning": ("cleaning", "clean", "hygiene"),
    "teeth whitening": ("whitening", "whiten"),
    "filling": ("filling", "fillings", "cavity"),
    "emergency visit": ("emergency", "toothache", "broken tooth", "pain"),
}
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "tomorrow")
PARTS = ("morning", "afternoon", "evening", "lunchtime")
_CLOCK = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)", re.I)
_NAME = re.compile(
    r"\b(?:my name is|my name's|name is|this is|it's|i am|i'm)\s+([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)"
)
_NOT_NAMES = {"Calling", "Looking", "Sorry", "Just", "Not", "Here", "Fine", "Good", "Interested", "Trying"}


@dataclass
class Booking:
    name: str | None = None
    service: str | None = None
    day: str | None = None
    time: str | None = None
    active: bool = False
    confirmed_back: bool = False

    def missing(self) -> list[str]:
        return [slot for slot in ("name", "service", "day", "time") if getattr(self, slot) is None]

    def update(self, text: str) -> bool:
        """Take whatever slots ``text`` fills (the latest mention wins); True if any changed."""
        before = (self.name, self.service, self.day, self.time)
        low = text.lower()
        for service, cues in SERVICES.items():
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

    def next_prompt(self) -> str:
        """Ask for what is missing, or read all of it back."""
        missing = self.missing()
        if not missing:
            self.confirmed_back = True
            return (
                f"Thank you, {self.name}. That's a {self.service} for {self.day}, {self.time}. Is that right?"
            )
        asks = {
            "name": "your name",
            "service": "the service you need",
            "day": "a preferred day",
            "time": "a preferred time",
        }
        wanted = [asks[m] for m in missing]
        listed = wanted[0] if len(wanted) == 1 else ", ".join(wanted[:-1]) + " and " + wanted[-1]
        got = []
        if self.service:
            got.append(f"a {self.service}")
        if self.day:
            got.append(f"for {self.day}")
        if self.time:
            got.append(self.time)
        lead = f"Sure, {', '.join(got)}. " if got else "I can help you book that. "
        return f"{lead}Could I have {listed}?"
