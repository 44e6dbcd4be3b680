"""The SIP ioqueue watch on a pj_ioqueue_t laid out in memory as pjlib lays it out.

The live check against pjsip's own ioqueue is tests/e2e/test_connection_flood.py; here the layout
reading, the hold and its release are driven on a copy whose lists the test controls.
"""

from __future__ import annotations

import ctypes

import pytest

from voicebox.telephony import ioqueue_slots as slots_mod
from voicebox.telephony.ioqueue_slots import (COUNT_OFFSET, FREE_OFFSET, CLOSING_OFFSET, KEY_SIZE, MAX_OFFSET,
                                              IoqueueSlots)


class FakeIoqueue:
    """A pj_ioqueue_t with ``top`` keys: ``live`` registered, ``closing`` cooling, the rest free."""

    def __init__(self, top: int = 64, live: int = 3, closing: int = 0) -> None:
        self.mem = ctypes.create_string_buffer(FREE_OFFSET + KEY_SIZE)
        self.addr = ctypes.addressof(self.mem)
        self.keys = [ctypes.create_string_buffer(KEY_SIZE) for _ in range(top)]
        self.top = top
        self._set(MAX_OFFSET, top)
        self._set(COUNT_OFFSET, live)
        self.closing = self.keys[live:live + closing]
        self.free = self.keys[live + closing:]
        self._link(CLOSING_OFFSET, self.closing)
        self._link(FREE_OFFSET, self.free)

    def _set(self, off: int, value: int) -> None:
        ctypes.c_uint.from_address(self.addr + off).value = value

    def get(self, off: int) -> int:
        return ctypes.c_uint.from_address(self.addr + off).value

    def _link(self, off: int, nodes: list) -> None:
        head = self.addr + off
        ring = [head] + [ctypes.addressof(n) for n in nodes]
        for i, node in enumerate(ring):
            ctypes.c_void_p.from_address(node).value = ring[i - 1]  # prev
            ctypes.c_void_p.from_address(node + 8).value = ring[(i + 1) % len(ring)]  # next

    def close(self, n: int) -> None:
        """n live sockets unregister: their keys go to the closing list (pj_ioqueue_unregister)."""
        taken = [k for k in self.keys if k not in self.closing and k not in self.free][:n]
        self.closing = self.closing + taken
        self._link(CLOSING_OFFSET, self.closing)
        self._set(COUNT_OFFSET, self.get(COUNT_OFFSET) - n)

    def register(self, n: int = 1) -> None:
        """n sockets take free keys (what pj_ioqueue_register_sock2 does)."""
        self.free = self.free[n:]
        self._link(FREE_OFFSET, self.free)
        self._set(COUNT_OFFSET, self.get(COUNT_OFFSET) + n)


class Timers:
    def __init__(self) -> None:
        self.pending: list = []

    def __call__(self, delay_s, fn):  # noqa: ANN001
        self.pending.append((delay_s, fn))

    def fire(self) -> None:
        for _, fn in self.pending:
            fn()
        self.pending.clear()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _slots(q: FakeIoqueue, **kw) -> tuple[IoqueueSlots, Timers, Clock]:
    timers, clock = Timers(), Clock()
    return IoqueueSlots(q.addr, timer=timers, clock=clock, **kw), timers, clock


def test_probe_reads_a_well_laid_out_ioqueue():
    q = FakeIoqueue(live=3, closing=2)
    slots, _, _ = _slots(q)
    assert slots.probe(), slots.why
    assert (slots.maximum, slots.live(), slots.free()) == (64, 3, 59)


def test_probe_refuses_lists_that_do_not_add_up_and_writes_nothing():
    q = FakeIoqueue(live=3)
    q._set(COUNT_OFFSET, 10)  # 10 live + 61 free is not 64
    slots, _, _ = _slots(q)
    assert not slots.probe() and "not the maximum" in slots.why
    assert not slots.update()
    assert q.get(MAX_OFFSET) == 64


def test_probe_refuses_a_layout_whose_lists_are_elsewhere(monkeypatch):
    q = FakeIoqueue()
    monkeypatch.setattr(slots_mod, "FREE_OFFSET", FREE_OFFSET - 8)  # reads into the closing head's fields
    slots, _, _ = _slots(q)
    assert not slots.probe()
    assert slots.why


def test_probe_refuses_a_nonsense_maximum():
    q = FakeIoqueue()
    q._set(MAX_OFFSET, 0)
    slots, _, _ = _slots(q)
    assert not slots.probe() and "make no sense" in slots.why


def test_the_maximum_keeps_the_reserve_free():
    q = FakeIoqueue(live=3)
    slots, timers, _ = _slots(q, reserve=6)
    assert slots.probe()
    assert not slots.update()
    # 3 live + (61 free - 6 kept) = 58: pjlib refuses the 59th socket with PJ_ETOOMANY.
    assert q.get(MAX_OFFSET) == 58 and not timers.pending and not slots.held()
    q.register(40)
    assert not slots.update()
    assert q.get(MAX_OFFSET) == 58


def test_sockets_that_close_do_not_reopen_room_their_keys_do_not_have():
    # The defect this guards against: live keys closing while the free list is low. Their keys go
    # to the closing list, not the free one, so the live count drops but the room must not grow.
    q = FakeIoqueue(live=3)
    slots, _, _ = _slots(q, reserve=6)
    assert slots.probe()
    q.register(54)  # 57 live, 7 free
    assert not slots.update() and q.get(MAX_OFFSET) == 58
    q.close(50)  # 7 live, 50 closing, 7 free
    assert not slots.update()
    assert q.get(MAX_OFFSET) == 8  # one more socket, then 6 free are left


def test_a_shut_door_opens_by_one_after_the_free_delay():
    q = FakeIoqueue(live=3)
    slots, timers, clock = _slots(q, reserve=6)
    assert slots.probe()
    q.register(56)  # 59 live, 5 free: below the reserve
    assert slots.update()
    assert q.get(MAX_OFFSET) == q.get(COUNT_OFFSET) == 59 and slots.held()
    assert [d for d, _ in timers.pending] == [slots.hold_s]
    assert not slots.update(), "one reopening scheduled at a time"
    assert len(timers.pending) == 1
    clock.now += slots.hold_s
    timers.fire()
    # One socket may register: pjlib moves the aged closing keys back before it takes one.
    assert q.get(MAX_OFFSET) == 60 and not slots.held()
    assert slots.holds == 1


def test_after_the_free_delay_a_still_shut_door_is_scheduled_again():
    q = FakeIoqueue(live=3)
    slots, timers, clock = _slots(q, reserve=6)
    assert slots.probe()
    q.register(57)
    assert slots.update()
    timers.pending.clear()
    clock.now += slots.hold_s
    assert slots.update() and len(timers.pending) == 1 and slots.holds == 2


@pytest.mark.parametrize("free_left, shut", [(5, True), (6, True), (7, False), (20, False)])
def test_the_door_shuts_when_no_key_beyond_the_reserve_is_free(free_left, shut):
    q = FakeIoqueue(live=3)
    slots, _, _ = _slots(q, reserve=6)
    assert slots.probe()
    q.register(61 - free_left)
    assert slots.free() == free_left
    assert slots.update() is shut
    assert q.get(MAX_OFFSET) == q.get(COUNT_OFFSET) + max(free_left - 6, 0)


def test_connections_accepted_and_destroyed_over_and_over_cannot_drain_the_free_list():
    # What a clean-clone CI run did to pjsip: each connection the budget closes is destroyed
    # (its callback runs before its key leaves), and the next accept follows at once. Counting
    # the leaving socket as live let one more socket in per cycle until no key was free.
    q = FakeIoqueue(live=3)
    slots, _, _ = _slots(q, reserve=6)
    assert slots.probe()
    q.register(56)  # 59 live, 5 free: the door is shut
    slots.update()
    for _ in range(20):
        if q.get(COUNT_OFFSET) < q.get(MAX_OFFSET):  # pjlib's own check before it takes a key
            q.register(1)
            slots.update()
        slots.update(leaving=True)  # the destroy callback of one live connection
        q.close(1)
    assert slots.free() == 5
