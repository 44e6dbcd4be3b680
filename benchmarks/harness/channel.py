"""A simulated telephone line: codec round trip, 8 kHz narrowing, packet loss and jitter.

Two uses:

- ``round_trip(clip, codec)``: what a whole clip sounds like after one pass through a codec
  (the router evaluation and the channel tests use it);
- ``LineDirection``: one direction of a live call, 20 ms frame by 20 ms frame, with the state a
  real line keeps (codec state, filters, a jitter buffer, packet-loss concealment). The
  in-process benchmark puts one in each direction between the simulated caller and the agent.

Everything is 16 kHz int16 at the edges, like the conference bridge.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass
from typing import Literal

import numpy as np
import soxr
from scipy.signal import firwin, lfilter, lfilter_zi

from benchmarks.harness.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from benchmarks.harness.g722 import G722Decoder, G722Encoder

Codec = Literal["PCMU", "PCMA", "G722", "L16"]
CODECS: tuple[str, ...] = ("PCMU", "PCMA", "G722", "L16")
WIDE_HZ = 16000
NARROW_HZ = 8000
# Gains of the concealment for the 1st, 2nd, ... consecutive lost frame: repeat, fading out.
PLC_GAINS = (0.8, 0.5, 0.2)
G722_DELAY_SAMPLES = 22  # its two quadrature mirror filters (measured: best-aligning lag)


def _clip16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _g711(codec: str) -> tuple:
    return (ulaw_encode, ulaw_decode) if codec == "PCMU" else (alaw_encode, alaw_decode)


def round_trip(samples: np.ndarray, codec: Codec = "PCMU") -> np.ndarray:
    """16 kHz int16 clip -> what arrives after one pass through ``codec``, at 16 kHz int16."""
    samples = np.asarray(samples, dtype=np.int16)
    if codec == "L16":
        return samples.copy()
    if codec == "G722":
        even = samples if len(samples) % 2 == 0 else np.append(samples, np.int16(0))
        return G722Decoder().decode(G722Encoder().encode(even))[: len(samples)]
    if codec not in ("PCMU", "PCMA"):
        raise ValueError(f"unknown codec {codec!r} (one of {', '.join(CODECS)})")
    encode, decode = _g711(codec)
    narrow = _clip16(soxr.resample(samples.astype(np.float32), WIDE_HZ, NARROW_HZ, quality="HQ"))
    line = decode(encode(narrow))
    return _clip16(soxr.resample(line.astype(np.float32), NARROW_HZ, WIDE_HZ, quality="HQ"))


class _HalfBand:
    """Streaming 2:1 rate change with a linear-phase FIR (scipy) that keeps its state per frame.

    soxr's streaming resampler works in blocks of ~50 ms and more, far coarser than a 20 ms
    media frame; a short FIR is what a phone's media path does, with ~2 ms of delay.
    """

    TAPS = 63

    def __init__(self) -> None:
        self.h = firwin(self.TAPS, 3600, fs=WIDE_HZ)  # passes the 300-3400 Hz telephone band
        self._down = lfilter_zi(self.h, 1.0) * 0.0
        self._up = lfilter_zi(self.h, 1.0) * 0.0

    def down(self, wide: np.ndarray) -> np.ndarray:
        y, self._down = lfilter(self.h, 1.0, wide.astype(np.float64), zi=self._down)
        return _clip16(y[::2])

    def up(self, narrow: np.ndarray) -> np.ndarray:
        stuffed = np.zeros(2 * len(narrow))
        stuffed[::2] = narrow
        y, self._up = lfilter(self.h, 1.0, stuffed, zi=self._up)
        return _clip16(2.0 * y)

    @property
    def delay_ms(self) -> float:
        return (self.TAPS - 1) / 2 / WIDE_HZ * 1000


@dataclass(frozen=True)
class ChannelSpec:
    """One direction of a simulated line."""

    codec: Codec = "PCMU"
    loss_pct: float = 0.0  # independent loss of each 20 ms packet
    jitter_ms: float = 0.0  # spread of the network delay (half-normal); 0: a steady LAN
    jitter_buffer_ms: int = 60  # playout delay the receiver adds when there is jitter
    seed: int = 0

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r} (one of {', '.join(CODECS)})")
        if not 0.0 <= self.loss_pct < 100.0:
            raise ValueError("loss_pct must be in [0, 100)")
        if self.jitter_ms < 0 or self.jitter_buffer_ms < 0:
            raise ValueError("jitter_ms and jitter_buffer_ms must not be negative")


class LineDirection:
    """Caller -> agent or agent -> caller, one frame at a time (16 kHz int16 in and out).

    Sender: narrow to 8 kHz for G.711, encode. Network: each packet may be lost, or arrive
    later than the jitter buffer waits (then it is as good as lost). Receiver: decode, conceal
    a missing packet by repeating the last one, fading out, and widen back to 16 kHz.
    """

    def __init__(self, spec: ChannelSpec, frame_samples: int = 320) -> None:
        self.spec = spec
        self.frame_samples = frame_samples
        self._rng = random.Random(spec.seed)
        self._band = _HalfBand() if spec.codec in ("PCMU", "PCMA") else None
        self._enc = G722Encoder() if spec.codec == "G722" else None
        self._dec = G722Decoder() if spec.codec == "G722" else None
        self._depth = 0
        if spec.jitter_ms > 0:
            frame_ms = frame_samples * 1000 // WIDE_HZ
            self._depth = -(-spec.jitter_buffer_ms // frame_ms)  # frames, rounded up
        self._queue: collections.deque = collections.deque([None] * self._depth)
        self._last: np.ndarray | None = None
        self._missing_run = 0
        self.sent = 0
        self.lost = 0  # dropped by the network
        self.late = 0  # arrived after the jitter buffer gave up on them
        self.concealed = 0

    @property
    def delay_ms(self) -> float:
        """Fixed one-way delay this direction adds: jitter buffer plus filters."""
        frame_ms = self.frame_samples * 1000 / WIDE_HZ
        filters = 2 * self._band.delay_ms if self._band is not None else 0.0
        if self.spec.codec == "G722":
            filters = G722_DELAY_SAMPLES * 1000 / WIDE_HZ
        return self._depth * frame_ms + filters

    def _encode(self, frame: np.ndarray) -> bytes | np.ndarray:
        codec = self.spec.codec
        if codec == "L16":
            return frame.copy()
        if codec == "G722":
            return self._enc.encode(frame)
        return _g711(codec)[0](self._band.down(frame))

    def _decode(self, payload) -> np.ndarray:
        codec = self.spec.codec
        if codec == "L16":
            return payload
        if codec == "G722":
            return self._dec.decode(payload)
        return _g711(codec)[1](payload)  # at 8 kHz; widened after concealment

    def process(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame, dtype=np.int16)
        if len(frame) != self.frame_samples:
            raise ValueError(f"frames are {self.frame_samples} samples, got {len(frame)}")
        payload = self._encode(frame)
        self.sent += 1
        spec = self.spec
        if spec.loss_pct and self._rng.random() * 100 < spec.loss_pct:
            self.lost += 1
            payload = None
        elif spec.jitter_ms and abs(self._rng.gauss(0.0, spec.jitter_ms)) > self._depth * 20:
            self.late += 1
            payload = None
        self._queue.append(payload)
        payload = self._queue.popleft()
        if payload is None:
            out = self._conceal()
        else:
            out = self._decode(payload)
            self._last, self._missing_run = out, 0
        return self._band.up(out) if self._band is not None else out

    def _conceal(self) -> np.ndarray:
        n = self.frame_samples // 2 if self._band is not None else self.frame_samples
        if self._last is None:
            return np.zeros(n, dtype=np.int16)  # nothing heard yet, or the jitter buffer filling
        self.concealed += 1
        gain = PLC_GAINS[self._missing_run] if self._missing_run < len(PLC_GAINS) else 0.0
        self._missing_run += 1
        return _clip16(self._last.astype(np.float64) * gain)

    def stats(self) -> dict[str, int | float]:
        return {"sent": self.sent, "lost": self.lost, "late": self.late, "concealed": self.concealed,
                "delay_ms": round(self.delay_ms, 1)}
