"""A bounded single-producer/single-consumer ring of int16 samples.

Sits between the pjsua2 media callbacks (which must never block) and the worker threads. The lock
is held only for a copy of at most one buffer's worth of samples, so the callback side's cost is
O(frame) and never waits on a worker doing real work.
"""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """``capacity`` samples of mono int16 audio.

    Positions (``written``, ``read``) count samples since creation; they never wrap, so playout
    can tell exactly which sample the caller is hearing.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._buf = np.zeros(capacity, dtype=np.int16)
        self._cap = capacity
        self._start = 0  # index of the oldest sample
        self._len = 0
        self._cond = threading.Condition(threading.Lock())
        self.written = 0
        self.read = 0
        self.dropped = 0  # samples lost to overwrite or clear()
        self.played = 0  # samples handed out by read_into (not counting silence or clear())
        # While held, read_into hands out silence and keeps what is queued: a reply paused on a
        # possible barge-in resumes from the same sample if it was only a cough.
        self.held = False
        # Every frame read_into hands out (silence included) is copied here: the echo canceller's
        # reference, frame-aligned with the caller audio of the same bridge tick.
        self.tap: RingBuffer | None = None
        # Set while the writer is in the middle of an utterance (more of it is coming): a read
        # that runs dry then is a real underrun, heard as a gap inside a word. The short last
        # frame of a finished utterance, or silence while the next reply is being thought of,
        # is not.
        self._utterance_open = False
        self.underruns = 0

    @property
    def capacity(self) -> int:
        return self._cap

    def __len__(self) -> int:
        with self._cond:
            return self._len

    def free(self) -> int:
        with self._cond:
            return self._cap - self._len

    def _put(self, samples: np.ndarray) -> None:
        n = len(samples)
        end = (self._start + self._len) % self._cap
        first = min(n, self._cap - end)
        self._buf[end : end + first] = samples[:first]
        if n > first:
            self._buf[: n - first] = samples[first:]
        self._len += n
        self.written += n

    def write_overwrite(self, samples: np.ndarray) -> None:
        """Never blocks: if full, the oldest samples are dropped (right for live caller audio)."""
        samples = np.asarray(samples, dtype=np.int16)
        with self._cond:
            if len(samples) > self._cap:
                # Only the newest fit; the rest count as written and immediately dropped, so
                # positions stay "samples since creation".
                lost = len(samples) - self._cap
                self.written += lost
                self.read += lost
                self.dropped += lost
                samples = samples[-self._cap :]
            over = self._len + len(samples) - self._cap
            if over > 0:
                self._start = (self._start + over) % self._cap
                self._len -= over
                self.dropped += over
                self.read += over
            self._put(samples)
            self._cond.notify_all()

    def write(
        self, samples: np.ndarray, timeout: float | None = None, stop: threading.Event | None = None,
        more_follows: bool = False,
    ) -> int:
        """Block until all samples fit (or ``timeout``/``stop``); returns how many were written.

        ``more_follows``: this is part of an utterance whose next part is still being made;
        running dry before it comes counts as an underrun (see ``end_utterance``).
        """
        samples = np.asarray(samples, dtype=np.int16)
        done = 0
        with self._cond:
            self._utterance_open = more_follows
            while done < len(samples):
                room = self._cap - self._len
                if room == 0:
                    if stop is not None and stop.is_set():
                        break
                    if not self._cond.wait(timeout if timeout is not None else 0.1) and timeout is not None:
                        break
                    continue
                chunk = samples[done : done + room]
                self._put(chunk)
                done += len(chunk)
                self._cond.notify_all()
        return done

    def read_into(self, out: np.ndarray) -> int:
        """Non-blocking: copy up to ``len(out)`` samples into ``out``; zero-fill the rest."""
        n = len(out)
        with self._cond:
            take = 0 if self.held else min(n, self._len)
            first = min(take, self._cap - self._start)
            out[:first] = self._buf[self._start : self._start + first]
            if take > first:
                out[first:take] = self._buf[: take - first]
            self._start = (self._start + take) % self._cap
            self._len -= take
            self.read += take
            self.played += take
            if take < n:
                out[take:] = 0
                if self._utterance_open and not self.held:
                    self.underruns += 1
            if take:
                self._cond.notify_all()
            if self.tap is not None:
                self.tap.write_overwrite(out)
        return take

    def read_exact(self, n: int, timeout: float) -> np.ndarray | None:
        """Block up to ``timeout`` seconds for ``n`` samples; None if they did not arrive."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._len >= n, timeout):
                return None
            out = np.empty(n, dtype=np.int16)
            first = min(n, self._cap - self._start)
            out[:first] = self._buf[self._start : self._start + first]
            if n > first:
                out[first:] = self._buf[: n - first]
            self._start = (self._start + n) % self._cap
            self._len -= n
            self.read += n
            self._cond.notify_all()
            return out

    def end_utterance(self) -> None:
        """The writer has written the last of the current utterance."""
        with self._cond:
            self._utterance_open = False

    def skip(self, n: int) -> int:
        """Drop up to ``n`` of the oldest samples (a reader catching up); returns how many."""
        with self._cond:
            n = max(0, min(n, self._len))
            self._start = (self._start + n) % self._cap
            self._len -= n
            self.read += n
            self.dropped += n
            if n:
                self._cond.notify_all()
            return n

    def clear(self) -> int:
        """Drop everything queued (barge-in, hang-up); returns how many samples were dropped."""
        with self._cond:
            n = self._len
            self._start = (self._start + n) % self._cap
            self._len = 0
            self.read += n
            self.dropped += n
            self._utterance_open = False
            self._cond.notify_all()
            return n

    def wait_empty(self, timeout: float) -> bool:
        """Block until everything queued has been read (e.g. a goodbye was fully played)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._len == 0, timeout)

    def wait_filled(self, n: int, timeout: float) -> bool:
        """Block until at least ``n`` samples are queued, reading none of them.

        ``wait_empty``'s counterpart. A writer blocked for room puts what fits and waits without
        letting go of the lock in between, so once this sees the ring full, that writer is
        waiting (how the tests know it is).
        """
        with self._cond:
            return self._cond.wait_for(lambda: self._len >= n, timeout)
