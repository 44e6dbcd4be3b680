"""How many calls' RTP sockets pjmedia can hold at once, counted before pjsua opens any.

pjsua opens a call's RTP and RTCP sockets (two ioqueue slots) as soon as an INVITE arrives, before
the application hears of the call, and it does so for the INVITEs it then refuses too. pjmedia's
ioqueue has a fixed number of slots (PJ_IOQUEUE_MAX_HANDLES, 64 in the pjsua2 wheel), and a slot a
call has given back stays reserved for PJ_IOQUEUE_KEY_FREE_DELAY (500 ms) after its socket closes
(pjlib's "safe unregistration"). When a new socket finds no free slot, ``pj_ioqueue_register_sock2``
asserts and the process aborts: a burst of INVITEs a few milliseconds apart, each ended at once,
used to do that after about 32 calls (issue #17).

So the guard reserves a pair of slots for every new INVITE it lets through to pjsua, and refuses
(503) the INVITE that would need one more than there are. A pair is in use while:

* the guard has let its INVITE through and pjsua has not yet handed the call to the server
  (``pending``; an INVITE pjsua refuses by itself, e.g. 488, is never handed over, so a pending
  pair is counted until its sockets must be free again: ``PENDING_S``);
* the server holds the call (``live``, the server's own count: refused calls included, until
  their DISCONNECTED);
* its call ended less than ``HOLD_S`` ago (``cooling``: the ioqueue's free delay, with margin).

Everything here runs on the SIP thread and is O(1) amortized per call.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

IOQUEUE_SLOTS = 64  # PJ_IOQUEUE_MAX_HANDLES: pjmedia's own ioqueue (pjsua's media_cfg.has_ioqueue)
SOCKETS_PER_CALL = 2  # RTP and RTCP
SPARE_PAIRS = 2  # margin for anything else pjmedia opens (a re-INVITE that adds a stream)
PAIRS = IOQUEUE_SLOTS // SOCKETS_PER_CALL - SPARE_PAIRS
KEY_FREE_DELAY_S = 0.5  # PJ_IOQUEUE_KEY_FREE_DELAY
HOLD_S = KEY_FREE_DELAY_S + 0.5  # the margin covers the SIP thread's poll lagging behind pjlib's clock
PENDING_S = HOLD_S + 0.5  # pjsua opens and closes the sockets of an INVITE it refuses within one poll


class MediaBudget:
    """Pairs of pjmedia ioqueue slots: reserved by the guard, held by calls, cooling after them."""

    def __init__(self, pairs: int = PAIRS, live: Callable[[], int] = lambda: 0,
                 hold_s: float = HOLD_S, pending_s: float = PENDING_S) -> None:
        self.pairs = pairs
        self.live = live  # calls the server holds (set by the server: its own count, never a copy)
        self.hold_s = hold_s
        self.pending_s = pending_s
        self._pending: deque[float] = deque()  # expiry times, oldest first
        self._cooling: deque[float] = deque()  # times the pair is surely back in the free list
        self.refused = 0

    def _expire(self, now: float) -> None:
        while self._pending and self._pending[0] <= now:
            self._pending.popleft()
        while self._cooling and self._cooling[0] <= now:
            self._cooling.popleft()

    def in_use(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        self._expire(now)
        return self.live() + len(self._pending) + len(self._cooling)

    def try_reserve(self, now: float | None = None) -> bool:
        """A new INVITE is about to reach pjsua: False if its sockets might find no slot."""
        now = time.monotonic() if now is None else now
        if self.in_use(now) + 1 > self.pairs:
            self.refused += 1
            return False
        self._pending.append(now + self.pending_s)
        return True

    def claim(self) -> None:
        """pjsua handed the call to the server, whose ``live`` count now covers its pair.

        The oldest reservation goes: if it belonged to an INVITE pjsua refused by itself, the
        newer one left in its place expires later, so the count never falls below the truth.
        """
        if self._pending:
            self._pending.popleft()

    def release(self, now: float | None = None) -> None:
        """A call the server held is gone (DISCONNECTED: pjsua has closed its sockets)."""
        now = time.monotonic() if now is None else now
        self._cooling.append(now + self.hold_s)
