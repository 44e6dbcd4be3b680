"""A generated, deterministic test set for ``voicebox.privacy.redact``, and its scoring.

The set is written for one agent: its business name, services and the proper nouns of its
facts fill the sentences that must survive ("this is <business>, right?", "I'm here for a
<service>"), and the redactor is given that agent's words, as a call to it is. Every shipped
agent gets its own set.

Each utterance is what an ASR might hand the agent during a call: cased with punctuation, all
lowercase without it, or lowercase with only the first letter capitalised. Personal data comes
as digits, as spoken words ("forty one eleven", "double oh", "oh" for zero) or as a mix, with
and without the words that give it away ("my card number is"). Card numbers are Luhn-valid
Visa, Mastercard, Amex and Discover numbers of 13, 15, 16 and 19 digits, and some carry an
ASR-style error (a digit changed or dropped) that breaks the checksum. A quarter of the
utterances are near-misses that hold nothing to redact: prices, times, dates, counts, short
numbers, years, order numbers and the "i'm looking..." phrases that look like introductions.

Regenerate the published figures from the repository root with::

    python benchmarks/redaction/testset.py --json benchmarks/results/redaction.json \
        --md benchmarks/results/redaction.md
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from voicebox.agent import BUILTIN_DIR, AgentConfig, load_agent  # noqa: E402
from voicebox.privacy.redact import (  # noqa: E402
    ADDRESS,
    BusinessWords,
    CARD,
    CVV,
    EMAIL,
    EXPIRY,
    KINDS,
    NAME,
    PHONE,
    SSN,
    Span,
    find_spans,
    luhn_ok,
)


@dataclass(frozen=True)
class Case:
    """One utterance: ``expected`` (kind, substring) pairs must vanish behind ``[KIND]``;
    every string in ``keep`` must survive redaction unchanged."""

    text: str
    expected: list[tuple[str, str]] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    category: str = ""  # the generator that made it: "card", "near_miss", ...


# --- Saying numbers the way callers do ------------------------------------------------------

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen"]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def say_digit(d: str, rng: random.Random) -> str:
    """One digit as a word; zero is "zero", "oh" or "o" as people (and ASR) vary."""
    if d == "0":
        return rng.choice(["zero", "oh", "oh", "o"])
    return _ONES[int(d)]


def say_singles(digits: str, rng: random.Random, repeats: bool = False) -> str:
    """Digit by digit; with ``repeats``, "11" may become "double one" and "111" "triple one"."""
    words: list[str] = []
    i = 0
    while i < len(digits):
        same = 1
        while repeats and i + same < len(digits) and digits[i + same] == digits[i] and same < 3:
            same += 1
        if same >= 2 and rng.random() < 0.8:
            words.append(f"{'double' if same == 2 else 'triple'} {say_digit(digits[i], rng)}")
            i += same
        else:
            words.append(say_digit(digits[i], rng))
            i += 1
    return " ".join(words)


def say_pair(pair: str, rng: random.Random) -> str:
    """Two digits as one number: "41" forty one, "11" eleven, "05" oh five, "00" double oh."""
    a, b = int(pair[0]), int(pair[1])
    if a == 0:
        return rng.choice(["double oh", "oh oh"]) if b == 0 else f"oh {_ONES[b]}"
    if a == 1:
        return _TEENS[b]
    return _TENS[a] if b == 0 else f"{_TENS[a]} {_ONES[b]}"


def say_group(group: str, rng: random.Random) -> str:
    """A card group read in pairs ("forty one eleven"), "4100" as "forty one hundred", an odd
    group's leading digit on its own."""
    if len(group) == 4 and group.endswith("00") and group[0] != "0" and rng.random() < 0.7:
        return f"{say_pair(group[:2], rng)} hundred"
    words = []
    if len(group) % 2:
        words.append(say_digit(group[0], rng))
        group = group[1:]
    words += [say_pair(group[i : i + 2], rng) for i in range(0, len(group), 2)]
    return " ".join(words)


def join_spoken(parts: list[str]) -> str:
    """Join spoken groups; after a bare tens word ("ninety") a following unit word would merge
    into it ("ninety three"), so the pause is written as a comma, as ASR does."""
    out = parts[0]
    for part in parts[1:]:
        last = out.split()[-1]
        first = part.split()[0]
        merge = last in _TENS[2:] and first in _ONES[1:]
        out += (", " if merge else " ") + part
    return out


def spoken_pairs(digits: str, groups: list[int], rng: random.Random) -> str:
    return join_spoken([say_group(g, rng) for g in split_groups(digits, groups)])


def split_groups(digits: str, groups: list[int]) -> list[str]:
    out, pos = [], 0
    for size in groups:
        if pos < len(digits):
            out.append(digits[pos : pos + size])
        pos += size
    if pos < len(digits):
        out[-1] += digits[pos:]
    return out


# --- Payment cards --------------------------------------------------------------------------

# (brand, prefixes, length, grouping as read aloud)
_BRANDS = [
    ("visa", ["4"], 16, [4, 4, 4, 4]),
    ("visa", ["4111", "4111", "4242"], 16, [4, 4, 4, 4]),
    ("mastercard", ["51", "52", "53", "54", "55", "2221", "2720"], 16, [4, 4, 4, 4]),
    ("amex", ["34", "37"], 15, [4, 6, 5]),
    ("discover", ["6011", "65"], 16, [4, 4, 4, 4]),
    ("visa", ["4"], 13, [4, 4, 5]),
    ("visa", ["4"], 19, [4, 4, 4, 4, 3]),
    ("discover", ["6011"], 19, [4, 4, 4, 4, 3]),
]


def luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it pass Luhn."""
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable: one check digit always fits")


def make_card(rng: random.Random) -> tuple[str, str, list[int]]:
    """A random Luhn-valid card number: (brand, digits, grouping)."""
    brand, prefixes, length, groups = rng.choice(_BRANDS)
    prefix = rng.choice(prefixes)
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return brand, luhn_complete(body), groups


def asr_error(digits: str, rng: random.Random) -> str:
    """A misheard card: one digit changed or dropped, so the checksum fails."""
    while True:
        i = rng.randrange(1, len(digits))
        if rng.random() < 0.5 and len(digits) > 13:
            wrong = digits[:i] + digits[i + 1 :]
        else:
            wrong = digits[:i] + rng.choice("0123456789".replace(digits[i], "")) + digits[i + 1 :]
        if not luhn_ok(wrong):
            return wrong


def render_digits(digits: str, groups: list[int], rng: random.Random) -> str:
    """A card number as a caller says it and ASR writes it: grouped digits, dashed, plain,
    spoken digit by digit, in pairs, with double/triple, or digits and words mixed."""
    styles = ["space", "dash", "plain", "singles", "singles", "repeats", "pairs", "pairs"]
    style = rng.choice(styles + ["mixed", "mixed"])
    parts = split_groups(digits, groups)
    if style == "space":
        return " ".join(parts)
    if style == "dash":
        return "-".join(parts)
    if style == "plain":
        return digits
    if style == "singles":
        sep = ", " if rng.random() < 0.3 else " "  # a pause between groups, or none
        return sep.join(say_singles(p, rng) for p in parts)
    if style == "repeats":
        return " ".join(say_singles(p, rng, repeats=True) for p in parts)
    if style == "pairs":
        return spoken_pairs(digits, groups, rng)
    # mixed: some groups written as digits, the rest spoken
    said = [p if rng.random() < 0.4 or i == 0 else say_singles(p, rng) for i, p in enumerate(parts)]
    return " ".join(said)


# --- Other personal data ------------------------------------------------------------------------

FIRST = ["Dana", "Maria", "James", "Priya", "Wei", "Carlos", "Aisha", "Tom", "Olivia", "Noah",
         "Fatima", "Liam", "Sofia", "Ethan", "Chloe", "Mateo", "Grace", "Hannah", "Omar", "Lucas",
         "Zoe", "Ben", "Elena", "Ravi", "Nina", "Jake", "Mia", "Sam", "Leah", "Diego", "Kenji",
         "Amara", "Jonas", "Ruth", "Igor", "Tariq", "Ines", "Paul", "Rosa", "Kevin"]  # fmt: skip
LAST = ["Smith", "Garcia", "Nguyen", "Patel", "Kowalski", "Johnson", "Okafor", "Brown", "Rossi",
        "Tanaka", "Haddad", "Lee", "Martin", "Silva", "O'Brien", "Fischer", "Clarke", "Novak",
        "Reyes", "Walker", "Young", "Hughes", "Ward", "Bailey", "Cruz", "Ito", "Singh", "Khan",
        "Morales", "Schmidt"]  # fmt: skip
STREETS = ["Oak", "Maple", "Main", "Elm", "Cedar", "Pine", "Washington", "Lincoln", "Park",
           "Lake", "Hill", "Church", "Sunset", "Highland", "Jefferson", "Madison", "Willow",
           "River", "Spring", "Chestnut", "Walnut", "Forest", "Meadow", "Rosewood", "Birch",
           "Martin Luther King", "Old Mill", "5th", "Cherry Blossom"]  # fmt: skip
SUFFIXES = [("Street", "St"), ("Avenue", "Ave"), ("Road", "Rd"), ("Lane", "Ln"), ("Drive", "Dr"),
            ("Boulevard", "Blvd"), ("Court", "Ct"), ("Way", "Way"), ("Place", "Pl")]  # fmt: skip
DOMAINS = [["gmail", "com"], ["yahoo", "com"], ["outlook", "com"], ["hotmail", "com"],
           ["icloud", "com"], ["comcast", "net"], ["proton", "me"], ["mycompany", "co", "uk"],
           ["townhall", "org"], ["uni", "edu"]]  # fmt: skip
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]  # fmt: skip


def make_name(rng: random.Random, cased: bool) -> str:
    name = rng.choice(FIRST) + (" " + rng.choice(LAST) if rng.random() < 0.6 else "")
    return name if cased else name.lower()


def make_ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def render_ssn(ssn: str, rng: random.Random) -> str:
    style = rng.choice(["dash", "space", "plain", "singles", "singles", "mixed"])
    a, b, c = ssn[:3], ssn[3:5], ssn[5:]
    if style == "dash":
        return f"{a}-{b}-{c}"
    if style == "space":
        return f"{a} {b} {c}"
    if style == "plain":
        return ssn
    if style == "singles":
        return say_singles(ssn, rng, repeats=rng.random() < 0.3)
    return f"{a} {say_singles(b, rng)} {say_singles(c, rng)}"


def make_phone(rng: random.Random) -> str:
    area = rng.choice(["555", str(rng.randint(201, 989))])
    return f"{area}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"


def render_phone(phone: str, rng: random.Random) -> str:
    a, b, c = phone[:3], phone[3:6], phone[6:]
    style = rng.choice(["paren", "dash", "plus1", "plain", "dots", "singles", "singles", "pairs"])
    if style == "paren":
        return f"({a}) {b}-{c}"
    if style == "dash":
        return f"{a}-{b}-{c}"
    if style == "plus1":
        return f"+1 {a} {b} {c}"
    if style == "plain":
        return phone
    if style == "dots":
        return f"{a}.{b}.{c}"
    if style == "singles":
        sep = rng.choice([" ", ", "])
        return sep.join(say_singles(p, rng, repeats=rng.random() < 0.3) for p in (a, b, c))
    return join_spoken([say_singles(a, rng), say_singles(b, rng), say_group(c, rng)])


def make_email(rng: random.Random, first: str, last: str) -> str:
    domain = rng.choice(DOMAINS)
    first, last = first.lower(), last.lower().replace("'", "")
    style = rng.choice(["written", "written", "dot", "dot", "underscore", "digits", "initial"])
    digits = str(rng.randint(1, 99))
    spoken_domain = " dot ".join(domain)
    if style == "written":
        local = rng.choice([f"{first}.{last}", f"{first}_{last}", f"{first}{digits}", first])
        return f"{local}@{'.'.join(domain)}"
    if style == "dot":
        return f"{first} dot {last} at {spoken_domain}"
    if style == "underscore":
        return f"{first} underscore {last} at {spoken_domain}"
    if style == "digits":
        return f"{first[0]}{last}{digits} at {spoken_domain}"
    return f"{first[0]} dot {last} at {'.'.join(domain) if rng.random() < 0.5 else spoken_domain}"


def make_address(rng: random.Random, cased: bool) -> str:
    number = str(rng.choice([rng.randint(1, 99), rng.randint(100, 999), rng.randint(1000, 99999)]))
    house = number if rng.random() < 0.6 else say_group(number, rng)
    direction = rng.choice(["", "", "", "North ", "South ", "E ", "West "])
    street = rng.choice(STREETS)
    full, short = rng.choice(SUFFIXES)
    suffix = full if rng.random() < 0.5 else short + ("." if cased and rng.random() < 0.5 else "")
    text = f"{house} {direction}{street} {suffix}"
    if rng.random() < 0.3:
        unit = rng.choice(["apartment 5b", "apt 12", "unit 3", "suite 200", "apartment four c",
                           "apt. 7"])  # fmt: skip
        text += rng.choice([", ", " "]) + unit
    return text if cased else text.lower()


def make_expiry(rng: random.Random) -> str:
    month, year = rng.randint(1, 12), rng.randint(25, 34)
    style = rng.choice(["slash", "slash", "long", "mmyy", "space", "spoken", "spoken", "month"])
    if style == "slash":
        return f"{month:02d}/{year}" if rng.random() < 0.7 else f"{month}/{year}"
    if style == "long":
        return f"{month:02d}/20{year}"
    if style == "mmyy":
        return f"{month:02d}{year}"
    if style == "space":
        return f"{month:02d} {year}"
    if style == "spoken":
        if month >= 10:
            said_month = say_pair(str(month), rng)
        else:
            said_month = rng.choice(["oh ", ""]) + _ONES[month]
        joiner = " slash " if rng.random() < 0.2 else " "
        return f"{said_month}{joiner}{say_pair(str(year), rng)}"
    return f"{MONTHS[month - 1]} {rng.choice([say_pair(str(year), rng), f'20{year}'])}"


def make_cvv(rng: random.Random) -> str:
    code = "".join(rng.choice("0123456789") for _ in range(rng.choice([3, 3, 3, 4])))
    style = rng.choice(["digits", "digits", "singles", "repeats", "pairs"])
    if style == "digits":
        return code
    if style == "singles":
        return say_singles(code, rng)
    if style == "repeats":
        return say_singles(code, rng, repeats=True)
    return say_group(code, rng)


# --- Utterance templates ----------------------------------------------------------------------
# "{kind}" is a slot filled with personal data; "<<text>>" is context that must survive.

CARD_WITH_CONTEXT = [
    "my card number is {card}", "it's a visa, {card}", "the card is {card}",
    "sure, the number is {card}", "credit card {card}",
    "okay my mastercard number is {card}, thanks", "{card} is the card number",
    "debit card, {card}", "the long number on the card is {card}", "amex {card}",
    "yeah I'll pay by card, it's {card}", "card number {card} and the name on it is mine",
    "let me get my card out, okay, {card}", "it's my discover card {card}",
    "the number on my credit card is {card} and my appointment is <<at 9 am>>",
]  # fmt: skip
CARD_NO_CONTEXT = [
    "{card}", "um, {card}", "yes {card} okay", "so it's {card}", "let me read it, {card}",
    "{card}, did you get that?", "it is {card}", "okay here goes {card}",
]  # fmt: skip
EXPIRY_T = [
    "expiry {exp}", "it expires {exp}", "exp {exp}", "the expiration date is {exp}",
    "expiry date {exp}", "and it expires on {exp}", "valid thru {exp}", "good through {exp}",
    "the card expires {exp}", "expiration {exp}, I think",
]  # fmt: skip
CVV_T = [
    "security code is {cvv}", "cvv {cvv}", "the cvv is {cvv}", "cvc {cvv}",
    "the three digits on the back are {cvv}", "the code on the back is {cvv}",
    "the csc is {cvv}", "and the security code, {cvv}", "it's {cvv}, the cvv",
]  # fmt: skip
SSN_WITH_CONTEXT = [
    "my social security number is {ssn}", "social is {ssn}", "ssn {ssn}", "{ssn} is my social",
    "social security {ssn}", "you need my social? it's {ssn}",
]  # fmt: skip
PHONE_T = [
    "my number is {phone}", "call me back at {phone}", "you can reach me at {phone}",
    "my cell is {phone}", "{phone}", "phone number {phone}", "it's {phone}",
    "best number to reach me is {phone}, <<after 5>> is best",
]  # fmt: skip
EMAIL_T = [
    "my email is {email}", "it's {email}", "email {email}", "you can email me at {email}",
    "send it to {email} please", "my email address is {email}",
]  # fmt: skip
ADDRESS_T = [
    "I live at {addr}", "my address is {addr}", "{addr}", "we're at {addr}",
    "send the bill to {addr}", "the address is {addr}, <<next to the park>>",
]  # fmt: skip
NAME_T = [
    "my name is {name}", "this is {name}", "I'm {name}", "I am {name}", "name's {name}",
    "it's {name} speaking", "hi this is {name}, <<calling about>> my appointment",
    "hello my name is {name} and I'd like to book <<a {service}>>", "hi, I'm {name}",
    "yes, this is {name}", "the name is {name}",
]  # fmt: skip
COMBO_T = [
    "hi this is {name} my card number is {card} expiry {exp} and the cvv is {cvv}",
    "my name is {name} and my number is {phone}",
    "my email is {email} and my phone is {phone}",
    "I'm {name}, I live at {addr}",
    "the card is {card}, it expires {exp}, security code {cvv}",
    "my social is {ssn} and my cell is {phone}",
    "this is {name}, you can reach me at {phone} or {email}",
    "visa {card} expiry {exp}, <<for the 90 dollar {service}>>",
]  # fmt: skip
NEAR_MISS_T = [
    "a <<{service}>> is <<{price} dollars>>", "<<{service}>> is <<${price}>>, right?",
    "it costs <<two hundred fifty dollars>>", "is it <<90 dollars or 120>>?",
    "you're open <<9 am to 1 pm>> on saturday?", "can I come at <<twelve thirty>>?",
    "is <<10:30>> tomorrow okay?", "anytime <<between two and four>> works",
    "how about <<next Tuesday>>?", "is <<the 24th>> free?", "I was there on <<March 3rd>>",
    "my last visit was <<June 5, 2024>>", "you came out on <<3/14>>",
    "I have <<2 kids>>", "there are <<three of us>>", "a booking for <<4 people>>",
    "<<press 0>> for the operator?", "I'm in <<room 101>>", "extension <<204>> please",
    "I pressed <<option 3>>", "my order <<{order}>> hasn't arrived",
    "order <<{order}>>", "the tracking number is <<{order}>>", "my order number is <<{order}>>",
    "I've been coming here <<since 2019>>", "back in <<twenty twenty three>>",
    "I'm <<looking>> for an appointment", "I'm <<calling>> about my bill", "this is <<urgent>>",
    "I'm <<not sure>>", "I am <<interested>> in <<{service}>>", "this is <<my first visit>>",
    "I'm <<a new customer>>", "I'm <<just checking>>", "I'm <<so sorry>>",
    "this is <<for my son>>", "I am <<running late>>", "I'm <<fine>> thanks",
    "I'm <<here for a {service}>>", "it's <<me again>>", "this is <<about my appointment>>",
    "I'm <<wondering>> if you're open", "I'm <<available>> on monday", "I'm <<afraid>> I can't",
    "I'm <<okay with that>>", "this is <<the second time>> I called", "I'm <<free after 3>>",
    "I'm <<on my way>>", "I am <<a bit nervous>>", "this is <<really helpful>>",
    "I'm <<still waiting>>", "do you take <<visa>>?", "can I pay by <<credit card>>?",
    "my card <<expires next month>>", "where is the <<security code>>?",
    "do you need the <<cvv>>?", "what's your <<email>>?", "is this the right <<number>>?",
    "it's a <<20 minute drive>>", "it's a <<two lane road>>", "it's a <<10 mile drive>>",
    "we're <<2 blocks>> from the park", "we're on the <<3rd floor>>", "item number <<14>> is wrong",
    "I had <<3 of those>>", "my membership group is <<4521>>", "is it <<9 or 10>>?",
    "I'll be there at <<9 am on Main Street>>", "the kids are <<6 and 9>>",
    "I can do <<three fifteen>>", "my appointment is at <<two thirty pm>>",
    "I need <<two appointments>> for <<next week>>", "it's been <<six months>>",
    "I'm <<thirty five>> years old", "my son is <<twelve>>", "<<fifty percent>> off?",
    "the bill says <<$1,250>>", "I paid <<one hundred and twenty dollars>>",
    "I'll call back <<in 10 minutes>>", "oh, <<one more thing>>", "oh I see",
    "my confirmation code is <<{code}>>", "I'm calling from <<work>>", "I'm <<at work>>",
    "this is <<{business}>>, right?", "I'm <<really stuck>>", "is this <<{business}>>?",
    "I'm <<calling {business}>>", "I'm <<after a {service}>>", "this is <<{known}>>, isn't it?",
    "I'm <<hoping>> to come in friday", "this is <<so frustrating>>", "I'm <<pretty flexible>>",
    "I'm <<free all day>>", "I'm <<a little confused>>", "this is <<embarrassing>> but",
    "I'm <<new to the area>>", "I am <<currently traveling>>", "I'm <<kind of>> in a hurry",
    "this is <<my daughter's>> appointment", "I'm <<twenty two>>", "I'm <<over sixty>>",
    "I'm <<with {known}>>", "I'm <<returning your call>>", "I'm <<sensitive to cold>>",
    "I'm <<allergic to latex>>", "this is <<taking forever>>", "I am <<unable>> to come",
    "I'm <<all set>>", "I'm <<good>>, thanks", "I'm <<outside>> now", "I'm <<Canadian>>",
    "the <<card>> I used is expired", "<<visa or mastercard>>, which is better?",
    "my <<phone>> died earlier", "the <<security code>> didn't work",
    "I'll <<email>> you the form", "we moved to <<Oak Street>> last year",
]  # fmt: skip

_SLOT = re.compile(r"\{(\w+)\}|<<(.*?)>>")
_SLOT_KIND = {"card": CARD, "exp": EXPIRY, "cvv": CVV, "ssn": SSN, "phone": PHONE,
              "email": EMAIL, "addr": ADDRESS, "name": NAME}  # fmt: skip


def _style_text(piece: str, style: str) -> str:
    """Template text as one ASR style writes it (personal data is rendered separately)."""
    if style == "cased":
        return re.sub(r"\bi\b", "I", piece)
    piece = piece.lower()
    return re.sub(r"[,.?!;]", "", piece) if style == "asr" else piece


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, values: dict[str, str], style: str, category: str) -> Case:
    """A case from a template: slots become personal data (expected), <<...>> is kept."""
    text, expected, keep, pos = "", [], [], 0
    for m in _SLOT.finditer(template):
        text += _style_text(template[pos : m.start()], style)
        if m.group(1):
            surface = values[m.group(1)]
            expected.append((_SLOT_KIND[m.group(1)], surface))
        else:
            surface = _style_text(m.group(2).format(**values), style)
            keep.append(surface)
        text += surface
        pos = m.end()
    text += _style_text(template[pos:], style)
    text = re.sub(r"\s+", " ", text).strip()
    if style in ("cased", "firstcap"):
        # A sentence-initial capital lands on the personal data when it comes first.
        expected = [(k, _cap(v) if text.startswith(v) else v) for k, v in expected]
        keep = [_cap(k) if text.startswith(k) else k for k in keep]
        text = _cap(text)
    if style == "cased":
        text += "" if text[-1] in ".?!" else "."
    for _, surface in expected:
        assert surface in text, (surface, text)
    return Case(text, expected, [k for k in keep if k.strip()], category)


@dataclass(frozen=True)
class AgentWords:
    """What the set's sentences say of the business: from its agent file, never from here."""

    business: str
    services: tuple[str, ...]
    known: tuple[str, ...]  # other proper nouns of the file: places, companies, days

    @classmethod
    def of(cls, agent: AgentConfig) -> "AgentWords":
        services = tuple(c.name for c in agent.choices()) or ("visit",)
        known = tuple(w for w in agent.vocabulary() if w[:1].isupper() and w != agent.name) or (agent.name,)
        return cls(agent.name, services, known)


def _values(rng: random.Random, style: str, words: AgentWords, card_error: bool = False) -> dict[str, str]:
    """One set of personal data, rendered for ``style``, and the business's words."""
    cased = style == "cased"
    first, last = rng.choice(FIRST), rng.choice(LAST)
    _, card, groups = make_card(rng)
    if card_error:
        card = asr_error(card, rng)
    order = "".join(rng.choice("0123456789") for _ in range(16))
    while luhn_ok(order):
        order = order[:-1] + str((int(order[-1]) + 1) % 10)
    return {
        "card": render_digits(card, groups, rng),
        "exp": make_expiry(rng),
        "cvv": make_cvv(rng),
        "ssn": render_ssn(make_ssn(rng), rng),
        "phone": render_phone(make_phone(rng), rng),
        "email": make_email(rng, first, last),
        "addr": make_address(rng, cased),
        "name": make_name(rng, cased),
        "price": str(rng.choice([75, 90, 120, 150, 250, 300])),
        "order": order,
        "code": "".join(rng.choice("0123456789") for _ in range(rng.choice([5, 6, 8]))),
        "business": words.business,
        "service": rng.choice(words.services).lower(),
        "known": rng.choice(words.known),
    }


def _maker(templates: list[str], card_error: bool = False) -> Callable:
    """A case maker: a random template from ``templates`` and fresh personal data."""
    return lambda rng, style, words: (rng.choice(templates), _values(rng, style, words, card_error))


# category -> (share of the set, maker). Cards without context are all Luhn-valid: that is the
# only thing that marks them; misheard (Luhn-failing) cards always come with card talk.
_MAKERS: dict[str, tuple[float, Callable]] = {
    "card": (0.13, _maker(CARD_WITH_CONTEXT)),
    "card_asr_error": (0.04, _maker(CARD_WITH_CONTEXT, card_error=True)),
    "card_no_context": (0.05, _maker(CARD_NO_CONTEXT)),
    "expiry": (0.07, _maker(EXPIRY_T)),
    "cvv": (0.07, _maker(CVV_T)),
    "ssn": (0.07, _maker(SSN_WITH_CONTEXT)),
    "phone": (0.07, _maker(PHONE_T)),
    "email": (0.06, _maker(EMAIL_T)),
    "address": (0.06, _maker(ADDRESS_T)),
    "name": (0.07, _maker(NAME_T)),
    "combo": (0.06, _maker(COMBO_T)),
    "near_miss": (0.25, _maker(NEAR_MISS_T)),
}


def generate(agent: AgentConfig, seed: int = 4111, n: int = 600) -> list[Case]:
    """``n`` utterances to ``agent`` (a quarter of them near-misses), the same ones for the same
    seed and agent file."""
    rng = random.Random(seed)
    words = AgentWords.of(agent)
    counts = {cat: int(n * share) for cat, (share, _) in _MAKERS.items()}
    counts["near_miss"] += n - sum(counts.values())
    cases: list[Case] = []
    for category, count in counts.items():
        maker = _MAKERS[category][1]
        for _ in range(count):
            style = rng.choice(["cased", "asr", "asr", "firstcap"])
            template, values = maker(rng, style, words)
            cases.append(_fill(template, values, style, category))
    rng.shuffle(cases)
    return cases


# --- Scoring ------------------------------------------------------------------------------------


def _locations(text: str, sub: str) -> list[tuple[int, int]]:
    return [(m.start(), m.start() + len(sub)) for m in re.finditer(re.escape(sub), text)]


def _hidden(text: str, loc: tuple[int, int], spans: list[Span]) -> bool:
    """Every letter and digit of ``text[loc]`` lies under some span."""
    return all(
        not text[i].isalnum() or any(s.start <= i < s.end for s in spans)
        for i in range(loc[0], loc[1])
    )


def _overlaps(span: Span, loc: tuple[int, int]) -> bool:
    return span.start < loc[1] and loc[0] < span.end


def _apply(text: str, spans: list[Span]) -> str:
    out, pos = [], 0
    for s in spans:
        out += [text[pos : s.start], f"[{s.kind}]"]
        pos = s.end
    return "".join(out) + text[pos:]


def evaluate(cases: list[Case], business: BusinessWords = BusinessWords()) -> dict:
    """Recall and precision per kind, near-miss survival and examples of what went wrong.

    Recall: an expected substring counts as found when it no longer appears in the redacted
    text, every letter and digit of it was covered, and a span of the right kind covers part of
    it (so ``[KIND]`` is in the output). Precision: an emitted span is correct when it overlaps
    an expected substring of its own kind; any span in a near-miss utterance is a false
    positive. A kind that emitted nothing has precision 1.0.
    """
    stats = {k: {"cases": 0, "found": 0, "emitted": 0, "correct": 0} for k in KINDS}
    near, near_ok, kept, keep_total = 0, 0, 0, 0
    misses: list[dict] = []
    false_positives: list[dict] = []
    for case in cases:
        spans = find_spans(case.text, business)
        redacted = _apply(case.text, spans)
        for kind, sub in case.expected:
            stats[kind]["cases"] += 1
            locs = _locations(case.text, sub)
            found = sub not in redacted and f"[{kind}]" in redacted and any(
                _hidden(case.text, loc, spans)
                and any(s.kind == kind and _overlaps(s, loc) for s in spans)
                for loc in locs
            )
            stats[kind]["found"] += found
            if not found:
                misses.append({"kind": kind, "text": case.text, "redacted": redacted})
        for span in spans:
            stats[span.kind]["emitted"] += 1
            ok = any(
                kind == span.kind and any(_overlaps(span, at) for at in _locations(case.text, sub))
                for kind, sub in case.expected
            )
            stats[span.kind]["correct"] += ok
            if not ok:
                false_positives.append({"kind": span.kind, "text": case.text, "redacted": redacted})
        if not case.expected:
            near += 1
            near_ok += redacted == case.text
        keep_total += len(case.keep)
        kept += sum(k in redacted for k in case.keep)
    kinds = {k: _ratios(v) for k, v in stats.items()}
    total = {f: sum(v[f] for v in stats.values()) for f in ("cases", "found", "emitted", "correct")}
    return {
        "utterances": len(cases),
        "near_miss_utterances": near,
        "near_miss_survival": near_ok / near if near else 1.0,
        "keep_survival": kept / keep_total if keep_total else 1.0,
        "kinds": kinds,
        "overall": _ratios(total),
        "misses": misses,
        "false_positives": false_positives,
    }


def _ratios(counts: dict[str, int]) -> dict:
    return {
        **counts,
        "recall": counts["found"] / counts["cases"] if counts["cases"] else 1.0,
        "precision": counts["correct"] / counts["emitted"] if counts["emitted"] else 1.0,
    }


# --- Report -------------------------------------------------------------------------------------


def _timing(cases: list[Case], business: BusinessWords) -> dict:
    """Microseconds per utterance over the whole set (machine-dependent, for scale only)."""
    took = []
    for case in cases:
        t0 = time.perf_counter()
        find_spans(case.text, business)
        took.append((time.perf_counter() - t0) * 1e6)
    took.sort()
    return {
        "mean_us": round(sum(took) / len(took), 1),
        "p99_us": round(took[int(len(took) * 0.99) - 1], 1),
        "max_us": round(took[-1], 1),
    }


def to_markdown(report: dict) -> str:
    agents = report["agents"]
    first = next(iter(agents.values()))
    lines = [
        "# Redaction: recall and precision per kind",
        "",
        f"Generated sets: {first['utterances']} utterances per agent (seed {report['seed']}), "
        f"{first['near_miss_utterances']} of them near-misses with nothing to redact. Each shipped agent "
        "gets its own set: its business name, services and the proper nouns of its facts fill the "
        "sentences that must survive, and the redactor is given that agent's words "
        "(`BusinessWords.of(agent.name, agent.vocabulary())`), as on a call to it.",
        "",
        f"Command: `{report['command']}`",
        "",
        "| agent | kind | cases | recall | precision |",
        "|---|---|---:|---:|---:|",
    ]
    for name, result in agents.items():
        for kind, v in result["kinds"].items():
            lines.append(f"| {name} | {kind} | {v['cases']} | {v['recall']:.1%} | {v['precision']:.1%} |")
        o = result["overall"]
        lines.append(f"| {name} | **overall** | {o['cases']} | {o['recall']:.1%} | {o['precision']:.1%} |")
    lines.append("")
    for name, result in agents.items():
        lines.append(
            f"- {name}: near-miss utterances left unchanged {result['near_miss_survival']:.1%}; context that "
            f"must survive (e.g. \"9 am\", \"looking\", the business name) kept {result['keep_survival']:.1%}; "
            f"{result['timing']['mean_us']} µs mean, {result['timing']['p99_us']} µs p99 per utterance "
            "(one CPU core; varies by machine)."
        )
    lines += ["", "The same sets with the redactor not told the business's words (`redact(text)`), which shows "
              "what the agent file's words do:", ""]
    for name, result in agents.items():
        blind = result["without_business_words"]
        lines.append(
            f"- {name}: near-misses unchanged {blind['near_miss_survival']:.1%}, context kept "
            f"{blind['keep_survival']:.1%}, NAME precision {blind['name_precision']:.1%}"
            + (f" (e.g. `{blind['false_positives'][0]['redacted']}`)" if blind["false_positives"] else "")
        )
    lines += [
        "",
        "Recall: the expected text is gone, every letter and digit of it was covered and the "
        "right `[KIND]` placeholder replaced it. Precision: placeholders that cover an expected "
        "span of their own kind; any placeholder in a near-miss utterance is a false positive.",
        "",
        "The set and the rules were written together, so these are in-sample figures: they "
        "guard against regressions, they do not measure accuracy on real calls "
        "(see `benchmarks/redaction/README.md`).",
        "",
    ]
    return "\n".join(lines)


def run(agent_names: list[str], seed: int, n: int) -> dict[str, dict]:
    """Each agent's set, scored with that agent's words given to the redactor."""
    results = {}
    for name in agent_names:
        agent = load_agent(name)
        business = BusinessWords.of(agent.name, agent.vocabulary())
        cases = generate(agent, seed, n)
        blind = evaluate(cases)  # the same set, the redactor not told the business's words
        results[name] = {
            **evaluate(cases, business), "timing": _timing(cases, business),
            "without_business_words": {
                "near_miss_survival": blind["near_miss_survival"], "keep_survival": blind["keep_survival"],
                "name_precision": blind["kinds"][NAME]["precision"], "false_positives": blind["false_positives"][:10],
            },
        }
    return results


def main(argv: list[str] | None = None) -> int:
    shipped = sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=4111)
    parser.add_argument("-n", type=int, default=600, help="utterances to generate per agent")
    parser.add_argument("--agents", nargs="+", default=shipped, help="agent names or files (default: every shipped agent)")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--md", type=Path, help="write the figures here as Markdown")
    args = parser.parse_args(argv)
    argv_shown = sys.argv[1:] if argv is None else argv
    report = {
        "command": " ".join(["python benchmarks/redaction/testset.py", *argv_shown]),
        "seed": args.seed,
        "agents": run(args.agents, args.seed, args.n),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(to_markdown(report))
    print(to_markdown(report))
    for name, result in report["agents"].items():
        for item in result["misses"][:20] + result["false_positives"][:20]:
            print(name, item, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
