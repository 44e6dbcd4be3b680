"""G.711 and G.722 against the standard library, an independent G.722, and known behaviour."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from benchmarks.harness.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from benchmarks.harness.g722 import G722Decoder, G722Encoder

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop  # removed in Python 3.13
    except ImportError:
        audioop = None

RATE = 16000
RAMP = np.arange(-32768, 32768, dtype=np.int16)


def tone(hz: float, seconds: float = 1.0, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def snr_db(ref: np.ndarray, out: np.ndarray, max_lag: int = 64) -> tuple[float, int]:
    """Best SNR over small alignment lags (codecs delay the signal a little)."""
    ref = ref.astype(np.float64)
    out = out.astype(np.float64)
    best = (-np.inf, 0)
    for lag in range(max_lag):
        n = min(len(ref), len(out) - lag)
        err = ref[:n] - out[lag : lag + n]
        best = max(best, (10 * np.log10(np.sum(ref[:n] ** 2) / max(np.sum(err**2), 1e-9)), lag))
    return best


@pytest.mark.skipif(audioop is None, reason="audioop not in this Python")
def test_alaw_matches_the_standard_library_exactly():
    assert np.array_equal(alaw_encode(RAMP), np.frombuffer(audioop.lin2alaw(RAMP.tobytes(), 2), np.uint8))
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(alaw_decode(codes), np.frombuffer(audioop.alaw2lin(codes.tobytes(), 2), np.int16))


@pytest.mark.skipif(audioop is None, reason="audioop not in this Python")
def test_ulaw_matches_the_standard_library_on_14_bit_inputs():
    exact = (RAMP % 4 == 0) & (RAMP > -32764)  # below 14 bits, rounding is the implementation's choice
    theirs = np.frombuffer(audioop.lin2ulaw(RAMP.tobytes(), 2), np.uint8)
    assert np.array_equal(ulaw_encode(RAMP)[exact], theirs[exact])
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(ulaw_decode(codes), np.frombuffer(audioop.ulaw2lin(codes.tobytes(), 2), np.int16))


@pytest.mark.parametrize("encode, decode", [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_g711_round_trip_snr_is_that_of_an_8_bit_log_quantizer(encode, decode):
    # G.711's SNR is ~38 dB over a wide range of levels: that is the point of companding.
    for amplitude in (1000.0, 8000.0, 30000.0):
        x = tone(1000, amplitude=amplitude)
        snr, lag = snr_db(x, decode(encode(x)), max_lag=1)
        assert 33 <= snr <= 45, (amplitude, snr)


def test_g722_round_trip_snr_on_a_tone_and_a_sweep():
    x = tone(1000)
    snr, _ = snr_db(x, G722Decoder().decode(G722Encoder().encode(x)))
    assert snr >= 30, snr
    # A sweep has one best alignment: the QMF pair delays by 22 samples.
    t = np.arange(RATE) / RATE
    sweep = (8000 * np.sin(2 * np.pi * (100 + 3000 * t) * t)).astype(np.int16)
    snr, lag = snr_db(sweep, G722Decoder().decode(G722Encoder().encode(sweep)))
    assert snr >= 20 and lag == 22, (snr, lag)
    # The upper band (4-8 kHz) is coded too: a 6 kHz tone survives, unlike over G.711.
    x = tone(6000, amplitude=4000)
    snr, _ = snr_db(x, G722Decoder().decode(G722Encoder().encode(x)))
    assert snr >= 10, snr


def test_g722_is_streaming_frame_by_frame_equals_whole():
    x = tone(440, 0.2) + tone(3000, 0.2, 2000)
    whole = G722Encoder().encode(x)
    enc = G722Encoder()
    framed = b"".join(enc.encode(x[i : i + 320]) for i in range(0, len(x), 320))
    assert whole == framed and len(whole) == len(x) // 2


def test_g722_rejects_odd_frames():
    with pytest.raises(ValueError, match="even"):
        G722Encoder().encode(np.zeros(3, np.int16))


def test_g722_bit_exact_with_an_independent_implementation():
    G722 = pytest.importorskip("G722", reason="the libg722 wheel (pip install g722) is not installed")
    rng = np.random.default_rng(3)
    # Speech-like: a few harmonics with a wandering envelope, plus noise, over 1 s.
    t = np.arange(RATE) / RATE
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    x = (env * sum(np.sin(2 * np.pi * 140 * k * t) * 3000 / k for k in range(1, 15))
         + rng.normal(0, 300, RATE)).astype(np.int16)
    ours = G722Encoder().encode(x)
    theirs = bytes(G722.G722(RATE, 64000).encode(x))
    assert ours == theirs
    decoded = np.asarray(G722.G722(RATE, 64000).decode(ours), dtype=np.int16)
    assert np.array_equal(G722Decoder().decode(ours), decoded)
