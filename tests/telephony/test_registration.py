"""Registration with a PBX: the back-off, the account it builds, and REGISTER against a real registrar."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voicebox.config import ConfigError, SipConfig, SipRegisterConfig, load_config
from voicebox.telephony import kamailio
from voicebox.telephony.probe import free_port, sip_options
from voicebox.telephony.registration import Backoff, _host_of, account_config

ROOT = Path(__file__).resolve().parents[2]


def test_backoff_doubles_up_to_the_cap_and_a_success_resets_it():
    b = Backoff(5, 30, jitter=0.0)
    waits = [b.failed(now=0) for _ in range(5)]
    assert waits == [5, 10, 20, 30, 30]
    b.succeeded()
    assert b.failed(now=100) == 5 and b.due_at == 105


def test_backoff_is_due_once_at_its_time():
    b = Backoff(2, 8, jitter=0.0)
    b.failed(now=10)
    assert not b.due(11.9)
    assert b.due(12.0)
    assert not b.due(13.0)  # one attempt per failure


def test_backoff_jitter_stays_within_its_fraction():
    b = Backoff(10, 10, jitter=0.1, rng=random.Random(1))
    waits = [b.failed(now=0) for _ in range(200)]
    assert all(9.0 <= w <= 11.0 for w in waits) and len(set(waits)) > 100


@pytest.mark.parametrize(
    "uri, host",
    [("sip:pbx.example.com", "pbx.example.com"), ("sip:10.0.0.5:5060;transport=tcp", "10.0.0.5"),
     ("sips:[2001:db8::1]:5061", "[2001:db8::1]"), ("sip:registrar@pbx.lan", "pbx.lan")],
)
def test_host_of_registrar_uri(uri, host):
    assert _host_of(uri) == host


def test_account_config_registers_with_digest_and_leaves_retries_to_the_backoff():
    sip = SipConfig(srtp="optional")
    reg = SipRegisterConfig(registrar="sip:10.0.0.5:5060", user="201", auth_user="auth201", password="pw", expiry_s=120)
    ac = account_config(reg, sip)
    assert ac.idUri == "sip:201@10.0.0.5"
    assert ac.regConfig.registrarUri == "sip:10.0.0.5:5060"
    assert ac.regConfig.timeoutSec == 120 and ac.regConfig.retryIntervalSec == 0
    assert not ac.regConfig.dropCallsOnFail
    cred = ac.sipConfig.authCreds[0]
    assert (cred.scheme, cred.realm, cred.username, cred.data) == ("digest", "*", "auth201", "pw")


def test_register_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="sip.register"):
        load_config(None, {"sip.register": {"registrar": "pbx.example.com", "user": "201"}})
    with pytest.raises(ConfigError, match="sip.register"):
        load_config(None, {"sip.register": {"registrar": "sip:pbx", "user": "201", "retry_min_s": 60, "retry_max_s": 10}})
    cfg = load_config(None, {"sip.register": {"registrar": "sip:pbx", "user": "201"}})
    assert cfg.sip.registration is not None and cfg.sip.registration.expiry_s == 300


@pytest.fixture(scope="module")
def registrar(tmp_path_factory):
    """Kamailio's registrar + auth modules (sip/kamailio/registrar.cfg): user voicebox, password secret."""
    kamailio.kamailio_exe()  # a clear error if Debian's kamailio is missing (.ci/run installs it)
    run = tmp_path_factory.mktemp("registrar")
    port = free_port()
    proc = kamailio.start_registrar(run, "127.0.0.1", port, "voicebox", "secret")
    # Its children bind the socket a moment after start: ready once it answers an OPTIONS
    # (404: nobody is registered as the probe's user), each probe waiting up to 0.2 s for it.
    deadline = time.monotonic() + 15
    while proc.poll() is None and time.monotonic() < deadline:
        status = sip_options("127.0.0.1", port, timeout_s=0.2)
        if status is not None and status.startswith("SIP/2.0 "):
            break
    else:
        kamailio.stop(proc)
        pytest.fail(f"the registrar never answered OPTIONS:\n{kamailio.log_text(run)[-3000:]}")
    yield f"sip:127.0.0.1:{port}", run
    kamailio.stop(proc)


def _register(registrar_uri: str, password: str, seconds: float) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests/telephony/register_client.py"), registrar_uri, "voicebox", password, str(seconds)],
        capture_output=True, text=True, timeout=seconds + 30, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_wrong_password_is_retried_with_growing_waits(registrar):
    uri, _ = registrar
    res = _register(uri, "wrong", 8)  # retry_min_s=1, retry_max_s=4: waits ~1, 2, 4, 4
    assert not res["registered"] and res["registrations"] == 0
    waits = res["waits_s"]
    assert len(waits) >= 3, res
    assert 0.8 <= waits[0] <= 1.2 and 1.6 <= waits[1] <= 2.4 and all(w <= 4.4 for w in waits), waits


def test_register_with_digest_auth_and_refresh(registrar):
    uri, run = registrar
    before = kamailio.log_text(run).count("authorized REGISTER")
    res = _register(uri, "secret", 8)  # expiry_s=10: pjsua refreshes 5 s before the end
    assert res["registered"] and res["failures"] == 0, res
    assert res["registrations"] >= 2, res  # the first REGISTER and at least one refresh
    log = kamailio.log_text(run)
    assert "challenge for sip:voicebox@127.0.0.1" in log  # a digest challenge was met
    # register + refresh + the unregister at the end, each authorized by the registrar
    assert log.count("authorized REGISTER") - before >= 3, log[-3000:]
