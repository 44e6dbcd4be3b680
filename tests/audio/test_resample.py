"""Sample-rate conversion (libsoxr) and the WAV helpers built on it."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from voicebox.audio.resample import StreamResampler, resample
from voicebox.audio.wavio import read_wav, write_wav


def tone(freq_hz: float, rate: int, seconds: float = 1.0, amp: float = 8000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def peak_hz(x: np.ndarray, rate: int) -> float:
    x = x.astype(np.float64) * np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


def band_energy(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spec[(f >= lo) & (f <= hi)].sum())


@pytest.mark.parametrize(
    "in_rate,out_rate,n_in,n_out",
    [(22050, 16000, 22050, 16000), (16000, 8000, 16000, 8000), (8000, 16000, 8000, 16000), (16000, 8000, 3200, 1600)],
)
def test_resample_length_ratio(in_rate, out_rate, n_in, n_out):
    x = tone(300, in_rate, n_in / in_rate)
    assert len(x) == n_in
    y = resample(x, in_rate, out_rate)
    assert y.dtype == np.int16
    assert abs(len(y) - n_out) <= 1


def test_resample_same_rate_is_an_independent_copy():
    x = tone(440, 16000, 0.1)
    y = resample(x, 16000, 16000)
    np.testing.assert_array_equal(y, x)
    y[:] = 0
    assert np.any(x != 0), "resample() returned the caller's array, not a copy"


def test_resample_empty():
    y = resample(np.zeros(0, np.int16), 22050, 16000)
    assert len(y) == 0 and y.dtype == np.int16


@pytest.mark.parametrize("in_rate,out_rate,freq", [(22050, 16000, 1000.0), (16000, 8000, 440.0), (8000, 16000, 440.0)])
def test_tone_keeps_its_frequency_and_level(in_rate, out_rate, freq):
    x = tone(freq, in_rate)
    y = resample(x, in_rate, out_rate)
    assert abs(peak_hz(y, out_rate) - freq) <= 2.0
    # Skip the edges (filter ramp); in band, the level is kept.
    edge = out_rate // 20
    rms_in = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    rms_out = np.sqrt(np.mean(y[edge:-edge].astype(np.float64) ** 2))
    assert rms_out == pytest.approx(rms_in, rel=0.03)


def test_upsampling_adds_no_image():
    """8 kHz -> 16 kHz: a 440 Hz tone must not leave a mirror image at 8000 - 440 Hz."""
    y = resample(tone(440, 8000), 8000, 16000)
    wanted = band_energy(y, 16000, 400, 480)
    image = band_energy(y, 16000, 7500, 7620)
    assert image < wanted * 1e-4


def test_downsampling_removes_content_above_new_nyquist():
    """16 kHz -> 8 kHz: a 6 kHz tone cannot be represented and must not alias down to 2 kHz."""
    y = resample(tone(6000, 16000), 16000, 8000)
    rms = np.sqrt(np.mean(y.astype(np.float64) ** 2))
    assert rms < 8000 / np.sqrt(2) * 0.01


def chunked(sr: StreamResampler, x: np.ndarray, chunk: int) -> tuple[np.ndarray, list[int]]:
    parts = []
    for i in range(0, len(x), chunk):
        parts.append(sr.process(x[i : i + chunk], last=i + chunk >= len(x)))
    return np.concatenate(parts), [len(p) for p in parts]


@pytest.mark.parametrize("in_rate,out_rate", [(16000, 8000), (8000, 16000), (22050, 16000)])
def test_stream_resampler_matches_one_shot(in_rate, out_rate):
    x = tone(440, in_rate)
    one = resample(x, in_rate, out_rate)
    sr = StreamResampler(in_rate, out_rate)
    streamed, sizes = chunked(sr, x, in_rate // 50)  # 20 ms chunks
    assert all(s >= 0 for s in sizes)
    assert abs(len(streamed) - len(one)) <= 4
    n = min(len(streamed), len(one))
    # Same samples as the one-shot conversion, so no click or offset at any chunk edge.
    assert np.max(np.abs(streamed[:n].astype(int) - one[:n].astype(int))) <= 8


@pytest.mark.parametrize("in_rate,out_rate", [(16000, 8000), (8000, 16000), (22050, 16000)])
def test_stream_resampler_has_no_discontinuity_at_chunk_edges(in_rate, out_rate):
    freq, amp = 440.0, 8000.0
    sr = StreamResampler(in_rate, out_rate)
    streamed, _ = chunked(sr, tone(freq, in_rate, amp=amp), 160)
    interior = streamed[out_rate // 50 : -out_rate // 50].astype(np.float64)
    # A sine's largest step between samples is 2*pi*f*A/fs; a click at a chunk edge would exceed it.
    max_step = 2 * np.pi * freq * amp / out_rate
    assert np.max(np.abs(np.diff(interior))) <= max_step * 1.05 + 2
    assert abs(peak_hz(streamed, out_rate) - freq) <= 2.0


def test_stream_resampler_same_rate_passes_through_copies():
    sr = StreamResampler(16000, 16000)
    x = tone(440, 16000, 0.02)
    y = sr.process(x)
    np.testing.assert_array_equal(y, x)
    y[:] = 0
    assert np.any(x != 0)


# -- wavio ---------------------------------------------------------------------------------------


def test_wav_round_trip(tmp_path):
    x = tone(440, 8000, 0.25)
    x[:3] = [-32768, 32767, 0]
    path = tmp_path / "a.wav"
    write_wav(path, x, 8000)
    y, rate = read_wav(path)
    assert rate == 8000
    assert y.dtype == np.int16
    np.testing.assert_array_equal(y, x)
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)


def test_read_wav_resamples_when_rate_given(tmp_path):
    path = tmp_path / "b.wav"
    write_wav(path, tone(440, 8000, 0.5), 8000)
    y, rate = read_wav(path, rate=16000)
    assert rate == 16000
    assert abs(len(y) - 8000) <= 1
    assert abs(peak_hz(y, 16000) - 440) <= 4
    same, rate2 = read_wav(path, rate=8000)
    assert rate2 == 8000 and len(same) == 4000


def test_read_wav_mixes_stereo_to_mono(tmp_path):
    left = np.array([100, 200, -300, 1000], np.int16)
    right = np.array([300, 200, -100, -1000], np.int16)
    path = tmp_path / "st.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.stack([left, right], axis=1).astype(np.int16).tobytes())
    y, rate = read_wav(path)
    assert rate == 16000
    np.testing.assert_array_equal(y, [200, 200, -200, 0])


def test_read_wav_rejects_8_bit(tmp_path):
    path = tmp_path / "u8.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(100))
    with pytest.raises(ValueError, match="16-bit"):
        read_wav(path)
