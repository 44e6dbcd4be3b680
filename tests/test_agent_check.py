"""``voicebox check``: errors with their lines, warnings, and the router's cross-validated mix-ups."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from voicebox.agent_check import EXIT_ERRORS, EXIT_OK, EXIT_WARNINGS, check_agent, format_report
from voicebox.toml_lines import key_lines, line_of

ROOT = Path(__file__).resolve().parents[1]

HEAD = """\
name = "Corner Bakery"
persona = "You answer the phone at a bakery."
greeting = "Corner Bakery, hello."

[facts]
hours = "7 am to 3 pm"
address = "1 Main Street"

[actions]
transfer_uri = "sip:counter@127.0.0.1"
"""

LOCATION = """
[[intents]]
name = "location"
answer = "We're at {address}."
examples = ["where are you", "what's your address", "where is the shop", "how do I find you",
  "where are you located", "what street are you on", "directions please", "where's the bakery",
  "how do I get there", "where can I find you"]
"""

HOURS = """
[[intents]]
name = "hours"
answer = "We're open {hours}."
examples = ["when are you open", "what are your hours", "what time do you open", "are you open today",
  "what time do you close", "how late are you open", "are you open on sunday", "opening hours please",
  "when do you shut", "are you open now"]
"""

# The same questions as HOURS in other words: the router cannot keep the two apart.
OPENING_TIMES = """
[[intents]]
name = "opening_times"
answer = "Our opening times are {hours}."
examples = ["when are you open", "what are your opening times", "what time do you open in the morning",
  "are you open tomorrow", "what time do you close tonight", "how late do you stay open",
  "are you open on saturday", "opening times please", "when do you close", "are you open right now"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def line_containing(text: str, needle: str, nth: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def test_the_shipped_agent_passes():
    run = subprocess.run([sys.executable, "-m", "voicebox", "check", "riverside_dental"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == EXIT_OK, run.stdout + run.stderr
    assert ": error:" not in run.stdout
    assert "0 errors" in run.stdout
    assert "Router cross-validation (5 folds" in run.stdout
    for intent in ("hours", "booking", "cancel", "human", "goodbye"):
        assert any(line.lstrip().startswith(f"{intent} ") for line in run.stdout.splitlines()), intent


def test_bad_toml_syntax_is_reported_at_its_line(tmp_path):
    text = HEAD + LOCATION.replace('answer = "We\'re at {address}."', 'answer = "We\'re at {address}.')
    report = check_agent(write(tmp_path, text))
    [error] = report.errors
    assert error.line == line_containing(text, "answer = ")
    assert "not valid TOML" in error.message
    assert report.exit_status() == EXIT_ERRORS


def test_an_unknown_fact_placeholder_is_reported_at_its_line(tmp_path):
    text = HEAD + LOCATION + HOURS.replace("{hours}", "{opening_hours}")
    report = check_agent(write(tmp_path, text))
    [error] = report.errors
    assert error.line == line_containing(text, "{opening_hours}")
    assert "hours" in error.message and "unknown fact {opening_hours}" in error.message
    assert f"agent.toml:{error.line}: error: " in format_report(report)


def test_an_intent_with_two_examples_is_an_error_at_its_line(tmp_path):
    text = HEAD + LOCATION + """
[[intents]]
name = "hours"
answer = "We're open {hours}."
examples = ["when are you open", "what are your hours"]
"""
    report = check_agent(write(tmp_path, text))
    [error] = report.errors
    assert error.line == line_containing(text, 'examples = ["when are you open"')
    assert "(hours).examples" in error.message and "at least 3" in error.message


def test_few_examples_are_a_warning(tmp_path):
    text = HEAD + LOCATION + """
[[intents]]
name = "hours"
answer = "We're open {hours}."
examples = ["when are you open", "what are your hours", "what time do you open", "are you open today"]
"""
    report = check_agent(write(tmp_path, text), cross_validate_router=False)
    assert not report.errors
    [warning] = report.warnings
    assert warning.line == line_containing(text, 'examples = ["when are you open"')
    assert "'hours' has 4 examples" in warning.message
    assert report.exit_status() == EXIT_OK and report.exit_status(strict=True) == EXIT_WARNINGS


def test_a_duplicate_intent_name_is_reported_at_the_second_one(tmp_path):
    text = HEAD + HOURS + LOCATION.replace('name = "location"', 'name = "hours"')
    report = check_agent(write(tmp_path, text))
    [error] = report.errors
    assert error.line == line_containing(text, 'name = "hours"', nth=2)
    assert "names used twice" in error.message and "hours" in error.message


def test_a_missing_transfer_target_is_a_warning(tmp_path):
    text = HEAD.replace('transfer_uri = "sip:counter@127.0.0.1"', "") + LOCATION + HOURS
    report = check_agent(write(tmp_path, text), cross_validate_router=False)
    assert any("transfer_uri is not set" in w.message for w in report.warnings)


MESSAGE_FORM = """
[[intents]]
name = "message"
answer = "I can take a message."
examples = ["can i leave a message", "take a message please", "tell the baker something", "pass a message on"]

[[forms]]
name = "note"
intent = "message"
kind = "message"
not_stored = "Sorry, I couldn't save that."

[[forms.fields]]
name = "phone"
type = "phone"
ask = "Your number?"

[[forms.fields]]
name = "text"
type = "text"
ask = "The message?"
"""


def test_forms_are_checked_at_their_lines(tmp_path):
    text = HEAD + LOCATION + MESSAGE_FORM
    report = check_agent(write(tmp_path, text), cross_validate_router=False)
    assert not report.errors
    offer = next(w for w in report.warnings if "not_stored offers no person" in w.message)
    assert offer.line == line_containing(text, 'not_stored = "Sorry')
    assert any("phone_region is not set" in w.message for w in report.warnings)
    assert "forms: note (message, started by message)" in format_report(report)
    bad = text.replace('intent = "message"', 'intent = "messages"')
    [error] = check_agent(write(tmp_path, bad), cross_validate_router=False).errors
    assert "started by intent 'messages', which the file does not have" in error.message


def test_overlapping_intents_show_in_the_confusion_table(tmp_path):
    text = HEAD + LOCATION + HOURS + OPENING_TIMES
    report = check_agent(write(tmp_path, text))
    assert not report.errors
    mixed = {(r.intent, r.routed) for r in report.cv.wrong()}
    assert ("hours", "opening_times") in mixed and ("opening_times", "hours") in mixed
    out = format_report(report)
    hours_row = next(line for line in out.splitlines() if line.lstrip().startswith("hours "))
    assert "opening_times (" in hours_row  # "mixed up with (count, mean confidence)"
    assert any("were routed to 'opening_times'" in w.message for w in report.warnings)
    # The example written in both intents is flagged at its second place.
    dup = next(w for w in report.warnings if "is also an example of 'hours'" in w.message)
    assert dup.line == line_containing(text, '"when are you open"', nth=2)


def test_strict_exits_1_on_warnings_and_errors_exit_2(tmp_path):
    overlap = tmp_path / "overlap.toml"
    overlap.write_text(HEAD + LOCATION + HOURS + OPENING_TIMES)
    broken = tmp_path / "broken.toml"
    broken.write_text(HEAD + "[[intents]\n")

    def check(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "voicebox", "check", *args],
                              capture_output=True, text=True, timeout=300, cwd=ROOT)

    assert check(str(overlap), "--no-router").returncode == EXIT_OK
    assert check(str(overlap), "--no-router", "--strict").returncode == EXIT_WARNINGS
    run = check(str(broken))
    assert run.returncode == EXIT_ERRORS
    assert f"{broken}:{HEAD.count(chr(10)) + 1}: error: not valid TOML" in run.stdout


# -- key paths to lines ------------------------------------------------------------------------------
TOML = '''\
title = "x"  # a comment
[a]
b = 1
c = [
  "one",  # with a comment
  'two', """three
still three""",
]
d = { e = 1, "f g" = [1, 2] }

[[items]]
name = "first"

[[items]]
name = "second"
[items.sub]
deep = true
'''


def test_key_lines_finds_keys_array_items_and_tables():
    tomllib.loads(TOML)  # the scanner is only ever given valid TOML
    lines = key_lines(TOML)
    assert line_of(lines, ("title",)) == 1
    assert line_of(lines, ("a", "b")) == 3
    assert [line_of(lines, ("a", "c", i)) for i in range(3)] == [5, 6, 6]
    assert line_of(lines, ("a", "d", "f g", 1)) == 9
    assert line_of(lines, ("items", 0, "name")) == 12
    assert line_of(lines, ("items", 1, "name")) == 15
    assert line_of(lines, ("items", 1, "sub", "deep")) == 17
    # A key the file does not write is placed at the nearest one it does.
    assert line_of(lines, ("a", "missing")) == 2
    assert line_of(lines, ("nowhere",)) is None
