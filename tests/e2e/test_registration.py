"""voicebox as an extension on a PBX: it registers (digest auth), keeps the binding fresh, and
answers the calls the registrar routes to it. Kamailio's registrar plays the PBX."""

from __future__ import annotations


import pytest

from tests.e2e.conftest import CORPUS, HOST, call, free_port, start_server, stop_server, wait_for
from voicebox.telephony import kamailio

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    kamailio.kamailio_exe()  # a clear error if Debian's kamailio is missing (.ci/run installs it)
    run = tmp_path_factory.mktemp("pbx")
    port = free_port()
    pbx = kamailio.start_registrar(run, HOST, port, "voicebox", "secret")
    try:
        config = (
            "[sip]\nrtp_port = 42000\n"
            f'[sip.register]\nregistrar = "sip:{HOST}:{port}"\nuser = "voicebox"\npassword = "secret"\n'
            "expiry_s = 10\n"
        )
        server = start_server(tmp_path_factory.mktemp("registered"), config)
    except Exception:
        kamailio.stop(pbx)
        raise
    yield server, port, run
    stop_server(server)
    kamailio.stop(pbx)
    # Stopping unregisters: the registrar saw the binding removed (an authorized REGISTER, expires 0).


def test_registers_with_digest_auth_and_refreshes(registered):
    server, _, run = registered
    assert wait_for(lambda: "registered status=200" in server.log_text(), 10), server.log_text()[-2000:]
    log = kamailio.log_text(run)
    assert "challenge for sip:voicebox@127.0.0.1" in log  # the first REGISTER met a digest challenge
    # expiry_s = 10: pjsua refreshes 5 s before the binding ends, so within ~12 s a second one.
    assert wait_for(lambda: kamailio.log_text(run).count("authorized REGISTER") >= 2, 15), kamailio.log_text(run)[-3000:]
    assert "sip.register_failed" not in server.log_text()


def test_call_routed_by_the_registrar_is_answered(registered, tmp_path, transcribe):
    server, port, run = registered
    assert wait_for(lambda: "registered status=200" in server.log_text(), 10)
    res = call(f"sip:voicebox@{HOST}:{port}", "PCMU", [WAV / "hours_saturday_0.wav"], tmp_path)
    assert res["answered"], res
    assert "INVITE routed to sip:voicebox@127.0.0.1:" in kamailio.log_text(run)
    assert res["turns"][0]["reply_onset_ms"] is not None, res
    heard = transcribe(res["recording"])
    assert "riverside" in heard and "saturday" in heard, heard
