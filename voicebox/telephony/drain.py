"""Graceful drain: on SIGTERM stop taking calls, let the calls in progress end, then stop.

While draining, pjsua itself answers new INVITEs and OPTIONS with 480 Temporarily Unavailable
(its shutdown flag, set by ``Endpoint.libStopWorkerThreads()``; with ``threadCnt=0`` there are no
worker threads, so that is all the call does). A load balancer probing with OPTIONS (Kamailio's
dispatcher) then marks this box down and sends new calls elsewhere, while requests inside
existing dialogs (BYE, REFER, re-INVITE) are still served.
"""

from __future__ import annotations

import threading
import time


class Drain:
    """When a draining server may stop. Thread-safe to request; the SIP thread does the rest."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._requested = threading.Event()
        self.started_at: float | None = None

    def request(self) -> None:
        """Ask for a drain (from a signal handler or any thread)."""
        self._requested.set()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    @property
    def active(self) -> bool:
        return self.started_at is not None

    def begin(self, now: float | None = None) -> None:
        self.started_at = time.monotonic() if now is None else now

    def finished(self, calls_in_progress: int, now: float | None = None) -> bool:
        """True once no call is left, or the drain has lasted ``timeout_s``."""
        if self.started_at is None:
            return False
        now = time.monotonic() if now is None else now
        return calls_in_progress == 0 or now - self.started_at >= self.timeout_s
