"""Speech to text with faster-whisper (CTranslate2), shared by all calls."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicebox.audio.resample import resample

WHISPER_RATE_HZ = 16000

# Whisper's well-known inventions on silence and noise; never a caller's turn on their own.
HALLUCINATIONS = {
    "thank you", "thank you.", "thanks for watching", "thanks for watching!", "you", "bye.",
    "thank you for watching", "please subscribe", ".", "...",
}


@dataclass(frozen=True)
class Transcript:
    text: str
    avg_logprob: float  # mean over segments, weighted by length; 0 when there is no text
    no_speech_prob: float  # highest over segments
    decode_ms: float
    compression_ratio: float = 0.0  # highest over segments; a decoder stuck repeating itself scores high

    @property
    def reliable(self) -> bool:
        """A coarse gate: text that whisper itself barely believes is not acted on."""
        if not self.text:
            return False
        if self.text.strip().lower() in HALLUCINATIONS and self.avg_logprob < -0.5:
            return False
        # 2.4 is whisper's own repetition threshold; the corpus mumble turn scores 22, real
        # turns 0.7-1.1.
        return self.avg_logprob > -0.8 and self.no_speech_prob < 0.8 and self.compression_ratio <= 2.4


class Transcriber:
    def __init__(self, model_dir: Path, threads: int = 2) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
        self.transcribe(np.zeros(WHISPER_RATE_HZ // 2, dtype=np.int16), WHISPER_RATE_HZ)  # warm up

    def transcribe(self, samples: np.ndarray, rate_hz: int) -> Transcript:
        t0 = time.perf_counter()
        if rate_hz != WHISPER_RATE_HZ:
            samples = resample(samples, rate_hz, WHISPER_RATE_HZ)
        audio = samples.astype(np.float32) / 32768.0
        segments, _info = self.model.transcribe(
            audio,
            language="en",
            beam_size=1,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            # No temperature fallback: re-decoding a mumble at rising temperatures took 4.6 s
            # on 2 cores (measured on the corpus garbage_mumble turn) and only ever produced
            # more confident nonsense.
            temperature=0.0,
            max_new_tokens=120,  # a 20 s turn is ~60 words; more is a decoder looping
        )
        texts, weights, logps, nsp, ratio = [], [], [], 0.0, 0.0
        for seg in segments:  # a lazy generator: the decoding happens here, in this thread
            t = seg.text.strip()
            if not t:
                continue
            texts.append(t)
            w = max(1, len(seg.tokens))
            weights.append(w)
            logps.append(seg.avg_logprob * w)
            nsp = max(nsp, seg.no_speech_prob)
            ratio = max(ratio, seg.compression_ratio)
        text = " ".join(texts).strip()
        avg = sum(logps) / sum(weights) if weights else 0.0
        if not math.isfinite(avg):
            avg = -10.0
        return Transcript(text, avg, nsp, (time.perf_counter() - t0) * 1000, ratio)
