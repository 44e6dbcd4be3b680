"""The custom conference-bridge port that connects a call's audio to its ring buffers.

Both callbacks run on pjmedia's clock thread while holding the GIL, once every frame: they copy
one frame and return. No logging, no locks held for longer than a memcpy, no allocation beyond
the frame itself.
"""

from __future__ import annotations

import time

import numpy as np
import pjsua2 as pj

from voicebox.audio.ringbuffer import RingBuffer

# A frame request this long after the previous one came at least half a 20 ms frame late.
LATE_REQUEST_MS = 30.0


class BridgePort(pj.AudioMediaPort):
    def __init__(self, inbound: RingBuffer, playout: RingBuffer, frame_samples: int) -> None:
        super().__init__()
        self.frame_samples = frame_samples
        self._out = np.zeros(frame_samples, dtype=np.int16)
        self.attach(inbound, playout)

    def attach(self, inbound: RingBuffer, playout: RingBuffer) -> None:
        """Give a pooled port to a new call: fresh buffers and counters.

        Ports are reused rather than destroyed while the library runs: freeing a SWIG director
        whose callbacks the bridge clock may be entering crashed the process (SIGSEGV, seen once
        in CI right as the next call started).
        """
        self.inbound = inbound
        self.playout = playout
        self.frames_in = self.frames_out = 0
        self.max_request_gap_ms = 0.0
        self.late_requests = 0
        self._last_request = 0.0

    def restart_gap_clock(self) -> None:
        """At a hold or unhold: the bridge stops asking for frames while the call is held, and that
        pause is the caller's doing, not a late frame (max_frame_gap counted whole holds)."""
        self._last_request = 0.0

    @property
    def underruns(self) -> int:
        """Frames that ran dry in the middle of an utterance (counted by the playout buffer)."""
        return self.playout.underruns

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (pjsua2 API)
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
            self.inbound.write_overwrite(np.frombuffer(bytes(frame.buf), dtype=np.int16))
            self.frames_in += 1

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (pjsua2 API)
        now = time.perf_counter()
        if self._last_request:
            gap = (now - self._last_request) * 1000
            if gap > self.max_request_gap_ms:
                self.max_request_gap_ms = gap
            if gap > LATE_REQUEST_MS:
                self.late_requests += 1
        self._last_request = now
        self.playout.read_into(self._out)
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(self._out.tobytes())
        frame.size = self.frame_samples * 2
        self.frames_out += 1


def make_format(clock_rate_hz: int, frame_ms: int) -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.id = pj.PJMEDIA_FORMAT_PCM
    fmt.clockRate = clock_rate_hz
    fmt.channelCount = 1
    fmt.bitsPerSample = 16
    fmt.frameTimeUsec = frame_ms * 1000
    fmt.avgBps = clock_rate_hz * 16
    fmt.maxBps = clock_rate_hz * 16
    return fmt
