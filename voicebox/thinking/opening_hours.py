"""Opening hours from the agent file and the clock: "are you open now", "tomorrow at 5", "on the 24th".

Everything is computed from an injected clock (a callable returning an aware datetime) in the
agent's time zone, so tests run on a fake clock across weekends, holidays and daylight-saving
changes. Spoken dates are parsed by ``dateparser`` relative to that clock's now; hours are
compared on the local wall clock (8 am is 8 am in winter and in summer), while lead times are
measured in real elapsed time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicebox.agent import Hours

Clock = Callable[[], dt.datetime]
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SEARCH_DAYS = 400  # how far ahead "when do you open next" looks; past a year of closures, give up

# Single words dateparser takes for a date that are usually something else in a caller's sentence
# ("may I come", "I'll march in"): a one-word fragment counts only if it is one of these (or has
# a digit). English only; other languages get multi-word fragments and numbers.
_ONE_WORD_DATES = frozenset(
    "now today tomorrow tonight monday tuesday wednesday thursday friday saturday sunday".split()
)
_NOW_WORDS = re.compile(r"\b(now|right now|at the moment|currently|still open)\b")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_BARE_HOUR = re.compile(r"\bat (\d{1,2})(?::(\d{2}))?(?!\s*(?::|\d|a\.?m|p\.?m|o'clock))")
_SAID_AMPM = re.compile(r"\b\d{1,2}(?::\d{2})?\s*(a\.?m|p\.?m)\b|\b(noon|midnight)\b")
_EVENING = re.compile(r"\b(tonight|this evening|in the evening|afternoon)\b")


def now_in(hours: Hours, clock: Clock | None) -> dt.datetime:
    """The clock's now (the real one by default) in the agent's time zone."""
    now = clock() if clock is not None else dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        raise ValueError("the clock must return an aware datetime")
    return now.astimezone(hours.zone)


# -- how times are said ------------------------------------------------------------------------
def say_time(t: dt.time) -> str:
    """8:00 -> '8 am', 13:30 -> '1:30 pm', 23:59:59.999999 (a day's end) -> 'midnight'."""
    if t == dt.time.max:
        return "midnight"
    hour = t.hour % 12 or 12
    minutes = f":{t.minute:02d}" if t.minute else ""
    return f"{hour}{minutes} {'am' if t.hour < 12 else 'pm'}"


def say_ranges(ranges: list[tuple[dt.time, dt.time]]) -> str:
    """'8 am to 6 pm', or '8 am to 12 pm and 1 pm to 5 pm'."""
    return " and ".join(f"{say_time(a)} to {say_time(b)}" for a, b in ranges)


def hours_facts(hours: Hours) -> dict[str, str]:
    """The facts derived from [hours]: hours_monday … hours_sunday ('8 am to 6 pm' or 'closed'),
    opening_hours ('Monday to Friday, 8 am to 6 pm, and Saturday, 9 am to 1 pm') and closed_days."""
    facts = {f"hours_{WEEKDAY_NAMES[d].lower()}": say_ranges(hours.ranges(d)) or "closed" for d in range(7)}
    groups: list[tuple[int, int, str]] = []  # (first day, last day, hours) over runs of equal hours
    for d in range(7):
        said = say_ranges(hours.ranges(d))
        if groups and groups[-1][2] == said and groups[-1][1] == d - 1:
            groups[-1] = (groups[-1][0], d, said)
        else:
            groups.append((d, d, said))
    parts = []
    for first, last, said in groups:
        if not said:
            continue
        days = WEEKDAY_NAMES[first] if first == last else (
            f"{WEEKDAY_NAMES[first]} and {WEEKDAY_NAMES[last]}" if last == first + 1
            else f"{WEEKDAY_NAMES[first]} to {WEEKDAY_NAMES[last]}")
        parts.append(f"{days}, {said}")
    facts["opening_hours"] = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1]
    closed = [WEEKDAY_NAMES[d] for d in range(7) if not hours.ranges(d)]
    facts["closed_days"] = " and ".join(closed) if closed else "no day of the week"
    return facts


# -- spoken dates ------------------------------------------------------------------------------
@dataclass(frozen=True)
class When:
    """A day (and maybe a time) a caller named; ``now`` when they asked about this moment."""

    day: dt.date
    time: dt.time | None = None
    now: bool = False


_HOUR = r"(\d{1,2}|" + "|".join(_NUMBER_WORDS) + r")"
_MINUTE_WORDS = {"oh five": 5, "o five": 5, "ten": 10, "fifteen": 15, "twenty": 20, "thirty": 30,
                 "forty": 40, "forty five": 45, "forty-five": 45, "fifty": 50}
_MINUTES = r"([0-5]\d|" + "|".join(sorted(_MINUTE_WORDS, key=len, reverse=True)) + r")"
# "around 2", "about two", "say 3": a hedged hour, when what follows ends the thought (so
# "about 2 weeks" stays a duration).
_HEDGED_HOUR = re.compile(
    r"\b(?:around|about|roughly|approximately|say|maybe|after|like)\s+" + _HOUR
    + r"(?=\s*(?:$|[,.?!;]|a\.?m|p\.?m|o'clock|ish\b|or so|then\b|please\b|if\b|in the\b|on\b|"
    r"tomorrow|today|this\b|next\b|would\b|works?\b|is\b|ok\b|okay\b))")
# "9 in the morning", "three this afternoon", "8 tonight": an hour given with its part of the day.
_HOUR_IN_PART = re.compile(r"\b" + _HOUR + r"(?=\s+(?:in the (?:morning|afternoon|evening)|this (?:morning|afternoon|evening)|"
                           r"tonight|at night)\b)")
_ISH = re.compile(r"\b" + _HOUR + r"\s*-?ish\b")
_HOUR_AND_MINUTES = re.compile(r"\b" + _HOUR + r"\s+" + _MINUTES + r"\b(?!\s*(?:day|week|month|year|minute|hour)s?\b)")
_PAST_TO = re.compile(r"\b(half|quarter)\s+(past|after|to)\s+" + _HOUR + r"\b")
_HALF_HOUR_UK = re.compile(r"\bhalf\s+" + _HOUR + r"\b")  # "half two": 2:30 in British speech
_WORD_BEFORE_DIAL = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")(?=\s*(?:a\.?m|p\.?m|o'clock)\b)")
_FILLER = re.compile(r"\b(?:um+|uh+|er+|erm|hmm+|maybe|say|let's say|how about|what about|about|around|"
                     r"roughly|like|ish|or so|please|then|i guess|i think|probably)\b|[,.?!]")


def _hour(word: str) -> int:
    return int(_NUMBER_WORDS.get(word, word))


def _at(m: re.Match, minutes: int = 0) -> str:
    """'at H:MM' for the hour in group 1 when it is on a 12-hour dial; else the text unchanged."""
    hour = _hour(m.group(1))
    return f"at {hour}:{minutes:02d}" if 1 <= hour <= 12 else m.group(0)


def _spoken_times(low: str, expect_time: bool) -> str:
    """Clock times as callers say them, written as digits the rest of the parser reads:
    "two pm" -> "2 pm", "half past two" -> "at 2:30", "quarter to three" -> "at 2:45",
    "two thirty" -> "at 2:30", "around 2" / "2ish" -> "at 2". With ``expect_time`` (the
    caller was just asked for a time), a bare hour is one too: "two" -> "at 2"."""
    def past_to(m: re.Match) -> str:
        hour, minutes = _hour(m.group(3)), 30 if m.group(1) == "half" else 15
        if m.group(2) == "to":
            hour, minutes = (hour - 1) % 12 or 12, 60 - minutes
        return f"at {hour}:{minutes:02d}"

    low = _WORD_BEFORE_DIAL.sub(lambda m: _NUMBER_WORDS[m.group(1)], low)
    low = _PAST_TO.sub(past_to, low)
    low = _HALF_HOUR_UK.sub(lambda m: f"at {_hour(m.group(1))}:30", low)
    low = _HOUR_AND_MINUTES.sub(lambda m: _at(m, _MINUTE_WORDS.get(m.group(2)) or int(m.group(2))), low)
    low = _HEDGED_HOUR.sub(lambda m: f"at {_hour(m.group(1))}", low)
    low = _HOUR_IN_PART.sub(_at, low)
    low = _ISH.sub(lambda m: f"at {_hour(m.group(1))}", low)
    if expect_time:
        bare = _FILLER.sub(" ", low).split()
        if len(bare) == 1 and re.fullmatch(_HOUR, bare[0]) and 1 <= _hour(bare[0]) <= 12:
            low = f"at {_hour(bare[0])}"
    return re.sub(r"\bat\s+at\b", "at", low)


def _prepare(text: str, expect_time: bool = False) -> tuple[str, bool, bool]:
    """Lowercased text with spoken times written as digits and bare hours made explicit
    ('at 5' -> 'at 5:00', which dateparser reads; it drops a bare 'at 5' after 'tomorrow'),
    whether am/pm was said, and whether the caller spoke of the afternoon or evening."""
    low = _spoken_times(text.lower(), expect_time)
    low = re.sub(r"\bat (" + "|".join(_NUMBER_WORDS) + r")\b", lambda m: f"at {_NUMBER_WORDS[m.group(1)]}", low)
    said_ampm = bool(_SAID_AMPM.search(low))
    evening = bool(_EVENING.search(low))
    low = _BARE_HOUR.sub(lambda m: f"at {m.group(1)}:{m.group(2) or '00'}", low)
    low = low.replace("tonight", "today")
    return low, said_ampm, evening


def parse_when(text: str, now: dt.datetime, language: str = "en") -> When | None:
    """The day and time a caller's sentence names, relative to ``now`` (aware, local), or None.

    The last date mentioned wins ("Monday, no, Wednesday"). A bare hour that no am/pm or
    'evening' qualifies is taken as the caller means it at a front desk: 1 to 7 are pm
    ("tomorrow at 5"), 8 to 12 as said.
    """
    from dateparser.date import DateDataParser
    from dateparser.search import search_dates

    low, said_ampm, evening = _prepare(text)
    settings = {"RELATIVE_BASE": now.replace(tzinfo=None), "PREFER_DATES_FROM": "future",
                "RETURN_TIME_AS_PERIOD": True}
    found = search_dates(low, languages=[language], settings=settings) or []
    found = [(frag, d) for frag, d in found
             if not _NOW_WORDS.fullmatch(frag.strip())
             and (len(frag.split()) > 1 or frag.strip() in _ONE_WORD_DATES or re.search(r"\d", frag))]
    if not found:
        if _NOW_WORDS.search(low):
            return When(now.date(), now.time().replace(tzinfo=None), now=True)
        return None
    fragment = found[-1][0]
    data = DateDataParser(languages=[language], settings=settings).get_date_data(fragment)
    if data.date_obj is None or data.period not in ("day", "time", "part_of_day"):
        return None  # "this week", "in may": no one day to answer about
    day = data.date_obj.date()
    if data.period != "time":
        return When(day)
    t = data.date_obj.time()
    if not said_ampm and t.hour < 12 and (evening or 1 <= t.hour <= 7):
        t = t.replace(hour=t.hour + 12)
    return When(day, t)


_PART_OF_DAY = re.compile(r"\b(morning|lunchtime|afternoon|evening|tonight)\b")
_CLOCK_TIME = re.compile(
    r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?|o'clock)|\b(\d{1,2}):(\d{2})\b|\b(noon|midday|midnight)\b"
)
_MONTHS = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b")
# Where a part of the day starts and ends on the wall clock (an offer is looked for inside it).
PARTS_OF_DAY = {"morning": (dt.time(0), dt.time(12)), "lunchtime": (dt.time(11, 30), dt.time(14)),
                "afternoon": (dt.time(12), dt.time(17)), "evening": (dt.time(17), dt.time.max),
                "tonight": (dt.time(17), dt.time.max)}


@dataclass(frozen=True)
class Moment:
    """What a caller's sentence says about a booking's time: a day, a time of day, a part of
    the day ("morning"), each None when not said ("actually make it 3 pm" names no day)."""

    day: dt.date | None = None
    time: dt.time | None = None
    part: str | None = None
    # The time was an hour on a 12-hour dial with nothing saying which half ("at eight", "8:30"):
    # ``time`` is the front-desk guess, and the business's hours may know better.
    either_half: bool = False


def parse_moment(text: str, now: dt.datetime, language: str = "en", expect_time: bool = False) -> Moment | None:
    """The day, time and part of the day ``text`` names, relative to ``now`` (aware, local);
    None when it names none of them. The last mention wins ("Monday, no, Wednesday").

    Unlike ``parse_when``, a time said without a day leaves the day unset (a correction of the
    time keeps the day already chosen), and a day of the month already past this month ("on the
    24th" on the 25th) is next month's, a date already past this year next year's.
    ``expect_time``: the caller was just asked for a time, so a bare "two" is 2 o'clock.
    """
    from dateparser.date import DateDataParser
    from dateparser.search import search_dates

    low, said_ampm, evening = _prepare(text, expect_time)
    parts = _PART_OF_DAY.findall(low)
    part = parts[-1] if parts else None
    time = None
    either_half = False
    clocks = list(_CLOCK_TIME.finditer(low))
    if clocks:
        m = clocks[-1]
        if m.group(6):
            time = dt.time(12) if m.group(6) in ("noon", "midday") else dt.time(0)
        else:
            hour, minute = int(m.group(1) or m.group(4)), int(m.group(2) or m.group(5) or 0)
            suffix = (m.group(3) or "").replace(".", "")
            if hour <= 23 and minute <= 59:
                if suffix == "pm" and hour < 12:
                    hour += 12
                elif suffix == "am" and hour == 12:
                    hour = 0
                elif suffix not in ("am", "pm") and hour < 12 and (
                        evening or part in ("evening", "tonight", "afternoon") or (1 <= hour <= 7 and part != "morning")):
                    hour += 12  # a bare hour, as a caller means it at a front desk: "at 5" is 5 pm
                said = int(m.group(1) or m.group(4))
                either_half = suffix not in ("am", "pm") and 1 <= said <= 12 and part is None and not evening
                time = dt.time(hour, minute)
    day = None
    settings = {"RELATIVE_BASE": now.replace(tzinfo=None), "PREFER_DATES_FROM": "future",
                "RETURN_TIME_AS_PERIOD": True}
    dated = _CLOCK_TIME.sub(" ", low)  # the day alone: dateparser shifts a day whose hour has passed
    dated = _PART_OF_DAY.sub(lambda m: "today" if m.group(1) == "tonight" else " ", dated)
    found = search_dates(dated, languages=[language], settings=settings) or []
    found = [frag for frag, _ in found
             if not _NOW_WORDS.fullmatch(frag.strip()) and frag.strip() not in ("at", "on")
             and (len(frag.split()) > 1 or frag.strip() in _ONE_WORD_DATES or re.search(r"\d", frag))]
    if found:
        data = DateDataParser(languages=[language], settings=settings).get_date_data(found[-1])
        if data.date_obj is not None and data.period in ("day", "time", "part_of_day"):
            day = data.date_obj.date()
            if day < now.date():
                if _MONTHS.search(found[-1]):
                    day = _same_day(day, years=1)
                else:
                    day = _same_day(day, months=1)
    if day is None and time is None and part is None:
        return None
    return Moment(day, time, part, either_half and time is not None)


def _same_day(day: dt.date, years: int = 0, months: int = 0) -> dt.date:
    """The same day of the month ``years``/``months`` on (the month's last day if it has fewer)."""
    import calendar

    month0 = day.month - 1 + months
    year, month = day.year + years + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def say_day(day: dt.date) -> str:
    """'Tuesday, March 11': a read-back names the date, so a wrong week is heard."""
    return f"{WEEKDAY_NAMES[day.weekday()]}, {day.strftime('%B')} {day.day}"


# -- the schedule --------------------------------------------------------------------------------
class OpeningHours:
    """Answers questions about the agent's [hours] from a clock."""

    def __init__(self, hours: Hours, clock: Clock | None = None, language: str = "en") -> None:
        self.hours = hours
        self.clock = clock
        self.language = language
        self.say = hours.say

    def now(self) -> dt.datetime:
        return now_in(self.hours, self.clock)

    def ranges_on(self, day: dt.date) -> list[tuple[dt.time, dt.time]]:
        """Open ranges on a date: none on a closure or holiday."""
        return [] if day in self.hours.closed_on else self.hours.ranges(day.weekday())

    def _local(self, at: dt.datetime) -> dt.datetime:
        return at.astimezone(self.hours.zone)

    def is_open(self, at: dt.datetime) -> bool:
        local = self._local(at)
        t = local.time().replace(tzinfo=None)
        return any(a <= t < b for a, b in self.ranges_on(local.date()))

    def open_now(self) -> bool:
        return self.is_open(self.now())

    def closes_at(self, at: dt.datetime) -> dt.time | None:
        """When the opening that ``at`` falls in ends; None when closed at ``at``."""
        local = self._local(at)
        t = local.time().replace(tzinfo=None)
        return next((b for a, b in self.ranges_on(local.date()) if a <= t < b), None)

    def next_opening(self, after: dt.datetime) -> dt.datetime | None:
        """The first moment at or after ``after`` when the business opens (or is open)."""
        local = self._local(after)
        if self.is_open(local):
            return local
        for offset in range(_SEARCH_DAYS):
            day = local.date() + dt.timedelta(days=offset)
            for a, _ in self.ranges_on(day):
                start = dt.datetime.combine(day, a, tzinfo=self.hours.zone)
                if offset or a >= local.time().replace(tzinfo=None):
                    return start
        return None

    # -- slots: a booking's start and end, checked against the hours, the lead time and a free test --
    def fits(self, start: dt.datetime, end: dt.datetime) -> bool:
        """Whether [start, end) lies inside one opening on one day (local wall clock)."""
        a_local, b_local = self._local(start), self._local(end)
        if b_local.date() != a_local.date() and b_local.timetz().replace(tzinfo=None) != dt.time(0):
            return False
        a, b = a_local.time().replace(tzinfo=None), b_local.time().replace(tzinfo=None)
        if b_local.date() != a_local.date():
            b = dt.time.max
        return any(lo <= a and b <= hi for lo, hi in self.ranges_on(a_local.date()))

    def earliest(self, lead_minutes: int) -> dt.datetime:
        """Now plus the lead, in real elapsed time (across a DST change wall clocks differ by an hour)."""
        now = self.now()
        return (now.astimezone(dt.timezone.utc) + dt.timedelta(minutes=lead_minutes)).astimezone(self.hours.zone)

    def slot(self, day: dt.date, t: dt.time, minutes: int) -> tuple[dt.datetime, dt.datetime]:
        """A slot's aware start and end; the end ``minutes`` of real time later."""
        start = dt.datetime.combine(day, t, tzinfo=self.hours.zone)
        end = (start.astimezone(dt.timezone.utc) + dt.timedelta(minutes=minutes)).astimezone(self.hours.zone)
        return start, end

    def grid(self, day: dt.date, minutes: int) -> list[dt.datetime]:
        """The slot starts a day offers: every ``minutes`` from each opening, while the slot fits."""
        starts = []
        for lo, hi in self.ranges_on(day):
            t = dt.datetime.combine(day, lo)
            while True:
                start, end = self.slot(day, t.time(), minutes)
                if t.date() != day or not self.fits(start, end):
                    break
                starts.append(start)
                t += dt.timedelta(minutes=minutes)
        return starts

    def nearest_slots(self, want: dt.datetime, minutes: int, lead_minutes: int,
                      free: Callable[[dt.datetime, dt.datetime], bool], count: int = 2,
                      search_days: int = 60) -> list[dt.datetime]:
        """The free slots nearest to ``want``: on its own day the closest ones; when that day has
        none, the same time of day on the nearest open days before and after. Chronological."""
        earliest = self.earliest(lead_minutes)
        want = self._local(want)

        def usable(day: dt.date) -> list[dt.datetime]:
            return [s for s in self.grid(day, minutes)
                    if s >= earliest and free(*self.slot(s.date(), s.time().replace(tzinfo=None), minutes))]

        def distance(s: dt.datetime) -> float:
            return abs((s.replace(tzinfo=None) - want.replace(tzinfo=None)).total_seconds())

        same = usable(want.date())
        if same:
            return sorted(sorted(same, key=distance)[:count])
        picks: list[dt.datetime] = []
        for direction in (-1, 1):
            for k in range(1, search_days):
                day = want.date() + dt.timedelta(days=direction * k)
                if day < earliest.date():
                    break
                slots = usable(day)
                if slots:
                    at = dt.datetime.combine(day, want.time().replace(tzinfo=None))
                    picks.append(min(slots, key=lambda s: abs((s.replace(tzinfo=None) - at).total_seconds())))
                    break
        if len(picks) < count and picks:
            # Only one side had a free day: offer more of that side.
            day = picks[-1].date()
            more = [s for s in usable(day) if s not in picks]
            picks += sorted(more, key=lambda s: abs((s - picks[-1]).total_seconds()))[: count - len(picks)]
        return sorted(picks)[:count]

    def slot_problem(self, start: dt.datetime, end: dt.datetime, lead_minutes: int) -> str | None:
        """Why this slot cannot be booked, in the agent's words (closed that day, outside the
        hours, sooner than the lead time); None when it can."""
        now = self.now()
        day = self._local(start).date()
        t = self._local(start).time().replace(tzinfo=None)
        ranges = self.ranges_on(day)
        when = self.when(day)
        if not ranges:
            day_start = dt.datetime.combine(day, dt.time(0), tzinfo=self.hours.zone)
            return _sentence(self.say.closed_day, when=when, next_open=self._next_open_said(max(day_start, now)))
        if not self.fits(start, end):
            return _sentence(self.say.closed_at, when=when, time=say_time(t), hours=say_ranges(ranges))
        earliest = self.earliest(lead_minutes)
        if start < earliest:
            return _sentence(self.say.too_soon, lead=say_duration(dt.timedelta(minutes=lead_minutes)),
                             earliest=self._next_open_said(earliest))
        return None

    # -- how days are said, relative to now --
    def when(self, day: dt.date) -> str:
        """'today', 'tomorrow', 'on Saturday' (this week), 'on Wednesday, December 24'."""
        delta = (day - self.now().date()).days
        if delta == 0:
            return "today"
        if delta == 1:
            return "tomorrow"
        if 1 < delta < 7:
            return f"on {WEEKDAY_NAMES[day.weekday()]}"
        return f"on {WEEKDAY_NAMES[day.weekday()]}, {day.strftime('%B')} {day.day}"

    def _next_open_said(self, after: dt.datetime) -> str:
        start = self.next_opening(after)
        if start is None:
            return "later"
        return f"{self.when(start.date())} at {say_time(start.time().replace(tzinfo=None))}"

    # -- answers --
    def answer(self, text: str, general: str) -> str:
        """The reply to an hours question: computed when the caller named a moment or a day,
        ``general`` (the intent's own answer, the weekly hours) when they did not."""
        now = self.now()
        asked = parse_when(text, now, self.language)
        if asked is None:
            return general
        if asked.now:
            closes = self.closes_at(now)
            if closes is not None:
                return _sentence(self.say.open_now, closes=say_time(closes))
            return _sentence(self.say.closed_now, next_open=self._next_open_said(now))
        ranges = self.ranges_on(asked.day)
        when = self.when(asked.day)
        day_start = dt.datetime.combine(asked.day, dt.time(0), tzinfo=self.hours.zone)
        if not ranges:
            return _sentence(self.say.closed_day, when=when, next_open=self._next_open_said(max(day_start, now)))
        if asked.time is None:
            return _sentence(self.say.open_day, when=when, hours=say_ranges(ranges))
        at = dt.datetime.combine(asked.day, asked.time, tzinfo=self.hours.zone)
        if self.is_open(at):
            return _sentence(self.say.open_at, when=when, time=say_time(asked.time))
        return _sentence(self.say.closed_at, when=when, time=say_time(asked.time), hours=say_ranges(ranges))

    def booking_problem(self, text: str) -> str | None:
        """Why the day/time in ``text`` cannot be booked (closed, or sooner than the lead time);
        None when it can, or when the text names no day."""
        now = self.now()
        asked = parse_when(text, now, self.language)
        if asked is None or asked.now:
            return None
        ranges = self.ranges_on(asked.day)
        when = self.when(asked.day)
        if not ranges:
            day_start = dt.datetime.combine(asked.day, dt.time(0), tzinfo=self.hours.zone)
            return _sentence(self.say.closed_day, when=when, next_open=self._next_open_said(max(day_start, now)))
        if asked.time is None:
            return None
        at = dt.datetime.combine(asked.day, asked.time, tzinfo=self.hours.zone)
        if not self.is_open(at):
            return _sentence(self.say.closed_at, when=when, time=say_time(asked.time), hours=say_ranges(ranges))
        lead = dt.timedelta(minutes=self.hours.booking_lead_minutes)
        # Real elapsed time, not wall-clock arithmetic: across a DST change they differ by an hour.
        if at.astimezone(dt.timezone.utc) - now.astimezone(dt.timezone.utc) < lead:
            earliest = (now.astimezone(dt.timezone.utc) + lead).astimezone(self.hours.zone)
            return _sentence(self.say.too_soon, lead=say_duration(lead), earliest=self._next_open_said(earliest))
        return None


def say_duration(d: dt.timedelta) -> str:
    """'2 hours', '1 day', '90 minutes'."""
    minutes = int(d.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        n, unit = minutes // (24 * 60), "day"
    elif minutes % 60 == 0:
        n, unit = minutes // 60, "hour"
    else:
        n, unit = minutes, "minute"
    return f"{n} {unit}{'s' if n != 1 else ''}"


def _sentence(template: str, **values: str) -> str:
    text = template.format(**values)
    return text[:1].upper() + text[1:]


def warm_up() -> None:
    """Import dateparser and parse once (about 2 s on a small CPU, spent loading its language
    data), so that the first caller who asks about the hours does not wait for it."""
    parse_when("tomorrow at 5", dt.datetime(2000, 1, 3, 12, tzinfo=dt.timezone.utc))
