"""The confidence gate (table-driven) and the recognizer's scheduling, on the real tiny.en model."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness.channel import round_trip
from voicebox.agent import load_agent
from voicebox.config import ConfigError
from voicebox.listening.recognizer_prompt import echoes, vocabulary_text
from voicebox.listening.transcriber import Transcript, digit_loop, reliability

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "wav"


def tr(text="What time do you open?", lp=-0.2, nsp=0.05, ratio=1.0, share=0.8) -> Transcript:
    return Transcript(text, lp, nsp, 10.0, ratio, share)


@pytest.mark.parametrize(
    "transcript, verdict",
    [
        (tr(), "reliable"),
        (tr(text=""), "empty"),
        (tr(text="Thank you.", lp=-0.9), "hallucination"),  # whisper's favourite on noise
        (tr(text="Thanks for watching!", lp=-0.6), "hallucination"),
        (tr(text="Thank you.", lp=-0.2, share=0.1), "hallucination"),  # confident, but from no speech
        (tr(text="Thank you.", lp=-0.2, share=0.8), "reliable"),  # a caller may really say it
        (tr(nsp=0.85), "no_speech"),
        (tr(text="I'm off, " * 20, ratio=8.0), "repetition"),  # the corpus mumble, full window
        (tr(lp=-1.03), "low_logprob"),
        (tr(lp=-0.79), "reliable"),
        (tr(share=0.1), "little_speech"),
        # A loop cut short by the token cap, under whisper's compression alarm (corpus mumble).
        (tr(text="MMB, I'm off, I'm off, I'm off, I'm off", lp=-0.73, ratio=1.9), "repetition"),
        (tr(text="My card number is one one one one."), "reliable"),  # callers repeat digits
        (tr(text="No, no, no, that's wrong."), "reliable"),
    ],
)
def test_confidence_gate(transcript, verdict):
    assert reliability(transcript) == verdict
    assert transcript.reliable is (verdict == "reliable")


@pytest.mark.parametrize(
    "text, looping",
    [
        ("My card number is 4,111 11 11 11 11 11 11 11 11, expiry 12 28.", True),  # corpus, fitted window
        ("My card number is 4,111 1111 1111 1111, expiry 1228.", False),  # the number as read out
        ("4111 1111 1111 1111 1111", False),  # long groups repeat in real numbers
        ("Room 11 11 11 11.", False),  # four is not yet a loop
        ("No, no, no, no, no.", False),  # words are the confidence gate's business
        ("", False),
    ],
)
def test_digit_loops(text, looping):
    assert digit_loop(text) is looping


def test_auto_redecodes_a_digit_loop_with_the_full_window(stt, monkeypatch):
    looped = Transcript("My card number is 4,111 11 11 11 11 11 11.", -0.2, 0.01, 50.0, 1.3, context="fit")
    clean = Transcript("My card number is 4,111 1111 1111 1111.", -0.2, 0.01, 300.0, 1.2, context="full")
    assert looped.reliable  # the gate alone would act on it
    monkeypatch.setattr(
        stt, "_decode", lambda samples, rate, context, beam=1, prompt=None: looped if context == "fit" else clean
    )
    result = stt.transcribe(np.zeros(16000, np.int16), 16000, "auto")
    assert result.text == clean.text and result.context == "fit+full:digit_loop" and result.decode_ms == 350.0


def read(name: str) -> np.ndarray:
    with wave.open(str(CORPUS / name)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


@pytest.fixture(scope="module")
def stt():
    from voicebox.config import load_config
    from voicebox.listening.transcriber import Transcriber
    from voicebox.model_store import resolve

    cfg = load_config(None, {})
    return Transcriber(resolve(cfg.models.stt, "stt", cfg.data_dir), threads=2)


def test_fitted_and_full_windows_agree_on_a_clear_turn(stt):
    audio = read("hours_saturday_0.wav")
    fit = stt.transcribe(audio, 16000, "fit")
    full = stt.transcribe(audio, 16000, "full")
    assert fit.context == "fit" and full.context == "full"
    words = lambda t: t.text.lower().strip("?.").replace(",", "")  # noqa: E731
    assert words(fit) == words(full) == "hi what time do you open on saturday"
    assert fit.reliable and full.reliable


def test_final_decodes_use_the_configured_beam_and_partials_stay_greedy(stt, monkeypatch):
    beams = []
    generate = stt._generate
    monkeypatch.setattr(stt, "_generate", lambda *a: beams.append(a[3]) or generate(*a))
    monkeypatch.setattr(stt, "final_beam", 4)
    audio = read("hours_saturday_0.wav")
    final = stt.transcribe(audio, 16000, "fit")
    assert final.text.lower().strip("?.").replace(",", "") == "hi what time do you open on saturday"
    stt._idle_since = 0.0  # long idle: the partial is not held back
    assert stt.try_transcribe(audio, 16000) is not None
    assert beams == [4, 1]


def test_auto_falls_back_to_the_full_window_when_the_fitted_decode_is_unsure(stt):
    noise = np.random.default_rng(1).normal(0, 3000, 16000 * 2).astype(np.int16)
    result = stt.transcribe(noise, 16000, "auto", speech_share=0.5)
    assert not result.reliable
    assert result.speech_share == 0.5
    if result.text:  # an unsure fitted decode is checked against the full window
        assert result.context.startswith("fit+full:")


def test_partials_give_way_to_final_decodes(stt):
    audio = read("location_0.wav")
    stt._last_partial_ms = 0.0
    first = stt.try_transcribe(audio, 16000)
    assert first is not None and "located" in first.text.lower()
    import time

    with stt.gate.job(time.perf_counter(), "final"):  # a final decode in progress
        assert stt.try_transcribe(audio, 16000) is None
    # Right after a partial, another must wait as long as the first took (the duty cap).
    stt._last_partial_ms = 60_000.0
    assert stt.try_transcribe(audio, 16000) is None
    stt._last_partial_ms = 0.0
    assert stt.try_transcribe(audio, 16000) is not None


def test_long_audio_uses_the_sliding_decoder(stt):
    audio = np.concatenate([read("hours_saturday_0.wav"), np.zeros(16000 * 29, np.int16), read("location_0.wav")])
    result = stt.transcribe(audio, 16000, "fit")
    assert "saturday" in result.text.lower() and "located" in result.text.lower()
    assert result.context == "full"


# -- the agent's words and language ------------------------------------------------------------


def test_vocabulary_text_keeps_each_word_once_within_the_cap():
    words = ["Maple Bakery", "sourdough", "Sourdough", "sour dough", "rye", "rye loaf", "bake", "baking",
             "Elm Road", "elm road", "croissant", "baguette"]
    count = lambda text: text.split()  # noqa: E731  one token a word: the cap is easy to read
    assert vocabulary_text(words, count, max_tokens=100) == (
        "Maple Bakery, Sourdough, rye loaf, baking, Elm Road, croissant, baguette"
    )
    capped = vocabulary_text(words, count, max_tokens=5)
    assert capped == "Maple Bakery, Sourdough, rye loaf"  # the file's first words are kept
    assert vocabulary_text([], count) == ""


def test_a_transcript_that_reads_the_prompt_back_is_not_the_callers():
    prompt = "Maple Bakery, sourdough, rye loaf, Monday, Friday, Sunday"
    assert echoes("Friday, Sunday, Sunday, Sunday.", prompt)
    assert echoes("Maple Bakery, sourdough.", prompt)
    assert not echoes("Do you have sourdough on Sunday?", prompt)  # a caller's sentence
    assert not echoes("Sourdough.", prompt)  # a one-word answer is an answer
    assert not echoes("Friday, Sunday, Sunday.", "")
    echo = Transcript("Friday, Sunday, Sunday.", -0.2, 0.05, 10.0, 1.0, 0.8, prompt_echo=True)
    assert reliability(echo) == "prompt_echo"
    from voicebox.listening.transcriber import usable_partial

    assert not usable_partial(echo)


@pytest.fixture(scope="module")
def dental():
    return load_agent("riverside_dental")


def test_a_call_is_prompted_with_its_agents_words_unless_the_file_says_off(stt, dental):
    prompt = stt.prompt_for(dental)
    assert prompt.language == "en" and prompt.text.startswith(dental.name)
    assert prompt.tokens[0] == stt.tokenizer.sot_prev
    assert prompt.tokens[-len(stt.plain.tokens):] == stt.plain.tokens
    assert stt.prompt_for(dental) is prompt  # cached: a call may ask on every call
    off = dental.model_copy(update={"recognizer": dental.recognizer.model_copy(update={"prompt": "off"})})
    assert stt.prompt_for(off) == stt.plain
    other = load_agent("harbor_plumbing")
    assert other.name in stt.prompt_for(other).text and dental.name not in stt.prompt_for(other).text


def test_the_prompt_reaches_the_decoder(stt, dental):
    """The corpus self-correction turn through G.711: tiny.en writes "checkup" on its own and the
    agent file's "check-up" when prompted with it (benchmarks/results/wer.md)."""
    line = round_trip(read("self_correction_0.wav"), "PCMU")
    plain = stt.transcribe(line, 16000, "fit")
    prompted = stt.transcribe(line, 16000, "fit", prompt=stt.prompt_for(dental))
    assert "check-up" not in plain.text.lower()
    assert "check-up" in prompted.text.lower() and prompted.reliable


def test_silence_is_not_heard_as_the_prompt(stt, dental):
    prompt = stt.prompt_for(dental)
    for context in ("fit", "full"):
        result = stt.transcribe(np.zeros(16000, np.int16), 16000, context, speech_share=0.0, prompt=prompt)
        assert not result.reliable, result


def test_a_language_the_model_cannot_hear_fails_at_start_with_the_fix(stt, dental):
    german = dental.model_copy(update={"language": "de"})
    with pytest.raises(ConfigError) as e:
        stt.prompt_for(german)
    assert "English-only" in str(e.value) and "whisper-base" in str(e.value)
    with pytest.raises(ConfigError, match="does not know the language"):
        stt.prompt("xx", [])


def test_a_multilingual_model_decodes_in_the_agents_language(dental):
    from voicebox.config import load_config
    from voicebox.listening.transcriber import Transcriber
    from voicebox.model_store import resolve

    cfg = load_config(None, {})
    try:
        base = Transcriber(resolve("whisper-base", "stt", cfg.data_dir), threads=2)
    except Exception as e:  # noqa: BLE001  the multilingual model is an optional download
        pytest.skip(f"whisper-base not installed: {e}")
    german = base.prompt_for(dental.model_copy(update={"language": "de"}))
    assert german.language == "de"
    de = base.model.hf_tokenizer.token_to_id("<|de|>")
    en = base.model.hf_tokenizer.token_to_id("<|en|>")
    assert de in german.tokens and en not in german.tokens
    assert en in base.prompt_for(dental).tokens


def test_the_prompt_puts_the_words_whisper_misses_first():
    from voicebox.agent import WEEKDAYS
    from voicebox.listening.recognizer_prompt import prompt_words

    for name in ("riverside_dental", "harbor_plumbing"):
        agent = load_agent(name)
        words = prompt_words(agent)
        choices = [c.name for c in agent.choices()]
        assert words[0] == agent.name and words[1 : 1 + len(choices)] == choices
        assert not any(w.lower() in WEEKDAYS for w in words)  # whisper knows them; the cap is for the rest
        proper = [words.index(w) for w in words if any(c.isupper() for c in w) and w != agent.name]
        others = [words.index(also) for c in agent.choices() for also in c.also if also not in choices]
        assert not proper or not others or max(proper) < min(others)


def test_mumble_made_plausible_by_the_prompt_is_checked_without_it(stt, dental):
    """The corpus mumble: with the dental words whisper is just sure enough of "MMMB, I'm off on
    the whistle" (-0.70); decoded again without them it is the loop it always was, so the caller
    is asked again instead of being answered on a guess."""
    mumble = read("garbage_mumble_0.wav")
    prompt = stt.prompt_for(dental)
    full = stt.transcribe(mumble, 16000, "full", prompt=prompt)
    assert full.reliable and full.avg_logprob < -0.6, full  # what the prompt alone would act on
    final = stt.transcribe(mumble, 16000, "auto", prompt=prompt)
    assert not final.reliable and "+plain:" in final.context, final


def test_a_clear_turn_that_needs_the_full_window_keeps_its_prompted_words(stt, dental):
    line = round_trip(read("self_correction_0.wav"), "PCMU")
    final = stt.transcribe(line, 16000, "auto", prompt=stt.prompt_for(dental))
    assert final.reliable and "+plain" not in final.context and "check-up" in final.text.lower(), final
