"""A booking made by voice over SIP reaches the business: one signed webhook, one calendar event,
one email with its .ics, all at the agent's local time. Every receiver is a real server started
here (an HTTP server that checks the signature, Radicale for CalDAV, aiosmtpd for mail)."""

from __future__ import annotations

import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

import caldav
import icalendar
import pytest
from aiosmtpd.controller import Controller

from tests.e2e.conftest import ROOT, call, call_events, start_server, stop_server
from tests.outcomes.receiver import Receiver
from tests.outcomes.servers import Inbox, radicale
from voicebox.telephony.probe import free_port

pytestmark = pytest.mark.e2e
ZONE = ZoneInfo("America/Chicago")  # the dental agent's [hours] time zone
USER, PASSWORD = "desk", "cal-pass"


def booking_day(now: dt.datetime) -> dt.date:
    """A weekday two to six days ahead: open, past the lead time, and named unambiguously."""
    for ahead in range(2, 7):
        day = (now + dt.timedelta(days=ahead)).date()
        if day.weekday() < 5:
            return day
    raise AssertionError("no weekday in range")  # unreachable: 5 days always hold one


@pytest.fixture(scope="module")
def business(tmp_path_factory):
    """The three places a business keeps what calls produce, and an agent file pointing at them."""
    tmp = tmp_path_factory.mktemp("business")
    with Receiver() as hook, radicale(tmp / "radicale", USER, PASSWORD) as dav_url:
        inbox = Inbox()
        smtp_port = free_port()
        smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        cal = caldav.DAVClient(url=dav_url, username=USER, password=PASSWORD).principal().make_calendar(
            name="Appointments", cal_id="appointments")
        agent = (ROOT / "voicebox" / "agents" / "riverside_dental.toml").read_text()
        agent += f"""
[outcomes.webhook]
url = "{hook.url}"
secret = {{ value = "{hook.secret}" }}

[outcomes.email]
to = ["desk@clinic.test"]
sender = "voicebox@clinic.test"
host = "127.0.0.1"
port = {smtp_port}
security = "none"

[outcomes.calendar]
url = "{cal.url}"
username = "{USER}"
password = {{ value = "{PASSWORD}" }}
"""
        path = tmp / "agent.toml"
        path.write_text(agent)
        server = start_server(tmp, f'agent = "{path}"\n[sip]\nrtp_port = 57000\n')
        try:
            yield server, hook, inbox, cal
        finally:
            stop_server(server)
            smtp.stop()


def test_a_voiced_booking_reaches_webhook_calendar_and_mail_once(business, say, tmp_path, transcribe):
    server, hook, inbox, cal = business
    day = booking_day(dt.datetime.now(ZONE))
    weekday = day.strftime("%A")
    turns = [
        say(f"Hi, I'd like to book a cleaning on {weekday} at 10 am."),
        say("My name is Dana Smith."),
        say("It is 3 1 2, 5 5 5, 0 1 4 2."),  # digits one by one, as callers give a number
        say("Yes, that's right."),
    ]
    res = call(server.uri, "G722", turns, tmp_path, timeout=240, reply_timeout_s=40)
    heard = transcribe(res["recording"])
    # Told only after the outcome was stored: "you're booked" after the read-back (the ear,
    # tiny.en, has heard it as "your book again" on a loaded box, hence the word's stem).
    assert "book" in heard.rpartition("is that right")[2], heard

    # The webhook: exactly one signed JSON, acted on once, with the slot in the agent's zone.
    assert hook.wait_acted(1, timeout_s=60), hook.arrivals
    arrived = hook.arrived_at[0]  # when the request came in, not when this call ended
    assert hook.bad_signatures == 0
    (key, body), = hook.acted.items()
    assert body["kind"] == "booking" and body["id"] == key
    assert body["agent"] == "agent"  # the agent file's stem
    start = dt.datetime.fromisoformat(body["start"])
    assert start == dt.datetime.combine(day, dt.time(10, 0), ZONE), body
    assert start.utcoffset() == dt.datetime.combine(day, dt.time(10), ZONE).utcoffset()
    assert body["fields"]["service"] == "cleaning", body
    assert "dana" in body["fields"]["name"].lower(), body
    assert body["fields"]["phone"] == "+13125550142", body
    delay_s = arrived - dt.datetime.fromisoformat(body["created_at"]).timestamp()
    print(f"webhook delivery: {delay_s * 1000:.0f} ms after the outcome was stored")

    # The call's record names the outcome it produced, and nothing else was stored or sent.
    events = call_events(server, res["sip_call_id"])
    outcomes = [e for e in events if e["event"] == "outcome"]
    assert [o["outcome_id"] for o in outcomes] == [key], events

    # The calendar: one event, at 10:00 local on that day.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not cal.events():
        time.sleep(0.5)
    (event,) = cal.events()
    vevent = next(c for c in icalendar.Calendar.from_ical(event.data).walk("VEVENT"))
    assert vevent.decoded("DTSTART") == start

    # The mail: one message to the business with the booking's .ics attached.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not inbox.messages:
        time.sleep(0.5)
    time.sleep(1)  # a second copy, if one were coming, would arrive in this time
    (rcpt, msg), = inbox.messages
    assert rcpt == ["desk@clinic.test"]
    ics = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert len(ics) == 1
    mailed = next(c for c in icalendar.Calendar.from_ical(ics[0].get_content()).walk("VEVENT"))
    assert mailed.decoded("DTSTART") == start
    assert len(hook.arrivals) == 1, hook.arrivals  # delivered once, not retried


def test_outcomes_command_lists_the_booking(business):
    server, hook, _, _ = business
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "voicebox", "outcomes", "--data-dir", str(server.data_dir), "export",
         "--format", "jsonl"], cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [r["id"] for r in rows] == list(hook.acted), rows
