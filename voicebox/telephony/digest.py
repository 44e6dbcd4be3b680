"""HTTP digest (RFC 2617, MD5, qop=auth) for INVITEs, with stateless nonces.

A nonce is its issue time and an HMAC of it under a per-process secret, so checking one needs no
table that a flood of unanswered challenges could fill.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class DigestAuth:
    def __init__(self, user: str, password: str, realm: str, nonce_lifetime_s: int) -> None:
        self.user = user
        self.realm = realm
        self.lifetime_s = nonce_lifetime_s
        self._ha1 = _md5(f"{user}:{realm}:{password}")
        self._secret = os.urandom(32)

    def _sign(self, stamp: str) -> str:
        return hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:32]

    def challenge(self, stale: bool = False, now: float | None = None) -> str:
        """A WWW-Authenticate value."""
        stamp = str(int(time.time() if now is None else now))
        value = f'Digest realm="{self.realm}", nonce="{stamp}.{self._sign(stamp)}", algorithm=MD5, qop="auth"'
        return value + (", stale=true" if stale else "")

    def verify(self, authorization: str, method: str, now: float | None = None) -> str:
        """'ok', 'stale' (right password, old nonce) or 'bad'."""
        if not authorization.lower().startswith("digest"):
            return "bad"
        p = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
             for m in _PARAM.finditer(authorization[6:])}
        nonce = p.get("nonce", "")
        stamp, _, sig = nonce.partition(".")
        if p.get("username") != self.user or p.get("realm") != self.realm or not stamp.isdigit():
            return "bad"
        if not hmac.compare_digest(sig, self._sign(stamp)):
            return "bad"
        ha2 = _md5(f"{method}:{p.get('uri', '')}")
        if p.get("qop"):
            expect = _md5(f"{self._ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:{p.get('qop')}:{ha2}")
        else:
            expect = _md5(f"{self._ha1}:{nonce}:{ha2}")
        if not hmac.compare_digest(p.get("response", "").lower(), expect):
            return "bad"
        now = time.time() if now is None else now
        if now - int(stamp) > self.lifetime_s:
            return "stale"
        return "ok"
