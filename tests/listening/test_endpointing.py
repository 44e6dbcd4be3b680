"""Endpoint rules, table-driven: a transcript so far → how its pause is judged."""

from __future__ import annotations

import pytest

from voicebox.listening.endpointing import judge


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hi, what time do you open on Saturday?", "complete"),
        ("Where are you located?", "complete"),
        ("That's everything, thanks so much. Bye!", "complete"),
        ("I'd like to book a cleaning for next Tuesday morning.", "complete"),
        ("I'm looking for...", "unfinished"),  # whisper's ellipsis for a voice trailing off
        ("I'm looking for", "unfinished"),
        ("I'm looking for it.", "unfinished"),  # whisper's pronoun for a cut-off object (via G.711)
        ("I'd like to.", "unfinished"),
        ("Do you take Aetna?", "complete"),
        ("I need a cleaning and", "unfinished"),
        ("Um.", "unfinished"),
        ("Can I come in on the", "unfinished"),
        ("My number is 555 123", "unfinished"),  # a number still being read out
        ("My card number is four one one one.", "unfinished"),
        ("My number is 555 123 4567.", "complete"),
        ("I have 2 kids.", "complete"),  # a number, but not one being read out
        ("So, yeah,", "unfinished"),
        ("Can I come in on Monday? No wait.", "unfinished"),  # a self-repair is coming
        ("Actually,", "unfinished"),
        ("Hi.", "unfinished"),  # the corpus hours_saturday: "Hi, [pause] what time do you open…"
        ("Hello, good morning.", "unfinished"),
        ("Sorry,", "unfinished"),  # the corpus barge_in: "Sorry, [pause] just the price of whitening."
        ("Sorry.", "unfinished"),
        ("Sorry?", "complete"),  # didn't hear us: answer at once
        ("okay", "unknown"),
        ("Yes.", "complete"),  # an answer to our question: no reason to wait
        ("Hello?", "complete"),
        ("", "unknown"),
    ],
)
def test_judge(text, expected):
    assert judge(text) == expected


# The whole rule: transcript so far + silence so far -> is the turn over? With the defaults
# (short 300 ms, plain 700 ms, long 1400 ms).
from voicebox.config import VadConfig  # noqa: E402
from voicebox.listening.endpointing import hangover_ms, turn_is_over  # noqa: E402

CFG = VadConfig()


@pytest.mark.parametrize(
    "text, silence_ms, over",
    [
        ("What time do you open on Saturday?", 200, False),
        ("What time do you open on Saturday?", 300, True),
        ("I'm looking for", 300, False),
        ("I'm looking for", 900, False),  # the corpus mid_pause: 900 ms inside the turn
        ("I'm looking for", 1400, True),
        ("My card number is 4111 1111", 1000, False),
        ("okay", 300, False),  # not clearly finished: the plain hangover
        ("okay", 700, True),
        (None, 300, False),  # an unreliable transcript is not trusted to end a turn early
        (None, 700, True),
        ("", 700, True),
    ],
)
def test_transcript_and_silence_decide_the_end_of_turn(text, silence_ms, over):
    assert turn_is_over(text, silence_ms, CFG) is over


def test_short_and_long_hangovers_never_cross_the_plain_one():
    cfg = VadConfig(hangover_ms=500, short_hangover_ms=800, long_hangover_ms=400)
    assert hangover_ms("Where are you?", cfg) == (500, "complete")
    assert hangover_ms("I'd like to", cfg) == (500, "unfinished")
