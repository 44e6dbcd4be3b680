"""The calendar channel against a real CalDAV server (Radicale, started here on 127.0.0.1 with
its own storage and password file): the booking appears once, at the agent's local time, however
often it is delivered; the calendar's busy times come back; bad credentials and a dead server
are told apart."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import caldav
import pytest

from tests.outcomes.servers import radicale as radicale_server

from voicebox.outcomes.calendar_channel import (
    CalendarChannel,
    CalendarUnavailable,
    event_periods,
    freebusy_periods,
)
from voicebox.outcomes.channel import DeliveryFailed, StoredOutcome
from voicebox.outcomes.settings import CalendarConfig
from voicebox.telephony.probe import free_port

TZ = "America/New_York"
ZONE = ZoneInfo(TZ)  # five hours from UTC in December: a zone mix-up moves the event
HOST = "127.0.0.1"
USER, PASSWORD = "desk", "cal-s3cret"


@pytest.fixture(scope="module")
def radicale(tmp_path_factory) -> Iterator[str]:
    """A Radicale server with one user; its base URL."""
    with radicale_server(tmp_path_factory.mktemp("radicale"), USER, PASSWORD) as url:
        yield url


@pytest.fixture
def calendar(radicale: str) -> caldav.Calendar:
    """A fresh calendar collection for each test, made the way a person would, over CalDAV."""
    client = caldav.DAVClient(url=radicale, username=USER, password=PASSWORD)
    return client.principal().make_calendar(name="Bookings", cal_id=f"bookings-{uuid.uuid4().hex[:8]}")


def channel(url: str, password: str = PASSWORD, zone: str | ZoneInfo = TZ, **over) -> CalendarChannel:
    cfg = CalendarConfig(url=url, username=USER, password={"value": password}, timeout_s=10, **over)
    return CalendarChannel(cfg, zone)


def booking(id: str = "01JF8Z7K3QW4", hour: int = 14, **over) -> StoredOutcome:
    values = dict(
        id=id, kind="booking", agent="test_agent", session_id="call-7f3a",
        created_at=dt.datetime(2026, 12, 7, 15, 4, 5, tzinfo=dt.timezone.utc),
        fields={"name": "Ann Lee", "service": "Consultation", "phone": "+12125550123"},
        summary="Ann Lee booked a consultation.",
        start=dt.datetime(2026, 12, 8, hour, 0, tzinfo=ZONE),
        end=dt.datetime(2026, 12, 8, hour, 30, tzinfo=ZONE),
    )
    values.update(over)
    return StoredOutcome(**values)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=ZONE)


@pytest.mark.parametrize("zone", [TZ, ZONE], ids=["name", "zoneinfo"])
def test_a_booking_appears_once_at_the_agents_local_time(calendar, zone):
    # stored in UTC, written in the agent's zone
    channel(str(calendar.url), zone=zone).deliver(booking(start=at(8, 14).astimezone(dt.timezone.utc),
                                                          end=at(8, 14, 30).astimezone(dt.timezone.utc)))

    [event] = calendar.events()
    vevent = event.icalendar_component
    start = vevent.decoded("DTSTART")
    assert start == at(8, 14)
    assert start.utcoffset() == dt.timedelta(hours=-5)
    assert vevent["DTSTART"].params["TZID"] == TZ
    assert vevent.decoded("DTEND") == at(8, 14, 30)
    assert str(vevent["UID"]) == "01JF8Z7K3QW4@voicebox"
    assert str(vevent["SUMMARY"]) == "Consultation - Ann Lee"
    assert "Phone: +12125550123" in str(vevent["DESCRIPTION"])
    assert "METHOD" not in event.icalendar_instance  # not allowed in a CalDAV resource


def test_delivering_twice_leaves_one_event_and_another_booking_adds_one(calendar):
    ch = channel(str(calendar.url))
    ch.deliver(booking())
    ch.deliver(booking())  # a retry after a lost reply
    assert [e.icalendar_component.decoded("DTSTART") for e in calendar.events()] == [at(8, 14)]

    ch.deliver(booking(id="01JF8Z7K3QW5", hour=16))
    starts = sorted(e.icalendar_component.decoded("DTSTART") for e in calendar.events())
    assert starts == [at(8, 14), at(8, 16)]


def test_outcomes_other_than_bookings_leave_the_calendar_alone(calendar):
    ch = channel(str(calendar.url))
    ch.deliver(booking(kind="message", start=None, end=None, fields={"message": "call me"}))
    ch.deliver(booking(kind="callback", start=None, end=None))
    assert calendar.events() == []


def test_busy_is_true_only_where_a_booking_overlaps(calendar):
    ch = channel(str(calendar.url))
    assert not ch.busy(at(8, 14), at(8, 14, 30))
    ch.deliver(booking())
    assert ch.busy(at(8, 14), at(8, 14, 30))
    assert ch.busy(at(8, 14, 15), at(8, 15))
    assert ch.busy(at(8, 13, 45), at(8, 14, 15))
    assert not ch.busy(at(8, 14, 30), at(8, 15))  # back to back is free
    assert not ch.busy(at(8, 13, 30), at(8, 14))
    assert not ch.busy(at(9, 14), at(9, 14, 30))
    [(start, end)] = ch.busy_periods(at(8, 0), at(9, 0))
    assert (start, end) == (at(8, 14), at(8, 14, 30))
    assert start.tzinfo == ZONE
    assert not ch.is_free(at(8, 14), at(8, 14, 30))
    assert ch.is_free(at(8, 14, 30), at(8, 15))


def test_with_busy_check_off_every_slot_is_free(calendar):
    channel(str(calendar.url)).deliver(booking())
    assert channel(str(calendar.url), busy_check=False).is_free(at(8, 14), at(8, 14, 30))


RECURRING_AND_TRANSPARENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//test//EN
BEGIN:VEVENT
UID:weekly-team@test
DTSTAMP:20261201T000000Z
DTSTART;TZID=America/New_York:20261201T090000
DTEND;TZID=America/New_York:20261201T100000
RRULE:FREQ=WEEKLY
SUMMARY:closed for the weekly meeting
END:VEVENT
END:VCALENDAR
""", """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//test//EN
BEGIN:VEVENT
UID:reminder@test
DTSTAMP:20261201T000000Z
DTSTART;TZID=America/New_York:20261222T120000
DTEND;TZID=America/New_York:20261222T130000
TRANSP:TRANSPARENT
SUMMARY:a note, not an appointment
END:VEVENT
END:VCALENDAR
"""


def test_busy_sees_what_the_business_put_in_the_calendar_itself(calendar):
    for ics in RECURRING_AND_TRANSPARENT:
        calendar.add_event(ics)
    ch = channel(str(calendar.url))
    assert ch.busy(at(22, 9, 30), at(22, 10))  # the fourth week's meeting
    assert not ch.busy(at(22, 10), at(22, 10, 30))
    assert not ch.busy(at(22, 12), at(22, 13))  # transparent: does not block time
    assert ch.busy_periods(at(22, 0), at(23, 0)) == [(at(22, 9), at(22, 10))]


def test_free_busy_and_the_event_search_fallback_agree(calendar):
    for ics in RECURRING_AND_TRANSPARENT:
        calendar.add_event(ics)
    channel(str(calendar.url)).deliver(booking(start=at(22, 15), end=at(22, 16)))
    start, end = at(21, 0), at(24, 0)
    from_report = sorted((s.astimezone(ZONE), e.astimezone(ZONE))
                         for s, e in freebusy_periods(calendar, start, end, ZONE))
    from_events = sorted((s.astimezone(ZONE), e.astimezone(ZONE))
                         for s, e in event_periods(calendar, start, end, ZONE))
    # the meeting is on Tuesdays (1 December 2026 was one): the 22nd, not the 21st or 23rd
    expected = [(at(22, 9), at(22, 10)), (at(22, 15), at(22, 16))]
    assert from_report == expected
    assert from_events == expected


def test_a_wrong_password_is_permanent(calendar):
    ch = channel(str(calendar.url), password="wrong")
    with pytest.raises(DeliveryFailed) as failed:
        ch.deliver(booking())
    assert failed.value.permanent and "401" in failed.value.reason
    with pytest.raises(CalendarUnavailable) as unavailable:
        ch.busy(at(8, 14), at(8, 15))
    assert unavailable.value.permanent
    assert calendar.events() == []


def test_a_calendar_that_does_not_exist_is_permanent(radicale):
    with pytest.raises(DeliveryFailed) as failed:
        channel(f"{radicale}{USER}/no-such-calendar/").deliver(booking())
    assert failed.value.permanent


def test_a_server_that_is_not_there_is_retried():
    port = free_port()  # nothing listens on it
    ch = channel(f"http://{HOST}:{port}/{USER}/bookings/")
    with pytest.raises(DeliveryFailed) as failed:
        ch.deliver(booking())
    assert not failed.value.permanent
    with pytest.raises(CalendarUnavailable) as unavailable:
        ch.busy(at(8, 14), at(8, 15))
    assert not unavailable.value.permanent


class Failing(http.server.BaseHTTPRequestHandler):
    """A server in trouble: every request gets the status the test sets."""

    status = 500

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_REPORT = do_GET = do_PROPFIND = _answer  # noqa: N815

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_retried(status):
    handler = type("Failing", (Failing,), {"status": status})
    server = http.server.ThreadingHTTPServer((HOST, free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ch = channel(f"http://{HOST}:{server.server_address[1]}/{USER}/bookings/")
        with pytest.raises(DeliveryFailed) as failed:
            ch.deliver(booking())
        assert not failed.value.permanent
        with pytest.raises(CalendarUnavailable) as unavailable:
            ch.busy(at(8, 14), at(8, 15))
        assert not unavailable.value.permanent
    finally:
        server.shutdown()
        server.server_close()
