"""Opening hours from [hours] and a fake clock: a weekend, a holiday, a daylight-saving change."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from voicebox.agent import AgentConfig, load_agent
from voicebox.config import ConfigError
from voicebox.thinking.opening_hours import OpeningHours, parse_when, say_time

CHICAGO = ZoneInfo("America/Chicago")
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def agent() -> AgentConfig:
    # Mon-Fri 8:00-18:00, Sat 9:00-13:00, Sun closed, closed 2025-12-25 and 26, 2 h booking lead.
    return load_agent("riverside_dental")


def at(agent: AgentConfig, when: dt.datetime) -> OpeningHours:
    return OpeningHours(agent.hours, clock=lambda: when)


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CHICAGO)


# -- the derived facts ---------------------------------------------------------------------------
def test_hours_facts_are_derived_from_the_schedule(agent):
    assert agent.facts["opening_hours"] == "Monday to Friday, 8 am to 6 pm, and Saturday, 9 am to 1 pm"
    assert agent.facts["hours_saturday"] == "9 am to 1 pm" and agent.facts["hours_sunday"] == "closed"
    assert agent.facts["closed_days"] == "Sunday"


def test_say_time():
    assert [say_time(t) for t in (dt.time(8), dt.time(13, 30), dt.time(12), dt.time(0), dt.time.max)] == [
        "8 am", "1:30 pm", "12 pm", "12 am", "midnight"]


# -- a weekend -------------------------------------------------------------------------------------
def test_saturday_morning_is_open_until_one(agent):
    hours = at(agent, local(2025, 3, 1, 12, 30))  # a Saturday
    assert hours.open_now()
    assert hours.answer("are you open now?", "general") == "Yes, we're open now, until 1 pm."


def test_saturday_afternoon_is_closed_until_monday(agent):
    hours = at(agent, local(2025, 3, 1, 13, 30))
    assert not hours.open_now()
    assert hours.answer("are you open right now?", "general") == (
        "We're closed right now. We open again on Monday at 8 am.")


def test_sunday_asks_about_tomorrow_and_sunday(agent):
    hours = at(agent, local(2025, 3, 2, 11, 0))  # a Sunday
    assert hours.answer("are you open today?", "general") == (
        "Today we're closed. We open again tomorrow at 8 am.")
    assert hours.answer("what time do you open tomorrow", "general") == "Tomorrow we're open 8 am to 6 pm."


def test_this_saturday_and_a_bare_hour(agent):
    hours = at(agent, local(2025, 3, 5, 10, 0))  # a Wednesday
    assert hours.answer("Are you open this Saturday?", "general") == "On Saturday we're open 9 am to 1 pm."
    assert hours.answer("can I come tomorrow at 5?", "general") == "Yes, we're open tomorrow at 5 pm."
    assert hours.answer("can I come on Saturday at 3 pm?", "general") == (
        "Sorry, we're closed on Saturday at 3 pm. That day we're open 9 am to 1 pm.")


def test_a_question_naming_no_day_gets_the_general_answer(agent):
    hours = at(agent, local(2025, 3, 5, 10, 0))
    assert hours.answer("what are your opening hours", "the week's hours") == "the week's hours"
    assert hours.answer("may I ask when you open", "the week's hours") == "the week's hours"  # 'may' is no month


# -- a holiday --------------------------------------------------------------------------------------
def test_christmas_is_closed_and_the_next_opening_skips_boxing_day(agent):
    hours = at(agent, local(2025, 12, 24, 10, 0))  # a Wednesday; the 25th and 26th are closed
    assert hours.open_now()
    assert hours.answer("are you open tomorrow?", "general") == (
        "Tomorrow we're closed. We open again on Saturday at 9 am.")
    assert hours.answer("are you open on the 26th?", "general") == (
        "On Friday we're closed. We open again on Saturday at 9 am.")
    christmas = at(agent, local(2025, 12, 25, 10, 0))  # a Thursday, on the clock's own holiday
    assert not christmas.open_now()
    assert christmas.next_opening(christmas.now()) == local(2025, 12, 27, 9, 0)


def test_a_day_far_ahead_is_said_with_its_date(agent):
    hours = at(agent, local(2025, 3, 5, 10, 0))
    assert hours.answer("are you open on the 24th?", "general") == "On Monday, March 24 we're open 8 am to 6 pm."


# -- a daylight-saving change (US: 2 am on Sunday 9 March 2025 became 3 am) -------------------------
def test_monday_after_the_change_opens_at_8_local_not_8_standard_time(agent):
    # 13:30 UTC is 8:30 am CDT (it would be 7:30 am in CST, before opening).
    hours = OpeningHours(agent.hours, clock=lambda: dt.datetime(2025, 3, 10, 13, 30, tzinfo=UTC))
    assert hours.open_now()
    assert hours.answer("are you open now", "general") == "Yes, we're open now, until 6 pm."


def test_next_opening_across_the_change_is_8_am_local(agent):
    saturday_after_closing = dt.datetime(2025, 3, 8, 19, 30, tzinfo=UTC)  # 1:30 pm CST
    hours = OpeningHours(agent.hours, clock=lambda: saturday_after_closing)
    opens = hours.next_opening(hours.now())
    assert opens == local(2025, 3, 10, 8, 0)
    assert opens.astimezone(UTC) == dt.datetime(2025, 3, 10, 13, 0, tzinfo=UTC)  # CDT is UTC-5, not -6


# -- bookings: closed days and the lead time ---------------------------------------------------------
def test_booking_problem(agent):
    hours = at(agent, local(2025, 3, 10, 9, 0))  # a Monday, 9 am; bookings need 2 hours
    assert hours.booking_problem("a cleaning today at 10 am") == (
        "We need 2 hours notice for a booking. The earliest we can offer is today at 11 am.")
    assert hours.booking_problem("a cleaning today at 2 pm") is None
    assert hours.booking_problem("a cleaning on Sunday") == (
        "On Sunday we're closed. We open again on Monday, March 17 at 8 am.")
    assert hours.booking_problem("a cleaning on Tuesday at 7 pm").startswith("Sorry, we're closed tomorrow at 7 pm.")
    assert hours.booking_problem("a cleaning please") is None


# -- parsing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, day, time",
    [
        ("tomorrow at 5", dt.date(2025, 3, 6), dt.time(17)),
        ("tomorrow at five", dt.date(2025, 3, 6), dt.time(17)),
        ("friday at 9", dt.date(2025, 3, 7), dt.time(9)),
        ("at 7 tonight", dt.date(2025, 3, 5), dt.time(19)),
        ("next tuesday at 10 am", dt.date(2025, 3, 11), dt.time(10)),
        ("on the 24th", dt.date(2025, 3, 24), None),
        ("monday, no wait, wednesday", dt.date(2025, 3, 12), None),
    ],
)
def test_parse_when(text, day, time):
    when = parse_when(text, local(2025, 3, 5, 10, 0))
    assert when is not None and (when.day, when.time, when.now) == (day, time, False)


@pytest.mark.parametrize("text", ["what are your hours this week", "may I book", "are you open at the weekend"])
def test_parse_when_finds_no_one_day(text):
    assert parse_when(text, local(2025, 3, 5, 10, 0)) is None


# -- the schema ------------------------------------------------------------------------------------
BASE = """
name = "Shop"
persona = "p"
greeting = "hi"
[facts]
a = "b"
[[intents]]
name = "hours"
action = "hours"
answer = "Open {opening_hours}."
examples = ["one", "two", "three"]
"""


@pytest.mark.parametrize(
    "hours, message",
    [
        ('[hours]\ntime_zone = "Mars/Olympus"\nmonday = "9:00-17:00"', "hours.time_zone"),
        ('[hours]\ntime_zone = "Europe/Paris"\nmonday = "9-17"', "hours.monday"),
        ('[hours]\ntime_zone = "Europe/Paris"\nmonday = "17:00-9:00"', "closes before it opens"),
        ('[hours]\ntime_zone = "Europe/Paris"', "closed every day"),
        ('[hours]\ntime_zone = "Europe/Paris"\nmonday = "9:00-17:00"\n[hours.say]\nopen_now = "{nope}"',
         "hours.say.open_now"),
        ("", "no [hours] section"),
    ],
)
def test_bad_hours_name_the_field(tmp_path, hours, message):
    path = tmp_path / "shop.toml"
    path.write_text(BASE + hours, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_agent(str(path))


def test_hand_written_hours_facts_are_refused(tmp_path):
    path = tmp_path / "shop.toml"
    path.write_text(BASE.replace('a = "b"', 'a = "b"\nhours_monday = "9 to 5"')
                    + '[hours]\ntime_zone = "Europe/Paris"\nmonday = "9:00-17:00"', encoding="utf-8")
    with pytest.raises(ConfigError, match="derived from"):
        load_agent(str(path))
