"""PlayoutLog: from the number of samples played to the words the caller actually heard."""

from __future__ import annotations

import threading

import pytest

from voicebox.speaking.heard import PlayoutLog, estimate_word_ends, spoken_weight, syllables

RATE = 16000


@pytest.mark.parametrize(
    "word,count",
    [("the", 1), ("make", 1), ("free", 1), ("through", 1), ("cleaning", 2), ("table", 2), ("any", 2),
     ("Monday", 2), ("whitening", 3), ("appointment", 3), ("Saturday", 3), ("forty-two", 3),
     ("Hello,", 2), ("I", 1), ("", 1), ("42", 2)],
)
def test_syllables(word: str, count: int) -> None:
    assert syllables(word) == count


def test_weights_follow_spoken_length_not_letters_alone() -> None:
    assert spoken_weight("appointment") > 2 * spoken_weight("the")
    assert spoken_weight("any") > spoken_weight("through")  # two beats beat seven letters
    assert spoken_weight("six.") > spoken_weight("six,") > spoken_weight("six")  # pauses


def test_word_ends_cover_the_clip_in_order() -> None:
    words = "We're open Monday to Friday, eight AM to six PM.".split()
    ends = estimate_word_ends(words, 1000, 48000)
    assert list(ends) == sorted(ends)
    assert len(set(ends)) == len(ends)
    assert ends[-1] == 1000 + 48000


def test_long_words_get_more_time_than_short_ones() -> None:
    ends = estimate_word_ends(["I", "appreciate", "it"], 0, 9000)
    spans = [ends[0], ends[1] - ends[0], ends[2] - ends[1]]
    assert spans[1] > 2 * spans[0] and spans[1] > 2 * spans[2]  # not a uniform 3000 each


def test_nothing_played_nothing_heard() -> None:
    log = PlayoutLog()
    log.add("We're open until six.", RATE)
    assert log.heard(0) == ("", True)


def test_all_played_all_heard() -> None:
    log = PlayoutLog()
    log.add("We're open until six.", RATE)
    log.add("See you soon.", RATE)
    assert log.heard(2 * RATE) == ("We're open until six. See you soon.", False)
    assert log.heard(10 * RATE) == ("We're open until six. See you soon.", False)


def test_cut_between_clips() -> None:
    log = PlayoutLog()
    log.add("A cleaning is ninety dollars.", RATE)
    log.add("Whitening is two hundred and fifty dollars.", 2 * RATE)
    assert log.heard(RATE) == ("A cleaning is ninety dollars.", True)


def test_cut_inside_a_clip_keeps_a_prefix() -> None:
    log = PlayoutLog()
    text = "We're open Monday to Friday, eight AM to six PM, and Saturday mornings."
    clip = log.add(text, 4 * RATE)
    words = text.split()
    previous = -1
    for played in range(0, 4 * RATE + 1, 800):
        heard, cut = log.heard(played)
        n = len(heard.split()) if heard else 0
        assert heard.split() == words[:n]  # always a prefix
        assert n >= previous  # more played, never fewer words heard
        assert cut == (n < len(words))
        previous = n
    # Half way through the clip, roughly half the words (by spoken weight) are out.
    heard, cut = log.heard(clip.start_sample + 2 * RATE)
    assert cut and 4 <= len(heard.split()) <= 9


def test_a_word_counts_once_half_of_it_is_played() -> None:
    log = PlayoutLog(heard_share=0.5)
    clip = log.add("hello there", 1000)
    first_end = clip.word_ends[0]
    assert log.heard(first_end // 2 - 1) == ("", True)
    assert log.heard(first_end // 2 + 1) == ("hello", True)
    whole = PlayoutLog(heard_share=1.0)
    whole.add("hello there", 1000)
    assert whole.heard(first_end - 1) == ("", True)
    assert whole.heard(first_end) == ("hello", True)


def test_explicit_start_positions_skip_audio_not_logged() -> None:
    # A filler (not part of the reply) played first: the reply starts later in the stream.
    log = PlayoutLog()
    log.add("Let me check that.", RATE, start_sample=5000 + RATE)
    assert log.heard(5000 + RATE) == ("", True)
    assert log.heard(5000 + 2 * RATE) == ("Let me check that.", False)
    assert log.written == 5000 + 2 * RATE
    log.add("Yes.", 100)  # no start given: right after the last clip
    assert log.clips()[-1].start_sample == 5000 + 2 * RATE


def test_overlapping_clip_is_refused() -> None:
    log = PlayoutLog()
    log.add("one", 1000)
    with pytest.raises(ValueError):
        log.add("two", 1000, start_sample=500)
    with pytest.raises(ValueError):
        log.add("two", -1)
    with pytest.raises(ValueError):
        PlayoutLog(heard_share=0)


def test_clear_starts_a_new_reply_at_the_stream_position() -> None:
    log = PlayoutLog()
    log.add("First reply.", 1000)
    log.clear()
    assert log.heard(10**9) == ("", False)
    log.add("Second reply.", 1000)
    assert log.clips()[0].start_sample == 1000
    assert log.heard(1000) == ("", True)
    assert log.heard(2000) == ("Second reply.", False)


def test_empty_and_silent_clips() -> None:
    log = PlayoutLog()
    log.add("", 800)  # a pause between sentences
    log.add("Okay.", 800)
    assert log.heard(800) == ("", True)
    assert log.heard(1600) == ("Okay.", False)


def test_writer_and_reader_threads() -> None:
    log = PlayoutLog()
    sentences = [f"Sentence number {i} is here." for i in range(300)]
    all_words = " ".join(sentences).split()
    stop = threading.Event()
    problems: list[str] = []

    def writer() -> None:
        for s in sentences:
            log.add(s, 320)
        stop.set()

    def reader() -> None:
        while not stop.is_set():
            written = log.written
            heard, _ = log.heard(written)
            words = heard.split()
            if words != all_words[: len(words)]:
                problems.append(heard[:60])

    threads = [threading.Thread(target=writer), threading.Thread(target=reader), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert problems == []
    assert log.heard(log.written) == (" ".join(sentences), False)
