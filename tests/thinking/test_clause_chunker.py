"""ClauseChunker: a short first chunk at the first clause, then whole sentences."""

from __future__ import annotations

import re

import pytest

from voicebox.thinking.clause_chunker import ClauseChunker


def tokens(text: str) -> list[str]:
    """Split like a language model's tokenizer roughly does: words with their leading space,
    and digits and punctuation as their own pieces (so "1,000" arrives as "1", ",", "000")."""
    return re.findall(r"\s?[A-Za-z']+|\d|[^\w\s]|\s", text)


def chunk(text: str, min_words: int = 4, pieces: list[str] | None = None) -> list[str]:
    c = ClauseChunker(min_words)
    out = []
    for t in pieces if pieces is not None else tokens(text):
        out += c.feed(t)
    tail = c.flush()
    return out + ([tail] if tail else [])


CASES = [
    (
        "We're open Monday to Friday, eight AM to six PM, and Saturday. On Sunday we're closed.",
        ["We're open Monday to Friday,", "eight AM to six PM, and Saturday.", "On Sunday we're closed."],
    ),
    (  # "Hello," is too short to go alone; the first sentence ends before any later clause
        "Hello, thanks for calling Riverside Dental. How can I help you today?",
        ["Hello, thanks for calling Riverside Dental.", "How can I help you today?"],
    ),
    (  # never inside a number: "1," is not a clause while "000" may follow
        "It costs about 1,000 dollars a year, roughly speaking.",
        ["It costs about 1,000 dollars a year,", "roughly speaking."],
    ),
    (  # nor inside a time
        "We can see you at 9:30 tomorrow, if that works for you.",
        ["We can see you at 9:30 tomorrow,", "if that works for you."],
    ),
    (  # nor after a title
        "Dr. Smith can see you on Tuesday, or else on Wednesday.",
        ["Dr. Smith can see you on Tuesday,", "or else on Wednesday."],
    ),
    (  # a list of numbers is one thought
        "We have slots at 9, 10 or 11, whichever suits you best.",
        ["We have slots at 9, 10 or 11,", "whichever suits you best."],
    ),
    (  # a decimal price is not a sentence end
        "A cleaning is $12.50 today only, and a check-up is free.",
        ["A cleaning is $12.50 today only,", "and a check-up is free."],
    ),
    (
        "Let me see what I can do; one moment please.",
        ["Let me see what I can do;", "one moment please."],
    ),
    (
        "That slot is taken on Monday — but Tuesday is open.",
        ["That slot is taken on Monday", "but Tuesday is open."],
    ),
    (  # three words before the colon: under the minimum, so the whole sentence goes first
        "Here's the thing: we're closed on Sundays. Sorry.",
        ["Here's the thing: we're closed on Sundays.", "Sorry."],
    ),
    (  # no clause at all: sentence by sentence
        "We are open until six tonight. See you soon.",
        ["We are open until six tonight.", "See you soon."],
    ),
    (  # only the first chunk is a clause; later commas wait for the sentence end
        "Sure, I can book that for you, just tell me your name, and the time. Then we're done, okay?",
        ["Sure, I can book that for you,", "just tell me your name, and the time.", "Then we're done, okay?"],
    ),
    ("Yes.", ["Yes."]),
    ("", []),
]


@pytest.mark.parametrize("text,chunks", CASES, ids=[c[0][:30] or "empty" for c in CASES])
def test_chunks(text: str, chunks: list[str]) -> None:
    assert chunk(text) == chunks


@pytest.mark.parametrize("text,chunks", CASES, ids=[c[0][:30] or "empty" for c in CASES])
def test_chunks_do_not_depend_on_how_the_text_is_cut(text: str, chunks: list[str]) -> None:
    assert chunk(text, pieces=list(text)) == chunks  # one character at a time
    assert chunk(text, pieces=[text]) == chunks  # all at once


def test_first_chunk_leaves_as_soon_as_the_next_piece_shows_the_clause_ended() -> None:
    c = ClauseChunker()
    pieces = ["We", "'re", " open", " Monday", " to", " Friday", ",", " eight"]
    emitted = [(i, out) for i, p in enumerate(pieces) for out in c.feed(p)]
    assert emitted == [(7, "We're open Monday to Friday,")]


def test_min_words_is_configurable() -> None:
    assert chunk("Here's the thing: we're closed on Sundays.", min_words=3) == [
        "Here's the thing:", "we're closed on Sundays.",
    ]
    with pytest.raises(ValueError):
        ClauseChunker(min_words=0)


def test_flush_starts_the_next_reply_with_a_short_chunk_again() -> None:
    c = ClauseChunker()
    assert c.feed("We are open today, until six tonight. ") == ["We are open today,", "until six tonight."]
    assert c.flush() is None
    out = c.feed("And on Saturday morning, from nine until one. ")
    assert out == ["And on Saturday morning,", "from nine until one."]
    assert c.flush() is None
