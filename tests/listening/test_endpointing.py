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
        ("okay", "unknown"),
        ("Yes.", "complete"),  # an answer to our question: no reason to wait
        ("Hello?", "complete"),
        ("", "unknown"),
    ],
)
def test_judge(text, expected):
    assert judge(text) == expected
