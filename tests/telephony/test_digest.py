import hashlib

import pytest

from voicebox.telephony.digest import DigestAuth
from voicebox.telephony.nonce_counts import NonceCounts

URI = "sip:agent@127.0.0.1"
SRC = "10.0.0.7"


def _md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def _nonce(challenge):
    return challenge.split('nonce="')[1].split('"')[0]


def _answer(challenge, user="alice", password="secret", realm="voicebox", uri=URI, nc="00000001",
            cnonce="abc", qop="auth"):
    nonce = _nonce(challenge)
    ha1, ha2 = _md5(f"{user}:{realm}:{password}"), _md5(f"INVITE:{uri}")
    if qop:
        resp = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
        return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
                f'response="{resp}", algorithm=MD5, qop={qop}, nc={nc}, cnonce="{cnonce}"')
    resp = _md5(f"{ha1}:{nonce}:{ha2}")  # RFC 2069 style: no qop, no nonce count
    return f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", response="{resp}"'


def test_right_password_passes_wrong_fails():
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    ch = auth.challenge(SRC, now=1000)
    assert auth.verify(_answer(ch), "INVITE", URI, SRC, now=1010) == "ok"
    assert auth.verify(_answer(ch, password="guess", nc="00000002"), "INVITE", URI, SRC, now=1010) == "bad"
    assert auth.verify(_answer(ch, user="bob", nc="00000002"), "INVITE", URI, SRC, now=1010) == "bad"
    assert auth.verify("Basic YWxpY2U6c2VjcmV0", "INVITE", URI, SRC) == "bad"


def test_old_nonce_is_stale_forged_nonce_is_bad():
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    ch = auth.challenge(SRC, now=1000)
    assert auth.verify(_answer(ch), "INVITE", URI, SRC, now=1400) == "stale"
    forged = ch.replace('nonce="1000.', 'nonce="1399.')
    assert auth.verify(_answer(forged), "INVITE", URI, SRC, now=1400) == "bad"
    assert DigestAuth("alice", "secret", "voicebox", 300).verify(_answer(ch), "INVITE", URI, SRC, now=1010) == "bad", \
        "another process's nonce"


def test_the_same_answer_twice_is_refused_the_second_time():
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    creds = _answer(auth.challenge(SRC, now=1000))
    assert auth.verify(creds, "INVITE", URI, SRC, now=1001) == "ok"
    # Captured and sent again, at any time in the nonce's life: refused. "stale" (right password,
    # spent nonce) gets a fresh challenge that only the password can answer.
    assert auth.verify(creds, "INVITE", URI, SRC, now=1002) == "stale"
    assert auth.verify(creds, "INVITE", URI, SRC, now=1200) == "stale"


def test_nonce_counts_must_rise():
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    ch = auth.challenge(SRC, now=1000)
    assert auth.verify(_answer(ch, nc="00000001"), "INVITE", URI, SRC, now=1001) == "ok"
    assert auth.verify(_answer(ch, nc="00000002", cnonce="x"), "INVITE", URI, SRC, now=1002) == "ok"  # next request
    assert auth.verify(_answer(ch, nc="00000002", cnonce="y"), "INVITE", URI, SRC, now=1003) == "stale"
    assert auth.verify(_answer(ch, nc="00000001", cnonce="z"), "INVITE", URI, SRC, now=1003) == "stale"
    assert auth.verify(_answer(ch, nc="0000000a"), "INVITE", URI, SRC, now=1004) == "ok"  # gaps are fine (hex)
    for nc in ("1", "zzzzzzzz", "000000001", ""):
        assert auth.verify(_answer(ch, nc=nc), "INVITE", URI, SRC, now=1005) == "bad", nc


def test_the_answer_must_name_the_request_uri():
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    ch = auth.challenge(SRC, now=1000)
    other = "sip:sales@127.0.0.1"
    # a correct answer for another URI, sent with this request
    assert auth.verify(_answer(ch, uri=other), "INVITE", URI, SRC, now=1001) == "bad"
    # this request's answer, replayed in a request to another URI
    assert auth.verify(_answer(ch, nc="00000002"), "INVITE", other, SRC, now=1001) == "bad"
    assert auth.verify(_answer(ch, nc="00000003"), "INVITE", URI, SRC, now=1001) == "ok"


def test_a_nonce_is_good_only_from_the_address_it_was_given_to():
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    ch = auth.challenge(SRC, now=1000)
    assert auth.verify(_answer(ch), "INVITE", URI, "10.0.0.8", now=1001) == "bad"
    assert auth.verify(_answer(ch), "INVITE", URI, SRC, now=1001) == "ok"
    assert _nonce(auth.challenge("10.0.0.8", now=1000)) != _nonce(ch)


def test_every_challenge_has_its_own_nonce():
    # Two clients challenged in the same second from one address (a proxy) must not share a
    # nonce: the first one's count would make the second one's answers look like replays.
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    a, b = auth.challenge(SRC, now=1000), auth.challenge(SRC, now=1000)
    assert _nonce(a) != _nonce(b)
    assert auth.verify(_answer(a), "INVITE", URI, SRC, now=1001) == "ok"
    assert auth.verify(_answer(b), "INVITE", URI, SRC, now=1001) == "ok"


def test_a_nonce_with_extra_parts_is_bad():
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    ch = auth.challenge(SRC, now=1000)
    longer = ch.replace(_nonce(ch), _nonce(ch) + ".x")
    assert auth.verify(_answer(longer), "INVITE", URI, SRC, now=1001) == "bad"


@pytest.mark.parametrize("change", [dict(qop=""), dict(qop="auth-int"), dict(cnonce="")])
def test_qop_auth_is_required(change):
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    ch = auth.challenge(SRC, now=1000)
    assert auth.verify(_answer(ch, **change), "INVITE", URI, SRC, now=1001) == "bad"


def test_wrong_answers_do_not_use_up_counts():
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    ch = auth.challenge(SRC, now=1000)
    assert auth.verify(_answer(ch, password="guess", nc="00000005"), "INVITE", URI, SRC, now=1001) == "bad"
    assert auth.verify(_answer(ch, nc="00000001"), "INVITE", URI, SRC, now=1001) == "ok"
    assert len(auth.counts) == 1


def test_nonce_table_is_bounded_and_never_forgets_into_a_replay():
    t = NonceCounts(lifetime_s=300, max_nonces=3)
    for i in range(3):
        assert t.use(f"n{i}", 1000 + i, 1, now=1010) == "ok"
    assert t.use("n3", 1003, 1, now=1010) == "ok"  # full: the oldest nonce (n0) made room
    assert len(t) == 3
    assert t.use("n0", 1000, 1, now=1011) == "stale"  # forgotten: a fresh nonce, not a second use
    assert t.use("n1", 1001, 1, now=1011) == "replay"  # still remembered
    assert t.use("n9", 1009, 1, now=1011) == "ok"  # newer than anything forgotten


def test_nonce_table_drops_expired_nonces_first():
    t = NonceCounts(lifetime_s=300, max_nonces=2)
    assert t.use("old", 1000, 1, now=1000) == "ok"
    assert t.use("new", 1200, 1, now=1200) == "ok"
    assert t.use("newer", 1350, 1, now=1350) == "ok"  # "old" expired (past 1300): dropped, nothing forgotten
    assert t.use("new", 1200, 2, now=1351) == "ok" and t.use("newer", 1350, 1, now=1351) == "replay"
