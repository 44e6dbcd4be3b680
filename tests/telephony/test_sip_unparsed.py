"""What the edge answers to the RFC 4475 messages pjsip's parser refuses (no library running)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebox.telephony.sip_unparsed import answer

TORTURE = Path(__file__).resolve().parents[2].parent / "shared" / "rfc4475"


def _answer(name: str):
    return answer((TORTURE / f"{name}.dat").read_bytes(), "INVITE, ACK")


@pytest.mark.parametrize("name, status", [
    ("badinv01", 400), ("scalar02", 400), ("badvers", 505), ("unkscm", 416), ("novelsc", 416),
    ("quotbal", 400), ("ltgtruri", 400), ("lwsruri", 400), ("regbadct", 405), ("regaut01", 405),
    ("insuf", 400), ("ncl", 400),
])
def test_refused_messages_get_the_status_rfc4475_names(name, status):
    found = _answer(name)
    assert found is not None
    assert found[0].status == status


def test_responses_are_never_answered():
    for name in ("scalarlg", "bigcode", "bcast", "unreason"):
        assert _answer(name) is None, name


def test_the_response_copies_via_from_to_call_id_and_cseq_verbatim():
    reply, copied = _answer("quotbal")
    text = reply.render(copied, "voicebox").decode()
    assert text.startswith("SIP/2.0 400 Unterminated quoted string in to\r\n")
    assert "\r\nVia: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234\r\n" in text
    assert '\r\nTo: "Mr. J. User <sip:j.user@example.com>\r\n' in text
    assert "\r\nCall-ID: quotbal.aksdj\r\n" in text and "\r\nCSeq: 8 INVITE\r\n" in text
    assert "Contact" not in text and "Content-Type" not in text
    assert text.endswith("Content-Length: 0\r\n\r\n")


def test_a_register_gets_405_with_allow():
    reply, _ = _answer("regaut01")
    assert reply.headers == [("Allow", "INVITE, ACK")]


def test_insuf_names_what_is_missing():
    reply, copied = _answer("insuf")
    assert reply.reason == "Missing Call-ID, From, To"
    assert [name.lower() for name, _ in copied] == ["cseq", "via"]


def test_a_message_without_via_cannot_be_answered():
    raw = b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\nTo: <sip:a@b\r\n\r\n"
    assert answer(raw, "INVITE") is None
    assert answer(b"garbage\r\n\r\n", "INVITE") is None


def test_scalar02_gets_bad_cseq_before_the_register_405():
    reply, _ = _answer("scalar02")
    assert (reply.status, reply.reason) == (400, "Bad CSeq")
