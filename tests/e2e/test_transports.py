"""SIP over TCP and TLS, SRTP over TLS only, and a TLS registrar that must prove who it is.

Real peers throughout: the pjsua2 caller over UDP, TCP and TLS; raw UDP for an SDP with SDES
keys; a Python ``ssl`` registrar whose certificate a CA made here signs (tls_registrar.py).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import CORPUS, HOST, call, free_port, start_server, stop_server, wait_for
from tests.e2e.rawsip import Peer, request, rtp_socket
from tests.e2e.torture import end_invite
from tests.e2e.tls_registrar import TlsRegistrar, issue_cert, make_ca

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


def self_signed_cert(tmp: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1, made with the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (Debian: apt-get install openssl)")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", f"/CN={HOST}"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA of the test's own and a registrar with a certificate it signed for 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("pki")
    ca = make_ca(tmp)
    registrar = TlsRegistrar(*issue_cert(tmp, ca, "registrar"))
    yield ca[0], registrar
    registrar.close()


def _tls_config(tmp: Path, rtp_port: int, registrar: TlsRegistrar, user: str, extra_tls: str = "",
                extra_sip: str = "") -> tuple[str, int]:
    cert, key = self_signed_cert(tmp)
    tls_port = free_port()
    config = (
        f"[sip]\nrtp_port = {rtp_port}\nrtp_port_range = 100\n{extra_sip}"
        f'[sip.tls]\nport = {tls_port}\ncert_file = "{cert}"\nkey_file = "{key}"\n{extra_tls}'
        f'[sip.register]\nregistrar = "sip:{HOST}:{registrar.port};transport=tls"\nuser = "{user}"\n'
        "retry_min_s = 1\nretry_max_s = 2\n"
    )
    return config, tls_port


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, pki):
    """Defaults: the registrar's certificate is checked against the system's CA store (which
    does not know our CA), and SRTP only over TLS. (With the system store loaded pjsip names its
    ~140 CAs to TLS callers, which a pjsip caller's handshake does not survive: TLS calls are
    placed to the trusting server, whose ca_file holds one CA.)"""
    tmp = tmp_path_factory.mktemp("transports")
    config, tls_port = _tls_config(tmp, 55100, pki[1], "strict")
    server = start_server(tmp, config)
    server.tls_port = tls_port
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def trusting_server(tmp_path_factory, pki):
    """The registrar's CA as ca_file, and SDES over plain UDP allowed explicitly; TLS calls."""
    tmp = tmp_path_factory.mktemp("trusting")
    config, tls_port = _tls_config(tmp, 55200, pki[1], "voicebox", extra_tls=f'ca_file = "{pki[0]}"\n',
                                   extra_sip="sdes_without_tls = true\n")
    server = start_server(tmp, config)
    server.tls_port = tls_port
    yield server
    if server.proc.poll() is None:  # test_stopping_unregisters_from_the_registrar stops it itself
        stop_server(server)


def _heard_the_hours(res: dict, transcribe) -> None:
    """Audio both ways: the agent heard the question (it answered it) and we heard the answer."""
    assert res["answered"], res
    assert res["turns"] and res["turns"][0]["reply_onset_ms"] is not None, res
    heard = transcribe(res["recording"])
    assert re.search(r"saturday[^.]*(?<!\d)(9|nine)(?!\d)", heard), heard


def test_listens_on_udp_tcp_and_tls(tls_server):
    assert f"(udp+tcp+tls:{tls_server.tls_port})" in tls_server.log_text()
    assert "verify_server is false" not in tls_server.log_text() and "sdes_without_tls" not in tls_server.log_text()


def test_tcp_call_has_audio_both_ways(tls_server, tmp_path, transcribe):
    res = call(f"{tls_server.uri};transport=tcp", "PCMU", [WAV / "hours_saturday_0.wav"], tmp_path, transport="tcp",
               rtp_port=55300)
    _heard_the_hours(res, transcribe)


def test_tls_call_has_audio_both_ways(trusting_server, tmp_path, transcribe):
    uri = f"sip:agent@{HOST}:{trusting_server.tls_port};transport=tls"
    res = call(uri, "G722", [WAV / "hours_saturday_0.wav"], tmp_path, transport="tls", rtp_port=55320)
    _heard_the_hours(res, transcribe)
    assert not res["srtp"], "the caller offered plain RTP: the answer must not be SRTP"


def test_srtp_is_used_over_tls(trusting_server, tmp_path, transcribe):
    # "mandatory" makes the caller offer RTP/SAVP only (SDES keys in the SDP): plain RTP would fail.
    uri = f"sip:agent@{HOST}:{trusting_server.tls_port};transport=tls"
    res = call(uri, "PCMU", [WAV / "hours_saturday_0.wav"], tmp_path, transport="tls", srtp="mandatory",
               rtp_port=55340)
    assert res["srtp"], res
    _heard_the_hours(res, transcribe)


def test_srtp_only_offer_over_udp_gets_488_by_default(tls_server, tmp_path):
    res = call(tls_server.uri, "PCMU", [WAV / "hours_saturday_0.wav"], tmp_path, srtp="mandatory", rtp_port=55360)
    assert not res["answered"] and res["status"] == 488, res


def _crypto_offer(rtp_port: int, profile: str) -> str:
    key = base64.b64encode(os.urandom(30)).decode()
    return "\r\n".join([
        "v=0", f"o=tester 1 1 IN IP4 {HOST}", "s=-", f"c=IN IP4 {HOST}", "t=0 0",
        f"m=audio {rtp_port} {profile} 0", "a=rtpmap:0 PCMU/8000",
        f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}", "a=sendrecv",
    ]) + "\r\n"


def _invite_answer(port: int, profile: str):
    """Send an INVITE over UDP offering SDES keys; the final answer (the call is hung up)."""
    sink = rtp_socket()
    try:
        with Peer(port) as peer:
            peer.send(request(peer, "INVITE", body=_crypto_offer(sink.getsockname()[1], profile)))
            final = peer.final(10)
            if final is not None:
                end_invite(peer, final)
            return final
    finally:
        sink.close()


def test_sdes_keys_offered_over_udp_are_ignored(tls_server):
    """An offer of plain RTP with crypto lines (the "optimistic SRTP" of Asterisk and others) is
    answered in plain RTP: our answer carries no key to be read off the wire."""
    r = _invite_answer(tls_server.port, "RTP/AVP")
    assert r is not None and r.status == 200, r and r.raw
    assert "a=crypto" not in r.body and "RTP/AVP" in r.body and "SAVP" not in r.body, r.body


def test_savp_offer_over_udp_is_refused_with_488_and_no_keys(tls_server):
    r = _invite_answer(tls_server.port, "RTP/SAVP")
    assert r is not None and r.status == 488, r and r.raw
    assert "a=crypto" not in r.raw


def test_registrar_with_an_unknown_ca_is_refused_by_default(tls_server, pki):
    registrar = pki[1]
    assert wait_for(lambda: "sip.register_failed" in tls_server.log_text(), 15), tls_server.log_text()[-3000:]
    assert "registered status=200" not in tls_server.log_text()
    # voicebox hung up after the handshake: not one REGISTER (credentials, contact) reached it.
    assert not any("sip:strict@" in r for r in registrar.registers), registrar.registers


def test_registrar_is_accepted_with_its_ca_file(trusting_server, pki):
    assert wait_for(lambda: "registered status=200" in trusting_server.log_text(), 15), trusting_server.log_text()[-3000:]
    assert any("sip:voicebox@" in r for r in pki[1].registers)


def test_sdes_over_udp_when_allowed_is_used_and_warned(trusting_server, tmp_path, transcribe):
    assert "sip.sdes_without_tls is true" in trusting_server.log_text()
    res = call(trusting_server.uri, "PCMU", [WAV / "hours_saturday_0.wav"], tmp_path, srtp="mandatory",
               rtp_port=55380)
    assert res["srtp"], res
    _heard_the_hours(res, transcribe)


def test_stopping_unregisters_from_the_registrar(trusting_server, pki):
    """Last in the module: SIGTERM sends the registrar a REGISTER with expires 0 before exit."""
    registrar = pki[1]
    assert wait_for(lambda: "registered status=200" in trusting_server.log_text(), 15)
    before = len(registrar.registers)
    stop_server(trusting_server)
    late = registrar.registers[before:]
    assert any(re.search(r"(?im)^(expires:\s*0\s*$|contact:.*;expires=0)", r) for r in late), late
