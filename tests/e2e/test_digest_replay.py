"""Digest answers cannot be replayed (issue #17, item 2): over real UDP, against `voicebox serve`."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys

import pytest

from tests.e2e.conftest import HOST, ROOT, start_server, stop_server
from tests.e2e.rawsip import Peer, new_tag, request, rtp_socket, sdp

pytestmark = pytest.mark.e2e
USER, PASSWORD, REALM = "alice", "s3cret", "voicebox"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = (f'[sip]\nrtp_port = 53000\nrtp_port_range = 200\nauth_user = "{USER}"\n'
              f'auth_password = "{PASSWORD}"\n')
    s = start_server(tmp_path_factory.mktemp("digest"), config)
    yield s
    stop_server(s)


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def _nonce(peer: Peer) -> str:
    """A fresh nonce, challenged for an INVITE sent from ``peer``."""
    peer.send(request(peer, "INVITE", body=sdp(40000)))
    r = peer.final()
    assert r is not None and r.status == 401, r
    return re.search(r'nonce="([^"]+)"', r.header("WWW-Authenticate")).group(1)


def _authorization(nonce: str, uri: str, nc: str = "00000001") -> str:
    ha1, ha2 = _md5(f"{USER}:{REALM}:{PASSWORD}"), _md5(f"INVITE:{uri}")
    resp = _md5(f"{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}")
    return (f'Authorization: Digest username="{USER}", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, qop=auth, nc={nc}, cnonce="c0ffee"')


def _invite(peer: Peer, auth: str, uri: str | None = None, **kw) -> tuple[str, dict]:
    """An INVITE with ``auth``, as bytes to send, and what identifies its dialog."""
    ids = {"call_id": f"{new_tag()}@{HOST}", "from_tag": new_tag(), "branch": "z9hG4bK" + new_tag(), **kw}
    rtp = rtp_socket()
    text = request(peer, "INVITE", body=sdp(rtp.getsockname()[1]), extra=[auth], uri=uri, **ids)
    rtp.close()
    return text, ids


def _answer_and_hang_up(peer: Peer, server, text: str, ids: dict) -> int:
    """Send the INVITE; if it is answered, ACK and BYE it. Its final status."""
    peer.send(text)
    r = peer.final(timeout_s=10, cseq_method="INVITE")
    assert r is not None, "no final answer to the INVITE"
    to_tag = re.search(r";tag=([^;>\s]+)", r.header("To") or "")
    if r.status == 200:
        ack = dict(ids, branch="z9hG4bK" + new_tag())
        peer.send(request(peer, "ACK", to_tag=to_tag.group(1), **ack))
        peer.send(request(peer, "BYE", to_tag=to_tag.group(1), cseq=2, call_id=ids["call_id"],
                          from_tag=ids["from_tag"]))
        assert peer.final(timeout_s=5, cseq_method="BYE") is not None
    return r.status


def _call_starts(server) -> int:
    return server.log_text().count("call start")


def test_the_same_invite_with_the_same_header_twice_is_refused_the_second_time(server):
    with Peer(server.port) as p:
        uri = f"sip:agent@{HOST}:{server.port}"
        text, ids = _invite(p, _authorization(_nonce(p), uri))
        before = _call_starts(server)
        assert _answer_and_hang_up(p, server, text, ids) == 200
        assert _call_starts(server) == before + 1
        # The captured INVITE, byte for byte, once its call is over ...
        assert _answer_and_hang_up(p, server, text, ids) == 401
        # ... and its Authorization header on a new request.
        text2, ids2 = _invite(p, _authorization(_nonce_of(text), uri))
        assert _answer_and_hang_up(p, server, text2, ids2) == 401
        assert _call_starts(server) == before + 1


def _nonce_of(text: str) -> str:
    return re.search(r'nonce="([^"]+)"', text).group(1)


def test_an_answer_for_another_uri_is_refused(server):
    with Peer(server.port) as p:
        nonce = _nonce(p)
        before = _call_starts(server)
        right = f"sip:agent@{HOST}:{server.port}"
        other = f"sip:sales@{HOST}:{server.port}"
        # an answer computed (correctly) for one Request-URI, sent with another
        text, ids = _invite(p, _authorization(nonce, right), uri=other)
        assert _answer_and_hang_up(p, server, text, ids) == 401
        assert _call_starts(server) == before
        # the same nonce and count, uri matching the request: accepted (the refusal was the uri's)
        text, ids = _invite(p, _authorization(nonce, right), uri=right)
        assert _answer_and_hang_up(p, server, text, ids) == 200
        assert _call_starts(server) == before + 1


def test_a_nonce_given_to_another_address_is_refused(server):
    uri = f"sip:agent@{HOST}:{server.port}"
    with Peer(server.port) as p:
        nonce = _nonce(p)  # challenged at 127.0.0.1
    elsewhere = Peer(server.port)
    elsewhere.sock.close()
    elsewhere.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    elsewhere.sock.bind(("127.0.0.2", 0))  # loopback, but another source address
    elsewhere.me = elsewhere.sock.getsockname()[1]
    try:
        before = _call_starts(server)
        text, ids = _invite(elsewhere, _authorization(nonce, uri))
        assert _answer_and_hang_up(elsewhere, server, text, ids) == 401
        assert _call_starts(server) == before
    finally:
        elsewhere.close()
    with Peer(server.port) as p:  # the same answer from the address the nonce was given to
        text, ids = _invite(p, _authorization(nonce, uri))
        assert _answer_and_hang_up(p, server, text, ids) == 200


def test_a_real_client_with_credentials_calls_re_invites_and_calls_again(server):
    before = _call_starts(server)
    proc = subprocess.run(
        [sys.executable, "tests/e2e/digest_client.py", f"sip:agent@{HOST}:{server.port}", USER, PASSWORD],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    first, second = json.loads(proc.stdout.strip().splitlines()[-1])["calls"]
    assert first["answered"] and first["reinvite_answered"] and first["confirmed_after_reinvite"], first
    assert second["answered"], second  # cached credentials: the same nonce, the next count
    assert _call_starts(server) == before + 2
