"""The Refer-To value that carries why a caller is transferred (parsed back as a receiver would)."""

from urllib.parse import unquote

import pytest

from voicebox.telephony.transfer_context import TransferContext, decode_uui, refer_to


def _parse(value: str) -> tuple[str, str, dict[str, str]]:
    display, _, rest = value.partition(" <")
    uri, _, query = rest.rstrip(">").partition("?")
    headers = dict(pair.split("=", 1) for pair in query.split("&"))
    return display.strip('"'), uri, {k: unquote(v) for k, v in headers.items()}


def test_reason_and_session_travel_as_uri_headers():
    value = refer_to("sip:desk@10.0.0.5:5060", TransferContext("20261207-abc", "asked for a person", "Acme"))
    display, uri, headers = _parse(value)
    assert uri == "sip:desk@10.0.0.5:5060"
    assert display == "Acme: asked for a person"
    assert headers["X-Voicebox-Session"] == "20261207-abc"
    assert headers["X-Voicebox-Reason"] == "asked for a person"
    assert decode_uui(headers["User-to-User"]) == "asked for a person"
    assert "purpose=voicebox" in headers["User-to-User"]


def test_characters_that_would_break_the_header_are_escaped_or_dropped():
    value = refer_to("sip:desk@pbx", TransferContext("s", 'a "quoted" <reason>;\r\nVia: evil & more=1'))
    display, _, headers = _parse(value)
    assert "\r" not in value and "\n" not in value
    assert value.count("<") == 1 and value.count(">") == 1
    assert '"' not in display
    reason = headers["X-Voicebox-Reason"]
    assert "Via: evil & more=1" in reason  # the '&' and '=' were escaped, not taken as separators
    assert decode_uui(headers["User-to-User"]) == reason


def test_long_reasons_are_cut_to_fit_uui_fields():
    value = refer_to("sip:desk@pbx", TransferContext("s", "x" * 500))
    _, _, headers = _parse(value)
    assert len(decode_uui(headers["User-to-User"])) <= 120


@pytest.mark.parametrize("target", ["sip:desk@pbx?X-A=1", "<sip:desk@pbx>"])
def test_a_target_that_already_has_headers_is_refused(target):
    with pytest.raises(ValueError):
        refer_to(target, TransferContext("s", "r"))


def test_the_reason_names_the_dialogs_classification_not_the_callers_words():
    from voicebox.telephony.transfer_context import transfer_reason
    from voicebox.thinking.dialog import Decision

    assert transfer_reason(Decision("transfer", "Sure.", intent="human", reason="intent")) == \
        "caller asked for a person (human)"
    assert transfer_reason(Decision("transfer", "Sure.", reason="accepted offer")) == \
        "caller accepted the offer of a person"
    assert transfer_reason(Decision("give_up", "Sure.", reason="router unclear, ladder exhausted")) == \
        "the agent could not understand the caller"


def test_split_refer_to_gives_back_the_target_and_headers_for_a_warm_invite():
    from voicebox.telephony.transfer_context import split_refer_to

    ctx = TransferContext("a1b2", "caller asked for a person (café & co)", "Front")
    target, headers = split_refer_to(refer_to("sip:desk@pbx.example:5060", ctx))
    assert target == "sip:desk@pbx.example:5060"
    assert set(headers) == {"User-to-User", "X-Voicebox-Session", "X-Voicebox-Reason"}
    assert headers["X-Voicebox-Session"] == "a1b2"
    assert headers["X-Voicebox-Reason"] == "caller asked for a person (café & co)"
    assert decode_uui(headers["User-to-User"]) == "caller asked for a person (café & co)"
