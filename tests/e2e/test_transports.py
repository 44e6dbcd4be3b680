"""SIP over TCP and TLS, and SRTP when the caller offers it: real calls with audio both ways."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import CORPUS, HOST, call, free_port, start_server, stop_server

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
def tls_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("transports")
    cert, key = self_signed_cert(tmp)
    tls_port = free_port()
    config = (
        "[sip]\nrtp_port = 45000\n"
        f'[sip.tls]\nport = {tls_port}\ncert_file = "{cert}"\nkey_file = "{key}"\n'
    )
    server = start_server(tmp, config)
    server.tls_port = tls_port
    yield server
    stop_server(server)


def _heard_the_hours(res: dict, transcribe) -> None:
    """Audio both ways: the agent heard the question (it answered it) and we heard the answer."""
    assert res["answered"], res
    assert res["turns"] and res["turns"][0]["reply_onset_ms"] is not None, res
    heard = transcribe(res["recording"])
    assert re.search(r"saturday[^.]*(?<!\d)(9|nine)(?!\d)", heard), heard


def test_listens_on_udp_tcp_and_tls(tls_server):
    assert f"(udp+tcp+tls:{tls_server.tls_port})" in tls_server.log_text()


def test_tcp_call_has_audio_both_ways(tls_server, tmp_path, transcribe):
    res = call(f"{tls_server.uri};transport=tcp", "PCMU", [WAV / "hours_saturday_0.wav"], tmp_path, transport="tcp")
    _heard_the_hours(res, transcribe)


def test_tls_call_has_audio_both_ways(tls_server, tmp_path, transcribe):
    uri = f"sip:agent@{HOST}:{tls_server.tls_port};transport=tls"
    res = call(uri, "G722", [WAV / "hours_saturday_0.wav"], tmp_path, transport="tls")
    _heard_the_hours(res, transcribe)
    assert not res["srtp"], "the caller offered plain RTP: the answer must not be SRTP"


def test_srtp_is_used_when_the_caller_offers_it(tls_server, tmp_path, transcribe):
    # "mandatory" makes the caller offer RTP/SAVP only (SDES keys in the SDP): plain RTP would fail.
    res = call(tls_server.uri, "PCMU", [WAV / "hours_saturday_0.wav"], tmp_path, srtp="mandatory")
    assert res["srtp"], res
    _heard_the_hours(res, transcribe)

