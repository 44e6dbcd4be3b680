"""Speech to text with faster-whisper (CTranslate2), shared by all calls.

Whisper's encoder is trained on 30 s windows, and encoding a full window costs ~300 ms on two
cores whatever the turn's length. CTranslate2 accepts a shorter window, so a 3 s turn can be
encoded with ~4 s of context for ~60 ms. That "fitted" window is what makes partial decodes
every few hundred milliseconds affordable; it is a little less sure of itself on hard audio, so
the final decode falls back to the full window when the fitted one is not reliable.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from voicebox.audio.resample import resample
from voicebox.config import ConfigError
from voicebox.listening.recognizer_prompt import echoes, prompt_words, vocabulary_text
from voicebox.scheduling import DeadlineGate

if TYPE_CHECKING:
    from voicebox.agent import AgentConfig

WHISPER_RATE_HZ = 16000
FRAMES_PER_S = 100  # whisper's mel hop is 10 ms
FULL_WINDOW_FRAMES = 3000
FIT_MARGIN_FRAMES = 100  # a second of padding after the audio: less and the decoder truncates words
FIT_MIN_FRAMES = 1000  # below 10 s of window, a half-second partial sends the decoder into loops
MAX_TOKENS = 120  # a 20 s turn is ~60 words

Context = Literal["fit", "full"]

# Whisper's well-known inventions on silence and noise; never a caller's turn on their own.
HALLUCINATIONS = {
    "thank you", "thank you.", "thanks for watching", "thanks for watching!", "you", "you.", "bye.",
    "thank you for watching", "thank you for watching.", "please subscribe", ".", "...",
}


@dataclass(frozen=True)
class Transcript:
    text: str
    avg_logprob: float  # per token, as whisper computes it; 0 when there is no text
    no_speech_prob: float
    decode_ms: float
    compression_ratio: float = 0.0  # a decoder stuck repeating itself scores high
    speech_share: float = 1.0  # the VAD's voiced share of the audio, when the caller knows it
    context: str = "full"
    prompt_echo: bool = False  # the text is the decoder prompt's words read back, not the caller's

    @property
    def reliable(self) -> bool:
        return reliability(self) == "reliable"


# Below this a reliable transcript decoded with the business's words is checked without them
# (``Transcriber._doubt_the_prompt``); real turns that needed the full window score -0.1 to -0.5.
PROMPT_DOUBT_LOGPROB = -0.6


def reliability(tr: Transcript) -> str:
    """``reliable`` or why not: the gate between what whisper heard and what the agent acts on."""
    if not tr.text:
        return "empty"
    if tr.prompt_echo:
        return "prompt_echo"
    if tr.text.strip().lower() in HALLUCINATIONS and (tr.avg_logprob < -0.5 or tr.speech_share < 0.3):
        return "hallucination"
    if tr.no_speech_prob >= 0.8:
        return "no_speech"
    # 2.4 is whisper's own repetition threshold; the corpus mumble turn scores 22, real turns
    # 0.7-1.1.
    if tr.compression_ratio > 2.4 or _loops(tr.text):
        return "repetition"
    if tr.avg_logprob <= -0.8:
        return "low_logprob"
    # Many words from a sliver of voiced audio: the decoder is inventing, not transcribing.
    if tr.speech_share < 0.15:
        return "little_speech"
    return "reliable"


_REPEATABLE = frozenset("zero oh one two three four five six seven eight nine no yes yeah okay bye".split())


def _words(text: str) -> list[str]:
    return [w.strip(".,?!").lower() for w in text.split()]


def _loops(text: str) -> bool:
    """A phrase said three times over ("I'm off, I'm off, I'm off"): a decoder stuck in a loop,
    even when the token cap cut it short of whisper's compression-ratio alarm."""
    words = _words(text)
    for n, times in ((1, 4), (2, 3), (3, 3)):
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        for i in range(len(grams) - (times - 1) * n):
            if any(w in _REPEATABLE or w.isdigit() for w in grams[i]):
                continue  # "one one one one", "4111 1111", "no no no": callers do say these
            if all(grams[i] == grams[i + k * n] for k in range(1, times)):
                return True
    return False


def digit_loop(text: str) -> bool:
    """One short digit group five times running ("4,111 11 11 11 11 11 11"): the fitted window's
    way of looping on a card number read out. The confidence gate lets repeated digits through,
    since callers do say them; the full window read the same corpus turn as
    "4,111 1111 1111 1111 1111, expiry 1228" where the fitted one ran on for 22 extra digits."""
    groups = _words(text)
    run = 1
    for prev, cur in zip(groups, groups[1:]):
        run = run + 1 if cur == prev and cur.isdigit() and len(cur) <= 2 else 1
        if run >= 5:
            return True
    return False


def usable_partial(tr: Transcript) -> bool:
    """A partial worth committing words from: some text, not noise, not a decoder loop.

    Partials are not held to the final gate's log-probability bar: their last words are expected
    to be unsure, and LocalAgreement is what decides which of them stand.
    """
    return reliability(tr) not in ("empty", "prompt_echo", "hallucination", "no_speech", "repetition")


@dataclass(frozen=True)
class DecodePrompt:
    """What the decoder reads before a call's audio: the call's language, and the business's own
    words as if they had just been said (whisper's previous-text block, where faster-whisper puts
    both ``initial_prompt`` and ``hotwords``). It makes "Cigna" likelier than "signal"."""

    language: str
    text: str  # the words given to the decoder; "" when the agent turned the prompt off
    tokens: tuple[int, ...]  # the decoder's whole prompt, start-of-transcript sequence included


class Transcriber:
    def __init__(
        self, model_dir: Path, threads: int = 2, gate: DeadlineGate | None = None, final_beam: int = 1,
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model_dir = Path(model_dir)
        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
        self.multilingual = bool(self.model.model.is_multilingual)
        self.tokenizer = Tokenizer(
            self.model.hf_tokenizer, self.multilingual, task="transcribe", language="en" if self.multilingual else None
        )
        self.final_beam = final_beam
        self._prompts: dict[tuple[str, str], DecodePrompt] = {}
        self._prompts_lock = threading.Lock()
        self.plain = self.prompt("en", [])  # no agent's words: what a decode without a prompt reads
        self._suppress = list(get_suppressed_tokens(self.tokenizer, [-1]))
        # CTranslate2 queues concurrent requests on its one replica anyway; the gate makes the
        # order explicit across calls: earliest deadline first, droppable partials last.
        self.gate = gate or DeadlineGate("stt")
        self._count_lock = threading.Lock()
        self._idle_since = 0.0  # when the last decode ended (perf_counter)
        self._last_partial_ms = 0.0
        self.transcribe(np.zeros(WHISPER_RATE_HZ // 2, dtype=np.int16), WHISPER_RATE_HZ, "fit")  # warm up
        self.transcribe(np.zeros(WHISPER_RATE_HZ // 2, dtype=np.int16), WHISPER_RATE_HZ, "full")

    # -- what the decoder is told about the call -----------------------------------------------
    def prompt_for(self, agent: "AgentConfig") -> DecodePrompt:
        """The decoder prompt of a call to ``agent``: its language, and its vocabulary unless its
        file says ``[recognizer] prompt = "off"``. ConfigError when this model cannot hear the
        agent's language; call it at start for every agent served, so that fails before a call."""
        words = prompt_words(agent) if agent.recognizer.prompt == "vocabulary" else []
        return self.prompt(agent.language, words)

    def prompt(self, language: str, vocabulary: Sequence[str], max_tokens: int | None = None) -> DecodePrompt:
        """A decoder prompt for calls in ``language`` that expect ``vocabulary`` (at most
        ``max_tokens`` of it, default ``recognizer_prompt.MAX_PROMPT_TOKENS``); cached, so a call
        may ask for its own on every call at no cost."""
        self.check_language(language)
        text = vocabulary_text(vocabulary, self.tokenizer.encode, max_tokens)
        key = (language, text)
        with self._prompts_lock:
            found = self._prompts.get(key)
            if found is None:
                found = self._prompts[key] = self._build_prompt(language, text)
            return found

    def check_language(self, language: str) -> None:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        if language not in _LANGUAGE_CODES:
            raise ConfigError(
                f"the agent file's language {language!r}: the speech recognizer (whisper) does not know the language "
                f"{language!r}; it knows {', '.join(sorted(_LANGUAGE_CODES))}"
            )
        if not self.multilingual and language != "en":
            raise ConfigError(
                f"the agent's calls are in {language!r} but the speech recognizer (models.stt, {self.model_dir}) is an "
                "English-only whisper model: it would transcribe them as English nonsense. Set models.stt to a "
                "multilingual whisper model (e.g. stt = \"whisper-base\" in the [models] section of the config), "
                "or language = \"en\" in the agent file."
            )

    def _build_prompt(self, language: str, text: str) -> DecodePrompt:
        from faster_whisper.tokenizer import Tokenizer

        tokenizer = self.tokenizer
        if self.multilingual and language != "en":
            tokenizer = Tokenizer(self.model.hf_tokenizer, True, task="transcribe", language=language)
        tokens: list[int] = []
        if text:
            # The same block faster-whisper builds from ``hotwords`` and ``initial_prompt``.
            tokens += [tokenizer.sot_prev, *tokenizer.encode(" " + text)]
        tokens += [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        return DecodePrompt(language, text, tuple(tokens))

    # -- scheduling between calls' decodes ----------------------------------------------------
    def transcribe(
        self, samples: np.ndarray, rate_hz: int, context: Context | Literal["auto"] = "full", speech_share: float = 1.0,
        deadline: float | None = None, prompt: DecodePrompt | None = None,
    ) -> Transcript:
        """A decode that must happen (a turn's final transcript): waits its turn, ahead of partials.

        ``auto`` decodes with the fitted window and re-decodes with the full one when the fitted
        result is not reliable: the fast path is trusted only when it is sure of itself.
        ``prompt``: the call's (``prompt_for(agent)``); None decodes English with no vocabulary.
        """
        with self.gate.job(time.perf_counter() if deadline is None else deadline, "final"):
            try:
                return self._final(samples, rate_hz, context, speech_share, prompt or self.plain)
            finally:
                self._idle_since = time.perf_counter()

    def _final(
        self, samples: np.ndarray, rate_hz: int, context: str, speech_share: float, prompt: DecodePrompt,
    ) -> Transcript:
        beam = self.final_beam
        if context != "auto":
            return replace(self._decode(samples, rate_hz, context, beam, prompt), speech_share=speech_share)
        fitted = replace(self._decode(samples, rate_hz, "fit", beam, prompt), speech_share=speech_share)
        why = "digit_loop" if digit_loop(fitted.text) else reliability(fitted)
        if why == "reliable" or not fitted.text:
            return fitted
        full = self._decode(samples, rate_hz, "full", beam, prompt)
        full = replace(
            full, speech_share=speech_share, decode_ms=fitted.decode_ms + full.decode_ms, context=f"fit+full:{why}",
        )
        return self._doubt_the_prompt(full, prompt, samples, rate_hz, speech_share)

    def _doubt_the_prompt(
        self, tr: Transcript, prompt: DecodePrompt, samples: np.ndarray, rate_hz: int, speech_share: float,
    ) -> Transcript:
        """The business's words in the prompt make whisper surer of itself on mumble too: the
        corpus mumble decodes as "MMMB, I'm off on the whistle" at -0.70 with the prompt and a
        -0.81 loop without. A transcript that needed the full window and is only just reliable
        (``PROMPT_DOUBT_LOGPROB``) is decoded again without the prompt; if that one is not
        reliable either, whisper was guessing, and the caller is asked again rather than
        answered on a guess. Clear speech never gets here: its fitted decode is reliable."""
        if prompt.text == self.plain.text or tr.avg_logprob >= PROMPT_DOUBT_LOGPROB or reliability(tr) != "reliable":
            return tr
        plain = replace(self._decode(samples, rate_hz, "full", self.final_beam, self.plain), speech_share=speech_share)
        why = reliability(plain)
        if why == "reliable":
            return replace(tr, decode_ms=tr.decode_ms + plain.decode_ms)
        return replace(plain, decode_ms=tr.decode_ms + plain.decode_ms, context=f"{tr.context}+plain:{why}")

    def try_transcribe(
        self, samples: np.ndarray, rate_hz: int, prompt: DecodePrompt | None = None,
    ) -> Transcript | None:
        """A droppable partial decode, or None when it would compete with work that matters.

        It runs only if no other decode is running or waiting, and only if the model has been
        idle for at least as long as the last partial took: across all calls, partials never
        take more than about half of the recognizer's time, so they cannot starve synthesis or
        the language model on a small machine.
        """
        if (time.perf_counter() - self._idle_since) * 1000 < self._last_partial_ms:
            return None
        slot = self.gate.try_job("partial")
        if slot is None:
            return None
        with slot:
            try:
                tr = self._decode(samples, rate_hz, "fit", 1, prompt or self.plain)
                self._last_partial_ms = tr.decode_ms
                return tr
            finally:
                self._idle_since = time.perf_counter()

    # -- decoding -----------------------------------------------------------------------------
    def _decode(
        self, samples: np.ndarray, rate_hz: int, context: Context, beam: int = 1, prompt: DecodePrompt | None = None,
    ) -> Transcript:
        prompt = prompt or self.plain
        t0 = time.perf_counter()
        if rate_hz != WHISPER_RATE_HZ:
            samples = resample(samples, rate_hz, WHISPER_RATE_HZ)
        # A little silence around the turn: with none before it, a cut-off "I'm looking for"
        # came out as "I'm looking forward." (measured on the corpus mid_pause turn).
        pad_before, pad_after = np.zeros(WHISPER_RATE_HZ // 5, np.float32), np.zeros(WHISPER_RATE_HZ // 10, np.float32)
        audio = np.concatenate([pad_before, samples.astype(np.float32) / 32768.0, pad_after])
        features = self.model.feature_extractor(audio)
        n_frames = features.shape[-1]
        if n_frames > FULL_WINDOW_FRAMES:
            return self._decode_long(audio, t0, beam, prompt)
        window = FULL_WINDOW_FRAMES if context == "full" else min(FULL_WINDOW_FRAMES, max(FIT_MIN_FRAMES, n_frames + FIT_MARGIN_FRAMES))
        # People say ~3 words (~5 tokens) a second; a decoder far past that is looping, and
        # letting it run to the cap cost 500 ms on the corpus mumble.
        max_tokens = min(MAX_TOKENS, 12 + int(8 * n_frames / FRAMES_PER_S))
        text, avg, nsp = self._generate(features, window, max_tokens, beam, prompt)
        ratio = _compression_ratio(text)
        return Transcript(
            text, avg, nsp, (time.perf_counter() - t0) * 1000, ratio, context=context,
            prompt_echo=echoes(text, prompt.text),
        )

    def _generate(
        self, features: np.ndarray, window: int, max_tokens: int, beam: int = 1, prompt: DecodePrompt | None = None,
    ) -> tuple[str, float, float]:
        import ctranslate2
        from faster_whisper.audio import pad_or_trim

        tokens = list((prompt or self.plain).tokens)
        feats = pad_or_trim(features, window)
        encoded = self.model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None])), to_cpu=False)
        result = self.model.model.generate(
            encoded,
            [tokens],
            beam_size=beam,
            max_length=len(tokens) + max_tokens,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < self.tokenizer.eot]
        text = self.tokenizer.decode(tokens).strip()
        if not text:
            return "", 0.0, float(result.no_speech_prob)
        # CTranslate2 returns the length-normalized score; whisper's avg_logprob divides the
        # cumulative log-probability by one more than the token count (the end token).
        seq_len = len(result.sequences_ids[0])
        avg = result.scores[0] * seq_len / (seq_len + 1)
        if not math.isfinite(avg):
            avg = -10.0
        return text, float(avg), float(result.no_speech_prob)

    def _decode_long(self, audio: np.ndarray, t0: float, beam: int, prompt: DecodePrompt) -> Transcript:
        """Past one window (turns longer than 30 s): faster-whisper's own sliding decode.

        The vocabulary goes in as ``hotwords``: with ``condition_on_previous_text`` off, an
        ``initial_prompt`` would reach the first window only, hotwords reach every window.
        """
        segments, _info = self.model.transcribe(
            audio, language=prompt.language, beam_size=beam, condition_on_previous_text=False,
            without_timestamps=True, vad_filter=False, temperature=0.0, max_new_tokens=MAX_TOKENS,
            hotwords=prompt.text or None,
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
        return Transcript(
            text, avg, nsp, (time.perf_counter() - t0) * 1000, ratio, context="full",
            prompt_echo=echoes(text, prompt.text),
        )


def _compression_ratio(text: str) -> float:
    if not text:
        return 0.0
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))
