"""Who was dialled: the Request-URI's user part, as the agent directory matches it."""

from __future__ import annotations

import pytest

from voicebox.telephony.dialled import dialled_user, request_uri


@pytest.mark.parametrize(
    "uri,user",
    [
        ("sip:dental@127.0.0.1:5060", "dental"),
        ("sip:Plumbing@example.com;transport=tcp", "plumbing"),  # matched ignoring case
        ("sips:dental@example.com", "dental"),
        ("SIP:dental@example.com", "dental"),
        ("sip:%64ental@example.com", "dental"),  # escaped characters are the same user (RFC 3261 19.1.4)
        ("sip:dental:secret@example.com", "dental"),  # a password is not who was dialled
        ("sip:+15551234567;phone-context=example.com@example.com;user=phone", "+15551234567"),
        ("tel:+15551234567;ext=12", "+15551234567"),
        ("sip:dental@[::1]:5060", "dental"),
    ],
)
def test_user_part(uri, user):
    assert dialled_user(uri) == user


@pytest.mark.parametrize("uri", ["sip:example.com", "sip:127.0.0.1:5060;transport=udp", "sip:@example.com",
                                 "mailto:dental@example.com", "dental", ""])
def test_no_user_part(uri):
    assert dialled_user(uri) is None


def test_request_uri_is_the_start_line_target():
    msg = "INVITE sip:plumbing@127.0.0.1:5060 SIP/2.0\r\nTo: <sip:dental@127.0.0.1>\r\n\r\n"
    # The To header says what the caller wrote; the Request-URI where the request is going.
    assert request_uri(msg) == "sip:plumbing@127.0.0.1:5060"
    assert request_uri("garbage") == ""
