"""Reading one value of a form out of a caller's sentence, and saying it back.

Deterministic on purpose: what is read back is exactly what was understood (a small model would
happily "confirm" a number the caller never said). Names, phone numbers, choices and numbers are
found here; days and times are read by ``opening_hours.parse_moment``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

from voicebox.agent import Service

# Spoken digits, as a recognizer may write them ("oh two oh, seven nine four six ...").
_DIGIT_WORDS = {"zero": "0", "oh": "0", "o": "0", "nought": "0", "one": "1", "two": "2", "three": "3",
                "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_REPEAT_WORDS = {"double": 2, "triple": 3}
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_PHONE_RUN = re.compile(r"\+?\(?\d[\d\s().-]{4,}\d")
MIN_PHONE_DIGITS = 6  # fewer is a time, a party size or a price, not an attempt at a phone number

# One capitalised name word: "Dana", "O'Neill", "D'Arcy", "McDonald", "Mary-Jane" (ASR may
# write the apostrophe curly).
_NAME_WORD = r"[A-Z][a-z]*(?:[A-Z][a-z]+)?(?:['’-][A-Za-z][a-z]*)*"
_NAME = re.compile(
    r"\b(?i:my name is|my name's|name is|the name's|this is|it's|i am|i'm)\s+(" + _NAME_WORD + r"(?:\s+" + _NAME_WORD
    + r")?)(?![A-Za-z'’-])"
)
# Capitalized words that follow "I'm" or "it's" without being a name.
_NOT_NAMES = {"Calling", "Looking", "Sorry", "Just", "Not", "Here", "Fine", "Good", "Interested", "Trying", "About",
              "For", "On", "At", "Available", "Free", "Still", "Okay", "Ok", "Busy", "Afraid", "Really", "So", "That",
              "Actually", "Happy", "Sure", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
              "Sunday", "Today", "Tomorrow"}
_FILLERS = re.compile(r"^(?:um+|uh+|er+|erm|yeah|yes|well|so|oh|okay|ok|sure)[,.]?\s+", re.I)
_NAME_LEAD = re.compile(r"^(?:my name is|my name's|name is|the name's|the name is|this is|it's|it is|i am|i'm|"
                        r"you can put it under|put it under|under)\s+", re.I)
_NOT_A_NAME = re.compile(r"\d|\b(yes|no|yeah|nope|what|why|how|when|where|sorry|pardon|hello|hi|thanks|please|"
                         r"cancel|bye)\b", re.I)


def spoken_digits(text: str) -> str:
    """Digit words in a long run of digits as digits ("oh two oh, seven nine four six ..." ->
    "0 2 0 7 9 4 6 ..."); a lone "oh" or "one" in a sentence stays a word."""
    tokens = re.findall(r"\+|\d+|[A-Za-z']+|[^\sA-Za-z\d+]", text)
    out: list[str] = []
    run: list[str] = []  # the tokens of a run that may be a number
    digits: list[str] = []

    def flush() -> None:
        if len("".join(digits)) >= MIN_PHONE_DIGITS:
            out.append(" ".join(digits))
        else:
            out.extend(run)
        run.clear()
        digits.clear()

    repeat = 1
    for tok in tokens:
        low = tok.lower()
        digit = tok if tok.isdigit() else _DIGIT_WORDS.get(low)
        if digit is not None:
            digits.append(digit * repeat if len(digit) == 1 else digit)
            repeat = 1
        elif low in _REPEAT_WORDS:
            repeat = _REPEAT_WORDS[low]
        elif not (run and tok in "-.,()"):
            flush()
            repeat = 1
            out.append(tok)
            continue
        run.append(tok)
    flush()
    said = re.sub(r"\s+([,.?!])", r"\1", " ".join(out))
    return re.sub(r"(?:\+|\bplus)\s+(?=\d)", "+", said)


@dataclass(frozen=True)
class Phone:
    """A valid phone number: E.164 to store, its national groups to read back."""

    e164: str
    groups: tuple[str, ...]

    def spoken(self) -> str:
        """'0 2 0, 7 9 4 6, 0 9 5 8': digit by digit, a pause between groups."""
        return ", ".join(" ".join(g) for g in self.groups)

    def written(self) -> str:
        return " ".join(self.groups)


INVALID = "invalid"  # a value was said but cannot be used (a phone number too short, a number out of range)


def find_phone(text: str, region: str | None) -> Phone | str | None:
    """The phone number in ``text``: a Phone, INVALID when digits were said that are no valid
    number (for ``region`` when no country code is given), None when no number was said."""
    said = spoken_digits(text)
    runs = [m.group(0) for m in _PHONE_RUN.finditer(said)]
    runs = [r for r in runs if len(re.sub(r"\D", "", r)) >= MIN_PHONE_DIGITS]
    if not runs:
        return None
    raw = runs[-1].strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return INVALID
    if not phonenumbers.is_valid_number(number):
        return INVALID
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    groups = tuple(g for g in re.split(r"[^\d]+", national) if g)
    if region is None or phonenumbers.region_code_for_number(number) != region:
        # A number from abroad is read back with its country code, as it must be dialled.
        intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        groups = tuple(g for g in re.split(r"[^\d]+", intl) if g)
    return Phone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), groups)


def find_name(text: str, asked: bool) -> str | None:
    """A name the caller gave ("my name is Dana Smith"); when the name was just asked for, the
    bare answer too ("Dana Smith", "it's dana")."""
    m = _NAME.search(text)
    if m and m.group(1).split()[0] not in _NOT_NAMES:
        return m.group(1)
    if not asked:
        return None
    answer = _FILLERS.sub("", text.strip())
    answer = _NAME_LEAD.sub("", answer).strip(" .,!?")
    words = answer.split()
    if not 1 <= len(words) <= 4 or _NOT_A_NAME.search(answer) or any(w.capitalize() in _NOT_NAMES for w in words):
        return None
    if not all(re.fullmatch(r"[A-Za-z][A-Za-z'’.-]*", w) for w in words):
        return None
    return " ".join(w if w[:1].isupper() else w.capitalize() for w in words)


def find_choice(text: str, choices: Sequence[Service]) -> str | None:
    """The option named last in ``text`` ("a cleaning, no, a check-up" is a check-up)."""
    low = text.lower()
    best: tuple[int, int, str] | None = None  # (end of the mention, its length, option)
    for choice in choices:
        for cue in choice.cues():
            for m in re.finditer(rf"(?<![a-z]){re.escape(cue)}(?![a-z])", low):
                key = (m.end(), len(cue), choice.name)
                if best is None or key[:2] > best[:2]:
                    best = key
    return best[2] if best else None


def _number_at(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return _NUMBER_WORDS.get(word.lower())


def find_number(text: str, units: Sequence[str], asked: bool, low: int | None, high: int | None) -> int | str | None:
    """A count: "for 4 people" anywhere when ``units`` name it, a bare number when it was asked
    for; INVALID when it is outside [low, high]."""
    words = re.findall(r"[A-Za-z']+|\d+", text.lower())
    found = None
    for i, w in enumerate(words):
        n = _number_at(w)
        if n is None:
            continue
        if any(" ".join(words[i + 1: i + 1 + len(u.split())]) == u.lower() for u in units):
            found = n
    if found is None and asked:
        numbers = [n for n in (_number_at(w) for w in words) if n is not None]
        found = numbers[-1] if numbers else None
    if found is None:
        return None
    if (low is not None and found < low) or (high is not None and found > high):
        return INVALID
    return found


def mentions(text: str, phrases: Sequence[str]) -> bool:
    """Whether ``text`` contains one of ``phrases`` as whole words (case-insensitive)."""
    low = re.sub(r"[^a-z0-9' ]+", " ", text.lower())
    return any(re.search(rf"(?<![a-z']){re.escape(p.lower())}(?![a-z'])", low) for p in phrases if p.strip())


# -- loose details, for reading back a doubtful transcript before it is acted on -------------------
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "tomorrow")
_PARTS = ("morning", "afternoon", "evening", "lunchtime")
_CLOCK = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)", re.I)


def loose_when(text: str) -> str:
    """The day and time a sentence names, as said ("Tuesday at 10 am", "Friday afternoon"), or ""."""
    low = text.lower()
    days = [(m.start(), m.group(0)) for d in _DAYS for m in re.finditer(rf"\b{d}\b", low)]
    day = max(days)[1].capitalize() if days else ""
    if day and re.search(rf"\bnext\s+{day.lower()}\b", low):
        day = f"next {day}"
    clock = _CLOCK.search(text)
    parts = [p for p in _PARTS if re.search(rf"\b{p}\b", low)]
    time = ""
    if clock:
        ampm = clock.group(3).replace(".", "").lower()
        time = f"at {clock.group(1)}{':' + clock.group(2) if clock.group(2) else ''} {ampm}"
    elif parts:
        time = parts[-1] if day else f"in the {parts[-1]}"
    return " ".join(p for p in (day, time) if p)
