"""Redaction of personal data in call transcripts: each kind, its near-misses, and the
generated benchmark set held to its targets."""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from pathlib import Path

import pytest

from voicebox.agent import BUILTIN_DIR, load_agent
from voicebox.privacy.redact import (
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
    number_runs,
    redact,
    spoken_digits,
)
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the set's generator is a benchmark, not part of the runtime package

from benchmarks.redaction.testset import (  # noqa: E402
    Case,
    evaluate,
    generate,
    luhn_complete,
    main,
    make_card,
    say_group,
    say_singles,
)

# --- Luhn -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "digits",
    [
        "4111111111111111",  # Visa test card
        "5555555555554444",  # Mastercard
        "378282246310005",  # Amex, 15 digits
        "6011111111111117",  # Discover
        "4222222222222",  # Visa, 13 digits
        "6011000990139424",
        "79927398713",  # the textbook example
    ],
)
def test_luhn_accepts_valid_numbers(digits):
    assert luhn_ok(digits)


@pytest.mark.parametrize(
    "digits",
    ["4111111111111112", "1234567812345678", "79927398710", "4111111111111", "", "41-11", "abc"],
)
def test_luhn_rejects_invalid_numbers(digits):
    assert not luhn_ok(digits)


def test_luhn_complete_appends_the_check_digit():
    assert luhn_complete("411111111111111") == "4111111111111111"
    assert luhn_complete("7992739871") == "79927398713"


# --- Spoken numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said,digits",
    [
        ("four one one one", "4111"),
        ("forty one eleven", "4111"),
        ("forty-one eleven", "4111"),
        ("double one", "11"),
        ("triple oh seven", "0007"),
        ("oh nine twenty nine", "0929"),
        ("zero o oh", "000"),
        ("twelve twenty eight", "1228"),
        ("forty one hundred", "4100"),
        ("forty one hundred, eleven eleven", "41001111"),
        ("four hundred fifty", "450"),
        ("two hundred and five", "205"),
        ("two thousand twenty eight", "2028"),
        ("nineteen", "19"),
        ("ninety three", "93"),
        ("ninety, three", "903"),  # a pause splits a pair reading
        ("4111 one one one", "4111111"),
        ("five five five dash one two three", "555123"),
        ("twelve slash twenty eight", "1228"),
        ("(555) 123-4567", "5551234567"),
        ("555.123.4567", "5551234567"),
        ("4,111,111", "4111111"),
        ("12/28", "1228"),
        ("oh I see", ""),  # "oh" alone is no zero
        ("oh, one more thing", "1"),
        ("a double room", ""),  # "double" without a digit is no number
        ("the 24th and 5b", ""),  # mixed tokens are words
    ],
)
def test_spoken_digits(said, digits):
    assert spoken_digits(said) == digits


def test_number_runs_split_at_words_and_sentence_ends():
    runs = number_runs("is 10:30 ok? it was 3. 4 of us")
    assert [r.digits for r in runs] == ["10", "30", "3", "4"]
    run = number_runs("call 555 123 4567 now")[0]
    assert "call 555 123 4567 now"[run.start : run.end] == "555 123 4567"


def test_generator_speech_reads_back_to_the_same_digits():
    import random

    rng = random.Random(7)
    for _ in range(300):
        _, card, groups = make_card(rng)
        assert spoken_digits(say_singles(card, rng, repeats=True)) == card
        group = card[:4]
        assert spoken_digits(say_group(group, rng)) == group


def test_make_card_covers_brands_and_lengths():
    import random

    rng = random.Random(1)
    cards = [make_card(rng) for _ in range(400)]
    assert all(luhn_ok(digits) for _, digits, _ in cards)
    assert {len(digits) for _, digits, _ in cards} == {13, 15, 16, 19}
    assert {brand for brand, _, _ in cards} == {"visa", "mastercard", "amex", "discover"}


# --- Each kind: what must go ------------------------------------------------------------------

POSITIVES = [
    # cards: digits, dashes, plain, spoken, pairs, double/triple, mixed, no context, misheard
    ("my card number is 4111 1111 1111 1111", CARD, "4111 1111 1111 1111"),
    ("it's 4111-1111-1111-1111", CARD, "4111-1111-1111-1111"),
    ("4111111111111111", CARD, "4111111111111111"),
    ("four one one one one one one one one one one one one one one one", CARD, "four one"),
    ("visa forty one eleven eleven eleven eleven eleven eleven eleven", CARD, "forty one eleven"),
    ("four triple one double one double one one one one one one one one one", CARD, "triple one"),
    ("card 4111 one one one one one one one one one one one one", CARD, "4111 one"),
    ("amex 3782 822463 10005", CARD, "3782 822463 10005"),
    ("five five five five, five five five five, five five five five, four four four four",
     CARD, "four four four four"),  # fmt: skip
    ("my card number is 4111 1111 1111 1121", CARD, "4111 1111 1111 1121"),  # Luhn fails
    ("the number is 4111 1111 1111 111", CARD, "4111 1111 1111 111"),  # a digit dropped
    ("debit card, 4111 1111 1111", CARD, "4111 1111 1111"),  # half a card after a card word
    ("um 6011 0009 9013 9424 okay", CARD, "6011 0009 9013 9424"),  # Luhn-valid, no context
    # expiry and security code
    ("expiry twelve twenty eight", EXPIRY, "twelve twenty eight"),
    ("it expires 12/28", EXPIRY, "12/28"),
    ("exp 0929", EXPIRY, "0929"),
    ("the expiration date is oh nine slash twenty nine", EXPIRY, "oh nine slash twenty nine"),
    ("valid thru march 2027", EXPIRY, "march 2027"),
    ("it expires in december of twenty seven", EXPIRY, "december of twenty seven"),
    ("security code is 123", CVV, "123"),
    ("cvv four five six", CVV, "four five six"),
    ("the three digits on the back are 789", CVV, "789"),
    ("it's 4321, the cvc", CVV, "4321"),
    # social security numbers
    ("123-45-6789", SSN, "123-45-6789"),
    ("it's 123 45 6789", SSN, "123 45 6789"),
    ("my social security number is one two three four five six seven eight nine", SSN,
     "one two three four five six seven eight nine"),  # fmt: skip
    ("ssn 123456789", SSN, "123456789"),
    # phones
    ("(555) 123-4567", PHONE, "(555) 123-4567"),
    ("call me at 555-123-4567", PHONE, "555-123-4567"),
    ("+1 555 123 4567", PHONE, "+1 555 123 4567"),
    ("5551234567", PHONE, "5551234567"),
    ("my number is five five five one two three four five six seven", PHONE, "five five five"),
    ("my cell is 555 1234", PHONE, "555 1234"),
    # e-mail
    ("email me at dana dot smith at gmail dot com", EMAIL, "dana dot smith at gmail dot com"),
    ("it's dana.smith@gmail.com", EMAIL, "dana.smith@gmail.com"),
    ("my email is dsmith84 at yahoo dot com", EMAIL, "dsmith84 at yahoo dot com"),
    ("my email is dana smith at gmail dot com", EMAIL, "dana smith at gmail dot com"),
    ("send it to d a n a at outlook dot co dot uk", EMAIL, "d a n a at outlook dot co dot uk"),
    # addresses
    ("I live at 12 Oak Street", ADDRESS, "12 Oak Street"),
    ("4521 north main st", ADDRESS, "4521 north main st"),
    ("twelve oak street", ADDRESS, "twelve oak street"),
    ("we're at 77 maple ave apartment 5b", ADDRESS, "77 maple ave apartment 5b"),
    ("I live at 221b Baker Street", ADDRESS, "221b Baker Street"),
    ("I'm in apartment 5b", ADDRESS, "apartment 5b"),
    # names
    ("My name is Dana Smith.", NAME, "Dana Smith"),
    ("hi this is dana smith calling about my appointment", NAME, "dana smith"),
    ("I'm Dana", NAME, "Dana"),
    ("i am priya", NAME, "priya"),
    ("name's bob", NAME, "bob"),
    ("it's Dana speaking", NAME, "Dana"),
    ("last name garcia", NAME, "garcia"),
    ("i'm a patient named carlos ruiz", NAME, "carlos ruiz"),
    ("Hi, this is Dr. Patel", NAME, "Patel"),
    ("my name is Mary-Jane O'Brien", NAME, "O'Brien"),
    ("my name is mary-jane o'brien and i need a cleaning", NAME, "mary-jane"),
]


@pytest.mark.parametrize("text,kind,secret", POSITIVES)
def test_personal_data_is_replaced(text, kind, secret):
    out = redact(text)
    assert secret not in out
    assert f"[{kind}]" in out


@pytest.mark.parametrize(
    "text,expected",
    [
        ("hi this is Dana Smith my card number is 4111 1111 1111 1111 expiry 12/28 cvv 123",
         "hi this is [NAME] my card number is [CARD] expiry [EXPIRY] cvv [CVV]"),
        ("my number is 555 123 4567 and my email is dana@gmail.com",
         "my number is [PHONE] and my email is [EMAIL]"),
        ("I'm Tom, I live at 9 Elm Ct, see you at 9 am",
         "I'm [NAME], I live at [ADDRESS], see you at 9 am"),
        ("four one one one one one one one one one one one one one one one twelve twenty eight",
         "[CARD] twelve twenty eight"),  # a card read straight into more digits is cut out
        ("my social is 123-45-6789.", "my social is [SSN]."),
        ("it expires 12/28 security code 123",  # the nearer cue decides
         "it expires [EXPIRY] security code [CVV]"),
    ],
)  # fmt: skip
def test_whole_utterances(text, expected):
    assert redact(text) == expected


def test_spans_are_exact_and_in_order():
    text = "call (555) 123-4567 or mail dana@gmail.com"
    spans = find_spans(text)
    assert spans == [Span(5, 19, PHONE), Span(28, 42, EMAIL)]
    assert text[spans[0].start : spans[0].end] == "(555) 123-4567"
    assert all(s.kind in KINDS for s in spans)


def test_email_wins_over_the_digits_inside_it():
    assert redact("it's 5551234567@gmail.com") == "it's [EMAIL]"


# --- Near-misses: what must stay -------------------------------------------------------------

NEAR_MISSES = [
    "a cleaning is 90 dollars",
    "whitening is $250",
    "we're open 9 am to 1 pm",
    "can I come at twelve thirty",
    "is 10:30 okay",
    "how about next Tuesday",
    "is the 24th free",
    "I saw the doctor on 3/14",
    "I have 2 kids",
    "press 0 for the operator",
    "I'm in room 101",
    "extension 204 please",
    "order 1234567812345678",  # 16 digits, fails Luhn, no card talk
    "my order number is 1234567812345678",  # "number is", but an order number
    "I've been coming here since 2024",
    "back in twenty twenty three",
    "I'm looking for an appointment",
    "I'm calling about my bill",
    "this is urgent",
    "I am interested in whitening",
    "I'm not sure",
    "I'm just checking",
    "this is my first visit",
    "i'm allergic to penicillin",
    "i'm starving",
    "do you take visa",
    "my card expires next month",
    "what's the security code for",
    "it's a 20 minute drive",
    "it's a two lane road",
    "I'll be there at 9 am on Main Street",
    "we moved to Oak Street last year",
    "I paid one hundred and twenty dollars",
    "the bill says $1,250",
    "oh I see",
    "my insurance group is 4521",
    "I'm thirty five years old",
    "what is your last name",
    "i'm between jobs",
    "",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_survive(text):
    assert redact(text) == text


def test_order_number_is_not_a_card_but_a_valid_card_is():
    assert not luhn_ok("1234567812345678")
    assert "[CARD]" not in redact("order 1234567812345678")
    assert redact("order 4111111111111111") == "order [CARD]"  # Luhn-valid: always a card


def test_card_talk_catches_a_misheard_number_that_plain_talk_does_not():
    misheard = "4111 1111 1111 1121"
    assert not luhn_ok(misheard.replace(" ", ""))
    assert redact(f"the card is {misheard}") == "the card is [CARD]"
    assert redact(f"the order is {misheard}") == f"the order is {misheard}"


# --- The business's own words come from its agent file ----------------------------------------

AGENTS = sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


@pytest.mark.parametrize("name", AGENTS)
def test_the_business_name_is_no_caller_name_given_the_agents_words(name):
    agent = load_agent(name)
    words = BusinessWords.of(agent.name, agent.vocabulary())
    for text in (f"This is {agent.name}, right?", f"this is {agent.name.lower()} right"):
        assert redact(text, words) == text
    # A caller's name is still one, on a call to this business.
    assert redact("My name is Dana Smith.", words) == "My name is [NAME]."
    assert redact("this is dana smith and i'd like to book", words) == "this is [NAME] and i'd like to book"


def test_a_word_of_the_business_name_after_a_name_marks_another_business():
    words = BusinessWords.of("Maple Bakery", ["sourdough", "Elm Road"])
    assert redact("this is Northside Bakery calling", words) == "this is Northside Bakery calling"
    assert redact("this is Northside Bakery calling") == "this is [NAME] calling"  # not told: a person
    assert redact("i'm here for the sourdough", words) == "i'm here for the sourdough"


def test_business_words_are_the_lowercase_words_of_the_agents_phrases():
    words = BusinessWords.of("Maple Bakery", ["Maple Bakery", "rye loaf", "Elm Road", "gluten-free"])
    assert words.name_words == {"maple", "bakery"}
    assert words.words == {"maple", "bakery", "rye", "loaf", "elm", "road", "gluten", "free"}


# --- The generated set -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def agent():
    return load_agent(AGENTS[0])


@pytest.fixture(scope="module")
def cases(agent) -> list[Case]:
    return generate(agent)


def test_generated_set_size_and_mix(cases):
    assert len(cases) >= 500
    near = [c for c in cases if not c.expected]
    assert len(near) >= 100
    kinds = {kind for c in cases for kind, _ in c.expected}
    assert kinds == set(KINDS)
    assert any("4111" in c.text for c in cases if c.expected and c.expected[0][0] == CARD)
    assert any(c.text == c.text.lower() for c in cases)  # ASR-style lowercase
    assert any(c.text[:1].isupper() and c.text.endswith(".") for c in cases)  # cased


def test_generated_set_is_deterministic(agent, cases):
    assert generate(agent) == cases
    assert generate(agent, seed=1) != cases


@pytest.mark.parametrize("name", AGENTS)
def test_each_agents_set_speaks_of_that_business_only(name):
    agent = load_agent(name)
    text = "\n".join(c.text.lower() for c in generate(agent, n=300))
    assert agent.name.lower() in text
    assert any(c.name.lower() in text for c in agent.choices()) or not agent.choices()
    for other in AGENTS:
        if other != name:
            assert load_agent(other).name.lower() not in text, other


@pytest.mark.parametrize("name", AGENTS)
def test_targets_hold_for_every_agent(name):
    agent = load_agent(name)
    result = evaluate(generate(agent), BusinessWords.of(agent.name, agent.vocabulary()))
    kinds = result["kinds"]
    assert kinds[CARD]["recall"] == 1.0
    for kind in KINDS:
        assert kinds[kind]["cases"] >= 30, kind
        assert kinds[kind]["recall"] >= 0.95, (kind, result["misses"][:5])
        assert kinds[kind]["precision"] >= 0.95, (kind, result["false_positives"][:5])
    assert result["near_miss_survival"] >= 0.95
    assert result["keep_survival"] >= 0.95


def test_no_card_digits_survive_in_any_card_case(cases):
    card_cases = [c for c in cases if any(kind == CARD for kind, _ in c.expected)]
    assert len(card_cases) >= 100
    for case in card_cases:
        out = redact(case.text)
        assert "4111" not in out, case.text
        assert not re.search(r"\d(?:[\s-]?\d){12,18}", out), case.text
        assert not any(13 <= len(run.digits) <= 19 for run in number_runs(out)), case.text


def test_evaluate_counts_misses_and_false_positives():
    missed = evaluate([Case("my favourite colour is blue", [(NAME, "blue")], [])])
    assert missed["kinds"][NAME]["recall"] == 0.0
    assert missed["overall"]["recall"] == 0.0
    false_alarm = evaluate([Case("my name is Dana", [], ["Dana"])])
    assert false_alarm["near_miss_survival"] == 0.0
    assert false_alarm["keep_survival"] == 0.0
    assert false_alarm["kinds"][NAME]["precision"] == 0.0
    wrong_kind = evaluate([Case("call 555 123 4567", [(SSN, "555 123 4567")], [])])
    assert wrong_kind["kinds"][SSN]["recall"] == 0.0
    assert wrong_kind["kinds"][PHONE]["precision"] == 0.0


def test_main_writes_json_and_markdown(tmp_path):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    assert main(["-n", "120", "--agents", *AGENTS[:2], "--json", str(out_json), "--md", str(out_md)]) == 0
    data = json.loads(out_json.read_text())
    assert list(data["agents"]) == AGENTS[:2]
    for result in data["agents"].values():
        assert result["utterances"] == 120
        assert set(result["kinds"]) == set(KINDS)
        assert 0.0 <= result["without_business_words"]["near_miss_survival"] <= 1.0
    md = out_md.read_text()
    assert "| agent | kind | cases | recall | precision |" in md
    assert f"| {AGENTS[0]} | NAME |" in md
    assert "python benchmarks/redaction/testset.py -n 120" in md


def test_a_twenty_word_utterance_takes_under_a_millisecond():
    text = (
        "hi this is dana smith my card number is four one one one one one one one "
        "one one one one one one one one thanks"
    )
    timings = []
    for _ in range(200):
        t0 = time.perf_counter()
        redact(text)
        timings.append(time.perf_counter() - t0)
    assert statistics.median(timings) < 1e-3
