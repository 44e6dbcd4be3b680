from voicebox.telephony import sip_lint


def _req(method="OPTIONS", cseq_method=None, extra=(), body=b"", length=None, to="<sip:a@x>"):
    lines = [f"{method} sip:a@x SIP/2.0", "Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1", "From: <sip:b@x>;tag=1",
             f"To: {to}", "Call-ID: c1", f"CSeq: 1 {cseq_method or method}", *extra,
             f"Content-Length: {len(body) if length is None else length}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def check(raw):
    return sip_lint.check(sip_lint.parse(raw), datagram=True)


def test_well_formed_passes():
    assert check(_req()) is None
    assert check(_req("INVITE", extra=["Require: timer", "Accept: application/sdp"], body=b"v=0\r\n")) is None


def test_cseq_mismatch():
    assert check(_req(cseq_method="INVITE")).status == 400


def test_duplicate_single_valued_header_incl_compact_form():
    assert check(_req(extra=["i: c2"])).status == 400


def test_content_length_past_datagram():
    assert check(_req(body=b"abc", length=10)).status == 400


def test_unknown_require_gets_420_with_unsupported():
    v = check(_req(extra=["Require: nothingSupported, timer"]))
    assert v.status == 420 and v.headers == [("Unsupported", "nothingSupported")]


def test_accept_without_sdp():
    assert check(_req("INVITE", extra=["Accept: text/nobody"], body=b"v=0\r\n")).status == 406


def test_ack_never_answered_and_dialog_claim_detected():
    assert check(_req("ACK", cseq_method="INVITE")) is None
    assert sip_lint.parse(_req(to="<sip:a@x>;tag=9")).claims_dialog
    assert sip_lint.parse(_req(to="<sip:a@x>\r\n ;tag=9")).claims_dialog, "folded header"
    assert not sip_lint.parse(_req()).claims_dialog
    # Never in a dialog, tag or not: REGISTER, and CANCEL (matched by the INVITE it cancels).
    assert not sip_lint.parse(_req("REGISTER", to="<sip:a@x>;tag=9")).claims_dialog
    assert not sip_lint.parse(_req("CANCEL", to="<sip:a@x>;tag=9")).claims_dialog
    assert sip_lint.parse(b"SIP/2.0 200 OK\r\n\r\n") is None
