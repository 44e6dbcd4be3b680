"""Benchmark figures from timelines: percentiles, where speech starts and ends, what the caller
heard and when, word error rate. Pure functions, so the tests can give them timelines."""

from __future__ import annotations

import math
import re
from typing import Iterable, Sequence

import numpy as np

VOICE_RMS = 200.0  # agent frames louder than this count as speech (its silence is digital zero)
STOP_GAP_MS = 300  # agent silence this long means its audio stopped (longer than a sentence gap)
NOISE_PERCENTILE = 10  # a recording's noise floor: this percentile of its frames' RMS
ABOVE_NOISE_DB = 6.0  # speech frames stand at least this far above the noise floor
NOISE_CEILING_DB = -20.0  # ...but a frame this close to the loudest one is speech regardless


def percentiles(values: Iterable[float | None]) -> dict[str, float | None]:
    """n, p50, p95 and max of the values that exist (None: a stage a turn never reached)."""
    xs = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if xs.size == 0:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {
        "n": int(xs.size),
        "p50": float(np.percentile(xs, 50)),
        "p95": float(np.percentile(xs, 95)),
        "max": float(xs.max()),
    }


def _loud_frames(samples: np.ndarray, rate_hz: int, frame_ms: int, floor_db: float) -> np.ndarray:
    n = rate_hz * frame_ms // 1000
    frames = len(samples) // n
    if frames == 0:
        return np.zeros(0, dtype=int)
    x = samples[: frames * n].astype(np.float64).reshape(frames, n)
    rms = np.sqrt((x * x).mean(axis=1))
    peak = rms.max()
    if peak < 1.0:
        return np.zeros(0, dtype=int)
    # A recording with background noise (the corpus has one at 12 dB SNR) never falls 35 dB
    # below its peak: its noise would count as speech to the end of the file. Speech must
    # also stand clear of the noise floor (the quietest tenth of its frames), but that bar is
    # never raised above NOISE_CEILING_DB below the peak: in a clip of speech without a pause
    # the quietest tenth is speech too.
    noise = float(np.percentile(rms, NOISE_PERCENTILE)) * 10 ** (ABOVE_NOISE_DB / 20)
    threshold = max(peak * 10 ** (floor_db / 20), min(noise, peak * 10 ** (NOISE_CEILING_DB / 20)))
    return np.nonzero(rms >= threshold)[0]


def last_voiced_ms(samples: np.ndarray, rate_hz: int, frame_ms: int = 10, floor_db: float = -35.0) -> float:
    """End of the last frame within ``floor_db`` of the clip's loudest frame, in ms (0 if silent).

    Recorded turns carry trailing silence; a caller-side voice-to-voice must start where the
    speech ends, not where the file does. Energy, not a VAD: webrtcvad keeps saying "speech"
    for up to ~100 ms after it ends (measured on a synthetic buzz), which would bias the figure.
    """
    loud = _loud_frames(samples, rate_hz, frame_ms, floor_db)
    return float((loud[-1] + 1) * frame_ms) if loud.size else 0.0


def first_voiced_ms(samples: np.ndarray, rate_hz: int, frame_ms: int = 10, floor_db: float = -35.0) -> float:
    """Start of the first frame within ``floor_db`` of the loudest: where the caller starts talking."""
    loud = _loud_frames(samples, rate_hz, frame_ms, floor_db)
    return float(loud[0] * frame_ms) if loud.size else 0.0


def voiced(frame: np.ndarray, threshold: float = VOICE_RMS) -> bool:
    x = np.asarray(frame, dtype=np.float32)
    return bool(x.size) and float(np.sqrt(np.mean(x * x))) > threshold


def reply_onset_ms(heard: Sequence[bool], frame_ms: int, from_ms: float) -> float | None:
    """Start of the first voiced frame the caller heard at or after ``from_ms``."""
    for i in range(max(0, math.ceil(from_ms / frame_ms)), len(heard)):
        if heard[i]:
            return float(i * frame_ms)
    return None


def audio_stop_ms(heard: Sequence[bool], frame_ms: int, from_ms: float, gap_ms: int = STOP_GAP_MS) -> float | None:
    """End of the agent's talk spurt in progress at ``from_ms``: the first silence of ``gap_ms``."""
    need = max(1, gap_ms // frame_ms)
    run = 0
    for i in range(max(0, int(from_ms // frame_ms)), len(heard)):
        run = 0 if heard[i] else run + 1
        if run >= need:
            return float((i - need + 1) * frame_ms)
    return None


def barge_stop_ms(
    heard: Sequence[bool], frame_ms: int, speech_onset_ms: float, cuts_ms: Sequence[float],
    window_ms: float = 4000.0,
) -> float | None:
    """Caller speech onset -> the agent's audio stops at the caller, when the agent cut it.

    ``cuts_ms`` are the media times the agent dropped queued audio. If it dropped none soon
    after the caller started, it never stopped for the barge-in (its reply just ran out, or
    not): None, reported as "-".
    """
    if not any(speech_onset_ms <= c <= speech_onset_ms + window_ms for c in cuts_ms):
        return None
    stop = audio_stop_ms(heard, frame_ms, speech_onset_ms)
    return None if stop is None else max(0.0, stop - speech_onset_ms)


def false_barge_ins(cuts_ms: Sequence[float], caller_speech_ms: Sequence[tuple[float, float]],
                    grace_ms: float = 1500.0) -> int:
    """Cuts of the agent's audio while the caller was not talking (nor just had been)."""
    return sum(
        1 for c in cuts_ms
        if not any(start <= c <= end + grace_ms for start, end in caller_speech_ms)
    )


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10 - 2] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + _number_words(rest))
    return " ".join(_ONES[int(d)] for d in str(n))


def normalize_text(text: str) -> str:
    """For WER: lower case, digits as words, no punctuation ("9:00 a.m." == "nine a m")."""
    t = text.lower().replace("’", "'")
    t = re.sub(r"\d+", lambda m: " " + _number_words(int(m.group())) + " ", t)
    t = re.sub(r"[^a-z' ]+", " ", t)
    t = re.sub(r"'(?![a-z])|(?<![a-z])'", " ", t)
    return " ".join(t.split())


def word_error_rate(reference: str, hypothesis: str) -> float | None:
    """WER of the agent's transcript against what the caller said (None without a reference)."""
    import jiwer

    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        return None
    if not hyp:
        return 1.0
    return float(jiwer.wer(ref, hyp))
