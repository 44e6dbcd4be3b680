"""Transport and account settings built from config (no library running)."""

from __future__ import annotations

import pjsua2 as pj
import pytest

from voicebox.config import ConfigError, load_config
from voicebox.telephony.transports import configure_account_media, tls_config


def _cfg(tmp_path, **tls):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    return load_config(None, {"sip.tls": {"cert_file": str(cert), "key_file": str(key), **tls}})


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


def test_verifying_peers_needs_a_ca_list(tmp_path):
    with pytest.raises(ConfigError, match="sip.tls.verify_peer"):
        tls_config(_cfg(tmp_path, verify_peer=True).sip)


@pytest.mark.parametrize("srtp, use", [("off", pj.PJMEDIA_SRTP_DISABLED), ("optional", pj.PJMEDIA_SRTP_OPTIONAL),
                                        ("mandatory", pj.PJMEDIA_SRTP_MANDATORY)])
def test_account_media_srtp_and_nat(srtp, use):
    cfg = load_config(None, {"sip.srtp": srtp, "sip.nat": {"contact_rewrite": True, "keepalive_s": 15}})
    ac = pj.AccountConfig()
    configure_account_media(ac, cfg.sip)
    assert ac.mediaConfig.srtpUse == use
    assert ac.mediaConfig.srtpSecureSignaling == 0  # SDES over plain UDP/TCP too
    assert ac.natConfig.contactRewriteUse == 1 and ac.natConfig.viaRewriteUse == 0
    assert ac.natConfig.udpKaIntervalSec == 15
    assert ac.mediaConfig.transportConfig.boundAddress == "127.0.0.1"


def test_srtp_defaults_to_optional_and_rejects_unknown_modes():
    assert load_config().sip.srtp == "optional"
    with pytest.raises(ConfigError, match="sip.srtp"):
        load_config(None, {"sip.srtp": "always"})
