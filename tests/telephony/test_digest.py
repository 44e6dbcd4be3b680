import hashlib

from voicebox.telephony.digest import DigestAuth


def _md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def _answer(challenge, user="alice", password="secret", realm="voicebox", uri="sip:agent@127.0.0.1"):
    nonce = challenge.split('nonce="')[1].split('"')[0]
    ha1, ha2 = _md5(f"{user}:{realm}:{password}"), _md5(f"INVITE:{uri}")
    resp = _md5(f"{ha1}:{nonce}:00000001:abc:auth:{ha2}")
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="abc"')


def test_right_password_passes_wrong_fails():
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    ch = auth.challenge(now=1000)
    assert auth.verify(_answer(ch), "INVITE", now=1010) == "ok"
    assert auth.verify(_answer(ch, password="guess"), "INVITE", now=1010) == "bad"
    assert auth.verify(_answer(ch, user="bob"), "INVITE", now=1010) == "bad"
    assert auth.verify("Basic YWxpY2U6c2VjcmV0", "INVITE") == "bad"


def test_old_nonce_is_stale_forged_nonce_is_bad():
    auth = DigestAuth("alice", "secret", "voicebox", 300)
    ch = auth.challenge(now=1000)
    assert auth.verify(_answer(ch), "INVITE", now=1400) == "stale"
    forged = ch.replace('nonce="1000.', 'nonce="1399.')
    assert auth.verify(_answer(forged), "INVITE", now=1400) == "bad"
    assert DigestAuth("alice", "secret", "voicebox", 300).verify(_answer(ch), "INVITE", now=1010) == "bad", \
        "another process's nonce"
