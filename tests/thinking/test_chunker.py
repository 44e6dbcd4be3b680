"""SentenceChunker: model tokens in, speakable sentences out as soon as each one ends."""

from __future__ import annotations

import pytest

from voicebox.thinking.chunker import SentenceChunker


def feed_tokens(tokens: list[str], min_chars: int = 12) -> tuple[list[tuple[int, str]], str | None]:
    """(index of the token after which each sentence came out, sentence), and the flushed tail."""
    c = SentenceChunker(min_chars)
    out = []
    for i, t in enumerate(tokens):
        out += [(i, s) for s in c.feed(t)]
    return out, c.flush()


def test_sentence_emitted_as_soon_as_next_token_shows_it_ended():
    tokens = ["We", " are", " open", " until", " six", ".", " See", " you", " soon", "."]
    out, tail = feed_tokens(tokens)
    # The "." alone could still be a decimal point; the space before " See" settles it.
    assert out == [(6, "We are open until six.")]
    assert tail == "See you soon."


def test_sentence_with_trailing_space_in_same_token():
    c = SentenceChunker()
    assert c.feed("We are open until six. ") == ["We are open until six."]
    assert c.flush() is None


def test_nothing_before_the_end():
    c = SentenceChunker()
    for t in ["We", " are", " open", " until"]:
        assert c.feed(t) == []
    assert c.flush() == "We are open until"
    assert c.flush() is None  # flush empties the buffer


def test_several_sentences_in_one_piece():
    c = SentenceChunker()
    text = "Our address is 42 Mill Lane. Parking is free behind us. We open at eight. "
    assert c.feed(text) == ["Our address is 42 Mill Lane.", "Parking is free behind us.", "We open at eight."]


@pytest.mark.parametrize(
    "tokens,sentence",
    [
        (["A", " cleaning", " is", " $", "1", ".", "50", " today", ".", " Ok"], "A cleaning is $1.50 today."),
        (["We", " open", " at", " 9", ".", "30", " on", " Saturday", ".", " Ok"], "We open at 9.30 on Saturday."),
        (["It", " is", " version", " 2", ".", "1", ".", "3", " now", ".", " Ok"], "It is version 2.1.3 now."),
    ],
)
def test_decimal_points_do_not_split(tokens, sentence):
    out, tail = feed_tokens(tokens)
    assert [s for _, s in out] == [sentence]
    assert tail == "Ok"


def test_number_at_token_edge_waits_for_more_text():
    c = SentenceChunker()
    assert c.feed("The fee is 1.") == []  # could become 1.50
    assert c.feed("50 dollars. ") == ["The fee is 1.50 dollars."]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Thanks so much for asking! We can help. ", ["Thanks so much for asking!", "We can help."]),
        ("Would you like to book now? Great, see you. ", ["Would you like to book now?", "Great, see you."]),
        ("Is that really the price?! Yes it is. ", ["Is that really the price?!", "Yes it is."]),
        ("That is all for today... Bye for now. ", ["That is all for today...", "Bye for now."]),
        ('She said "see you at noon." Then left. ', ['She said "see you at noon."', "Then left."]),
    ],
)
def test_exclamation_question_and_closers(text, expected):
    c = SentenceChunker(min_chars=8)
    assert c.feed(text) == expected
    assert c.flush() is None


def test_short_sentences_are_held_until_min_chars():
    c = SentenceChunker(min_chars=12)
    # "Yes." and "Ok!" are shorter than 12 characters: they ride along with what follows.
    assert c.feed("Yes. Ok! We are open today. ") == ["Yes. Ok! We are open today."]
    c = SentenceChunker(min_chars=1)
    assert c.feed("Yes. Ok! We are open today. ") == ["Yes.", "Ok!", "We are open today."]


def test_titles_and_abbreviations_end_no_sentence():
    """A period after a title ("Dr.", "Mrs.") is not a sentence end; the next real one is."""
    c = SentenceChunker(min_chars=12)
    assert c.feed("Dr. Smith will see you today. ") == ["Dr. Smith will see you today."]
    c = SentenceChunker(min_chars=12)
    assert c.feed("Please ask for Dr. Smith today. ") == ["Please ask for Dr. Smith today."]
    c = SentenceChunker(min_chars=12)
    assert c.feed("We are on Mill St. next to the bank. Parking is free. ") == [
        "We are on Mill St. next to the bank.", "Parking is free."
    ]


def test_min_chars_counts_from_start_of_the_pending_text():
    c = SentenceChunker(min_chars=12)
    assert c.feed("A long first sentence here. Hi. ") == ["A long first sentence here."]
    # "Hi." is now at the start of the buffer and below min_chars: held back.
    assert c.flush() == "Hi."


def test_flush_returns_tail_and_strips_whitespace():
    c = SentenceChunker()
    assert c.feed("Hello there caller. ") == ["Hello there caller."]
    c.feed("  and another thing  ")
    assert c.flush() == "and another thing"
    assert c.flush() is None


def test_flush_of_whitespace_only_is_none():
    c = SentenceChunker()
    c.feed("   \n ")
    assert c.flush() is None


def test_newline_counts_as_whitespace_after_end():
    c = SentenceChunker()
    assert c.feed("We open at eight.\nWe close at six.\n") == ["We open at eight.", "We close at six."]


def test_concatenated_output_keeps_all_text():
    text = "Hi! I can book that for you. The cost is $90.50 total? Yes, that's right. And one more"
    tokens = [text[i : i + 3] for i in range(0, len(text), 3)]
    out, tail = feed_tokens(tokens)
    pieces = [s for _, s in out] + [tail]
    assert " ".join(pieces) == text
    assert len(out) >= 2
