"""G.711 µ-law and A-law (ITU-T G.711, the 16-bit-input form of the reference implementation).

Vectorized over numpy arrays: one call encodes or decodes a whole frame or clip.
"""

from __future__ import annotations

import numpy as np

_BIAS = 0x84  # 132: shifts the µ-law segment boundaries onto powers of two
_CLIP = 32635  # largest magnitude that still fits after the bias


def ulaw_encode(samples: np.ndarray) -> np.ndarray:
    """int16 linear PCM -> µ-law bytes (uint8): sign, 3-bit segment, 4-bit step, all inverted."""
    x = np.asarray(samples).astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), _CLIP) + _BIAS  # 132 .. 32767
    segment = np.floor(np.log2(magnitude)).astype(np.int32) - 7  # 0 .. 7
    step = (magnitude >> (segment + 3)) & 0x0F
    return (~(sign | (segment << 4) | step) & 0xFF).astype(np.uint8)


def ulaw_decode(codes: np.ndarray) -> np.ndarray:
    """µ-law bytes -> int16 linear PCM (the middle of each quantization step)."""
    u = ~np.asarray(codes).astype(np.int32) & 0xFF
    segment = (u >> 4) & 0x07
    step = u & 0x0F
    magnitude = (((step << 3) + _BIAS) << segment) - _BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def alaw_encode(samples: np.ndarray) -> np.ndarray:
    """int16 linear PCM -> A-law bytes: 13-bit magnitude, 3-bit segment, even bits inverted (0x55)."""
    x = np.asarray(samples).astype(np.int32) >> 3  # A-law quantizes 13-bit samples
    positive = x >= 0
    mag = np.where(positive, x, -x - 1)  # one's-complement magnitude, as in the reference code
    # Segment 0 and 1 share a step size; above that each segment doubles it.
    segment = np.where(mag < 32, 0, np.floor(np.log2(np.maximum(mag, 32))).astype(np.int32) - 4)  # 0 .. 8
    step = np.where(segment < 2, (mag >> 1) & 0x0F, (mag >> np.maximum(segment, 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | step)
    mask = np.where(positive, 0xD5, 0x55)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def alaw_decode(codes: np.ndarray) -> np.ndarray:
    """A-law bytes -> int16 linear PCM (the middle of each quantization step)."""
    a = (np.asarray(codes).astype(np.int32) ^ 0x55) & 0xFF
    segment = (a & 0x70) >> 4
    t = ((a & 0x0F) << 4) + np.where(segment == 0, 8, 0x108)
    t = np.where(segment > 1, t << np.maximum(segment - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)
