"""for_speech: what Piper is handed must hold words, not digits or symbols it reads unevenly."""

from __future__ import annotations

import re

import pytest

from voicebox.agent import load_agent
from voicebox.speaking.normalize import for_speech

# Symbols espeak would read aloud, skip, or read as something else. Sentence punctuation,
# apostrophes and word hyphens are fine.
LEFTOVER = re.compile(r"[\d$£€%&@#+=/*<>^~|\\_{}\[\]°\u2013\u2014]")

CASES = [
    # cardinals, decimals, thousands
    ("42 Mill Lane, Springfield", "forty-two Mill Lane, Springfield"),
    ("I have 3 kids, 2 dogs", "I have three kids, two dogs"),
    ("1,000 patients", "one thousand patients"),
    ("3.14", "three point one four"),
    ("-5 degrees", "minus five degrees"),
    ("25°C", "twenty-five degrees Celsius"),
    # times with AM/PM: capitals, which espeak reads as letters ("A M" reads the article "a")
    ("We open at 9 am.", "We open at nine AM."),
    ("9 am", "nine AM"),
    ("9am", "nine AM"),
    ("9:30 a.m.", "nine thirty AM."),
    ("9:30 a.m. on Monday", "nine thirty AM on Monday"),
    ("at 9:05pm", "at nine oh five PM"),
    ("12 PM", "twelve PM"),
    # clock times without AM/PM
    ("13:00", "one PM"),
    ("09:15", "nine fifteen AM"),
    ("00:30", "twelve thirty AM"),
    ("It's 9:05", "It's nine oh five"),
    ("at 12:00", "at twelve o'clock"),
    ("9:30", "nine thirty"),
    # prices
    ("$90", "ninety dollars"),
    ("$12.50", "twelve dollars and fifty cents"),
    ("$12.5", "twelve dollars and fifty cents"),
    ("$1", "one dollar"),
    ("$1.01", "one dollar and one cent"),
    ("$0.50", "fifty cents"),
    ("$1,250", "one thousand, two hundred and fifty dollars"),
    ("$1.5 million", "one point five million dollars"),
    ("£5", "five pounds"),
    ("€20", "twenty euros"),
    ("90 dollars", "ninety dollars"),
    # ranges
    ("Open 8-6", "Open eight to six"),
    ("Open 8–6", "Open eight to six"),
    ("Mon–Fri", "Monday to Friday"),
    ("Mon-Fri 8am-6pm", "Monday to Friday eight AM to six PM"),
    ("9 am - 1 pm", "nine AM to one PM"),
    ("9 a.m.–1 p.m.", "nine AM to one PM."),
    ("Sat 9-1", "Saturday nine to one"),
    ("$60-$90", "sixty dollars to ninety dollars"),
    ("10-15%", "ten to fifteen percent"),
    ("Monday-Friday", "Monday to Friday"),
    ("check-ups and X-rays", "check-ups and X-rays"),  # hyphenated words stay
    # ordinals and dates
    ("1st", "first"),
    ("the 22nd", "the twenty-second"),
    ("your 3rd visit", "your third visit"),
    ("Jan 5", "January fifth"),
    ("Jan. 5", "January fifth"),
    ("March 3, 2024", "March third, twenty twenty-four"),
    ("5 May", "the fifth of May"),
    ("2024-01-05", "January fifth, twenty twenty-four"),
    ("since 1998", "since nineteen ninety-eight"),
    ("in 2025", "in twenty twenty-five"),
    # phone numbers: digit by digit, groups separated by commas so the voice pauses
    ("Call 555-123-4567.", "Call five five five, one two three, four five six seven."),
    ("(555) 123-4567", "five five five, one two three, four five six seven"),
    ("555.123.4567", "five five five, one two three, four five six seven"),
    ("+1 555 123 4567", "plus one, five five five, one two three, four five six seven"),
    ("1-800-555-1234", "one, eight zero zero, five five five, one two three four"),
    ("call 555-1234", "call five five five, one two three four"),
    ("100-1000 patients", "one hundred to one thousand patients"),  # a range, not a phone
    # codes and zips
    ("zip 62704", "zip six two seven zero four"),
    # percentages
    ("50%", "fifty percent"),
    ("2.5% off", "two point five percent off"),
    # abbreviations, with Saint/Street and Doctor/Drive by context
    ("Dr. Smith", "Doctor Smith"),
    ("Ask Dr. Patel.", "Ask Doctor Patel."),
    ("our dentist is Dr. Lee", "our dentist is Doctor Lee"),
    ("12 Oak Dr.", "twelve Oak Drive."),
    ("Main St.", "Main Street."),
    ("We're on Mill St. near St. John's.", "We're on Mill Street near Saint John's."),
    ("St. Mary's Hospital", "Saint Mary's Hospital"),
    ("Visit St. Louis", "Visit Saint Louis"),
    ("42 Elm St. is the address", "forty-two Elm Street is the address"),
    ("Mr. Jones and Mrs. Jones", "Mister Jones and Missus Jones"),
    ("approx. 30 mins", "approximately thirty minutes"),
    ("1 hr", "one hour"),
    ("e.g. cleanings", "for example cleanings"),
    ("fillings, crowns, etc.", "fillings, crowns, et cetera."),
    ("fillings, crowns, etc. We also", "fillings, crowns, et cetera. We also"),
    ("Sat & Sun", "Saturday and Sunday"),
    ("Open Sat.", "Open Saturday."),
    ("Tue, Wed and Thu", "Tuesday, Wednesday and Thursday"),
    ("Sun protection matters", "Sun protection matters"),  # "Sun" the word
    ("I sat down", "I sat down"),
    ("#5", "number five"),
    ("No. 7", "number seven"),
    ("open 24/7", "open twenty-four seven"),
    ("and/or", "and or"),
    ("cleaning/whitening", "cleaning or whitening"),
    ("**Note:** hi", "Note: hi"),
    ("Cancellations need 24 hours' notice.", "Cancellations need twenty-four hours' notice."),
    ("We close early — around 4.", "We close early, around four."),
    ("", ""),
    ("Hello, thanks for calling.", "Hello, thanks for calling."),
]


@pytest.mark.parametrize("text,spoken", CASES, ids=[c[0] or "empty" for c in CASES])
def test_for_speech(text: str, spoken: str) -> None:
    assert for_speech(text) == spoken


@pytest.mark.parametrize("text,spoken", [c for c in CASES if not LEFTOVER.search(c[1])])
def test_normalizing_twice_changes_nothing(text: str, spoken: str) -> None:
    # Text may pass through twice (a template, then the whole reply); the second pass is a no-op.
    assert for_speech(spoken) == spoken


def test_no_case_leaves_digits_or_symbols() -> None:
    left = [(text, out) for text, _ in CASES if LEFTOVER.search(out := for_speech(text))]
    assert left == []


def _riverside_texts() -> list[str]:
    agent = load_agent("riverside_dental")
    texts = [agent.greeting, agent.goodbye, agent.apology, agent.no_information, agent.max_call_goodbye]
    texts += list(agent.reprompts) + list(agent.facts.values())
    texts += [agent.fill(i.answer) for i in agent.intents if i.answer]
    if agent.actions.transfer_announcement:
        texts.append(agent.actions.transfer_announcement)
    return texts


@pytest.mark.parametrize("text", _riverside_texts())
def test_every_riverside_fact_and_answer_is_speakable(text: str) -> None:
    out = for_speech(text)
    assert not LEFTOVER.search(out), out
    assert out.strip()


def test_riverside_hours_answer() -> None:
    agent = load_agent("riverside_dental")
    hours = agent.intent("hours")
    assert hours is not None
    assert for_speech(agent.fill(hours.answer)) == (
        "We're open Monday to Friday, eight AM to six PM, and Saturday, nine AM to one PM. "
        "On Sunday we're closed."
    )


def test_riverside_prices_answer() -> None:
    agent = load_agent("riverside_dental")
    prices = agent.intent("prices")
    assert prices is not None
    assert for_speech(agent.fill(prices.answer)) == (
        "A check-up is sixty dollars, a cleaning is ninety dollars, teeth whitening is two hundred and "
        "fifty dollars, and fillings start at one hundred and twenty dollars."
    )
