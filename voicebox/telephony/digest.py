"""HTTP digest (RFC 2617, MD5, qop=auth) for INVITEs, with stateless, source-bound nonces.

A nonce is its issue time, a random part (every challenge its own nonce) and an HMAC of both
and the client's address under a per-process secret: checking one needs no table that a flood
of unanswered challenges could fill, and a nonce handed to one address is worth nothing from
another. What does need state is
replay: an answer names its nonce count (``nc``), and each count of a nonce is accepted once
(``nonce_counts.py``). The answer's ``uri`` must be the request's own Request-URI, so an answer
captured for one request cannot be spent on another.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time

from voicebox.telephony.nonce_counts import NonceCounts

log = logging.getLogger("voicebox.sip.digest")

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_NC = re.compile(r"[0-9a-fA-F]{8}")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class DigestAuth:
    def __init__(self, user: str, password: str, realm: str, nonce_lifetime_s: int) -> None:
        self.user = user
        self.realm = realm
        self.lifetime_s = nonce_lifetime_s
        self._ha1 = _md5(f"{user}:{realm}:{password}")
        self._secret = os.urandom(32)
        self.counts = NonceCounts(nonce_lifetime_s)

    def _sign(self, stamp: str, salt: str, source: str) -> str:
        return hmac.new(self._secret, f"{stamp}|{salt}|{source}".encode(), hashlib.sha256).hexdigest()[:32]

    def challenge(self, source: str, stale: bool = False, now: float | None = None) -> str:
        """A WWW-Authenticate value, its nonce good only for requests from ``source`` (an address)."""
        stamp, salt = str(int(time.time() if now is None else now)), os.urandom(6).hex()
        value = (f'Digest realm="{self.realm}", nonce="{stamp}.{salt}.{self._sign(stamp, salt, source)}", '
                 'algorithm=MD5, qop="auth"')
        return value + (", stale=true" if stale else "")

    def verify(self, authorization: str, method: str, request_uri: str, source: str,
               now: float | None = None) -> str:
        """'ok', 'stale' or 'bad'. Stale: the right password, but a nonce too old, forgotten,
        or whose count was used already. Both are refused; a stale one is challenged with
        stale=true, so that a client retries with the fresh nonce instead of giving up (pjsip
        starts every new dialog at nc=1 with the nonce it has cached), while a replayed answer
        gets its sender nothing it could answer without the password.

        ``request_uri`` and ``source`` are the request's Request-URI and sender address. An
        accepted answer uses up its nonce count: call this once per new request, not for
        retransmissions of one already accepted.
        """
        result, why = self._verify(authorization, method, request_uri, source, now)
        if result != "ok":
            log.debug("digest %s from %s: %s", result, source, why)  # debug: a flood must not fill the log
        return result

    def _verify(self, authorization: str, method: str, request_uri: str, source: str,
                now: float | None) -> tuple[str, str]:
        if not authorization[:6].lower() == "digest":
            return "bad", "not digest"
        p = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
             for m in _PARAM.finditer(authorization[6:])}
        nonce = p.get("nonce", "")
        parts = nonce.split(".")
        stamp, salt, sig = parts if len(parts) == 3 else ("", "", "")
        if p.get("username") != self.user or p.get("realm") != self.realm or not stamp.isdigit():
            return "bad", "user, realm or nonce"
        if not hmac.compare_digest(sig, self._sign(stamp, salt, source)):
            return "bad", "nonce not issued to this address"  # or forged, or another process's
        if p.get("algorithm", "MD5").upper() != "MD5" or p.get("qop") != "auth":
            return "bad", "not qop=auth"  # without qop there is no nonce count, nothing to stop a replay
        nc, uri = p.get("nc", ""), p.get("uri", "")
        if not _NC.fullmatch(nc) or not p.get("cnonce") or uri != request_uri:
            return "bad", f"nc, cnonce or uri (uri={uri!r}, request {request_uri!r})"
        ha2 = _md5(f"{method}:{uri}")
        expect = _md5(f"{self._ha1}:{nonce}:{nc}:{p.get('cnonce', '')}:auth:{ha2}")
        if not hmac.compare_digest(p.get("response", "").lower(), expect):
            return "bad", "wrong response"
        now = time.time() if now is None else now
        if now - int(stamp) > self.lifetime_s:
            return "stale", "nonce expired"
        use = self.counts.use(nonce, int(stamp), int(nc, 16), now)
        return ("ok" if use == "ok" else "stale"), f"nonce count {nc}: {use}"
