"""SIP transports (UDP, TCP, TLS) and the media/NAT half of an account's configuration.

Called on the SIP thread while the library starts; nothing here runs during calls.
"""

from __future__ import annotations

import pjsua2 as pj

from voicebox.config import ConfigError, SipConfig

SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL, "mandatory": pj.PJMEDIA_SRTP_MANDATORY}


def _transport_config(host: str, port: int) -> pj.TransportConfig:
    tc = pj.TransportConfig()
    tc.port = port
    tc.boundAddress = host
    tc.publicAddress = host  # bound to 0.0.0.0, pjsua would advertise some interface's address
    return tc


def tls_config(sip: SipConfig) -> pj.TransportConfig:
    """The TLS listener's configuration; ConfigError if a certificate file is missing."""
    tls = sip.tls
    assert tls is not None
    for name, path in (("cert_file", tls.cert_file), ("key_file", tls.key_file), ("ca_file", tls.ca_file)):
        if path is not None and not path.is_file():
            raise ConfigError(f"sip.tls.{name}: {path} not found")
    if tls.verify_peer and tls.ca_file is None:
        raise ConfigError("sip.tls.verify_peer: needs sip.tls.ca_file to verify against")
    tc = _transport_config(sip.host, tls.port)
    t = tc.tlsConfig
    t.certFile = str(tls.cert_file)
    t.privKeyFile = str(tls.key_file)
    if tls.ca_file is not None:
        t.CaListFile = str(tls.ca_file)
    # SSLv23 is OpenSSL's "highest both sides support" (TLS 1.2 with the wheel's OpenSSL).
    t.method = pj.PJSIP_SSLV23_METHOD
    t.verifyClient = tls.verify_peer
    t.requireClientCert = tls.verify_peer
    t.verifyServer = tls.verify_peer
    return tc


def create_transports(ep: pj.Endpoint, sip: SipConfig) -> list[str]:
    """Open the configured listeners; the names of those opened, for the start-up log line."""
    tc = _transport_config(sip.host, sip.port)
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
    names = ["udp"]
    if sip.tcp:
        ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tc)
        names.append("tcp")
    if sip.tls is not None:
        ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tls_config(sip))
        names.append(f"tls:{sip.tls.port}")
    return names


def configure_account_media(ac: pj.AccountConfig, sip: SipConfig) -> None:
    """RTP ports, SRTP and NAT handling: the same for every account voicebox answers on."""
    mt = ac.mediaConfig.transportConfig
    mt.port = sip.rtp_port
    mt.portRange = sip.rtp_port_range
    mt.boundAddress = sip.host
    mt.publicAddress = sip.host
    ac.mediaConfig.srtpUse = SRTP_USE[sip.srtp]
    # SDES keys travel in the SDP: 0 lets a peer offer them over plain UDP/TCP too, as
    # Asterisk and FreeSWITCH do by default; TLS is then the operator's choice, not a precondition.
    ac.mediaConfig.srtpSecureSignaling = 0
    nat = ac.natConfig
    nat.contactRewriteUse = 1 if sip.nat.contact_rewrite else 0
    nat.viaRewriteUse = 1 if sip.nat.via_rewrite else 0
    nat.sdpNatRewriteUse = 1 if sip.nat.sdp_nat_rewrite else 0
    nat.udpKaIntervalSec = sip.nat.keepalive_s
    nat.sipOutboundUse = 0  # RFC 5626 needs registrar support; plain keep-alives are enough here
