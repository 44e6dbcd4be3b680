"""Transport and account settings built from config (no library running)."""

from __future__ import annotations

import pjsua2 as pj
import pytest

from voicebox.config import ConfigError, load_config
from voicebox.telephony.transports import configure_account_media, is_tls, system_ca_file, tls_config, warn_insecure


def _cfg(tmp_path, register: bool = False, **tls):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    over = {"sip.tls": {"cert_file": str(cert), "key_file": str(key), **tls}}
    if register:
        over["sip.register"] = {"registrar": "sip:pbx.example.com;transport=tls", "user": "7000"}
    return load_config(None, over)


def test_tls_config_carries_the_certificate_paths_and_port(tmp_path):
    cfg = _cfg(tmp_path, port=5071)
    tc = tls_config(cfg.sip)
    assert (tc.port, tc.boundAddress, tc.publicAddress) == (5071, "127.0.0.1", "127.0.0.1")
    assert tc.tlsConfig.certFile.endswith("cert.pem") and tc.tlsConfig.privKeyFile.endswith("key.pem")
    assert not tc.tlsConfig.verifyClient


def test_missing_certificate_is_a_config_error_naming_the_field(tmp_path):
    cfg = _cfg(tmp_path)
    (tmp_path / "key.pem").unlink()
    with pytest.raises(ConfigError, match=r"sip\.tls\.key_file: .*key\.pem not found"):
        tls_config(cfg.sip)


def test_tls_servers_are_verified_by_default_against_the_system_store(tmp_path):
    tls = _cfg(tmp_path, register=True).sip
    store = tmp_path / "system-ca.pem"
    store.write_text("x")
    tc = tls_config(tls, system_ca=store)  # tlsConfig is a view into tc: keep tc alive
    t = tc.tlsConfig
    assert t.verifyServer and t.CaListFile == str(store)
    assert not t.verifyClient and not t.requireClientCert  # callers seldom have certificates


def test_without_a_tls_registrar_the_system_store_is_not_loaded(tmp_path):
    """As a TLS server pjsip names every CA of its list to each caller: the store's ~140 broke
    a pjsip softphone's handshake. voicebox is a TLS client only towards a TLS registrar."""
    store = tmp_path / "system-ca.pem"
    store.write_text("x")
    tc = tls_config(_cfg(tmp_path).sip, system_ca=store)
    assert tc.tlsConfig.verifyServer and tc.tlsConfig.CaListFile == ""


def test_a_ca_file_replaces_the_system_store(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    tc = tls_config(_cfg(tmp_path, ca_file=str(ca)).sip, system_ca=tmp_path / "elsewhere.pem")
    t = tc.tlsConfig
    assert t.verifyServer and t.CaListFile == str(ca)


def test_the_real_system_store_is_found_here():
    found = system_ca_file()
    assert found is not None and found.is_file()


def test_verification_off_is_a_warning(tmp_path, caplog):
    sip = _cfg(tmp_path, verify_server=False).sip
    tc = tls_config(sip)
    assert not tc.tlsConfig.verifyServer
    assert any("verify_server is false" in w for w in warn_insecure(sip))
    assert "anyone on the path" in caplog.text


def test_verifying_clients_needs_a_ca_list(tmp_path):
    with pytest.raises(ConfigError, match="sip.tls.verify_client"):
        tls_config(_cfg(tmp_path, verify_client=True).sip)


def test_the_old_verify_peer_setting_says_what_replaced_it(tmp_path):
    with pytest.raises(ConfigError, match="verify_server"):
        _cfg(tmp_path, verify_peer=True)


@pytest.mark.parametrize("srtp, use", [("off", pj.PJMEDIA_SRTP_DISABLED), ("optional", pj.PJMEDIA_SRTP_OPTIONAL),
                                        ("mandatory", pj.PJMEDIA_SRTP_MANDATORY)])
def test_srtp_setting_applies_to_the_tls_account(srtp, use):
    cfg = load_config(None, {"sip.srtp": srtp, "sip.nat": {"contact_rewrite": True, "keepalive_s": 15}})
    ac = pj.AccountConfig()
    configure_account_media(ac, cfg.sip, secure=True)
    assert ac.mediaConfig.srtpUse == use
    assert ac.mediaConfig.srtpSecureSignaling == 1  # pjsua: SRTP on this account over TLS only
    assert ac.natConfig.contactRewriteUse == 1 and ac.natConfig.viaRewriteUse == 0
    assert ac.natConfig.udpKaIntervalSec == 15
    assert ac.mediaConfig.transportConfig.boundAddress == "127.0.0.1"


@pytest.mark.parametrize("srtp", ["off", "optional", "mandatory"])
def test_plain_signalling_gets_no_srtp_by_default(srtp):
    ac = pj.AccountConfig()
    configure_account_media(ac, load_config(None, {"sip.srtp": srtp}).sip)
    assert ac.mediaConfig.srtpUse == pj.PJMEDIA_SRTP_DISABLED
    assert ac.mediaConfig.srtpSecureSignaling == 0


def test_sdes_without_tls_is_explicit_and_warned(caplog):
    sip = load_config(None, {"sip.sdes_without_tls": True}).sip
    ac = pj.AccountConfig()
    configure_account_media(ac, sip)
    assert ac.mediaConfig.srtpUse == pj.PJMEDIA_SRTP_OPTIONAL and ac.mediaConfig.srtpSecureSignaling == 0
    assert any("sdes_without_tls" in w for w in warn_insecure(sip))
    assert not warn_insecure(load_config().sip)


def test_srtp_defaults_to_optional_and_rejects_unknown_modes():
    assert load_config().sip.srtp == "optional"
    assert load_config().sip.sdes_without_tls is False
    with pytest.raises(ConfigError, match="sip.srtp"):
        load_config(None, {"sip.srtp": "always"})


@pytest.mark.parametrize("uri, tls", [("sip:pbx.example.com", False), ("sip:10.0.0.5:5061;transport=tls", True),
                                      ("sips:pbx.example.com", True), ("sip:pbx;transport=tcp", False)])
def test_registrar_uri_says_whether_it_is_tls(uri, tls):
    assert is_tls(uri) is tls
