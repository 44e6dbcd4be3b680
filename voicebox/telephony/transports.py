"""SIP transports (UDP, TCP, TLS) and the media/NAT half of an account's configuration.

Two defaults here are security decisions (issue #17, item 6):

* Where voicebox is a TLS client (REGISTER to a trunk, the REFER target of a transfer), the
  server's certificate is verified, against ``sip.tls.ca_file`` or else the system's CA store
  (pjsip loads no default store of its own), and must name the host dialled.
* SDES-SRTP puts the media keys in the SDP, so anyone who reads the signalling reads the audio.
  Calls signalled over plain UDP/TCP therefore get no SRTP unless ``sip.sdes_without_tls``: a
  plain offer with crypto lines is answered in plain RTP without any, one with nothing but
  RTP/SAVP gets 488. Calls over TLS land on an account of their own (``add_tls_account``) where
  ``sip.srtp`` applies and pjsua refuses SRTP over anything less than TLS.

Called on the SIP thread while the library starts; nothing here runs during calls.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pjsua2 as pj

from voicebox.config import ConfigError, SipConfig
from voicebox.preflight import PortInUse

log = logging.getLogger("voicebox.sip")

SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL, "mandatory": pj.PJMEDIA_SRTP_MANDATORY}
# Where the common distributions keep their CA bundle, after whatever Python's OpenSSL names.
_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")
PJSUA_INVALID_ID = -1


def system_ca_file() -> Path | None:
    """The system's CA bundle (honours SSL_CERT_FILE), or None when there is none."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, *_CA_BUNDLES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _transport_config(host: str, port: int) -> pj.TransportConfig:
    tc = pj.TransportConfig()
    tc.port = port
    tc.boundAddress = host
    tc.publicAddress = host  # bound to 0.0.0.0, pjsua would advertise some interface's address
    return tc


def tls_config(sip: SipConfig, system_ca: Path | None = None) -> pj.TransportConfig:
    """The TLS transport's configuration; ConfigError if a certificate file is missing.

    ``system_ca``: the CA bundle used when no ``ca_file`` is set (default: ``system_ca_file()``).
    """
    tls = sip.tls
    assert tls is not None
    for name, path in (("cert_file", tls.cert_file), ("key_file", tls.key_file), ("ca_file", tls.ca_file)):
        if path is not None and not path.is_file():
            raise ConfigError(f"sip.tls.{name}: {path} not found")
    if tls.verify_client and tls.ca_file is None:
        raise ConfigError("sip.tls.verify_client: needs sip.tls.ca_file (the CA that signs the callers' certificates)")
    ca = tls.ca_file
    # pjsip's one TLS setting serves both directions, and as a server it names every CA of the
    # list in its certificate request: a pjsip softphone calling in failed its handshake against
    # the ~140 of the system store. So the store is loaded only where voicebox is a TLS client
    # (a TLS registrar); otherwise nothing is verified against it, and verify_server without a
    # CA still refuses any server (fails closed).
    if ca is None and tls.verify_server and registers_over_tls(sip):
        ca = system_ca if system_ca is not None else system_ca_file()
        if ca is None:
            raise ConfigError("sip.tls.verify_server: no system CA store found to verify TLS servers with; set "
                              "sip.tls.ca_file, or verify_server = false for a lab PBX with a self-signed certificate")
    tc = _transport_config(sip.host, tls.port)
    t = tc.tlsConfig
    t.certFile = str(tls.cert_file)
    t.privKeyFile = str(tls.key_file)
    if ca is not None:
        t.CaListFile = str(ca)
    # SSLv23 is OpenSSL's "highest both sides support" (TLS 1.2 with the wheel's OpenSSL).
    t.method = pj.PJSIP_SSLV23_METHOD
    t.verifyClient = tls.verify_client
    t.requireClientCert = tls.verify_client
    t.verifyServer = tls.verify_server
    return tc


def is_tls(uri: str) -> bool:
    """The URI asks for TLS: a sips: URI or ';transport=tls'."""
    params = [p.strip().lower() for p in uri.split(";")[1:]]
    return uri.lower().startswith("sips:") or "transport=tls" in params


def registers_over_tls(sip: SipConfig) -> bool:
    return sip.registration is not None and is_tls(sip.registration.registrar)


def warn_insecure(sip: SipConfig) -> list[str]:
    """Log (and return) a warning for each security default the configuration turns off."""
    warnings = []
    if sip.tls is not None and not sip.tls.verify_server:
        warnings.append("sip.tls.verify_server is false: TLS servers voicebox connects to (registrar, transfer "
                        "targets) are not verified, so anyone on the path can pose as them")
    if sip.sdes_without_tls and sip.srtp != "off":
        warnings.append("sip.sdes_without_tls is true: SRTP keys are exchanged over plain UDP/TCP signalling, "
                        "where anyone on the path can read them and the audio")
    for line in warnings:
        log.warning("%s", line)
    return warnings


def create_transports(ep: pj.Endpoint, sip: SipConfig) -> list[str]:
    """Open the configured listeners; the names of those opened, for the start-up log line."""
    warn_insecure(sip)
    tc = _transport_config(sip.host, sip.port)
    _open(ep, pj.PJSIP_TRANSPORT_UDP, tc, "sip.port", f"{sip.host}:{sip.port}/UDP")
    names = ["udp"]
    if sip.tcp:
        _open(ep, pj.PJSIP_TRANSPORT_TCP, tc, "sip.port", f"{sip.host}:{sip.port}/TCP")
        names.append("tcp")
    if sip.tls is not None:
        _open(ep, pj.PJSIP_TRANSPORT_TLS, tls_config(sip), "sip.tls.port", f"{sip.host}:{sip.tls.port}/TLS")
        names.append(f"tls:{sip.tls.port}")
    return names


def _open(ep: pj.Endpoint, kind: int, tc: pj.TransportConfig, setting: str, where: str) -> None:
    """``transportCreate``, its failure as one line naming the setting (preflight checked the port,
    but another program can take it while the models load)."""
    try:
        ep.transportCreate(kind, tc)
    except pj.Error as e:
        raise PortInUse(f"{setting}: {where} cannot be opened ({e.reason.strip() or e.status}); "
                        f"set {setting} to a free port") from None


def configure_account_media(ac: pj.AccountConfig, sip: SipConfig, secure: bool = False) -> None:
    """RTP ports, SRTP and NAT handling. ``secure``: the account answers calls signalled over TLS
    only (``add_tls_account``); anywhere else SDES keys would cross the network in the clear."""
    mt = ac.mediaConfig.transportConfig
    mt.port = sip.rtp_port
    mt.portRange = sip.rtp_port_range
    mt.boundAddress = sip.host
    mt.publicAddress = sip.host
    if secure:
        ac.mediaConfig.srtpUse = SRTP_USE[sip.srtp]
        # 1: pjsua answers 488 to a call on this account unless its signalling is TLS.
        ac.mediaConfig.srtpSecureSignaling = 1
    else:
        # Disabled, pjmedia ignores the crypto lines of a plain RTP/AVP offer (the answer has
        # none) and answers 488 to an offer of RTP/SAVP only.
        ac.mediaConfig.srtpUse = SRTP_USE[sip.srtp] if sip.sdes_without_tls else pj.PJMEDIA_SRTP_DISABLED
        ac.mediaConfig.srtpSecureSignaling = 0
    nat = ac.natConfig
    nat.contactRewriteUse = 1 if sip.nat.contact_rewrite else 0
    nat.viaRewriteUse = 1 if sip.nat.via_rewrite else 0
    nat.sdpNatRewriteUse = 1 if sip.nat.sdp_nat_rewrite else 0
    nat.udpKaIntervalSec = sip.nat.keepalive_s
    nat.sipOutboundUse = 0  # RFC 5626 needs registrar support; plain keep-alives are enough here


def tls_transport_id(ep: pj.Endpoint) -> int | None:
    for tid in ep.transportEnum():
        if ep.transportGetInfo(tid).type == pj.PJSIP_TRANSPORT_TLS:
            return int(tid)
    return None


def add_tls_account(ep: pj.Endpoint, ac: pj.AccountConfig, sip: SipConfig, account: pj.Account) -> pj.Account | None:
    """Create ``account`` from ``ac`` bound to the TLS transport, with SRTP as ``sip.srtp`` says;
    None (and ``account`` unused) without TLS. Leaves ``ac`` unbound for the plain account.

    Call it before creating the plain account: pjsua gives an incoming call to the account whose
    transport type matches, and of two that match alike, to the one created first.
    """
    tid = tls_transport_id(ep) if sip.tls is not None else None
    if tid is None:
        return None
    configure_account_media(ac, sip, secure=True)
    ac.sipConfig.transportId = tid
    account.create(ac, False)
    ac.sipConfig.transportId = PJSUA_INVALID_ID
    configure_account_media(ac, sip)
    return account
