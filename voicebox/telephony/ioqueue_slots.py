"""Keeps pjsip's SIP ioqueue from running out of keys, which aborts the process.

Every socket pjsip registers (each TCP/TLS connection it accepts, among others) takes a key of the
endpoint's ioqueue. A key given back stays on a "closing" list for PJ_IOQUEUE_KEY_FREE_DELAY
(500 ms) before it can be used again (pjlib's safe unregistration). pjlib checks the number of
*live* keys against its maximum, which fails cleanly (PJ_ETOOMANY: pjsip closes the new socket),
but then asserts that the free list is not empty, and the pjsua2 wheel is built with assertions
on. So a peer that opens and drops connections fast enough (a few dozen in half a second from
anywhere: the connection budget closes what does not fit, which only adds to the closing list)
empties the free list while the live count is low, and the next accept aborts the process with
``pj_ioqueue_register_sock2: Assertion '!pj_list_empty(&ioqueue->free_list)' failed``.

The fix uses the clean check. On every transport state change (a connection accepted: its
socket has just taken a key, before pjsip accepts the next; one destroyed: its key goes to the
closing list right after the callback, so it no longer counts as live) the free list is counted and the ioqueue's maximum is set to the live keys plus
the free ones beyond ``RESERVE``. Past that, pjlib refuses a new socket with PJ_ETOOMANY (the
peer sees its connection closed) instead of asserting. Keys come back from the closing list only
when a socket registers, so when the door is shut it is opened by one ``HOLD_S`` later and that
socket's state change recomputes the maximum. Connections already open, UDP and calls are not
touched.

``pj_ioqueue_t`` is private to pjlib (``ioqueue_select.c``), so its fields are read at offsets
for pjsua2 2.15.1 on 64-bit Linux, and ``probe`` checks them against the ioqueue itself
(maximum, live count, and closing and free lists that add up to it) before anything
is written; if they do not read back, nothing is ever written and a warning says so.

A TLS peer that never completes its handshake takes a key before pjsip tells anyone about the
connection, so it is not counted here; SECURITY.md says so.
"""

from __future__ import annotations

import threading
import time
from ctypes import c_uint, c_void_p
from typing import Callable


# pj_ioqueue_t (select ioqueue, pjsip 2.15.1, LP64): lock*, auto_delete_lock, pj_ioqueue_cfg
# (two 32-bit fields), then max and count; after them nfds, the active list head (a whole
# pj_ioqueue_key_t, 352 bytes), three pj_fd_set_t of PJ_IOQUEUE_MAX_HANDLES + 4 longs, the
# ref_cnt_mutex pointer, then the closing and free list heads (each a pj_ioqueue_key_t).
MAX_OFFSET = 20
COUNT_OFFSET = 24
KEY_SIZE = 352
MAX_HANDLES = 64
_FD_SET_SIZE = 8 * (MAX_HANDLES + 4)
CLOSING_OFFSET = 32 + KEY_SIZE + 3 * _FD_SET_SIZE + 8
FREE_OFFSET = CLOSING_OFFSET + KEY_SIZE
RESERVE = 6  # keys kept free: the next accept, pjsua's own sockets, a registrar connection
HOLD_S = 0.6  # PJ_IOQUEUE_KEY_FREE_DELAY and a margin: the closing keys are free again by then


def _ptr(addr: int) -> int:
    return c_void_p.from_address(addr).value or 0


class _Maps:
    """Readable address ranges of this process, so that a wrong offset is never dereferenced."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []
        with open("/proc/self/maps", encoding="ascii") as maps:
            for line in maps:
                span, perms = line.split()[:2]
                if perms.startswith("r"):
                    lo, hi = (int(x, 16) for x in span.split("-"))
                    self.ranges.append((lo, hi))

    def readable(self, addr: int, size: int = 16) -> bool:
        return any(lo <= addr and addr + size <= hi for lo, hi in self.ranges)


class IoqueueSlots:
    """Watches one pjlib select ioqueue's free keys and closes the door before they run out."""

    def __init__(self, ioqueue: int, *, reserve: int = RESERVE, hold_s: float = HOLD_S,
                 timer: Callable[[float, Callable[[], None]], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ioqueue = ioqueue
        self.reserve = reserve
        self.hold_s = hold_s
        self._timer = timer or _daemon_timer
        self._clock = clock
        self.ok = False  # set by probe(): the layout read back
        self.why = "not probed"
        self.maximum = 0  # the ioqueue's own maximum: the cap whatever is free
        # Python attributes below are written on the SIP thread only; the lock guards the
        # ioqueue's maximum, which the release timer writes too.
        self._lock = threading.Lock()
        self._reopen_at = float("-inf")  # a reopening is scheduled until then
        self.holds = 0

    # -- reading -------------------------------------------------------------------------------
    def _max_now(self) -> int:
        return c_uint.from_address(self.ioqueue + MAX_OFFSET).value

    def live(self) -> int:
        return c_uint.from_address(self.ioqueue + COUNT_OFFSET).value

    def free(self) -> int:
        """Keys on the free list now (the closing ones that have aged are moved at the next register)."""
        head = self.ioqueue + FREE_OFFSET
        node, n = _ptr(head + 8), 0
        while node != head and node and n <= self.maximum:
            n += 1
            node = _ptr(node + 8)
        return n

    # -- probing -------------------------------------------------------------------------------
    def probe(self) -> bool:
        """Check the offsets on the live ioqueue (nothing is written unless they read back)."""
        self.ok, self.why = False, ""
        try:
            maps = _Maps()
            if not maps.readable(self.ioqueue, FREE_OFFSET + KEY_SIZE):
                self.why = "the ioqueue is not where pjsip says"
                return False
            top, live = self._max_now(), self.live()
            if not (8 <= top <= 4096 and 0 < live <= top):
                self.why = f"maximum {top} and live keys {live} make no sense"
                return False
            lengths = [_ring_length(self.ioqueue + off, top, maps) for off in (CLOSING_OFFSET, FREE_OFFSET)]
            if None in lengths:
                self.why = "the closing and free lists are not where they were looked for"
                return False
            closing_n, free_n = lengths
            if live + closing_n + free_n != top:
                self.why = f"live {live} + closing {closing_n} + free {free_n} keys is not the maximum {top}"
                return False
        except (OSError, ValueError) as exc:
            self.why = str(exc)
            return False
        self.maximum, self.ok = top, True
        return True

    # -- acting --------------------------------------------------------------------------------
    def _limit(self, leaving: bool, at_least_one: bool) -> tuple[int, int]:
        """(maximum, live keys it counts): sockets may take keys only while more than ``reserve``
        stay free. ``leaving``: one live socket unregisters right after this (its key goes to the
        closing list, not the free one), so it is not counted as live."""
        live = self.live() - leaving
        room = max(self.free() - self.reserve, 1 if at_least_one else 0)
        return min(self.maximum, live + room), live

    def update(self, leaving: bool = False) -> bool:
        """After a transport state change (SIP thread): set the ioqueue's maximum from the keys
        free now. True when that closes the door (no socket may take a key until keys come back)."""
        if not self.ok:
            return False
        with self._lock:
            limit, live = self._limit(leaving, at_least_one=False)
            c_uint.from_address(self.ioqueue + MAX_OFFSET).value = limit
        if limit > live:
            return False
        # Keys come back from the closing list only when a socket registers (pjlib scans it then),
        # so the door is opened by one after the free delay; that socket's own state change
        # recomputes the maximum from the list as it is then.
        if self._clock() >= self._reopen_at:
            self._reopen_at = self._clock() + self.hold_s
            self.holds += 1
            self._timer(self.hold_s, self._reopen)
            return True
        return False

    def _reopen(self) -> None:
        with self._lock:
            c_uint.from_address(self.ioqueue + MAX_OFFSET).value = self._limit(False, at_least_one=True)[0]

    def held(self) -> bool:
        """The door is closed: no socket may take a key now."""
        return self._max_now() <= self.live()


def _ring_length(head: int, limit: int, maps: _Maps) -> int | None:
    """Entries on the pj_list at ``head``, each node checked readable and linked both ways before it is
    followed; None when it is not such a list."""
    if not maps.readable(head):
        return None
    node, prev, n = _ptr(head + 8), head, 0
    while True:
        if not maps.readable(node) or _ptr(node) != prev:
            return None
        if node == head:
            return n
        n += 1
        if n > limit:
            return None
        prev, node = node, _ptr(node + 8)


def _daemon_timer(delay_s: float, fn: Callable[[], None]) -> object:
    t = threading.Timer(delay_s, fn)
    t.daemon = True
    t.start()
    return t
