"""Text as Piper should say it: numbers, times, prices, ranges and abbreviations spelled out.

Piper phonemizes with espeak-ng, which reads raw text unevenly: "St." and "Dr." end a sentence
(a pause in the middle of a name), "9 A M" comes out as "nine uh em", "$12.50" as a string of
digits, and a phone number as one huge cardinal. Every number here is spelled by num2words; the
only tables are words (units, abbreviations), never numbers.

Forms were chosen by what Piper (en_US voices) phonemizes well: "AM"/"PM" as written capitals
(read as letters; "A M" with a space reads the article "a"), "nine oh five" for minutes under ten,
and phone numbers as digits in comma-separated groups so the voice pauses between groups.

The passes run in a fixed order, each one consuming the digits it understands, so a later, more
general pass (plain cardinals) never sees a phone number or a time.
"""

from __future__ import annotations

import calendar
import re
from typing import Callable

from num2words import num2words

# -- number words -------------------------------------------------------------------------------


def _cardinal(digits: str) -> str:
    return num2words(int(digits.replace(",", "")))


def _ordinal(digits: str) -> str:
    return num2words(int(digits), to="ordinal")


def _digit_by_digit(digits: str) -> str:
    return " ".join(num2words(int(d)) for d in digits if d.isdigit())


def _decimal(whole: str, frac: str | None) -> str:
    """ "3.5" → "three point five"; fractional digits one by one, as people read them."""
    spoken = _cardinal(whole)
    if frac:
        spoken += " point " + _digit_by_digit(frac)
    return spoken


def _minutes(mm: str) -> str:
    """Minutes after the hour as said on a clock: "" for :00, "oh five", "thirty"."""
    m = int(mm)
    if m == 0:
        return ""
    if m < 10:
        return " oh " + num2words(m)
    return " " + num2words(m)


# -- word tables (words only) -------------------------------------------------------------------

_MONTHS = {name.lower(): name for name in calendar.month_name if name}
_MONTH_ABBR = {name[:3].lower(): name for name in _MONTHS.values()} | {"sept": "September"}
_MONTH_RE = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)"
)

_DAYS = {
    "mon": "Monday", "tue": "Tuesday", "tues": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
    "thur": "Thursday", "thurs": "Thursday", "fri": "Friday", "sat": "Saturday", "sun": "Sunday",
}
_DAY_NAMES = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_DAY_ABBR = "Mon|Tues|Tue|Wed|Thurs|Thur|Thu|Fri|Sat|Sun"

_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents")}

_UNITS = {"min": "minute", "mins": "minute", "hr": "hour", "hrs": "hour", "sec": "second", "secs": "second"}

# Titles: the period never ends a sentence, and what follows is a name.
_TITLES = {"Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Prof.": "Professor", "Jr.": "Junior",
           "Sr.": "Senior", "Mt.": "Mount"}
# Abbreviations whose period may also end the sentence (then a period is kept).
_PLAIN = {
    "Ave.": "Avenue", "Rd.": "Road", "Ln.": "Lane", "Blvd.": "Boulevard", "Hwy.": "Highway",
    "Ste.": "Suite", "Apt.": "Apartment", "approx.": "approximately", "Approx.": "Approximately",
    "e.g.": "for example", "E.g.": "For example", "i.e.": "that is", "I.e.": "That is",
    "etc.": "et cetera", "vs.": "versus", "incl.": "including", "appt.": "appointment",
    "dept.": "department", "Dept.": "Department", "tel.": "telephone", "Tel.": "Telephone",
    "ext.": "extension", "Ext.": "Extension",
}

# -- passes -------------------------------------------------------------------------------------

_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")


def _iso_date(m: re.Match[str]) -> str:
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m[0]
    return f"{calendar.month_name[month]} {num2words(day, to='ordinal')}, {num2words(year, to='year')}"


# North American numbers: (555) 123-4567, 555-123-4567, 555.123.4567, +1 555 123 4567, 555-1234.
# Space-separated groups are accepted only after a "+1" (else "120 150 2000" would be a phone).
_PHONE = re.compile(
    r"(?<![\w$£€.,])"
    r"(?:(?P<cc>\+?1)[\s.-]?)?"
    r"(?:\((?P<a1>\d{3})\)\s?|(?P<a2>\d{3})[.-]|(?<=\+1 )(?P<a3>\d{3})\s)?"
    r"(?P<ex>\d{3})[.\s-](?P<ln>\d{4})"
    r"(?![\w.,-]?\d)"
)


def _phone(m: re.Match[str]) -> str:
    area = m["a1"] or m["a2"] or m["a3"]
    if m["cc"] and not area:
        return m[0]  # "1 555-1234" is a count and a number, not a phone
    if m["cc"] is None and area is None and not re.fullmatch(r"[2-9]\d{2}-\d{4}", m[0]):
        # A bare "555 1234" is too easily two numbers, and no exchange starts with 0 or 1
        # ("100-1000" is a range).
        return m[0]
    groups = [g for g in (m["cc"], area, m["ex"], m["ln"]) if g]
    spoken = ", ".join(_digit_by_digit(g) for g in groups)
    return ("plus " if m["cc"] and m["cc"].startswith("+") else "") + spoken


_DASH = "[-\u2013\u2014]"
# A dash between two ends of a range: numbers, times, prices, days. Words joined by a hyphen
# ("check-ups") have letters on the left and are left alone.
_RANGE = re.compile(
    rf"(?P<left>\d%?|(?:(?<=\d)|(?<=\d\s))[AaPp]\.?[Mm]\b\.?|\b(?:{_DAY_NAMES}|{_DAY_ABBR})\b\.?)"
    rf"\s*{_DASH}\s*"
    rf"(?=[$£€]?\d|(?:{_DAY_NAMES}|{_DAY_ABBR})\b)"
)

_MONEY = re.compile(
    r"(?P<sym>[$£€])\s?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?"
    r"(?P<scale>\s+(?:thousand|million|billion|trillion)\b)?"
)


def _money(m: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m["sym"]]
    whole, frac = m["whole"], m["frac"]
    if m["scale"]:
        return f"{_decimal(whole, frac)} {m['scale'].strip()} {many}"
    if frac and len(frac) > 2:
        return f"{_decimal(whole, frac)} {many}"
    units = int(whole.replace(",", ""))
    subunits = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if units or not subunits:
        parts.append(f"{_cardinal(whole)} {one if units == 1 else many}")
    if subunits:
        parts.append(f"{num2words(subunits)} {sub_one if subunits == 1 else sub_many}")
    return " and ".join(parts)


_CLOCK_AMPM = re.compile(
    r"\b(?P<h>\d{1,2})(?::(?P<m>[0-5]\d))?\s*(?P<ap>[AaPp])\.?\s?[Mm]\b(?P<dot>\.)?(?P<after>\s*\S?)"
)


def _clock_ampm(m: re.Match[str]) -> str:
    hour = int(m["h"])
    if not 1 <= hour <= 12:
        return m[0]
    spoken = num2words(hour) + _minutes(m["m"] or "00") + (" AM" if m["ap"] in "Aa" else " PM")
    after = m["after"]
    # "We open at 9 a.m." -- the abbreviation's period was also the sentence's: keep one.
    if m["dot"] and (not after.strip() or after.strip()[0].isupper()):
        spoken += "."
    return spoken + after


_CLOCK_24 = re.compile(r"(?<![\d:.])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?![\d:])")


def _clock_24(m: re.Match[str]) -> str:
    hour, mm = int(m["h"]), m["m"]
    if hour >= 13 or hour == 0 or m["h"].startswith("0"):
        # Written as a 24-hour clock: say it the way the caller would.
        twelve = hour % 12 or 12
        return num2words(twelve) + _minutes(mm) + (" AM" if hour < 12 else " PM")
    return num2words(hour) + (_minutes(mm) or " o'clock")


_PERCENT = re.compile(r"(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?\s?%")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)

_MONTH_DAY = re.compile(
    rf"\b(?P<month>{_MONTH_RE})\.?\s+(?P<day>\d{{1,2}})(?![\d:])(?:,?\s+(?P<year>\d{{4}})\b)?"
)
_DAY_MONTH = re.compile(rf"\b(?P<day>\d{{1,2}})\s+(?P<month>{_MONTH_RE})\b\.?(?:,?\s+(?P<year>\d{{4}})\b)?")


def _month_name(word: str) -> str:
    w = word.lower().rstrip(".")
    return _MONTHS.get(w) or _MONTH_ABBR[w]


def _month_day(m: re.Match[str]) -> str:
    day = int(m["day"])
    if not 1 <= day <= 31:
        return m[0]
    year = f", {num2words(int(m['year']), to='year')}" if m["year"] else ""
    return f"{_month_name(m['month'])} {num2words(day, to='ordinal')}{year}"


def _day_month(m: re.Match[str]) -> str:
    day = int(m["day"])
    if not 1 <= day <= 31:
        return m[0]
    year = f", {num2words(int(m['year']), to='year')}" if m["year"] else ""
    return f"the {num2words(day, to='ordinal')} of {_month_name(m['month'])}{year}"


# A four-digit number after these words is a year ("since 1998" → "since nineteen ninety-eight").
_YEAR = re.compile(r"\b(?P<word>in|since|from|until|till|by|of|year|around|before|after)\s+(?P<y>1[1-9]\d\d|20\d\d)\b(?![,.]\d)", re.IGNORECASE)
_UNIT = re.compile(r"(?P<n>\d+)\s?(?P<u>mins?|hrs?|secs?)\b\.?")
_HASH_NUMBER = re.compile(r"(?:#|\bNo\.)\s?(?=\d)")
_LONG_DIGITS = re.compile(r"(?<![\d,.])\d{5,}(?![\d,]|\.\d)")  # codes and zips: digit by digit
_SLASH_NUMBERS = re.compile(r"(\d+)/(\d+)")
_NEGATIVE = re.compile(r"(?<![\w.])-(?=\d)")
_NUMBER = re.compile(r"(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?")

_TITLE_OR_PLACE = re.compile(r"\b(?P<abbr>St|Dr)\.(?=\s|$)")
_TITLE_WORDS = {"St": ("Saint", "Street"), "Dr": ("Doctor", "Drive")}


def _title_or_place(m: re.Match[str]) -> str:
    """"St." / "Dr." by context: after a number or a name, a place; before a name, a title.

    "42 Oak Dr." and "Mill St." are places; "Dr. Smith" and "near St. Mary's" are titles. A
    capitalized word that starts the sentence is no evidence of a street name ("Ask Dr. Smith"),
    so when the word after is a name too, the title wins: that is also how espeak reads "St." on
    its own, so the rare miss ("Main St. Springfield" at the start of a sentence) sounds no worse
    than leaving it.
    """
    title, place = _TITLE_WORDS[m["abbr"]]
    before, after = m.string[: m.start()], m.string[m.end() :]
    prev = re.search(r"(\S+)\s+$", before)
    prev_word = prev[1] if prev else ""
    prev_starts_sentence = prev is not None and re.search(r"(^|[.!?]\s+)$", before[: prev.start(1)]) is not None
    prev_is_name = prev_word[:1].isupper() and prev_word[-1:].isalpha()
    next_is_name = re.match(r"\s+[A-Z]", after) is not None
    if prev_word[-1:].isdigit() or (prev_is_name and not prev_starts_sentence) or (prev_is_name and not next_is_name):
        # A place at the end of a sentence keeps the sentence's period.
        return place + ("." if not after.strip() or next_is_name else "")
    return title


_DAY_CONTEXT_AFTER = r"(?=\s*(?:[,;:/&\u2013\u2014-]|$)|\s+(?:to|and|or|through|thru|\d)\b)"
_DAY_CONTEXT_BEFORE = r"(?:(?<=\bto )|(?<=\band )|(?<=\bor )|(?<=\bthrough )|(?<=\bthru )|(?<=[,/&] ))"
_DAY_ALWAYS = re.compile(r"\b(?P<d>Mon|Tues|Tue|Thurs|Thur|Thu|Fri)\b(?P<dot>\.)?")
# "Sat", "Sun" and "Wed" are also words ("Sun protection"): expanded only among other days.
_DAY_AMBIGUOUS = re.compile(
    rf"(?:{_DAY_CONTEXT_BEFORE}\b(?P<d1>Sat|Sun|Wed)\b(?P<dot1>\.)?)|(?:\b(?P<d2>Sat|Sun|Wed)\b(?P<dot2>\.)?{_DAY_CONTEXT_AFTER})"
)


def _day(m: re.Match[str]) -> str:
    groups = m.groupdict()
    abbr = groups.get("d") or groups.get("d1") or groups.get("d2")
    dot = groups.get("dot") or groups.get("dot1") or groups.get("dot2")
    full = _DAYS[abbr.lower()]
    after = m.string[m.end():]
    return full + ("." if dot and not after.strip() else "")


def _abbreviations(text: str) -> str:
    for abbr, word in _TITLES.items():
        text = re.sub(rf"(?<![\w.]){re.escape(abbr)}(?=\s|$)", word, text)
    for abbr, word in _PLAIN.items():
        def plain(m: re.Match[str], word: str = word) -> str:
            after = m.string[m.end():].lstrip()
            return word + ("." if not after or after[:1].isupper() else "")
        text = re.sub(rf"(?<![\w.]){re.escape(abbr)}(?=\s|$|[,;:!?])", plain, text)
    text = _TITLE_OR_PLACE.sub(_title_or_place, text)
    text = _DAY_ALWAYS.sub(_day, text)
    text = _DAY_AMBIGUOUS.sub(_day, text)
    return text


def _symbols(text: str) -> str:
    text = re.sub(r"\s*&\s*", " and ", text)
    text = re.sub(r"\s*@\s*", " at ", text)
    text = re.sub(r"\s*\+\s*(?=\w)", " plus ", text)
    text = re.sub(r"\s*=\s*", " equals ", text)
    text = re.sub(r"\s*°\s*[Ff]\b", " degrees Fahrenheit", text)
    text = re.sub(r"\s*°\s*[Cc]\b", " degrees Celsius", text)
    text = text.replace("°", " degrees")
    text = re.sub(r"\s*%", " percent", text)
    text = re.sub(r"~\s*(?=\w)", "about ", text)
    text = re.sub(r"\band/or\b", "and or", text)
    text = re.sub(r"(?<=[A-Za-z])/(?=[A-Za-z])", " or ", text)
    # An em dash between words is a pause, not a range.
    text = re.sub(r"\s*\u2014\s*", ", ", text)
    text = re.sub(r"\s+\u2013\s+", ", ", text)
    # Markdown and stray marks a language model may emit; Piper would read some of them aloud.
    text = re.sub(r"[*_`|\\^<>{}\[\]#$£€]", " ", text)
    return text


def _sub(pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str] | str) -> Callable[[str], str]:
    return lambda text: pattern.sub(repl, text)


_PASSES: list[Callable[[str], str]] = [
    lambda t: t.replace("\u2212", "-"),  # the minus sign
    _sub(_ISO_DATE, _iso_date),
    _sub(_PHONE, _phone),
    _sub(_RANGE, lambda m: m["left"] + " to "),
    _abbreviations,  # while the digits are still there: "12 Oak Dr.", "Sat 9 to 1"
    _sub(_MONEY, _money),
    _sub(_CLOCK_AMPM, _clock_ampm),
    _sub(_CLOCK_24, _clock_24),
    _sub(_PERCENT, lambda m: _decimal(m["whole"], m["frac"]) + " percent"),
    _sub(_ORDINAL, lambda m: _ordinal(m[1])),
    _sub(_MONTH_DAY, _month_day),
    _sub(_DAY_MONTH, _day_month),
    _sub(_YEAR, lambda m: f"{m['word']} {num2words(int(m['y']), to='year')}"),
    _sub(_UNIT, lambda m: f"{m['n']} {_UNITS[m['u']]}{'' if m['n'] == '1' else 's'}"),
    _sub(_HASH_NUMBER, "number "),
    _sub(_SLASH_NUMBERS, lambda m: f"{m[1]} {m[2]}" if (m[1], m[2]) == ("24", "7") else f"{m[1]} slash {m[2]}"),
    _sub(_LONG_DIGITS, lambda m: _digit_by_digit(m[0])),
    _sub(_NEGATIVE, "minus "),
    _sub(_NUMBER, lambda m: _decimal(m["whole"], m["frac"])),
    _symbols,
    lambda t: re.sub(r"\s+([,.;:!?])", r"\1", re.sub(r"\s{2,}", " ", t)).strip(),
]


def for_speech(text: str) -> str:
    """``text`` with numbers, times, prices, ranges, phone numbers and abbreviations as words."""
    for normalize in _PASSES:
        text = normalize(text)
    return text
