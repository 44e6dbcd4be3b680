"""The simulated telephone line: round trips, frame-by-frame directions, loss and jitter."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.harness.channel import CODECS, ChannelSpec, LineDirection, round_trip


def tone(hz: float, seconds: float = 1.0, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def snr_db(ref: np.ndarray, out: np.ndarray, max_lag: int = 64) -> tuple[float, int]:
    """Best SNR over small alignment lags (filters and codecs delay the signal a little)."""
    ref, out = ref.astype(np.float64), out.astype(np.float64)
    best = (-np.inf, 0)
    for lag in range(max_lag):
        n = min(len(ref), len(out) - lag)
        err = ref[:n] - out[lag : lag + n]
        best = max(best, (10 * np.log10(np.sum(ref[:n] ** 2) / max(np.sum(err**2), 1e-9)), lag))
    return best


def voice_like(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return sum(np.sin(2 * np.pi * 150 * k * t) * 2500 / k for k in range(1, 20)).astype(np.int16)


def stream(line: LineDirection, x: np.ndarray) -> np.ndarray:
    n = len(x) // 320 * 320
    return np.concatenate([line.process(x[i : i + 320]) for i in range(0, n, 320)])


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_g711_round_trip_keeps_telephone_band_speech(codec):
    # Voice harmonics up to 3 kHz: the 8 kHz line keeps them, so SNR is µ/A-law's own (~35 dB).
    x = voice_like()
    snr, lag = snr_db(x, round_trip(x, codec), max_lag=2)
    assert snr >= 25, snr


def test_g711_loses_what_is_above_4_khz_and_g722_keeps_it():
    x = tone(6000, amplitude=4000)
    assert np.abs(round_trip(x, "PCMU")[200:-200]).max() < 400  # the edges ring
    assert np.abs(round_trip(x, "G722")[200:]).max() > 2000


@pytest.mark.parametrize("codec", CODECS)
def test_a_line_direction_frame_by_frame_matches_its_round_trip_quality(codec):
    x = voice_like()
    line = LineDirection(ChannelSpec(codec))
    snr, lag = snr_db(x, stream(line, x), max_lag=80)
    assert snr >= 20, (codec, snr)
    assert abs(lag - line.delay_ms * 16) <= 2  # the delay it reports is the delay it has
    assert line.stats()["lost"] == 0 and line.stats()["concealed"] == 0


def test_loss_counts_and_concealment():
    line = LineDirection(ChannelSpec("PCMU", loss_pct=20.0, seed=7))
    out = stream(line, voice_like(4.0))
    st = line.stats()
    assert st["sent"] == 200
    assert 20 <= st["lost"] <= 60  # 20 % of 200, give or take the dice
    assert st["concealed"] == st["lost"]  # every gap is filled (voice was heard before each)
    assert len(out) == 200 * 320


def test_jitter_buffer_delays_and_drops_late_packets():
    steady = LineDirection(ChannelSpec("L16", jitter_ms=5.0, jitter_buffer_ms=60, seed=1))
    stream(steady, voice_like(2.0))
    assert steady.delay_ms == 60 and steady.stats()["late"] == 0
    shaky = LineDirection(ChannelSpec("L16", jitter_ms=40.0, jitter_buffer_ms=20, seed=1))
    stream(shaky, voice_like(2.0))
    assert shaky.stats()["late"] > 20  # half-normal(40 ms) often exceeds a 20 ms buffer


def test_concealment_fades_to_silence():
    line = LineDirection(ChannelSpec("L16", loss_pct=99.9, seed=1))
    # Feed voice with no loss first, then everything is lost.
    good = LineDirection(ChannelSpec("L16"))
    x = voice_like(0.2)
    line._last = good.process(x[:320])  # as if one frame had arrived
    outs = [np.abs(line.process(x[:320])).max() for _ in range(5)]
    assert outs[0] > outs[1] > outs[2] > 0 and outs[3] == outs[4] == 0


@pytest.mark.parametrize("bad", [dict(codec="GSM"), dict(loss_pct=100.0), dict(jitter_ms=-1.0)])
def test_bad_channel_specs_are_refused(bad):
    with pytest.raises(ValueError):
        ChannelSpec(**bad)
