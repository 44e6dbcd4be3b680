"""The webhook channel: each outcome POSTed as JSON to the business's own system, signed.

The request::

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <outcome id>              (the same on every try of the same outcome)
    X-Voicebox-Timestamp: <unix seconds>       (when this try was signed)
    X-Voicebox-Signature: sha256=<hex>

    {"id": ..., "kind": ..., "agent": ..., "session_id": ..., "created_at": ..., "fields": {...}, ...}

The signature is ``HMAC-SHA256(secret, "<timestamp>.<body>")`` in lowercase hex, where
``<body>`` is the exact bytes of the request body and ``<timestamp>`` the header's value. A
receiver recomputes it over the raw body (before parsing the JSON), compares in constant time,
rejects a timestamp far from its own clock (replays), and acts on each ``Idempotency-Key`` once:
an outcome may arrive more than once (a retry after a lost answer, a restart), never less.

The receiver's answer decides what happens next: 2xx delivered; 408, 429, 5xx, a timeout or a
refused connection are retried with back-off; any other status (a 4xx, or a redirect, which is
not followed) dead-letters the delivery at once with the status as its reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Callable

from voicebox.outcomes.channel import DeliveryFailed, StoredOutcome
from voicebox.outcomes.settings import WebhookConfig
from voicebox.outcomes.store import outcome_json

SIGNATURE_HEADER = "X-Voicebox-Signature"
TIMESTAMP_HEADER = "X-Voicebox-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_RETRY_STATUSES = {408, 425, 429}
_REASON_BODY_CHARS = 200


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Voicebox-Signature`` value for this body and timestamp."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance_s: float = 300.0) -> bool:
    """What a receiver written in Python does with a request (see the module docstring)."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


def body_of(outcome: StoredOutcome) -> bytes:
    return json.dumps(outcome_json(outcome), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirected POST would be replayed as a GET (or not at all): the URL should be the final one.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class WebhookChannel:
    """One POST per try; the outbox does the retrying. The secret is read when the channel is
    built (at start-up), so a missing one is an error then, not at the first call."""

    name = "webhook"

    def __init__(self, cfg: WebhookConfig, clock: Callable[[], float] = time.time) -> None:
        self.url = cfg.url
        self.timeout_s = cfg.timeout_s
        self._secret = cfg.secret.read()
        self._clock = clock
        # No proxy from the environment: the receiver is the business's own system, usually on its
        # own network, and the signed body must go nowhere else.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    def deliver(self, outcome: StoredOutcome) -> None:
        body = body_of(outcome)
        timestamp = str(int(self._clock()))
        req = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "voicebox-outcomes/1",
                IDEMPOTENCY_HEADER: outcome.id,
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            },
        )
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                resp.read(65536)  # let the receiver finish its answer before the connection closes
        except urllib.error.HTTPError as e:
            raise _failure(e) from None
        except (urllib.error.URLError, OSError) as e:  # refused, unreachable, timed out, reset
            reason = getattr(e, "reason", e)
            raise DeliveryFailed(f"{self.url}: {reason}") from None


def _failure(e: urllib.error.HTTPError) -> DeliveryFailed:
    try:
        text = e.read(4096).decode("utf-8", "replace")
    except OSError:
        text = ""
    detail = " ".join(text.split())[:_REASON_BODY_CHARS]
    reason = f"HTTP {e.code} {e.reason}"
    if 300 <= e.code < 400:
        location = e.headers.get("Location", "")
        return DeliveryFailed(f"HTTP {e.code} redirect to {location!r}: set the webhook url to the final address",
                              permanent=True)
    retry = e.code >= 500 or e.code in _RETRY_STATUSES
    return DeliveryFailed(reason, permanent=not retry, detail=detail)
