"""Replace personal data in a call transcript with typed placeholders: ``[CARD]``, ``[EXPIRY]``,
``[CVV]``, ``[SSN]``, ``[PHONE]``, ``[EMAIL]``, ``[ADDRESS]`` and ``[NAME]``.

The input is ASR output, so case and punctuation cannot be trusted and a number may arrive as
digits ("4111"), as words ("four one one one", "forty one eleven", "double one", "oh" for zero)
or as both. Numbers are therefore first gathered into *runs*: consecutive number tokens, with
the digits they spell and where they sit in the text. Each run is then given a kind from its
length, its Luhn checksum and the words said just before (or after) it. E-mail addresses,
street addresses and names have their own small detectors. Standard library only: this runs on
every turn of every call, and a 20-word turn takes well under a millisecond.

Card numbers lean towards recall: a Luhn-valid 13-19 digit run is a card wherever it is, in
card talk ("card", "visa", "number is") any 13-19 digit run is a card even when ASR broke its
checksum, and after a card word even 8-12 digits (half a card) are. Everything else leans
towards precision, so prices, times, dates, counts and short numbers survive.

The word lists here are trade-neutral English. What a business's callers say that is not a
name ("this is Maple Bakery", "I'm here for a fitting") comes from its agent file, as
``BusinessWords``: ``redact(text, BusinessWords.of(agent.name, agent.vocabulary()))``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

CARD = "CARD"
EXPIRY = "EXPIRY"
CVV = "CVV"
SSN = "SSN"
PHONE = "PHONE"
EMAIL = "EMAIL"
ADDRESS = "ADDRESS"
NAME = "NAME"
KINDS = (CARD, EXPIRY, CVV, SSN, PHONE, EMAIL, ADDRESS, NAME)

# When two detections overlap, the kind earlier here wins: the digits inside an e-mail are not a
# phone number, and a card's last group is not a house number.
_PRIORITY = {k: i for i, k in enumerate((EMAIL, CARD, SSN, PHONE, EXPIRY, CVV, ADDRESS, NAME))}


@dataclass(frozen=True)
class Span:
    """Characters ``text[start:end]`` are personal data of this ``kind`` (one of ``KINDS``)."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class BusinessWords:
    """The words of the business a call is to: its name, what it sells, the places and
    companies in its facts. Said after "this is" or "I'm", they name the business or what the
    caller wants, not the caller; a word of its name after a capitalised word marks a business
    ("this is Northside Bakery": the shop next door, not a person)."""

    words: frozenset[str] = frozenset()  # never a caller's name
    name_words: frozenset[str] = frozenset()  # the words of the business's own name

    @classmethod
    def of(cls, name: str, phrases: Iterable[str]) -> "BusinessWords":
        """From the agent file: its ``name`` and phrases (``AgentConfig.vocabulary()``: the
        business name, services, confusions, facts' proper nouns), each word lowercase."""
        name_words = frozenset(t.low for t in _tokenize(name) if t.low.isalpha())
        words = frozenset(t.low for phrase in phrases for t in _tokenize(phrase) if t.low.isalpha())
        return cls(words | name_words, name_words)


NO_BUSINESS = BusinessWords()


@dataclass(frozen=True)
class NumberRun:
    """Digits said in one go ("4111 one one one", "(555) 123-4567") and where they were said."""

    start: int
    end: int
    digits: str


# --- Tokens ---------------------------------------------------------------------------------

# Words and digit groups; punctuation is left in the gaps between tokens, where run building
# looks at it. A mixed token ("24th", "5b", "dsmith84") is a word, never a number.
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)*")


@dataclass(frozen=True)
class _Tok:
    start: int
    end: int
    text: str
    low: str  # lowercase, curly apostrophe straightened: the form every lookup uses


def _tokenize(text: str) -> list[_Tok]:
    return [
        _Tok(m.start(), m.end(), m.group(), m.group().lower().replace("\u2019", "'"))
        for m in _TOKEN.finditer(text)
    ]


# --- Spoken numbers -------------------------------------------------------------------------

_UNITS = {
    "zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}
# "oh" and "o" are zero only among other numbers: "oh, I see" holds no digit.
_ZERO_SOUNDS = {"oh", "o"}
_SCALES = {"hundred": 100, "thousand": 1000}
_NUMBER_WORDS = set(_UNITS) | set(_TEENS) | set(_TENS) | set(_SCALES)
# Spoken separators: "five five five dash one two three", "twelve slash twenty eight".
_JOIN_WORDS = {"dash", "hyphen", "slash"}
# What may sit between two tokens of one run: spaces and the punctuation of written numbers
# ("4111-1111", "(555) 123", "12/28", "4,111"). A period only with no space around it
# ("555.123.4567"): ". " ends a sentence and so ends the run.
_GAP = re.compile(r"\s*(?:[-\u2013\u2014/,()+]\s*)*|\.")


def _small(low: str) -> int | None:
    """The value of a word that can start a spoken cardinal (1-99), else None."""
    if low in _TEENS:
        return _TEENS[low]
    if low in _TENS:
        return _TENS[low]
    if low in _UNITS and low not in _ZERO_SOUNDS and low != "zero":
        return _UNITS[low]
    return None


def _is_number_tok(toks: list[_Tok], i: int) -> bool:
    low = toks[i].low
    if low.isdigit() or low in _NUMBER_WORDS:
        return True
    # "double" is a number only as in "double one"; "a double room" is not.
    return low in _REPEAT and i + 1 < len(toks) and toks[i + 1].low in _UNITS


@dataclass(frozen=True)
class _Unit:
    """One spoken or written number inside a run ("forty one" -> "41", "4111" -> "4111")."""

    digits: str
    first: int  # token indices, for the words around it
    last: int
    start: int  # character offsets
    end: int


def _gap(text: str, a: _Tok, b: _Tok) -> str:
    return text[a.end : b.start]


def _run_token_groups(text: str, toks: list[_Tok]) -> list[list[int]]:
    """Indices of number tokens, grouped into runs said in one go."""
    groups: list[list[int]] = []
    i = 0
    while i < len(toks):
        if not _is_number_tok(toks, i):
            i += 1
            continue
        group = [i]
        while (nxt := _next_in_run(text, toks, group[-1])) is not None:
            group.append(nxt)
        groups.append(_trim_zero_sounds(text, toks, group))
        i = group[-1] + 1
    return [g for g in groups if any(toks[t].low not in _ZERO_SOUNDS for t in g)]


def _next_in_run(text: str, toks: list[_Tok], prev: int) -> int | None:
    """The number token that carries on the run ending at ``prev``, or None if it ends there."""
    k = prev + 1
    if k >= len(toks):
        return None
    # A joining word between two numbers: "dash", "slash", "and" in "two hundred and five".
    joiner = toks[k].low in _JOIN_WORDS or (toks[k].low == "and" and toks[prev].low in _SCALES)
    if joiner:
        if not _GAP.fullmatch(_gap(text, toks[prev], toks[k])):
            return None
        k += 1
    if k >= len(toks) or not _is_number_tok(toks, k) or toks[k].low == "and":
        return None
    return k if _GAP.fullmatch(_gap(text, toks[k - 1], toks[k])) else None


def _trim_zero_sounds(text: str, toks: list[_Tok], group: list[int]) -> list[int]:
    """Drop an "oh" cut off from the numbers by a comma: "oh, one more thing" is no zero."""
    while len(group) > 1 and toks[group[0]].low in _ZERO_SOUNDS and "," in _gap(
        text, toks[group[0]], toks[group[1]]
    ):
        group = group[1:]
    while len(group) > 1 and toks[group[-1]].low in _ZERO_SOUNDS and "," in _gap(
        text, toks[group[-2]], toks[group[-1]]
    ):
        group = group[:-1]
    return group


def _units(text: str, toks: list[_Tok], group: list[int]) -> list[_Unit]:
    """Read a run's tokens as numbers: "forty one eleven" -> 41, 11; "double oh" -> 00."""
    units: list[_Unit] = []
    k = 0
    while k < len(group):
        digits, nxt = _read_number(text, toks, group, k)
        first, last = toks[group[k]], toks[group[nxt - 1]]
        if digits:
            units.append(_Unit(digits, group[k], group[nxt - 1], first.start, last.end))
        k = nxt
    return units


def _read_number(text: str, toks: list[_Tok], group: list[int], k: int) -> tuple[str, int]:
    """The digits of the number starting at ``group[k]``, and the position after it."""
    low = toks[group[k]].low
    if low.isdigit():
        return low, k + 1
    if low in _REPEAT:
        if k + 1 < len(group) and toks[group[k + 1]].low in _UNITS:
            return str(_UNITS[toks[group[k + 1]].low]) * _REPEAT[low], k + 2
        return "", k + 1  # "double" cut off from its digit by punctuation: no digits
    if low in _UNITS and _small(low) is None:  # zero, oh, o: always a single digit
        return "0", k + 1
    if low in _SCALES:  # "a hundred", with nothing said before the scale
        return str(_SCALES[low]), k + 1
    value, k = _read_small(text, toks, group, k)
    return _read_scale(text, toks, group, k, value)


def _read_small(text: str, toks: list[_Tok], group: list[int], k: int) -> tuple[int, int]:
    """1-99 from one word or a tens word plus a unit ("forty one", "forty-one")."""
    low = toks[group[k]].low
    value = _small(low)
    assert value is not None
    if low in _TENS and k + 1 < len(group):
        unit = _small(toks[group[k + 1]].low)
        # A comma is a pause: "ninety, three" is 90 then 3 (card groups read in pairs).
        pause = "," in _gap(text, toks[group[k]], toks[group[k + 1]])
        if unit is not None and unit < 10 and not pause:
            return value + unit, k + 2
    return value, k + 1


def _read_scale(
    text: str, toks: list[_Tok], group: list[int], k: int, value: int
) -> tuple[str, int]:
    """Apply "hundred"/"thousand" after a small number: "four hundred fifty", "twenty one hundred".

    "forty one hundred" is how people read the card group 4100, so after a two-digit multiplier
    nothing more is added; after a one-digit one ("four hundred fifty") a tail is.
    """
    if k < len(group) and toks[group[k]].low == "thousand":
        value, k = value * 1000, k + 1
        if k + 1 < len(group) and toks[group[k + 1]].low == "hundred":
            small = _small(toks[group[k]].low)
            if small is not None and small < 10:
                value, k = value + small * 100, k + 2
        tail, k = _tail(toks, group, k)
        return str(value + tail), k
    if k < len(group) and toks[group[k]].low == "hundred":
        if value >= 10:
            return str(value * 100), k + 1
        tail, k = _tail(toks, group, k + 1)
        return str(value * 100 + tail), k
    return str(value), k


def _tail(toks: list[_Tok], group: list[int], k: int) -> tuple[int, int]:
    """The 1-99 said after a scale word ("...hundred and five"), or 0 when there is none."""
    if k >= len(group):
        return 0, k
    low = toks[group[k]].low
    value = _small(low)
    if value is None:
        return 0, k
    if low in _TENS and k + 1 < len(group):
        unit = _small(toks[group[k + 1]].low)
        if unit is not None and unit < 10:
            return value + unit, k + 2
    return value, k + 1


def _runs(text: str, toks: list[_Tok]) -> list[list[_Unit]]:
    runs = [_units(text, toks, g) for g in _run_token_groups(text, toks)]
    return [run for run in runs if run]


def number_runs(text: str) -> list[NumberRun]:
    """Every run of numbers in ``text``, digits and words alike, with its digits."""
    toks = _tokenize(text)
    return [
        NumberRun(run[0].start, run[-1].end, "".join(u.digits for u in run))
        for run in _runs(text, toks)
    ]


def spoken_digits(text: str) -> str:
    """All digits said in ``text``, in order: "forty one eleven" -> "4111"."""
    return "".join(r.digits for r in number_runs(text))


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) checksum every payment card number carries in its last digit."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# --- Context cues ---------------------------------------------------------------------------
# Cues are searched in the lowercase words just before a run (and for some kinds just after),
# joined by single spaces, so a cue may span words ("security code", "number is").

_CARD_CUE = re.compile(
    r"\b(?:cards?|visa|master ?card|amex|american express|discover|credit|debit|cc)\b"
)
# "my number is" means a card only when no other kind of number is being talked about.
_WEAK_CARD_CUE = re.compile(r"\bnumbers? (?:is|are)\b|\bnumber's\b|\blong number\b")
_OTHER_NUMBER = re.compile(
    r"\b(?:order|tracking|confirmation|reference|ref|invoice|policy|member|membership|claim|"
    r"case|ticket|account|id|serial|routing|model|booking|patient|"
    r"group|phone|cell|mobile|home|work|fax|zip|postal)\b"
)
_SSN_CUE = re.compile(r"\b(?:social|ssn|s s n|ss number|social security)\b")
_PHONE_CUE = re.compile(
    r"\b(?:phone|cell|mobile|landline|call|callback|reach|text|contact|fax|"
    r"my number|the number|best number|home number|work number)\b"
)
_EXPIRY_CUE = re.compile(
    r"\b(?:exp|expiry|expires|expiring|expiration|expire|expired|"
    r"valid (?:thru|through|till|until)|good (?:thru|through|till|until))\b"
)
_CVV_CUE = re.compile(
    r"\b(?:cvv|cvv2|cvc|cvc2|csc|cid|security (?:code|number)|verification (?:code|number)|"
    r"card code|on the back|digit code|digits code|back of the card)\b"
    r"|\b(?:three|four|3|4) digits\b"
)
_MONTHS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec",
}  # fmt: skip


def _words(toks: list[_Tok], start: int, end: int) -> str:
    return " ".join(t.low for t in toks[max(start, 0) : max(end, 0)])


def _last_cue(cue: re.Pattern[str], words: str) -> int:
    """Where in ``words`` the last match of ``cue`` ends, or -1: the nearer cue wins."""
    end = -1
    for m in cue.finditer(words):
        end = m.end()
    return end


# --- Numbers: cards, SSNs, phones, expiry dates, CVVs -----------------------------------------


def _span(run: list[_Unit], kind: str, text: str) -> Span:
    start = run[0].start
    # "(555) 123-4567", "+1 555...": the bracket or plus belongs to the number.
    if start > 0 and text[start - 1] in "(+":
        start -= 1
    return Span(start, run[-1].end, kind)


def _luhn_subrun(run: list[_Unit]) -> tuple[int, int] | None:
    """The first unit-aligned stretch of 13-19 digits that passes Luhn (the longest one starting
    there), for over-long runs: a card read straight into its expiry date or security code."""
    for i in range(len(run)):
        digits, best = "", None
        for j in range(i, len(run)):
            digits += run[j].digits
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_ok(digits):
                best = (i, j + 1)
        if best is not None:
            return best
    return None


def _card_context(toks: list[_Tok], run: list[_Unit], strong_only: bool = False) -> bool:
    """Card talk around the run: a card word nearby, or "number is" when no other kind of
    number (order, phone, policy...) is being talked about."""
    before = _words(toks, run[0].first - 10, run[0].first)
    after = _words(toks, run[-1].last + 1, run[-1].last + 5)
    if _CARD_CUE.search(before) or _CARD_CUE.search(after):
        return True
    if strong_only:
        return False
    return bool(_WEAK_CARD_CUE.search(before)) and not _OTHER_NUMBER.search(before)


def _number_spans(text: str, toks: list[_Tok], run: list[_Unit]) -> list[Span]:
    """Spans for one run of numbers. An over-long run is cut around each Luhn-valid card in it
    (a card read straight into its expiry date), and the pieces are judged on their own."""
    spans: list[Span] = []
    while run:
        digits = "".join(u.digits for u in run)
        sub = _luhn_subrun(run) if len(digits) > 19 else None
        if sub is None:
            return spans + _whole_run_spans(text, toks, run, digits)
        i, j = sub
        spans += _whole_run_spans(text, toks, run[:i], "".join(u.digits for u in run[:i]))
        spans.append(_span(run[i:j], CARD, text))
        run = run[j:]
    return spans


def _whole_run_spans(text: str, toks: list[_Tok], run: list[_Unit], digits: str) -> list[Span]:
    """The kind of one run taken whole, if it has one."""
    if not run:
        return []
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return [_span(run, CARD, text)]
    if len(digits) >= 13 and _card_context(toks, run):
        # Card talk and a card-sized run whose checksum ASR broke: redact anyway.
        return [_span(run, CARD, text)]
    spans = _short_number_spans(text, toks, run, digits)
    if not spans and len(digits) >= 8 and _card_context(toks, run, strong_only=True):
        # Half a card ("4111 1111 1111", or a number read over two turns) is still a card.
        return [_span(run, CARD, text)]
    return spans


def _short_number_spans(text: str, toks: list[_Tok], run: list[_Unit], digits: str) -> list[Span]:
    before = _words(toks, run[0].first - 8, run[0].first)
    after = _words(toks, run[-1].last + 1, run[-1].last + 4)
    if _is_ssn(run, digits, before, after):
        return [_span(run, SSN, text)]
    if _is_phone(digits, before, after):
        return [_span(run, PHONE, text)]
    return _card_detail_spans(text, toks, run, digits)


def _is_ssn(run: list[_Unit], digits: str, before: str, after: str) -> bool:
    if len(digits) == 9:
        # Written 123-45-6789 / 123 45 6789 is an SSN by its shape alone.
        shape = [len(u.digits) for u in run] == [3, 2, 4] and all(u.digits.isdigit() for u in run)
        return shape or bool(_SSN_CUE.search(before) or _SSN_CUE.search(after))
    # "the last four of my social are 6789"
    return len(digits) == 4 and "last four" in before and bool(_SSN_CUE.search(before))


def _is_phone(digits: str, before: str, after: str) -> bool:
    cue = bool(_PHONE_CUE.search(before) or _PHONE_CUE.search(after))
    # An order or confirmation number of phone length is not a phone unless a phone is named.
    if _OTHER_NUMBER.search(before[-40:]) and not cue:
        return False
    if len(digits) == 10:
        return cue or digits[0] in "23456789"  # US area codes never start with 0 or 1
    if len(digits) == 11:
        return digits[0] == "1"
    return len(digits) == 7 and cue


def _card_detail_spans(
    text: str, toks: list[_Tok], run: list[_Unit], digits: str
) -> list[Span]:
    """Expiry date or security code, decided by whichever cue was said nearest the run."""
    first = run[0].first
    # One window for both cues, so their positions compare: the later (nearer) cue wins.
    window = _words(toks, first - 6, first)
    exp_at = _last_cue(_EXPIRY_CUE, window)
    cvv_at = _last_cue(_CVV_CUE, window)
    if cvv_at > exp_at and 3 <= len(digits) <= 4:
        return [_span(run, CVV, text)]
    if exp_at >= 0:
        # "expires march twenty seven", "december of 2027": the month is part of the date.
        m = first - 2 if first > 1 and toks[first - 1].low == "of" else first - 1
        if m >= 0 and toks[m].low.rstrip(".") in _MONTHS and len(digits) in (2, 4):
            return [Span(toks[m].start, run[-1].end, EXPIRY)]
        if 3 <= len(digits) <= 6:
            return [_span(run, EXPIRY, text)]
    # "it's 123, the cvv": a security code named just after it.
    after = _words(toks, run[-1].last + 1, run[-1].last + 4)
    if (cvv_at >= 0 or _CVV_CUE.search(after)) and 3 <= len(digits) <= 4:
        return [_span(run, CVV, text)]
    return []


# --- E-mail ----------------------------------------------------------------------------------

# A word, or letters spelled one by one ("d a n a").
_ATOM = r"(?:[a-z0-9](?:\s[a-z0-9](?![a-z0-9'])){1,40}|[a-z0-9]+)"
_LOCAL_SEP = r"(?:\s*[._+-]\s*|\s+(?:dot|underscore|dash|hyphen|period|plus)\s+)"
_DOT = r"(?:\s*\.\s*|\s+(?:dot|period)\s+)"
_DOMAIN_SEP = r"(?:\s*[.-]\s*|\s+(?:dot|period|dash|hyphen)\s+)"
_TLD = r"(?:com|net|org|edu|gov|io|co|us|uk|ca|info|biz|me|ai|de|fr)"
_EMAIL = re.compile(
    rf"\b{_ATOM}(?:{_LOCAL_SEP}{_ATOM}){{0,8}}(?:\s*@\s*|\s+at\s+)"
    rf"{_ATOM}(?:{_DOMAIN_SEP}{_ATOM}){{0,6}}?{_DOT}{_TLD}(?:{_DOT}{_TLD})?\b",
    re.IGNORECASE,
)


# "my email is dana smith at...": after an e-mail cue, words before the match belong to it.
_EMAIL_CUE = re.compile(
    r"\b(?:e-?mail(?: address)?(?:\s+is|'s)?|e-?mail me at|it's)\s+"
    r"((?:(?!(?:is|at|me|address)\s)[a-z0-9]+\s+){1,2})$",
    re.IGNORECASE,
)


def _email_spans(text: str) -> list[Span]:
    """Written (dana.smith@gmail.com) and spoken (dana dot smith at gmail dot com) addresses."""
    if "@" not in text and " at " not in text.lower():
        return []  # the common case: skip the regex scan entirely
    spans = []
    for m in _EMAIL.finditer(text):
        cue = _EMAIL_CUE.search(text, max(0, m.start() - 60), m.start())
        spans.append(Span(cue.start(1) if cue else m.start(), m.end(), EMAIL))
    return spans


# --- Street addresses -------------------------------------------------------------------------

_STREET_SUFFIX = {
    "street", "st", "avenue", "ave", "av", "road", "rd", "lane", "ln", "drive", "dr",
    "boulevard", "blvd", "court", "ct", "way", "place", "pl", "terrace", "circle", "cir",
    "parkway", "pkwy", "highway", "hwy", "trail", "square", "sq",
}  # fmt: skip
# Words that never name a street: they show "9 am on main street" or "2 kids" is no address.
_NOT_STREET = {
    "a", "an", "the", "of", "to", "at", "on", "in", "for", "from", "and", "or", "but", "by",
    "with", "is", "are", "was", "were", "be", "it", "its", "it's", "i", "i'm", "we", "you",
    "my", "your", "our", "their", "his", "her", "this", "that", "these", "those", "then",
    "am", "pm", "o'clock", "oclock", "minute", "minutes", "min", "mins", "hour",
    "hours", "day", "days", "week", "weeks", "month", "months", "year", "years", "dollar",
    "dollars", "bucks", "cents", "percent", "kid", "kids", "child", "children", "people",
    "person", "times", "time", "mile", "miles", "block", "blocks", "floor", "floors", "more",
    "less", "about", "around", "only", "just", "last", "next", "other", "new",
    "visits", "appointments", "car", "cars", "hour's",
    "bedroom", "bedrooms", "story", "stories", "ways", "long", "short", "big", "small",
    "great", "good", "nice", "easy", "quick", "so", "too", "very", "um", "uh", "yeah", "okay",
}  # fmt: skip
_DIRECTIONS = {"n", "s", "e", "w", "ne", "nw", "se", "sw", "north", "south", "east", "west"}
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)")
_NUM_WORDS_RE = "|".join(sorted(_NUMBER_WORDS | set(_REPEAT), key=len, reverse=True))
_APARTMENT = r"(?:apartment|apt|unit|suite|ste|flat)\.?\s*(?:number\s+|#\s*)?"
_APARTMENT_ID = rf"(?:[a-z]?\d+[a-z]?|[a-z]|(?:(?:{_NUM_WORDS_RE})\b\s*)+(?:[a-z]\b)?)\b"
_UNIT_AFTER = re.compile(rf"[\s,]*(?:{_APARTMENT}|#\s*){_APARTMENT_ID}", re.IGNORECASE)
# "apartment 5b" on its own is part of an address too; "unit"/"suite" alone are too vague.
_APARTMENT_ALONE = re.compile(
    rf"\b(?:apartment|apt)\.?\s*(?:number\s+|#\s*)?"
    rf"(?:[a-z]?\d+[a-z]?|(?:(?:{_NUM_WORDS_RE})\b\s*)+(?:[a-z]\b)?)\b",
    re.IGNORECASE,
)


def _street_word(tok: _Tok) -> bool:
    low = tok.low
    if _ORDINAL.fullmatch(low):
        return True  # "5th avenue"
    return low.isalpha() and low not in _NOT_STREET and low not in _STREET_SUFFIX and (
        low not in _NUMBER_WORDS and low not in _REPEAT
    )


_HOUSE_TOKEN = re.compile(r"\d{1,5}[a-z]")  # "221b Baker Street"


def _address_spans(text: str, toks: list[_Tok], runs: list[list[_Unit]]) -> list[Span]:
    """House number + up to four street-name words + a street suffix (+ an apartment)."""
    spans = [Span(m.start(), m.end(), ADDRESS) for m in _APARTMENT_ALONE.finditer(text)]
    starts = [(u.start, run[-1].last + 1) for run in runs if (u := _house_number(run))]
    starts += [(t.start, i + 1) for i, t in enumerate(toks) if _HOUSE_TOKEN.fullmatch(t.low)]
    for start, k in starts:
        end = _street_end(text, toks, k)
        if end is not None:
            spans.append(Span(start, end, ADDRESS))
    return spans


def _street_end(text: str, toks: list[_Tok], k: int) -> int | None:
    """Where the street named from token ``k`` on ends ("Oak Street NW, apt 5"), or None if
    the words there name no street."""
    names = 0
    while k < len(toks) and names <= 4:
        if toks[k].low in _STREET_SUFFIX and names >= 1:
            end = toks[k].end
            if k + 1 < len(toks) and toks[k + 1].low in _DIRECTIONS and len(toks[k + 1].low) <= 2:
                end = toks[k + 1].end  # "Pennsylvania Avenue NW"
            end += text[end : end + 1] == "."
            unit = _UNIT_AFTER.match(text, end)
            return unit.end() if unit else end
        if not _street_word(toks[k]) or not _GAP.fullmatch(_gap(text, toks[k - 1], toks[k])):
            return None
        names += 1
        k += 1
    return None


def _house_number(run: list[_Unit]) -> _Unit | None:
    """Where the house number ends a run: the first of its last units that together hold at
    most 6 digits ("call 555 1234, 12 Oak St" keeps only "12"), or None."""
    digits = ""
    first = None
    for unit in reversed(run):
        if len(digits) + len(unit.digits) > 6:
            break
        digits = unit.digits + digits
        first = unit
    return first


# --- Names -----------------------------------------------------------------------------------

# Words that follow "i'm" / "this is" / "my name is" but are not names. In lowercase ASR text
# this list (with the word-ending rules in _looks_like_state) is all that stands between
# "i'm looking" and "i'm [NAME]", so it is broad. Grouped by what they are, for upkeep.
_NOT_NAME = set(
    # function words, pronouns, fillers
    """
    a an the this that these those it its it's i me my mine you your yours we our us they them
    their he him his she her who what when where why how which there here and or but so if
    then than as at by for from in into of off on onto out over under to up down with without
    about after before again also just only not no yes yeah yep yup nope ok okay um uh uhm umm
    er erm hmm mm oh ah well like really very too quite pretty kind sort bit little lot lots
    all any some every each both either neither much many more most less least few other
    another same such own still even ever never always sometimes often already almost self
    between among within because while kinda sorta halfway
    """
    # adverbs and time words
    """
    actually basically literally totally completely definitely probably maybe perhaps
    certainly honestly seriously currently recently usually normally finally exactly obviously
    unfortunately hopefully quickly simply clearly truly right now soon later today tomorrow
    yesterday tonight morning afternoon evening night week weekend month year monday tuesday
    wednesday thursday friday saturday sunday january february march april may june july
    august september october november december
    """
    # verbs and their forms
    """
    am is are was were be been being have has had do does did done go gone went get got gotten
    make made call called calls look looked want wanted need needed try tried hope hoped wonder
    wondered check checked ask asked wait waited book booked schedule scheduled cancel
    cancelled canceled reschedule rescheduled come came leave left run gonna wanna gotta
    supposed allowed covered insured set stuck lost broke re referring reaching replying
    responding speaking
    """
    # states, feelings, health and other adjectives
    """
    late early back home sure sorry afraid glad happy sad mad fine good great alright better
    worse best worst bad terrible awful sick ill hurt tired busy free available ready
    interested concerned worried scared nervous anxious confused able unable new old existing
    current regular returning first second third last next previous single done finished
    unsure positive certain away outside inside downstairs upstairs nearby close far local
    around across behind ahead past due overdue urgent important weird strange crazy upset
    angry correct wrong true false possible impossible perfect awesome amazing cool serious
    quick brief hard easy silly stupid dumb funny hungry thirsty cold hot warm deaf blind sore
    swollen broken cracked numb dizzy sleepy awake asleep alone together older younger
    tall short healthy fit bored lonely lucky unlucky picky cheap poor rich desperate calm
    elderly senior junior minor adult pregnant diabetic allergic asthmatic epileptic anemic
    autistic claustrophobic medical terrified embarrassed uninsured disabled sensitive
    confident present absent different ridiculous curious thankful grateful aware retired
    married divorced widowed engaged employed unemployed
    """
    # nationalities and languages: "i'm canadian", "this is spanish"
    """
    american canadian mexican british english irish scottish welsh french german italian
    spanish portuguese dutch swedish norwegian danish finnish polish russian ukrainian greek
    turkish chinese japanese korean vietnamese thai indian pakistani filipino brazilian
    colombian cuban dominican haitian jamaican nigerian african european asian latino latina
    hispanic jewish muslim christian catholic
    """
    # people, places and call words that follow "this is"
    """
    patient customer client member parent mother father mom dad son daughter wife husband
    friend guy person someone somebody anyone nobody everyone nothing something anything
    everything thing things one message voicemail appointment question problem
    issue visit doctor office practice reception front desk
    bill billing payment card student hello hi hey thanks thank please bye goodbye
    welcome speaker phone line number email address street name mister miss missus mr mrs ms
    dr sir madam maam ma'am
    """.split()
)
# Word endings of states rather than names: "curious", "grateful", "hopeless", "terrible",
# "sensitive", "worried", "stressed", "frustrated". Endings that names share ("-ic": Eric,
# "-ed": Ahmed, "-ly": Emily) are left to the word list above.
_STATE_ENDINGS = (
    "ous", "ful", "less", "able", "ible", "tive", "sive", "ied", "ssed", "ured", "bled",
    "ated", "ized", "ised", "sted", "ited", "uled", "cked", "pped",
)  # fmt: skip
# "allergic to", "terrified of": an adjective and its complement, not a name.
_NOT_AFTER_NAME = {"to", "of", "about", "than", "as", "into"}
# Words that end a business's name in any trade; the trade's own ("bakery") come from the agent.
_ORGANISATION = {
    "office", "company", "inc", "llc", "ltd", "services", "service", "group", "center", "centre",
    "practice", "associates", "labs", "corp", "co", "bank", "shop", "store", "studio", "agency",
}  # fmt: skip
_TITLES = {"mr", "mrs", "ms", "miss", "dr", "doctor", "mister", "missus", "prof"}
_FILLERS = {"um", "uh", "uhm", "umm", "er", "erm", "hmm", "like", "yeah", "so", "well"}
_NAME_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_AFTER_INTRO = {"speaking", "here", "calling"}  # "it's Dana speaking"
_SELF = {"i", "i'm", "i'd", "i'll", "i've"}


def _cased(text: str, toks: list[_Tok]) -> bool:
    """Does this ASR capitalise proper nouns? Yes if a capital appears mid-sentence (not "I")."""
    for tok in toks:
        if not tok.text[0].isupper() or tok.low in _SELF:
            continue
        i = tok.start - 1
        while i >= 0 and text[i].isspace():
            i -= 1
        if i >= 0 and text[i] not in ".!?":
            return True
    return False


def _looks_like_state(low: str) -> bool:
    """"starving", "curious", "worried": how someone is, not who."""
    if low.endswith("ing") and len(low) >= 6:
        return True
    return len(low) >= 6 and low.endswith(_STATE_ENDINGS)


def _is_name_word(tok: _Tok, cased: bool, business: BusinessWords) -> bool:
    low = tok.low
    if not _NAME_WORD.fullmatch(tok.text) or len(low) < 2 or low in _NOT_NAME or low in business.words:
        return False
    if low in _NUMBER_WORDS or low in _REPEAT:
        return False
    if cased:
        # Where ASR capitalises names, a lowercase word after "this is" is not one.
        return tok.text[0].isupper()
    return not _looks_like_state(low)


def _intro_end(toks: list[_Tok], i: int) -> tuple[int, bool] | None:
    """If an introduction ends at token ``i``: where the name would start, and whether a
    "speaking"/"here" must follow it (as in "it's Dana speaking")."""
    low = toks[i].low
    prev = toks[i - 1].low if i > 0 else ""
    if low in ("i'm", "im", "name's", "named") or (low == "am" and prev == "i"):
        return i + 1, False
    if low == "name" and prev in ("first", "last", "full", "my"):  # "first name maria"
        return i + 1, False
    if low == "is" and prev in ("this", "name"):
        return i + 1, False
    if low in ("it's", "its"):
        return i + 1, True
    return None


def _name_spans(text: str, toks: list[_Tok], business: BusinessWords) -> list[Span]:
    cased = _cased(text, toks)
    spans: list[Span] = []
    for i in range(len(toks)):
        intro = _intro_end(toks, i)
        if intro is None:
            continue
        k, needs_speaking = intro
        if k < len(toks) and toks[k].low in _FILLERS:  # "this is, uh, Dana"
            k += 1
        if k < len(toks) and toks[k].low.rstrip(".") in _TITLES:  # "this is Dr. Patel"
            k += 1
        words = _name_words(text, toks, k, cased, business)
        if not words:
            continue
        after = words[-1] + 1
        if needs_speaking and (after >= len(toks) or toks[after].low not in _AFTER_INTRO):
            continue
        if not cased and after < len(toks) and toks[after].low in _NOT_AFTER_NAME:
            continue  # "i'm allergic to penicillin"
        if after < len(toks) and (toks[after].low in _ORGANISATION or toks[after].low in business.name_words):
            continue  # "this is Northside Bakery": a business, not a person
        spans.append(Span(toks[words[0]].start, toks[words[-1]].end, NAME))
    return spans


def _name_words(text: str, toks: list[_Tok], k: int, cased: bool, business: BusinessWords) -> list[int]:
    """Up to two name words starting at token ``k`` ("Dana", "Dana Smith", "Mary-Jane Lee");
    hyphenated parts count as one word."""
    words: list[int] = []
    count = 0
    while k < len(toks) and _is_name_word(toks[k], cased, business):
        gap = _gap(text, toks[words[-1]], toks[k]) if words else " "
        hyphen = bool(words) and gap == "-"
        if words and gap.strip() and not hyphen:
            break  # "Dana. Smith" is two sentences
        if not hyphen:
            if count == 2:
                break
            count += 1
        words.append(k)
        k += 1
    return words


# --- Putting it together ----------------------------------------------------------------------


def _resolve(candidates: list[Span]) -> list[Span]:
    """Non-overlapping spans in text order; on overlap the higher-priority, longer span wins."""
    chosen: list[Span] = []
    for span in sorted(candidates, key=lambda s: (_PRIORITY[s.kind], s.start - s.end)):
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


def find_spans(text: str, business: BusinessWords = NO_BUSINESS) -> list[Span]:
    """Every piece of personal data in ``text``, as non-overlapping spans in text order.
    ``business``: the words of the call's business, which are never a caller's name."""
    toks = _tokenize(text)
    runs = _runs(text, toks)
    candidates = _email_spans(text)
    for run in runs:
        candidates += _number_spans(text, toks, run)
    candidates += _address_spans(text, toks, runs)
    candidates += _name_spans(text, toks, business)
    return _resolve(candidates)


def redact(text: str, business: BusinessWords = NO_BUSINESS) -> str:
    """``text`` with each piece of personal data replaced by its placeholder, e.g. ``[CARD]``.
    ``business``: the call's agent's words (``BusinessWords.of(agent.name, agent.vocabulary())``)."""
    out: list[str] = []
    pos = 0
    for span in find_spans(text, business):
        out.append(text[pos : span.start])
        out.append(f"[{span.kind}]")
        pos = span.end
    out.append(text[pos:])
    return "".join(out)
