"""The email channel against a real SMTP server (aiosmtpd) on 127.0.0.1: what arrives, over
plain SMTP, STARTTLS with login, and implicit TLS, and how the server's refusals are sorted into
"give up" and "try again"."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ssl
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import icalendar
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.outcomes.servers import Inbox
from voicebox.outcomes.channel import DeliveryFailed, StoredOutcome
from voicebox.outcomes.email_channel import EmailChannel
from voicebox.outcomes.settings import EmailConfig
from voicebox.telephony.probe import free_port

ZONE = ZoneInfo("America/New_York")  # not UTC in December, so a zone mix-up shows
HOST = "127.0.0.1"


def booking(**over) -> StoredOutcome:
    values = dict(
        id="01JF8Z7K3QW4",
        kind="booking",
        agent="test_agent",
        session_id="call-7f3a",
        created_at=dt.datetime(2026, 12, 7, 15, 4, 5, tzinfo=dt.timezone.utc),
        fields={"name": "Ann Lee", "service": "Consultation", "phone": "+12125550123",
                "notes": "first visit"},
        summary="Ann Lee booked a consultation on Tuesday 8 December at 2 pm.",
        start=dt.datetime(2026, 12, 8, 14, 0, tzinfo=ZONE),
        end=dt.datetime(2026, 12, 8, 14, 30, tzinfo=ZONE),
        form="appointment",
    )
    values.update(over)
    return StoredOutcome(**values)


def config(port: int, **over) -> EmailConfig:
    values = dict(to=["desk@business.test", "owner@business.test"], sender="agent@voicebox.test",
                  host=HOST, port=port, security="none", timeout_s=10)
    values.update(over)
    return EmailConfig(**values)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox(refuse={"gone@business.test": "550 5.1.1 No such user",
                          "full@business.test": "452 4.2.2 Mailbox full, try later"})
    port = free_port()
    controller = Controller(inbox, hostname=HOST, port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path, monkeypatch) -> ssl.SSLContext:
    """The server's TLS context, with the test CA made the client's trust store the way a
    deployment trusts a private CA: SSL_CERT_FILE."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(server_ctx)
    return server_ctx


def check_login(inbox: Inbox):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"agent", b"s3cret")
        if ok:
            inbox.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)
    return authenticator


def test_a_booking_arrives_with_its_fields_and_an_ics_at_the_agents_local_time(smtp):
    inbox, port = smtp
    EmailChannel(config(port)).deliver(booking())

    [(rcpts, msg)] = inbox.messages
    assert rcpts == ["desk@business.test", "owner@business.test"]
    assert msg["From"] == "agent@voicebox.test"
    assert msg["Subject"] == "Booking: Ann Lee booked a consultation on Tuesday 8 December at 2 pm."
    assert msg["Message-ID"] == "<outcome-01JF8Z7K3QW4@voicebox.test>"

    body = msg.get_body(("plain",)).get_content()
    lines = body.splitlines()
    assert lines[0] == "Ann Lee booked a consultation on Tuesday 8 December at 2 pm."
    assert "When: Tuesday 8 December 2026, 14:00-14:30 (America/New_York)" in lines
    # the form's own order, labels a person reads
    fields = [line for line in lines if line.split(":")[0] in ("Name", "Service", "Phone", "Notes")]
    assert fields == ["Name: Ann Lee", "Service: Consultation", "Phone: +12125550123",
                      "Notes: first visit"]
    assert "Call: call-7f3a" in lines and "Outcome: 01JF8Z7K3QW4" in lines

    [part] = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "PUBLISH"
    assert part.get_filename().endswith(".ics")
    cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
    assert str(cal["METHOD"]) == "PUBLISH"
    [event] = cal.walk("VEVENT")
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start == dt.datetime(2026, 12, 8, 14, 0, tzinfo=ZONE)
    assert start.utcoffset() == dt.timedelta(hours=-5)
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert end - start == dt.timedelta(minutes=30)
    assert str(event["UID"]) == "01JF8Z7K3QW4@voicebox"
    assert str(event["SUMMARY"]) == "Consultation - Ann Lee"
    assert "Phone: +12125550123" in str(event["DESCRIPTION"])
    assert "call-7f3a" in str(event["DESCRIPTION"])
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["America/New_York"]


def test_a_retry_sends_the_same_message_so_the_receiver_can_drop_it(smtp):
    inbox, port = smtp
    channel = EmailChannel(config(port))
    channel.deliver(booking())
    channel.deliver(booking())
    first, second = (msg for _, msg in inbox.messages)
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Date"] == second["Date"]
    other = booking(id="01JF8Z7K3QW5")
    channel.deliver(other)
    assert inbox.messages[2][1]["Message-ID"] != first["Message-ID"]


def test_a_message_has_no_calendar_attachment(smtp):
    inbox, port = smtp
    EmailChannel(config(port)).deliver(booking(kind="message", start=None, end=None,
                                               fields={"name": "Bo", "message": "call me back"},
                                               summary="Bo left a message."))
    [(_, msg)] = inbox.messages
    assert msg["Subject"] == "Message: Bo left a message."
    assert not msg.is_multipart()
    assert "Message: call me back" in msg.get_content()
    assert "When:" not in msg.get_content()


def test_starttls_with_login(trusted, monkeypatch):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname=HOST, port=port, tls_context=trusted,
                            require_starttls=True, auth_required=True,
                            authenticator=check_login(inbox))
    controller.start()
    try:
        cfg = config(port, security="starttls", username="agent", password={"value": "s3cret"})
        EmailChannel(cfg).deliver(booking())
        assert inbox.logins == ["agent"]
        assert len(inbox.messages) == 1

        # the server's final "no" to these credentials: retrying cannot help
        wrong = config(port, security="starttls", username="agent", password={"value": "nope"})
        with pytest.raises(DeliveryFailed) as failed:
            EmailChannel(wrong).deliver(booking())
        assert failed.value.permanent and "535" in failed.value.reason

        # no login where the server requires one: refused for good, nothing delivered
        with pytest.raises(DeliveryFailed) as failed:
            EmailChannel(config(port, security="starttls")).deliver(booking())
        assert failed.value.permanent
        assert len(inbox.messages) == 1

        # the certificate is checked: without the CA the handshake fails (maybe a cert renewal
        # away from working, so it is retried)
        monkeypatch.delenv("SSL_CERT_FILE")
        monkeypatch.setenv("SSL_CERT_DIR", "/nonexistent")
        with pytest.raises(DeliveryFailed) as failed:
            EmailChannel(cfg).deliver(booking())
        assert not failed.value.permanent and "certificate" in failed.value.reason.lower()
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


def test_implicit_tls(trusted):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname=HOST, port=port, ssl_context=trusted)
    controller.start()
    try:
        EmailChannel(config(port, security="tls")).deliver(booking())
        [(_, msg)] = inbox.messages
        assert msg["Message-ID"] == "<outcome-01JF8Z7K3QW4@voicebox.test>"
    finally:
        controller.stop()


def test_starttls_against_a_server_without_it_is_permanent(smtp):
    _, port = smtp
    with pytest.raises(DeliveryFailed) as failed:
        EmailChannel(config(port, security="starttls")).deliver(booking())
    assert failed.value.permanent and "STARTTLS" in failed.value.reason


def test_a_recipient_refused_with_550_is_permanent(smtp):
    inbox, port = smtp
    with pytest.raises(DeliveryFailed) as failed:
        EmailChannel(config(port, to=["gone@business.test"])).deliver(booking())
    assert failed.value.permanent
    assert "gone@business.test (550" in failed.value.reason
    assert inbox.messages == []


def test_a_mailbox_full_452_is_retried(smtp):
    _, port = smtp
    with pytest.raises(DeliveryFailed) as failed:
        EmailChannel(config(port, to=["full@business.test"])).deliver(booking())
    assert not failed.value.permanent and "452" in failed.value.reason


def test_one_address_refused_fails_the_try_and_says_the_rest_got_it(smtp):
    inbox, port = smtp
    with pytest.raises(DeliveryFailed) as failed:
        EmailChannel(config(port, to=["desk@business.test", "gone@business.test"])).deliver(booking())
    assert failed.value.permanent and "other recipients accepted it" in failed.value.reason
    assert [rcpts for rcpts, _ in inbox.messages] == [["desk@business.test"]]


def test_nothing_listening_is_retried():
    port = free_port()  # free: nothing listens there
    with pytest.raises(DeliveryFailed) as failed:
        EmailChannel(config(port)).deliver(booking())
    assert not failed.value.permanent and f"{HOST}:{port}" in failed.value.reason


def test_a_missing_password_is_permanent(smtp, monkeypatch):
    _, port = smtp
    monkeypatch.delenv("VOICEBOX_TEST_SMTP_PASSWORD", raising=False)
    cfg = config(port, username="agent", password={"env": "VOICEBOX_TEST_SMTP_PASSWORD"})
    with pytest.raises(DeliveryFailed) as failed:
        EmailChannel(cfg).deliver(booking())
    assert failed.value.permanent and "VOICEBOX_TEST_SMTP_PASSWORD" in failed.value.reason
