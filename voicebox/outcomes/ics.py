"""An outcome as iCalendar: the event a booking becomes, in the calendar and attached to email.

Every property is derived from the stored outcome alone (UID from its id, DTSTAMP from when it
was stored), so each retry of a delivery writes the same bytes and a calendar that already has
the event just keeps it.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import icalendar

from voicebox.outcomes.channel import StoredOutcome

PRODID = "-//voicebox//outcomes//EN"
# A VTIMEZONE only needs the transitions around the event; the whole 1970-2038 table would
# make every attachment several kilobytes of offsets.
_ZONE_MARGIN = dt.timedelta(days=400)


def event_uid(outcome: StoredOutcome) -> str:
    """The event's UID: the same for every delivery of the outcome, in every channel, so the
    emailed .ics and the CalDAV copy are one event to a calendar client."""
    return f"{outcome.id}@voicebox"


def resource_name(outcome: StoredOutcome) -> str:
    """The event's file name in a CalDAV collection; a PUT to it replaces, never duplicates."""
    return "voicebox-" + re.sub(r"[^A-Za-z0-9._-]", "_", outcome.id) + ".ics"


def field_label(key: str) -> str:
    """``party_size`` -> ``Party size``: a form's field name as a person reads it."""
    words = key.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else key


def field_lines(outcome: StoredOutcome) -> list[str]:
    """One ``Label: value`` line per filled field, in the form's own order (the order the
    caller was asked in, which the agent file chose to be the natural one)."""
    return [f"{field_label(k)}: {v}" for k, v in outcome.fields.items() if str(v).strip()]


def event_summary(outcome: StoredOutcome) -> str:
    """What the calendar shows on the event: the service and who booked it, when the form has
    such fields, else the outcome's own summary."""
    parts = [outcome.fields.get(k, "").strip() for k in ("service", "name")]
    parts = [p for p in parts if p]
    return " - ".join(parts) if parts else outcome.summary


def event_description(outcome: StoredOutcome) -> str:
    lines = [outcome.summary, "", *field_lines(outcome), "", f"Call: {outcome.session_id}",
             f"Outcome: {outcome.id}"]
    return "\n".join(lines)


def agent_zone(time_zone: str | dt.tzinfo | None) -> dt.tzinfo | None:
    """The agent's zone as a tzinfo: an IANA name or a ZoneInfo as given, UTC as ZoneInfo."""
    if time_zone is None or isinstance(time_zone, ZoneInfo):
        return time_zone
    if isinstance(time_zone, str):
        return ZoneInfo(time_zone)
    if time_zone.utcoffset(None) == dt.timedelta(0):
        return ZoneInfo("UTC")
    return time_zone


def _in_zone(when: dt.datetime, time_zone: str | dt.tzinfo | None) -> dt.datetime:
    if when.tzinfo is None:
        raise ValueError("a booking's start and end must be aware datetimes")
    zone = agent_zone(time_zone) or when.tzinfo
    if isinstance(zone, ZoneInfo):
        return when.astimezone(zone)
    # A bare offset has no TZID to name; UTC is exact and every client converts it.
    return when.astimezone(dt.timezone.utc)


def outcome_event(outcome: StoredOutcome, time_zone: str | dt.tzinfo | None = None) -> icalendar.Event:
    """The VEVENT of a booking. ``time_zone`` (the agent's zone: an IANA name or ZoneInfo)
    names the TZID; without it the start's own zone is used when it has a name."""
    if outcome.start is None or outcome.end is None:
        raise ValueError(f"outcome {outcome.id} has no start and end to put in a calendar")
    start = _in_zone(outcome.start, time_zone)
    end = _in_zone(outcome.end, time_zone)
    if end <= start:
        raise ValueError(f"outcome {outcome.id} ends before it starts")
    event = icalendar.Event()
    event.add("uid", event_uid(outcome))
    event.add("dtstamp", outcome.created_at.astimezone(dt.timezone.utc))
    event.add("created", outcome.created_at.astimezone(dt.timezone.utc))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", event_summary(outcome))
    event.add("description", event_description(outcome))
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")  # the slot is taken: free/busy must show it busy
    event.add("sequence", 0)
    return event


def outcome_calendar(outcome: StoredOutcome, time_zone: str | dt.tzinfo | None = None,
                     method: str | None = None) -> icalendar.Calendar:
    """A VCALENDAR holding the booking's event and the VTIMEZONE its TZID needs.

    ``method`` is for email (``PUBLISH``); a CalDAV resource must not carry one (RFC 4791
    5.3.2), so the calendar channel leaves it out."""
    event = outcome_event(outcome, time_zone)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    if method:
        cal.add("method", method)
    cal.add_component(event)
    start, end = event.decoded("dtstart"), event.decoded("dtend")
    cal.add_missing_timezones(first_date=(start - _ZONE_MARGIN).date(),
                              last_date=(end + _ZONE_MARGIN).date())
    return cal


def outcome_ics(outcome: StoredOutcome, time_zone: str | dt.tzinfo | None = None,
                method: str | None = None) -> bytes:
    """The booking as ``.ics`` bytes (CRLF lines, UTF-8)."""
    return outcome_calendar(outcome, time_zone, method).to_ical()
