"""RingBuffer: the lock-light SPSC ring between pjsua2 media callbacks and the worker threads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from voicebox.audio.ringbuffer import RingBuffer


def seq(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int16)


def drain(rb: RingBuffer, n: int) -> np.ndarray:
    out = np.full(n, -1, dtype=np.int16)
    got = rb.read_into(out)
    return out[:got]


def assert_positions_consistent(rb: RingBuffer) -> None:
    assert rb.written - rb.read == len(rb)
    assert len(rb) + rb.free() == rb.capacity


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_positive(capacity):
    with pytest.raises(ValueError):
        RingBuffer(capacity)


def test_empty_buffer_state():
    rb = RingBuffer(8)
    assert rb.capacity == 8
    assert len(rb) == 0
    assert rb.free() == 8
    assert (rb.written, rb.read, rb.dropped) == (0, 0, 0)


def test_wraparound_preserves_order():
    rb = RingBuffer(8)
    assert rb.write(seq(0, 6), timeout=0.01) == 6
    np.testing.assert_array_equal(drain(rb, 4), seq(0, 4))
    # Start is now at index 4; writing 5 more wraps past the end of the array.
    assert rb.write(seq(6, 5), timeout=0.01) == 5
    assert len(rb) == 7
    np.testing.assert_array_equal(drain(rb, 7), seq(4, 7))
    assert_positions_consistent(rb)


def test_many_wraps_with_odd_sizes():
    rb = RingBuffer(7)
    nxt_in = nxt_out = 0
    for step in range(200):
        n = 1 + step % 5
        if rb.free() >= n:
            assert rb.write(seq(nxt_in, n), timeout=0.01) == n
            nxt_in += n
        m = 1 + (step * 3) % 4
        got = drain(rb, m)
        np.testing.assert_array_equal(got, seq(nxt_out, len(got)))
        nxt_out += len(got)
        assert_positions_consistent(rb)
    assert nxt_out > 300  # the ring went round many times


def test_write_overwrite_drops_oldest_when_full():
    rb = RingBuffer(5)
    rb.write_overwrite(seq(1, 5))
    assert rb.dropped == 0
    rb.write_overwrite(seq(6, 2))
    assert len(rb) == 5
    assert rb.dropped == 2
    assert rb.written == 7
    assert rb.read == 2  # the two lost samples count as gone past the read position
    assert_positions_consistent(rb)
    np.testing.assert_array_equal(drain(rb, 5), seq(3, 5))


def test_write_overwrite_never_blocks_and_keeps_newest():
    rb = RingBuffer(4)
    t0 = time.monotonic()
    for i in range(0, 100, 3):
        rb.write_overwrite(seq(i, 3))
    assert time.monotonic() - t0 < 1.0
    assert len(rb) == 4
    np.testing.assert_array_equal(drain(rb, 4), seq(98, 4))
    assert rb.dropped == 102 - 4
    assert_positions_consistent(rb)


def test_write_overwrite_chunk_larger_than_capacity_keeps_tail():
    rb = RingBuffer(4)
    rb.write_overwrite(seq(0, 10))
    assert len(rb) == 4
    assert rb.dropped == 6
    assert_positions_consistent(rb)
    np.testing.assert_array_equal(drain(rb, 4), seq(6, 4))


def test_write_overwrite_chunk_larger_than_capacity_counts_positions_like_small_chunks():
    """Offering 10 samples to a 4-sample ring must move the positions as 10 one-sample writes do.

    With small chunks every offered sample counts in ``written`` and every dropped one in ``read``
    (see test_write_overwrite_drops_oldest_when_full). An oversized chunk should be no different,
    or ``written`` stops being "samples since creation" and media time drifts.
    """
    small = RingBuffer(4)
    for v in seq(0, 10):
        small.write_overwrite(np.array([v], dtype=np.int16))
    big = RingBuffer(4)
    big.write_overwrite(seq(0, 10))
    assert (small.written, small.read, small.dropped) == (10, 6, 6)
    assert (big.written, big.read, big.dropped) == (small.written, small.read, small.dropped)


def test_write_returns_partial_count_on_timeout():
    rb = RingBuffer(4)
    assert rb.write(seq(0, 2), timeout=0.01) == 2
    t0 = time.monotonic()
    assert rb.write(seq(2, 5), timeout=0.02) == 2  # only two fitted
    assert time.monotonic() - t0 < 1.0
    assert len(rb) == 4
    np.testing.assert_array_equal(drain(rb, 4), seq(0, 4))


def test_write_full_returns_zero_on_timeout():
    rb = RingBuffer(3)
    rb.write(seq(0, 3), timeout=0.01)
    t0 = time.monotonic()
    assert rb.write(seq(3, 1), timeout=0.02) == 0
    elapsed = time.monotonic() - t0
    assert 0.015 <= elapsed < 1.0
    assert rb.written == 3


def test_write_returns_at_once_when_stop_already_set():
    rb = RingBuffer(3)
    rb.write(seq(0, 3), timeout=0.01)
    stop = threading.Event()
    stop.set()
    t0 = time.monotonic()
    assert rb.write(seq(3, 2), stop=stop) == 0  # no timeout: only stop can end it
    assert time.monotonic() - t0 < 0.5


def test_write_returns_when_stop_is_set_while_waiting():
    rb = RingBuffer(3)
    rb.write(seq(0, 2), timeout=0.01)
    stop = threading.Event()
    result = {}

    def writer():
        result["n"] = rb.write(seq(2, 5), stop=stop)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    assert rb.wait_filled(3, timeout=2.0)  # the writer put the one that fit and now waits for room
    stop.set()
    t.join(timeout=2.0)
    assert not t.is_alive(), "write() ignored the stop event"
    assert result["n"] == 1


def test_blocking_write_waits_for_room():
    rb = RingBuffer(4)
    data = seq(0, 12)
    result = {}

    def writer():
        result["n"] = rb.write(data, timeout=2.0)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    got = []
    for _ in range(3):
        chunk = rb.read_exact(4, timeout=2.0)
        assert chunk is not None
        got.append(chunk)
    t.join(timeout=2.0)
    assert not t.is_alive()
    assert result["n"] == 12
    np.testing.assert_array_equal(np.concatenate(got), data)


def test_read_into_zero_fills_and_returns_count():
    rb = RingBuffer(8)
    rb.write(np.array([5, -6, 7], dtype=np.int16), timeout=0.01)
    out = np.full(6, 99, dtype=np.int16)
    assert rb.read_into(out) == 3
    np.testing.assert_array_equal(out, [5, -6, 7, 0, 0, 0])
    assert rb.read == 3
    assert len(rb) == 0


def test_read_into_empty_buffer():
    rb = RingBuffer(8)
    out = np.full(4, 99, dtype=np.int16)
    assert rb.read_into(out) == 0
    np.testing.assert_array_equal(out, np.zeros(4, np.int16))
    assert rb.read == 0


def test_read_into_shorter_than_queued_leaves_rest():
    rb = RingBuffer(8)
    rb.write(seq(10, 6), timeout=0.01)
    out = np.zeros(4, np.int16)
    assert rb.read_into(out) == 4
    np.testing.assert_array_equal(out, seq(10, 4))
    assert len(rb) == 2
    np.testing.assert_array_equal(drain(rb, 8), seq(14, 2))


def test_read_exact_times_out_with_none_and_consumes_nothing():
    rb = RingBuffer(8)
    rb.write(seq(0, 2), timeout=0.01)
    t0 = time.monotonic()
    assert rb.read_exact(3, timeout=0.02) is None
    assert 0.015 <= time.monotonic() - t0 < 1.0
    assert len(rb) == 2
    assert rb.read == 0
    np.testing.assert_array_equal(rb.read_exact(2, timeout=0.01), seq(0, 2))


def test_read_exact_across_wrap():
    rb = RingBuffer(5)
    rb.write(seq(0, 4), timeout=0.01)
    drain(rb, 3)
    rb.write(seq(4, 4), timeout=0.01)
    out = rb.read_exact(5, timeout=0.01)
    assert out is not None and out.dtype == np.int16
    np.testing.assert_array_equal(out, seq(3, 5))


def test_read_exact_wakes_on_write_from_other_thread():
    rb = RingBuffer(16)
    timer = threading.Timer(0.01, lambda: rb.write_overwrite(seq(0, 10)))
    timer.start()
    try:
        out = rb.read_exact(10, timeout=2.0)
    finally:
        timer.cancel()
    np.testing.assert_array_equal(out, seq(0, 10))


def test_clear_drops_everything_and_counts_it():
    rb = RingBuffer(8)
    rb.write(seq(0, 5), timeout=0.01)
    drain(rb, 1)
    assert rb.clear() == 4
    assert len(rb) == 0
    assert rb.dropped == 4
    assert rb.read == 5
    assert_positions_consistent(rb)
    assert rb.clear() == 0
    assert rb.dropped == 4
    # Still usable afterwards, and positions keep counting.
    rb.write(seq(100, 3), timeout=0.01)
    np.testing.assert_array_equal(drain(rb, 8), seq(100, 3))
    assert (rb.written, rb.read) == (8, 8)


def test_clear_unblocks_a_waiting_writer():
    rb = RingBuffer(4)
    rb.write(seq(0, 3), timeout=0.01)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("n", rb.write(seq(3, 4), timeout=2.0)), daemon=True)
    t.start()
    # Sample 3 fits, the other three wait for room: once the ring is full the writer is waiting.
    assert rb.wait_filled(4, timeout=2.0)
    assert rb.clear() == 4
    t.join(timeout=2.0)
    assert not t.is_alive()
    assert result["n"] == 4  # not 1: clear() woke it before its 2 s ran out
    np.testing.assert_array_equal(drain(rb, 4), seq(4, 3))


def test_wait_filled_waits_for_samples_and_reads_none():
    rb = RingBuffer(8)
    rb.write(seq(0, 2), timeout=0.01)
    assert rb.wait_filled(2, timeout=0.0) is True
    t0 = time.monotonic()
    assert rb.wait_filled(3, timeout=0.02) is False
    assert time.monotonic() - t0 < 1.0
    timer = threading.Timer(0.01, lambda: rb.write_overwrite(seq(2, 3)))
    timer.start()
    try:
        assert rb.wait_filled(5, timeout=2.0) is True
    finally:
        timer.cancel()
    assert rb.read == 0
    np.testing.assert_array_equal(drain(rb, 8), seq(0, 5))


def test_wait_empty():
    rb = RingBuffer(8)
    assert rb.wait_empty(timeout=0.0) is True
    rb.write(seq(0, 4), timeout=0.01)
    t0 = time.monotonic()
    assert rb.wait_empty(timeout=0.02) is False
    assert time.monotonic() - t0 < 1.0
    timer = threading.Timer(0.01, lambda: drain(rb, 4))
    timer.start()
    try:
        assert rb.wait_empty(timeout=2.0) is True
    finally:
        timer.cancel()
    assert len(rb) == 0


def test_wait_empty_after_clear():
    rb = RingBuffer(8)
    rb.write(seq(0, 4), timeout=0.01)
    timer = threading.Timer(0.01, rb.clear)
    timer.start()
    try:
        assert rb.wait_empty(timeout=2.0) is True
    finally:
        timer.cancel()


def test_positions_are_monotonic_sample_counts():
    rng = np.random.default_rng(1)
    rb = RingBuffer(11)
    last_w = last_r = 0
    offered = 0
    for _ in range(500):
        op = rng.integers(4)
        n = int(rng.integers(1, 9))
        if op == 0:
            rb.write_overwrite(seq(0, n))
            offered += n
        elif op == 1:
            offered += rb.write(seq(0, n), timeout=0.0005)
        elif op == 2:
            rb.read_into(np.zeros(n, np.int16))
        else:
            rb.clear() if rng.random() < 0.2 else rb.read_exact(n, timeout=0.0)
        assert rb.written >= last_w and rb.read >= last_r
        last_w, last_r = rb.written, rb.read
        assert rb.written == offered  # every sample put in, none larger than capacity here
        assert_positions_consistent(rb)


def test_producer_consumer_threads_deliver_every_sample_in_order():
    total = 200_000
    data = (np.arange(total) % 32000).astype(np.int16)
    rb = RingBuffer(1000)
    stop = threading.Event()
    received: list[np.ndarray] = []
    errors: list[str] = []

    def producer():
        rng = np.random.default_rng(2)
        i = 0
        while i < total and not stop.is_set():
            n = int(rng.integers(1, 700))
            n = rb.write(data[i : i + n], timeout=5.0, stop=stop)
            if n == 0:
                errors.append("producer stalled")
                return
            i += n

    def consumer():
        rng = np.random.default_rng(3)
        got = 0
        buf = np.zeros(900, np.int16)
        deadline = time.monotonic() + 10.0
        while got < total and time.monotonic() < deadline:
            if rng.random() < 0.5:
                m = int(rng.integers(1, 900))
                k = rb.read_into(buf[:m])
                if k:
                    received.append(buf[:k].copy())
                    got += k
            else:
                m = min(int(rng.integers(1, 500)), total - got)
                chunk = rb.read_exact(m, timeout=0.05)
                if chunk is not None:
                    received.append(chunk)
                    got += m

    threads = [threading.Thread(target=producer, daemon=True), threading.Thread(target=consumer, daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15.0)
    stop.set()
    assert not any(t.is_alive() for t in threads), "producer/consumer did not finish in time"
    assert not errors
    out = np.concatenate(received)
    assert len(out) == total
    np.testing.assert_array_equal(out, data)
    assert rb.written == rb.read == total
    assert rb.dropped == 0


def test_held_playout_hands_out_silence_and_keeps_its_place():
    rb = RingBuffer(100)
    rb.write(np.arange(1, 41, dtype=np.int16))
    out = np.empty(10, np.int16)
    assert rb.read_into(out) == 10 and out[0] == 1
    rb.held = True
    assert rb.read_into(out) == 0 and not out.any()
    assert len(rb) == 30
    rb.held = False
    assert rb.read_into(out) == 10 and out[0] == 11
    assert rb.played == 20


def test_tap_receives_every_frame_handed_out_silence_included():
    rb, tap = RingBuffer(100), RingBuffer(100)
    rb.tap = tap
    rb.write(np.full(15, 7, np.int16))
    out = np.empty(10, np.int16)
    rb.read_into(out)
    rb.read_into(out)  # 5 samples, then silence
    got = tap.read_exact(20, timeout=0)
    assert got is not None
    assert list(got[:15]) == [7] * 15 and not got[15:].any()


def test_underrun_is_running_dry_inside_an_utterance_only():
    rb = RingBuffer(1000)
    out = np.zeros(160, dtype=np.int16)
    rb.read_into(out)  # silence before anything was said
    rb.write(np.ones(200, dtype=np.int16), more_follows=True)
    rb.read_into(out)
    rb.read_into(out)  # 40 short of a frame, and the rest of the sentence is still coming
    assert rb.underruns == 1
    rb.read_into(out)  # still nothing: dead air inside the utterance
    assert rb.underruns == 2
    rb.write(np.ones(100, dtype=np.int16), more_follows=True)
    rb.end_utterance()
    rb.read_into(out)  # the short last frame of a finished utterance is not an underrun
    rb.read_into(out)  # nor is the silence after it
    assert rb.underruns == 2


def test_filler_write_and_clear_and_hold_do_not_count_underruns():
    rb = RingBuffer(1000)
    out = np.zeros(160, dtype=np.int16)
    rb.write(np.ones(100, dtype=np.int16))  # a whole clip (a filler): nothing follows
    rb.read_into(out)
    rb.write(np.ones(500, dtype=np.int16), more_follows=True)
    rb.held = True
    rb.read_into(out)  # held for a possible barge-in: silence on purpose
    rb.held = False
    rb.clear()  # barge-in: the utterance is abandoned
    rb.read_into(out)
    assert rb.underruns == 0
