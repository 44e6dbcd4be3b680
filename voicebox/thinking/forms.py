"""Forms: what the agent collects (a booking, a message, a callback request), slot by slot.

Deterministic slot filling, driven by the agent file's [[forms]] (or an older file's [booking]):
each caller sentence fills whatever fields it names, the latest mention winning; a correction
("no, Thursday", "actually make it 3 pm", "my number is ...") changes just that field, also
after the read-back. Once every field is filled the form is read back; a yes stores the outcome
through the ``OutcomeSink`` *before* the caller hears it is done, a no asks what to change, a
cancel phrase drops it.

A booking's day and time are a real aware datetime in the agent's time zone, checked against
the hours, the closures, the lead time and the sink's free/busy: a time that cannot be had is
never silently accepted, the nearest free times are offered instead.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from voicebox.agent import AgentConfig, Form, FormField
from voicebox.outcomes.draft import OutcomeDraft, OutcomeNotStored, OutcomeSink, SlotTaken
from voicebox.thinking.form_fields import (
    INVALID, Phone, find_choice, find_name, find_number, find_phone, mentions, spoken_digits,
)
from voicebox.thinking.opening_hours import (WEEKDAY_NAMES, Clock, Moment, OpeningHours, parse_moment, say_day,
                                             say_time)

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("voicebox.forms")

Stage = Literal["asking", "offering", "confirming", "changing", "done"]
CALLBACK_MINUTES = 15
_ORDINALS = {"first": 0, "earlier": 0, "earliest": 0, "second": 1, "later": 1, "last": -1, "latter": -1}


@dataclass
class FormReply:
    """What the form says to one caller sentence; ``outcome`` once it is stored."""

    text: str
    reason: str
    outcome: OutcomeDraft | None = None
    outcome_id: str = ""


@dataclass
class _Turn:
    """What one sentence did to the form."""

    filled: list[str] = field(default_factory=list)  # field names, in the order they were filled
    problems: list[str] = field(default_factory=list)  # sentences to say first (invalid, closed, taken)
    offered: bool = False  # alternatives were offered: the turn ends with them


class FormSession:
    """One form being filled on one call."""

    def __init__(self, form: Form, agent: AgentConfig, hours: OpeningHours | None, *, clock: Clock | None = None,
                 outcomes: OutcomeSink | None = None, agent_id: str = "", session_id: str = "") -> None:
        self.form = form
        self.agent = agent
        self.hours = hours
        self.clock = clock
        self.outcomes = outcomes
        self.agent_id = agent_id
        self.session_id = session_id
        self.values: dict[str, object] = {}
        self.stage: Stage = "asking"
        self.asking: FormField | None = None  # the field last asked for: a bare answer is for it
        self.day_only: dict[str, dt.date] = {}  # datetime fields given a day without a time
        self.offered: list[dt.datetime] = []
        self.offered_for: FormField | None = None

    @property
    def active(self) -> bool:
        return self.stage != "done"

    # -- the conversation ------------------------------------------------------------------------
    def open(self, text: str) -> FormReply:
        """The sentence that started the form: take what it already says, ask for the rest."""
        turn = self._read(text)
        reply = self._next(turn, opening=True)
        return FormReply(reply, f"form {self.form.name} started")

    def claims(self, text: str) -> bool:
        """Whether ``text`` is for this form even when the router hears another intent: an answer
        to its question (a yes/no to a read-back or an offer, a text field's whole answer), a
        cancel phrase, or a value of one of its fields."""
        from voicebox.thinking.dialog import yes_or_no

        if mentions(text, self.form.cancel_phrases):
            return True
        if yes_or_no(text) is not None:
            return True  # every form line ends in a question; a bare yes or no answers it
        if self.stage == "offering" and mentions(text, list(_ORDINALS)):
            return True
        if self.stage == "changing" and self._field_called(text) is not None:
            return True
        if self.asking is not None and self.asking.type == "text" and self.stage == "asking":
            return True
        if _SOONEST.search(text.lower()) and any(f.type == "datetime" for f in self.form.fields):
            return True  # "what's the earliest you have?": the form offers its first free times
        if self.asking is not None and self.asking.type in ("phone", "number") and re.search(
                r"\d", spoken_digits(text)):
            return True  # an attempt at the number asked for, if a poor one: it is asked again
        return bool(self._peek(text))

    def turn(self, text: str) -> FormReply:
        from voicebox.thinking.dialog import yes_or_no

        if mentions(text, self.form.cancel_phrases):
            return self._finish(self.form.cancelled, "form cancelled")
        answer = yes_or_no(text)
        if self.stage == "confirming" and answer is True:
            return self._complete()
        if self.stage == "confirming" and answer is False:
            self.stage = "changing"
            self.asking = None
            return FormReply(self.form.change, "read-back refused")
        if self.stage == "changing" and answer is False:
            return self._finish(self.form.cancelled, "form cancelled")
        if self.stage == "offering" and answer is not None:
            target = self.offered_for
            if answer and target is not None and self.offered:
                self._take_offer(target, self.offered[0])
                return FormReply(self._next(_Turn(filled=[target.name])), "offered time taken")
            self.stage = "asking"
            self.asking = target
            return FormReply(self._ask(target) if target else self._next(_Turn()), "offer declined")
        if self.stage == "offering" and self.offered_for is not None:
            pick = self._offer_named(text, Moment())
            if pick is not None:
                target = self.offered_for
                self._take_offer(target, pick)
                turn = self._read(text, skip=target.name)
                turn.filled.insert(0, target.name)
                return FormReply(self._next(turn), "offered time taken")
        turn = self._read(text)
        if not turn.filled and not turn.problems and self.stage == "changing":
            called = self._field_called(text)
            if called is not None:
                self.values.pop(called.name, None)
                self.day_only.pop(called.name, None)
                self.stage = "asking"
                self.asking = called
                return FormReply(self._ask(called), f"change {called.name}")
        return FormReply(self._next(turn), "form slots" if turn.filled else "form: nothing new")

    # -- reading a sentence ------------------------------------------------------------------------
    def _peek(self, text: str) -> list[str]:
        """The fields ``text`` would fill, without filling them."""
        names = []
        for f in self.form.fields:
            asked = f is self.asking
            if f.type == "name" and find_name(text, asked):
                names.append(f.name)
            elif f.type == "phone" and find_phone(text, self.agent.phone_region) is not None:
                names.append(f.name)
            elif f.type == "choice" and find_choice(text, f.choices):
                names.append(f.name)
            elif f.type == "number" and find_number(text, f.units, asked, f.min, f.max) is not None:
                names.append(f.name)
            elif f.type == "text" and asked and text.strip():
                names.append(f.name)
            elif f.type == "datetime" and parse_moment(text, self._now(), self.agent.language,
                                                       expect_time=asked and f.name in self.day_only) is not None:
                names.append(f.name)
        return names

    def _read(self, text: str, skip: str | None = None) -> _Turn:
        """What ``text`` fills; ``skip``: a field this sentence already settled (an offer it picked)."""
        turn = _Turn()
        asking = self.asking
        if asking is not None and asking.type == "text" and self.stage == "asking":
            # A message is whatever the caller says when asked for it, dates and numbers included.
            self.values[asking.name] = _text_answer(text)
            turn.filled.append(asking.name)
            return turn
        for f in self.form.fields:
            if f.name == skip:
                continue
            asked = f is asking
            if f.type == "name":
                name = find_name(text, asked)
                if name:
                    self._set(f, name, turn)
                elif asked:
                    turn.problems.append(f.invalid_line())
            elif f.type == "phone":
                phone = find_phone(text, self.agent.phone_region)
                if isinstance(phone, Phone):
                    self._set(f, phone, turn)
                elif phone == INVALID or asked:
                    turn.problems.append(f.invalid_line())
            elif f.type == "choice":
                choice = find_choice(text, f.choices)
                if choice:
                    self._set(f, choice, turn)
                elif asked:
                    turn.problems.append(f.invalid_line())
            elif f.type == "number":
                n = find_number(text, f.units, asked, f.min, f.max)
                if isinstance(n, int):
                    self._set(f, n, turn)
                elif n == INVALID or asked:
                    turn.problems.append(f.invalid_line())
            elif f.type == "datetime":
                self._read_when(f, text, turn, asked)
        if turn.filled or turn.offered:
            # What was understood (or offered) outweighs a complaint about the field that was asked
            # for: a caller who answers another question first is not told they were not understood.
            turn.problems = [p for p in turn.problems if p not in {x.invalid_line() for x in self.form.fields
                                                                    if x is asking and x.name not in turn.filled}]
        return turn

    def _set(self, f: FormField, value: object, turn: _Turn) -> None:
        if self.values.get(f.name) != value or f.name not in self.values:
            turn.filled.append(f.name)
        self.values[f.name] = value

    # -- days and times ----------------------------------------------------------------------------
    def _now(self) -> dt.datetime:
        if self.hours is not None:
            return self.hours.now()
        now = self.clock() if self.clock is not None else dt.datetime.now(dt.timezone.utc)
        return now.astimezone(dt.timezone.utc)  # an older file without [hours]: times are UTC

    def _lead(self, f: FormField) -> int:
        if f.lead_minutes is not None:
            return f.lead_minutes
        if self.form.kind == "booking" and self.hours is not None:
            return self.hours.hours.booking_lead_minutes
        return 0

    def _minutes(self, f: FormField) -> int:
        # A time that holds no slot (a call back) is still offered on a quarter-hour grid.
        return self.form.duration_minutes if self.form.kind == "booking" else CALLBACK_MINUTES

    def _free(self, f: FormField) -> Callable[[dt.datetime, dt.datetime], bool]:
        if self.outcomes is None or self.form.kind != "booking":
            return lambda start, end: True
        return lambda start, end: self.outcomes.is_free(self.agent_id, start, end)

    def _read_when(self, f: FormField, text: str, turn: _Turn, asked: bool) -> None:
        now = self._now()
        # Asked "what time on Tuesday?", a bare "two" is an hour.
        moment = parse_moment(text, now, self.agent.language, expect_time=asked and f.name in self.day_only)
        if _SOONEST.search(text.lower()) and self.hours is not None:
            self._offer_soonest(f, moment, turn)
            return
        if moment is None:
            if asked and self.stage != "offering":
                turn.problems.append(f.invalid_line())
            return
        current = self.values.get(f.name)
        if self.stage == "offering" and self.offered_for is f:
            pick = self._offer_named(text, moment)
            if pick is not None:
                self._take_offer(f, pick)
                turn.filled.append(f.name)
                return
        day = moment.day
        if day is None:
            day = current.date() if isinstance(current, dt.datetime) else self.day_only.get(f.name)
        t = moment.time
        if day is None:
            if t is None:
                day = now.date()  # "in the morning": this morning if any of it is left, else the next
            else:
                day = now.date() if t > now.time().replace(tzinfo=None) else now.date() + dt.timedelta(days=1)
        if t is None and moment.part is None:
            if isinstance(current, dt.datetime) and moment.day is not None:
                t = current.time().replace(tzinfo=None)  # "no, Thursday": the same time, another day
            else:
                self.values.pop(f.name, None)
                self.day_only[f.name] = day
                self._leave_offer(f)  # another day: the times offered before are no longer the question
                if self.hours is not None and not self.hours.ranges_on(day):
                    self._offer(f, self._combine(day, dt.time(12)), turn,
                                self.hours.slot_problem(*self._slot(f, day, dt.time(12)), self._lead(f)))
                else:
                    turn.filled.append(f.name)
                return
        if t is None:
            t = self._first_in_part(f, day, moment)
            if t is None:
                lo, _ = _part_range(moment.part)
                want = self._combine(day, lo)
                problem = self.hours.slot_problem(*self._slot(f, day, lo), self._lead(f)) if self.hours else None
                self._offer(f, want, turn, problem)
                return
        if moment.either_half and t == moment.time:
            t = self._open_half(f, day, t)
        start, end = self._slot(f, day, t)
        problem = self.hours.slot_problem(start, end, self._lead(f)) if self.hours is not None else None
        if problem is None and not self._free(f)(start, end):
            problem = self.form.slot_taken.format(time=self._said(start))
        if problem is not None:
            self._offer(f, start, turn, problem)
            return
        self.day_only.pop(f.name, None)
        self._set(f, start, turn)
        self._leave_offer(f)

    def _open_half(self, f: FormField, day: dt.date, t: dt.time) -> dt.time:
        """"Friday at eight" to a restaurant open 12-23 is 8 pm; to a clinic open 8-17, 8 am.
        The hour said without am or pm is taken in whichever half of the day the business is
        open then; when both or neither are, the front-desk guess (``parse_moment``) stands."""
        if self.hours is None:
            return t
        other = t.replace(hour=(t.hour + 12) % 24)
        if not self.hours.fits(*self._slot(f, day, t)) and self.hours.fits(*self._slot(f, day, other)):
            return other
        return t

    def _combine(self, day: dt.date, t: dt.time) -> dt.datetime:
        zone = self.hours.hours.zone if self.hours is not None else dt.timezone.utc
        return dt.datetime.combine(day, t, tzinfo=zone)

    def _slot(self, f: FormField, day: dt.date, t: dt.time) -> tuple[dt.datetime, dt.datetime]:
        if self.hours is not None:
            return self.hours.slot(day, t, self._minutes(f))
        start = self._combine(day, t)
        return start, start + dt.timedelta(minutes=self._minutes(f))

    def _first_in_part(self, f: FormField, day: dt.date, moment: Moment) -> dt.time | None:
        """The first free time in the part of the day the caller named ("Tuesday morning")."""
        lo, hi = _part_range(moment.part)
        if self.hours is None:
            return lo
        earliest = self.hours.earliest(self._lead(f))
        free = self._free(f)
        for start in self.hours.grid(day, self._minutes(f)):
            t = start.time().replace(tzinfo=None)
            if lo <= t < hi and start >= earliest and free(*self._slot(f, day, t)):
                return t
        return None

    def _offer(self, f: FormField, want: dt.datetime, turn: _Turn, problem: str | None,
               exclude: dt.datetime | None = None) -> None:
        """Say why ``want`` cannot be had, and offer the nearest free times instead."""
        self.values.pop(f.name, None)
        self.day_only.pop(f.name, None)
        if problem:
            turn.problems.append(problem)
        if self.hours is None:
            return
        free = self._free(f)
        self._present_offers(f, self.hours.nearest_slots(want, self._minutes(f), self._lead(f),
                                                         lambda a, b: a != exclude and free(a, b)), turn)

    def _present_offers(self, f: FormField, offered: list[dt.datetime], turn: _Turn) -> None:
        """Offer ``offered`` for ``f`` (or say there is nothing): the turn ends with the choice."""
        self.offered, self.offered_for = offered, f
        turn.offered = True
        if offered:
            self.stage = "offering"
            options = f" {self.form.or_word} ".join(self._said(s) for s in offered)
            turn.problems.append(self.form.alternatives.format(options=options))
        else:
            self.stage = "asking"
            turn.problems.append(self.form.no_alternatives)

    def _offer_named(self, text: str, moment: Moment) -> dt.datetime | None:
        """Which offered time the caller picked: "the second one", "8:30", "Monday"."""
        low = text.lower()
        for word, i in _ORDINALS.items():
            if mentions(low, [word]):
                return self.offered[i] if -len(self.offered) <= i < len(self.offered) else None
        weekday = _weekday_named(low)
        for s in self.offered:
            # "what about Tuesday" after "Saturday at 12 or Tuesday, December 15 at 12": the
            # Tuesday offered, not the nearest Tuesday (only a weekday was said, no date).
            same_day = moment.day is None or moment.day == s.date() or (
                weekday is not None and weekday == s.weekday() and not re.search(r"\d", low))
            same_time = moment.time is None or moment.time == s.time().replace(tzinfo=None)
            if same_day and same_time and (moment.day is not None or moment.time is not None):
                return s
        return None

    def _offer_soonest(self, f: FormField, moment: Moment | None, turn: _Turn) -> None:
        """Offer the first free times: from now (with the lead), or from the start of the day
        named ("what's the earliest on Thursday?")."""
        assert self.hours is not None
        earliest = self.hours.earliest(self._lead(f))
        first = earliest.date()
        if moment is not None and moment.day is not None and moment.day > first:
            first = moment.day
        free = self._free(f)
        starts = (start for i in range(SOONEST_SEARCH_DAYS)
                  for start in self.hours.grid(first + dt.timedelta(days=i), self._minutes(f))
                  if start >= earliest and free(*self._slot(f, start.date(), start.time().replace(tzinfo=None))))
        self.values.pop(f.name, None)
        self.day_only.pop(f.name, None)
        self._present_offers(f, list(itertools.islice(starts, 2)), turn)

    def _leave_offer(self, f: FormField) -> None:
        """The caller answered the offer with a time of their own: a later yes is not for it."""
        if self.stage == "offering" and self.offered_for is f:
            self.offered = []
            self.offered_for = None
            self.stage = "asking"
            self.asking = f

    def _take_offer(self, f: FormField, start: dt.datetime) -> None:
        self.values[f.name] = start
        self.day_only.pop(f.name, None)
        self.offered = []
        self.offered_for = None
        self.stage = "asking"

    def _said(self, start: dt.datetime) -> str:
        """'Tuesday, March 31 at 9 am'."""
        return f"{say_day(start.date())} at {say_time(start.time().replace(tzinfo=None))}"

    # -- what to say next ----------------------------------------------------------------------------
    def _missing(self) -> FormField | None:
        # A day given without its time is finished first: the caller is talking about it.
        half = next((f for f in self.form.fields if f.name in self.day_only and f.name not in self.values), None)
        return half or next((f for f in self.form.fields if f.name not in self.values), None)

    def _ask(self, f: FormField) -> str:
        if f.type == "datetime" and f.name in self.day_only:
            return f.ask_time.format(day=say_day(self.day_only[f.name]))
        return f.ask

    def _next(self, turn: _Turn, opening: bool = False) -> str:
        parts = list(dict.fromkeys(turn.problems))
        if turn.offered and self.stage == "offering":
            return " ".join(parts)
        missing = self._missing()
        if missing is None:
            self.stage = "confirming"
            self.asking = None
            return " ".join([*parts, self.read_back()])
        if self.stage in ("confirming", "changing"):
            self.stage = "asking"
        got = [self._spoken(self.form.field(n)) for n in dict.fromkeys(turn.filled) if n in self.values]
        if got and not turn.offered:
            parts.insert(0, self.form.got.format(got=", ".join(got)))
        elif opening and not parts and self.form.start:
            parts.append(self.form.start)
        self.asking = missing
        parts.append(self._ask(missing))
        return " ".join(parts)

    def _spoken(self, f: FormField) -> str:
        value = self.values[f.name]
        if isinstance(value, Phone):
            return value.spoken()
        if isinstance(value, dt.datetime):
            return self._said(value)
        return str(value)

    def spoken_values(self) -> dict[str, str]:
        """Each field as it is read back; a datetime field also as {field}_day and {field}_time."""
        said: dict[str, str] = {}
        for f in self.form.fields:
            if f.name not in self.values:
                continue
            said[f.name] = self._spoken(f)
            value = self.values[f.name]
            if isinstance(value, dt.datetime):
                said[f"{f.name}_day"] = say_day(value.date())
                said[f"{f.name}_time"] = f"at {say_time(value.time().replace(tzinfo=None))}"
        return said

    def read_back(self) -> str:
        said = self.spoken_values()
        if self.form.read_back:
            return fill(self.form.read_back, said)
        return self.form.read_back_intro.format(values=", ".join(said[f.name] for f in self.form.fields))

    # -- the outcome -------------------------------------------------------------------------------
    def stored_values(self) -> dict[str, str]:
        """Each field as the business gets it: a phone number in E.164, a time in ISO 8601."""
        out = {}
        for f in self.form.fields:
            value = self.values.get(f.name)
            if isinstance(value, Phone):
                out[f.name] = value.e164
            elif isinstance(value, dt.datetime):
                out[f.name] = value.isoformat()
            elif value is not None:
                out[f.name] = str(value)
        return out

    def draft(self) -> OutcomeDraft:
        # Read by a person, not heard: a phone number as it is written, not digit by digit.
        written = {k: (self.values[k].written() if isinstance(self.values.get(k), Phone) else v)
                   for k, v in self.spoken_values().items()}
        if self.form.summary:
            summary = self.form.summary.format_map(written)
        else:
            summary = f"{self.form.name.replace('_', ' ')}: " + "; ".join(
                f"{f.name.replace('_', ' ')} {written[f.name]}" for f in self.form.fields)
        start = end = None
        if self.form.kind == "booking":
            f = next(f for f in self.form.fields if f.type == "datetime")
            start = self.values[f.name]
            assert isinstance(start, dt.datetime)
            start, end = self._slot(f, start.date(), start.time().replace(tzinfo=None))
        return OutcomeDraft(kind=self.form.kind, agent=self.agent_id, session_id=self.session_id,
                            fields=self.stored_values(), summary=summary, start=start, end=end, form=self.form.name)

    def _complete(self) -> FormReply:
        draft = self.draft()
        if self.outcomes is None:
            return self._finish(self.form.not_stored, "not stored: no outcome store configured")
        try:
            outcome_id = self.outcomes.record(draft)
        except SlotTaken:
            f = next(f for f in self.form.fields if f.type == "datetime")
            taken = draft.start
            assert taken is not None
            turn = _Turn()
            # The store said it is taken even if its free/busy answer lags: never offer it again.
            self._offer(f, taken, turn, self.form.slot_taken.format(time=self._said(taken)), exclude=taken)
            return FormReply(self._next(turn), "slot taken")
        except OutcomeNotStored as e:
            log.warning("outcome not stored: %s", e)
            return self._finish(self.form.not_stored, f"not stored: {e}")
        except Exception:
            # Whatever went wrong, the caller must not hear it was saved.
            log.exception("outcome store failed")
            return self._finish(self.form.not_stored, "not stored: the store failed")
        reply = self._finish(self.form.confirmed, f"{self.form.kind} stored")
        reply.outcome, reply.outcome_id = draft, outcome_id
        return reply

    def _finish(self, text: str, reason: str) -> FormReply:
        self.stage = "done"
        self.asking = None
        return FormReply(text, reason)

    def _field_called(self, text: str) -> FormField | None:
        for f in self.form.fields:
            if mentions(text, f.called_words()):
                return f
        return None


SOONEST_SEARCH_DAYS = 60  # how far ahead "the earliest" is looked for
# "What's the earliest you have?", "first available", "as soon as possible": the caller asks
# for the form's first free times rather than naming one.
_SOONEST = re.compile(r"\b(earliest|soonest|first (?:available|free|opening|slot|appointment)|"
                      r"next (?:available|free|opening|slot|appointment)|as soon as (?:possible|you can)|asap)\b")


# "it's 22 Hill Road": the lead-in before an answer that starts with a number (an address, a
# reference) is not part of it; "it's about my boiler" is a message and stays whole.
_LEAD_BEFORE_NUMBER = re.compile(r"^(?:(?:um+|uh+|er+|yeah|yes|so|ok|okay)[,.]?\s+)*"
                                 r"(?:it's|it is|that's|that is|(?:my|the) \w+ is)\s+(?=\d)", re.I)


def _text_answer(text: str) -> str:
    return _LEAD_BEFORE_NUMBER.sub("", text.strip())


def _weekday_named(low: str) -> int | None:
    """The one weekday a sentence names (0 = Monday), else None."""
    named = {i for i, day in enumerate(WEEKDAY_NAMES) if re.search(rf"\b{day.lower()}\b", low)}
    return named.pop() if len(named) == 1 else None


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with its ``{fields}`` filled, where a value that starts with the word the
    owner's text has just said loses that word: ``at {when_time}`` reads "at 11 am", not
    "at at 11 am" ({when_time} carries its own "at" for templates that put it after a comma)."""
    out = []
    for literal, name, spec, conv in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        value = format(values[name], spec or "")
        last = re.search(r"(\w+)\s+$", literal)
        if last and value.lower().startswith(last[1].lower() + " "):
            value = value[len(last[1]) + 1:]
        elif last and last[1].lower() in ("a", "an") and value:
            # "a {kind}" with "end-of-lease": "an end-of-lease" (by the letter; "a uniform" stays).
            article = "an" if value[0].lower() in "aeio" else "a"
            if article != last[1].lower():
                article = article.capitalize() if last[1][0].isupper() else article
                out[-1] = literal[:last.start(1)] + article + literal[last.end(1):]
        out.append(value)
    return "".join(out)


def _part_range(part: str | None) -> tuple[dt.time, dt.time]:
    from voicebox.thinking.opening_hours import PARTS_OF_DAY

    return PARTS_OF_DAY.get(part or "", (dt.time(0), dt.time.max))
