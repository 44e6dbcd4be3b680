"""Bookings into the business's CalDAV calendar, and the calendar's busy times back out.

``deliver`` PUTs a booking's event at a resource named after the outcome id, so a retry (or a
second delivery after a lost reply) replaces the one event instead of adding another. Outcomes
that are not bookings have no place in a calendar: for them ``deliver`` succeeds at once, so
the service may hand this channel every outcome or only bookings.

``busy``/``busy_periods`` read the calendar's free/busy (a CALDAV:free-busy-query REPORT, which
needs only free/busy rights); a server that refuses that report is asked for its events in the
range instead. The outcome service asks ``is_free`` so a slot the business filled by hand is
not offered.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import icalendar
from caldav import DAVClient
from caldav.calendarobjectresource import Event
from caldav.collection import Calendar
from caldav.lib import error as caldav_error
from caldav.lib.http_sync import requests as http

from voicebox.outcomes.channel import DeliveryFailed, StoredOutcome
from voicebox.outcomes.ics import agent_zone, outcome_ics, resource_name
from voicebox.outcomes.settings import CalendarConfig

log = logging.getLogger(__name__)

Period = tuple[dt.datetime, dt.datetime]

# Statuses that mean the request itself is wrong for this calendar (credentials, rights, URL,
# what the server accepts): retrying the same request cannot succeed.
_FINAL = {400, 401, 403, 404, 405, 409, 410, 412, 413, 415, 422}


class CalendarUnavailable(Exception):
    """The calendar's busy times could not be read. ``permanent`` says the configuration (URL,
    credentials, rights) is at fault rather than the network or the server's health."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def _status(e: BaseException) -> int | None:
    status = getattr(e, "status", None)
    if isinstance(status, int):
        return status
    if isinstance(e, caldav_error.AuthorizationError):
        return 401
    if isinstance(e, caldav_error.NotFoundError):
        return 404
    return None


def _failure(e: BaseException, doing: str) -> tuple[str, bool]:
    """(reason, permanent) for an exception raised while talking to the server."""
    if isinstance(e, caldav_error.RateLimitError):
        return f"calendar: {doing}: server busy (rate limited)", False
    if isinstance(e, caldav_error.DAVError):
        status = _status(e)
        return f"calendar: {doing}: {status or ''} {e.reason}".replace("  ", " "), status in _FINAL
    if isinstance(e, (http.exceptions.RequestException, OSError)):
        return f"calendar: {doing}: cannot reach the server: {e}", False
    # An answer this code could not make sense of (a server quirk, a library change): worth
    # another try after a while, and loud in the log.
    log.exception("calendar: %s failed unexpectedly", doing)
    return f"calendar: {doing}: {type(e).__name__}: {e}", False


def _aware(value: dt.date | dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """An iCalendar time as an aware datetime: floating times and all-day dates are the
    calendar owner's local time, which is the agent's zone."""
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(), tzinfo=zone)
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _fb_periods(vcal: icalendar.Calendar, zone: dt.tzinfo) -> Iterator[Period]:
    for fb in vcal.walk("VFREEBUSY"):
        props = fb.get("FREEBUSY", [])
        for prop in props if isinstance(props, list) else [props]:
            if str(prop.params.get("FBTYPE", "BUSY")).upper() == "FREE":
                continue
            periods = prop.dts if hasattr(prop, "dts") else [prop]  # one line may hold several
            for period in periods:
                start, end_or_span = period.dt
                start = _aware(start, zone)
                end = start + end_or_span if isinstance(end_or_span, dt.timedelta) else _aware(end_or_span, zone)
                yield start, end


def _event_periods(vcal: icalendar.Calendar, zone: dt.tzinfo) -> Iterator[Period]:
    for ev in vcal.walk("VEVENT"):
        if str(ev.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        if str(ev.get("STATUS", "")).upper() == "CANCELLED":
            continue
        if "DTSTART" not in ev:
            continue
        start_value = ev.decoded("DTSTART")
        start = _aware(start_value, zone)
        if "DTEND" in ev:
            end = _aware(ev.decoded("DTEND"), zone)
        elif "DURATION" in ev:
            end = start + ev.decoded("DURATION")
        else:  # RFC 5545 3.6.1: a date lasts the day, a date-time is an instant
            end = start + (dt.timedelta(days=1) if not isinstance(start_value, dt.datetime) else dt.timedelta())
        yield start, end


def freebusy_periods(calendar: Calendar, start: dt.datetime, end: dt.datetime,
                     zone: dt.tzinfo) -> list[Period]:
    """Busy periods from the server's free/busy report for [start, end)."""
    return list(_fb_periods(calendar.freebusy_request(start, end).icalendar_instance, zone))


def event_periods(calendar: Calendar, start: dt.datetime, end: dt.datetime,
                  zone: dt.tzinfo) -> list[Period]:
    """Busy periods from the events in [start, end), recurrences expanded: the same answer
    for servers without free/busy reports."""
    found: list[Period] = []
    for event in calendar.search(start=start, end=end, event=True, expand=True):
        found += _event_periods(event.icalendar_instance, zone)
    return found


class CalendarChannel:
    """Writes bookings to ``cfg.url`` (a calendar collection) and reads its busy times."""

    name = "calendar"

    def __init__(self, cfg: CalendarConfig, time_zone: str | dt.tzinfo) -> None:
        """``time_zone``: the agent's zone (an IANA name or its ZoneInfo), for the event's TZID
        and for all-day or floating times read back from the calendar."""
        self.cfg = cfg
        self.zone = agent_zone(time_zone)

    def _client(self) -> DAVClient:
        password = None
        if self.cfg.password is not None:
            password = self.cfg.password.read()  # ValueError names where it looked
        return DAVClient(url=self.cfg.url, username=self.cfg.username, password=password,
                         timeout=self.cfg.timeout_s, enable_rfc6764=False)

    def deliver(self, outcome: StoredOutcome) -> None:
        if outcome.kind != "booking":
            return
        try:
            body = outcome_ics(outcome, self.zone)
        except ValueError as e:
            raise DeliveryFailed(f"calendar: {e}", permanent=True) from None
        try:
            client = self._client()
        except ValueError as e:
            raise DeliveryFailed(f"calendar password: {e}", permanent=True) from None
        try:
            with client:
                calendar = client.calendar(url=self.cfg.url)
                url = calendar.url.join(resource_name(outcome))
                # An unconditional PUT of the same bytes at the same URL: creates the event the
                # first time, rewrites it unchanged on any later try.
                Event(client, url=url, parent=calendar).save(raw_data=body, increase_seqno=False)
        except Exception as e:  # noqa: BLE001 - every failure becomes one outcome for the caller
            reason, permanent = _failure(e, f"saving {outcome.id}")
            raise DeliveryFailed(reason, permanent=permanent) from None
        log.info("outcome %s written to calendar %s", outcome.id, self.cfg.url)

    def busy_periods(self, start: dt.datetime, end: dt.datetime) -> list[Period]:
        """The calendar's busy periods overlapping [start, end), in the agent's zone, sorted.

        Raises ``CalendarUnavailable`` when the calendar cannot be read."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("busy_periods needs aware datetimes")
        try:
            client = self._client()
        except ValueError as e:
            raise CalendarUnavailable(f"calendar password: {e}", permanent=True) from None
        try:
            with client:
                calendar = client.calendar(url=self.cfg.url)
                try:
                    found = freebusy_periods(calendar, start, end, self.zone)
                except caldav_error.ReportError as e:
                    if _status(e) in (401, 403, 404):
                        raise
                    log.info("calendar %s refused free-busy-query (%s); reading its events",
                             self.cfg.url, e.reason)
                    found = event_periods(calendar, start, end, self.zone)
        except Exception as e:  # noqa: BLE001 - every failure becomes one outcome for the caller
            reason, permanent = _failure(e, "reading free/busy")
            raise CalendarUnavailable(reason, permanent=permanent) from None
        overlapping = [(s.astimezone(self.zone), e.astimezone(self.zone))
                       for s, e in found if s < end and e > start]
        return sorted(overlapping)

    def busy(self, start: dt.datetime, end: dt.datetime) -> bool:
        """Whether anything in the calendar overlaps [start, end)."""
        return bool(self.busy_periods(start, end))

    def is_free(self, start: dt.datetime, end: dt.datetime) -> bool:
        """The slot check the outcome service asks every channel that has one: free unless the
        calendar shows it busy; always free with ``busy_check = false``. Raises
        ``CalendarUnavailable`` when the calendar cannot be read (the caller decides)."""
        if not self.cfg.busy_check:
            return True
        return not self.busy(start, end)
