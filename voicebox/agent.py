"""Agent configuration: who answers the phone and what they know.

One TOML file per agent. The built-in agents live in ``voicebox/agents/``; a path to any other
file works the same way.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voicebox.config import ConfigError, format_validation_error, read_toml
from voicebox.outcomes.settings import OutcomesConfig

BUILTIN_DIR = Path(__file__).parent / "agents"


class Intent(BaseModel):
    """Something callers ask for, learned from example phrasings, and how the agent answers it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$")
    examples: list[str] = Field(..., min_length=3, description="Ways callers say it; the router learns from these.")
    answer: str | None = Field(
        None, description="Reply template; {fact} placeholders are filled from [facts]. Omit to ask the model."
    )
    action: Literal["answer", "model", "transfer", "hangup", "hours"] = Field(
        "answer",
        description="answer: say the template; model: the language model replies; "
        "transfer: say it, then REFER to the front desk; hangup: say it, then end the call; "
        "hours: answered from [hours] and the clock (the template answers a question that names no day).",
    )
    complex: bool = Field(False, description="Needs the bigger model tier when one is configured.")
    sensitive: bool = Field(False, description="Payment talk: never recorded.")

    @model_validator(mode="after")
    def _answer_needed(self) -> "Intent":
        if self.action in ("answer", "hours") and not self.answer:
            raise ValueError(f"an intent with action '{self.action}' needs an answer")
        return self


class Service(BaseModel):
    """One thing a caller can book, and the other words callers use for it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, description="How the agent says it when reading a booking back.")
    also: list[str] = Field(default_factory=list, description="Other words callers use for it.")

    def cues(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w.lower() for w in (self.name, *self.also) if w.strip()))


class BookingConfig(BaseModel):
    """What the intent named ``booking`` collects, and how it talks. Every sentence has a default."""

    model_config = ConfigDict(extra="forbid")

    services: list[Service] = Field(
        default_factory=list,
        description="What can be booked. Empty: the booking asks for 'the service you need' and takes none.",
    )
    start: str = Field("I can help you book that.", min_length=1, description="Opens a booking that has nothing yet.")
    got: str = Field("Sure, {got}.", min_length=1, description="What was understood so far ({got}).")
    ask: str = Field("Could I have {missing}?", min_length=1, description="Asks for what is missing ({missing}).")
    ask_for: dict[Literal["name", "service", "day", "time"], str] = Field(
        default_factory=lambda: {"name": "your name", "service": "the service you need",
                                 "day": "a preferred day", "time": "a preferred time"},
        description="How each missing slot is asked for.",
    )
    read_back: str = Field(
        "Thank you, {name}. That's a {service} for {day}, {time}. Is that right?", min_length=1,
        description="Read back once every slot is filled: {name} {service} {day} {time}.",
    )
    confirmed: str = Field(
        "Great. The front desk will call you to confirm the exact time. Is there anything else I can help with?",
        min_length=1, description="Said after the caller's yes to the read-back.",
    )
    restart: str = Field("Sorry about that. Let's start again:", min_length=1,
                         description="Said after a no to the read-back, before asking again.")
    and_word: str = Field("and", min_length=1, description="Joins the last two missing slots.")

    @field_validator("services")
    @classmethod
    def _services_unique(cls, v: list[Service]) -> list[Service]:
        names = [s.name.lower() for s in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"services named twice: {dupes}")
        return v

    @model_validator(mode="after")
    def _templates_use_known_slots(self) -> "BookingConfig":
        allowed = {"start": set(), "got": {"got"}, "ask": {"missing"}, "confirmed": set(), "restart": set(),
                   "read_back": {"name", "service", "day", "time"}}
        for field, known in allowed.items():
            unknown = set(template_fields(getattr(self, field))) - known
            if unknown:
                raise ValueError(f"booking.{field}: unknown placeholder(s) {sorted(unknown)}; known: {sorted(known)}")
        return self


FieldType = Literal["name", "phone", "datetime", "choice", "number", "text"]
FormKind = Literal["booking", "message", "callback"]
# What each kind of field answers to when a caller asks to change it ("the number", "the time").
DEFAULT_CALLED: dict[str, list[str]] = {
    "name": ["name"], "phone": ["number", "phone"], "datetime": ["time", "day", "date"],
}
DEFAULT_INVALID: dict[str, str] = {
    "name": "Sorry, I didn't catch the name.",
    "phone": "Sorry, that doesn't sound like a full phone number.",
    "datetime": "Sorry, I didn't catch the day and time.",
    "choice": "Sorry, I didn't catch which one.",
    "number": "Sorry, I didn't catch the number.",
    "text": "Sorry, I didn't catch that.",
}


class FormField(BaseModel):
    """One thing a form collects, asked for in the order the fields are listed."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="The key it is stored and read back under.")
    type: FieldType = Field(..., description="name | phone | datetime | choice | number | text")
    ask: str = Field(..., min_length=1, description="The question that asks for it.")
    ask_time: str = Field("What time on {day} would suit you?", min_length=1,
                          description="datetime: asks for the time once a day without one was named ({day}).")
    invalid: str = Field("", description="Said before asking again when an answer cannot be used; "
                         "a default per type when empty.")
    called: list[str] = Field(default_factory=list, description="What callers call it when they want it changed "
                              "('the number'); defaults by type, and always the field's name.")
    choices: list[Service] = Field(default_factory=list, description="choice: the options, with other words for them.")
    units: list[str] = Field(default_factory=list, description="number: words after a number that mean this field "
                             "('people'), so it is taken from any sentence, not only as an answer.")
    min: int | None = Field(None, description="number: the smallest allowed.")
    max: int | None = Field(None, description="number: the largest allowed.")
    lead_minutes: int | None = Field(None, ge=0, le=60 * 24 * 60,
                                     description="datetime: notice needed; default [hours].booking_lead_minutes "
                                     "for a booking, none otherwise.")

    @model_validator(mode="after")
    def _type_needs(self) -> "FormField":
        if self.type == "choice" and not self.choices:
            raise ValueError(f"field {self.name!r}: a choice needs choices")
        if self.type != "choice" and self.choices:
            raise ValueError(f"field {self.name!r}: only a choice has choices")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"field {self.name!r}: min is above max")
        names = [c.name.lower() for c in self.choices]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"field {self.name!r}: choices named twice: {dupes}")
        for tmpl, known in ((self.ask, set()), (self.ask_time, {"day"}), (self.invalid, set())):
            unknown = set(template_fields(tmpl)) - known
            if unknown:
                raise ValueError(f"field {self.name!r}: unknown placeholder(s) {sorted(unknown)} in {tmpl!r}")
        return self

    def invalid_line(self) -> str:
        return self.invalid or DEFAULT_INVALID[self.type]

    def called_words(self) -> list[str]:
        return list(dict.fromkeys([*(self.called or DEFAULT_CALLED.get(self.type, [])), self.name.replace("_", " ")]))


class Form(BaseModel):
    """What the agent collects for one kind of outcome (a booking, a message, a callback request),
    started by an intent, filled slot by slot, read back, and stored on the caller's yes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$")
    intent: str = Field(..., description="The intent that starts it.")
    kind: FormKind = Field(..., description="booking | message | callback: what the outcome is.")
    fields: list[FormField] = Field(..., min_length=1, description="What it collects, in the order asked.")
    duration_minutes: int = Field(30, ge=5, le=24 * 60, description="booking: how long the slot is.")
    start: str = Field("", description="Said before the first question when the opening sentence filled nothing.")
    got: str = Field("Sure, {got}.", min_length=1, description="Echoes what a sentence filled ({got}).")
    read_back: str = Field("", description="Read back once every field is filled; {field} placeholders "
                           "(a datetime field also {field_day} and {field_time}). Default: the values listed.")
    read_back_intro: str = Field("Let me read that back: {values}. Is that right?", min_length=1,
                                 description="The default read-back ({values}).")
    confirmed: str = Field("Thank you, that's all noted. Is there anything else I can help with?", min_length=1,
                           description="Said once the outcome is stored, after the caller's yes.")
    change: str = Field("Sorry about that. What would you like to change?", min_length=1,
                        description="Said after a no to the read-back.")
    cancelled: str = Field("Okay, I've cancelled that. Is there anything else I can help with?", min_length=1)
    not_stored: str = Field(
        "I'm sorry, I couldn't save that just now. Would you like me to put you through to someone?",
        min_length=1, description="Said when the outcome could not be stored; should offer a person "
        "(one of actions.offer_phrases), so that a yes transfers.",
    )
    slot_taken: str = Field("Sorry, {time} has just been taken.", min_length=1,
                            description="booking: the slot went to another caller ({time}).")
    alternatives: str = Field("The nearest times I can offer are {options}. Would one of those suit you?",
                              min_length=1, description="Offers free times ({options}).")
    no_alternatives: str = Field(
        "I'm sorry, I can't find a free time near then. Would you like me to put you through to someone?",
        min_length=1,
    )
    or_word: str = Field("or", min_length=1)
    summary: str = Field("", description="One sentence for the person at the business, with {field} "
                         "placeholders; default: the form's name and the values.")
    cancel_phrases: list[str] = Field(
        default_factory=lambda: ["cancel that", "cancel it", "forget it", "never mind", "nevermind",
                                 "don't bother", "stop that"],
        description="Caller phrases that drop the form (whole words, case-insensitive).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "Form":
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"form {self.name!r}: fields named twice: {dupes}")
        if self.kind == "booking" and sum(f.type == "datetime" for f in self.fields) != 1:
            raise ValueError(f"form {self.name!r}: a booking needs exactly one datetime field (its slot)")
        values = set(names) | {f"{f.name}_{p}" for f in self.fields if f.type == "datetime" for p in ("day", "time")}
        checks = {"start": set(), "got": {"got"}, "read_back": values, "read_back_intro": {"values"},
                  "confirmed": set(), "change": set(), "cancelled": set(), "not_stored": set(),
                  "slot_taken": {"time"}, "alternatives": {"options"}, "no_alternatives": set(), "summary": values}
        for key, known in checks.items():
            unknown = set(template_fields(getattr(self, key))) - known
            if unknown:
                raise ValueError(f"form {self.name!r}: {key}: unknown placeholder(s) {sorted(unknown)}; "
                                 f"known: {sorted(known)}")
        return self

    def field(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)


def booking_form(booking: BookingConfig) -> Form:
    """The form an older agent file's [booking] section stands for: name, service (when it
    lists any) and a day and time, in its own wording; its {day} and {time} read the slot back."""
    ask = booking.ask
    fields = [FormField(name="name", type="name", ask=ask.format(missing=booking.ask_for["name"]))]
    if booking.services:
        fields.append(FormField(name="service", type="choice", choices=booking.services,
                                ask=ask.format(missing=booking.ask_for["service"])))
    day_and_time = f"{booking.ask_for['day']} {booking.and_word} {booking.ask_for['time']}"
    fields.append(FormField(name="when", type="datetime", ask=ask.format(missing=day_and_time),
                            ask_time=ask.format(missing=booking.ask_for["time"])))
    read_back = booking.read_back.replace("{day}", "{when_day}").replace("{time}", "{when_time}")
    if not booking.services:
        read_back = read_back.replace("{service}", "")  # as the older booking read it back: nothing there
    return Form(name="booking", intent="booking", kind="booking", fields=fields, start=booking.start,
                got=booking.got, read_back=read_back, confirmed=booking.confirmed)


class Recognizer(BaseModel):
    """Words of this business that help hear the caller right."""

    model_config = ConfigDict(extra="forbid")

    confusions: list[tuple[str, str]] = Field(
        default_factory=list,
        description="[said, heard] pairs: how the recognizer mishears this business's words on a phone line "
        "The router trains on the misheard forms too.",
    )
    vocabulary: list[str] = Field(
        default_factory=list, description="Extra words to expect (names, streets) besides those in the file."
    )
    prompt: Literal["vocabulary", "off"] = Field(
        "vocabulary",
        description="vocabulary: every decode of a call is prompted with this business's words (its name, what "
        "its forms book, the proper nouns of its facts, [recognizer] vocabulary, then the rest; 32 tokens at "
        "most), measured to help in benchmarks/results/wer.md; off: no prompt.",
    )

    @field_validator("confusions")
    @classmethod
    def _pairs_not_blank(cls, v: list[tuple[str, str]]) -> list[tuple[str, str]]:
        bad = [list(p) for p in v if not p[0].strip() or not p[1].strip() or p[0].strip() == p[1].strip()]
        if bad:
            raise ValueError(f"each confusion is [said, heard], two different non-blank phrases: {bad}")
        return v


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_day_hours(text: str) -> list[tuple[dt.time, dt.time]]:
    """'8:00-18:00', '8:00-12:00, 13:00-17:00' or 'closed' as [(open, close), ...] (24-hour clock)."""
    if text.strip().lower() == "closed":
        return []
    ranges = []
    for part in text.split(","):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"{part.strip()!r} is not a range like '8:00-18:00' (24-hour clock) or 'closed'")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{part.strip()!r}: not a time of day")
        start, end = dt.time(h1, m1), dt.time.max if h2 == 24 else dt.time(h2, m2)
        if end <= start:
            raise ValueError(f"{part.strip()!r}: closes before it opens (ranges past midnight are not supported)")
        if ranges and start < ranges[-1][1]:
            raise ValueError(f"{text.strip()!r}: ranges overlap or are out of order")
        ranges.append((start, end))
    return ranges


class HoursWording(BaseModel):
    """The sentences that answer questions about opening hours; placeholders are filled from the clock."""

    model_config = ConfigDict(extra="forbid")

    open_now: str = Field("Yes, we're open now, until {closes}.", min_length=1)
    closed_now: str = Field("We're closed right now. We open again {next_open}.", min_length=1)
    open_day: str = Field("{when} we're open {hours}.", min_length=1)
    closed_day: str = Field("{when} we're closed. We open again {next_open}.", min_length=1)
    open_at: str = Field("Yes, we're open {when} at {time}.", min_length=1)
    closed_at: str = Field("Sorry, we're closed {when} at {time}. That day we're open {hours}.", min_length=1)
    too_soon: str = Field(
        "We need {lead} notice for a booking. The earliest we can offer is {earliest}.", min_length=1
    )

    @model_validator(mode="after")
    def _known_placeholders(self) -> "HoursWording":
        known = {"closes", "next_open", "when", "hours", "time", "lead", "earliest"}
        for field in type(self).model_fields:
            unknown = set(template_fields(getattr(self, field))) - known
            if unknown:
                raise ValueError(f"hours.say.{field}: unknown placeholder(s) {sorted(unknown)}; known: {sorted(known)}")
        return self


class Hours(BaseModel):
    """Opening hours as data: the clock answers 'are you open now', 'tomorrow at 5', 'on the 24th'."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field(..., description="IANA time zone name, e.g. 'America/New_York'.")
    monday: str = "closed"
    tuesday: str = "closed"
    wednesday: str = "closed"
    thursday: str = "closed"
    friday: str = "closed"
    saturday: str = "closed"
    sunday: str = "closed"
    closed_on: list[dt.date] = Field(default_factory=list, description="Holidays and closures (TOML dates).")
    booking_lead_minutes: int = Field(0, ge=0, le=60 * 24 * 60, description="How far ahead a booking must be.")
    say: HoursWording = Field(default_factory=HoursWording)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone name (e.g. 'Europe/London')") from None
        return v

    @field_validator(*WEEKDAYS)
    @classmethod
    def _ranges_parse(cls, v: str) -> str:
        parse_day_hours(v)
        return v

    @model_validator(mode="after")
    def _open_some_day(self) -> "Hours":
        if not any(self.ranges(d) for d in range(7)):
            raise ValueError("closed every day of the week: give at least one day's hours, e.g. monday = '9:00-17:00'")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def ranges(self, weekday: int) -> list[tuple[dt.time, dt.time]]:
        """(open, close) ranges on a weekday (0 = Monday)."""
        return parse_day_hours(getattr(self, WEEKDAYS[weekday]))


class Replies(BaseModel):
    """The dialog's own sentences, in the agent's words and language."""

    model_config = ConfigDict(extra="forbid")

    confirm_details: str = Field("I heard {details}. Is that right?", min_length=1,
                                 description="Reads back an unsure day, time, name or number ({details}).")
    details_refused: str = Field("Sorry about that. Could you say it again?", min_length=1)
    after_yes: str = Field("Okay. How else can I help?", min_length=1)
    after_no: str = Field("Okay. Is there anything else I can help with?", min_length=1)


class Tiers(BaseModel):
    """Escalation past the small model: a bigger one, then a person."""

    model_config = ConfigDict(extra="forbid")

    large: str = Field("", description="GGUF path or manifest name, or http(s) URL of an OpenAI-compatible server.")
    large_model: str = Field("default", description="Model name sent to an OpenAI-compatible server.")
    large_timeout_ms: int = Field(
        3000, ge=100, le=60000,
        description="An OpenAI-compatible server silent this long is treated as down: the caller gets a person.",
    )
    min_mean_logprob: float = Field(
        -1.0, le=0, description="A small-model sentence below this mean token log-probability is not trusted."
    )


class Actions(BaseModel):
    """What the agent can do to the call besides talking."""

    model_config = ConfigDict(extra="forbid")

    transfer_uri: str | None = Field(
        None, pattern=r"^sips?:", description="Where a caller who asks for a person is sent (SIP REFER)."
    )
    transfer_announcement: str = Field("Let me put you through to the front desk.", min_length=1)
    no_transfer: str = Field(
        "I'm sorry, there's nobody I can put you through to right now. Please call back during opening hours.",
        min_length=1,
        description="Said when a transfer is asked for but none is configured or it failed.",
    )
    offer_phrases: list[str] = Field(
        default_factory=lambda: ["put you through"],
        description="A caller's bare yes right after an agent line containing one of these is taken as yes to "
        "a transfer offer, and the call is transferred.",
    )
    transfer_mode: Literal["blind", "warm"] = Field(
        "blind",
        description="blind: REFER the caller to transfer_uri. warm: call transfer_uri first, say warm_summary "
        "to whoever answers, then connect the caller (REFER with Replaces); blind when that fails.",
    )
    warm_answer_timeout_s: float = Field(
        20, gt=0, le=120, description="Warm transfer: how long the target may ring before the blind REFER."
    )
    warm_summary: str = Field(
        "Hello, this is the {agent} phone assistant with a caller: {reason}. Connecting you now.",
        min_length=1,
        description="Warm transfer: the one sentence the target hears; {agent} is the agent's name, {reason} why.",
    )
    dtmf_prompt: str = Field("", description="Offered with re-prompts, e.g. 'press 0 for the front desk'.")
    dtmf: dict[str, Literal["transfer", "hangup", "repeat"]] = Field(
        default_factory=lambda: {"0": "transfer"}, description="Key → action (RFC 4733 events or SIP INFO)."
    )

    @field_validator("warm_summary")
    @classmethod
    def _summary_fields(cls, v: str) -> str:
        try:
            v.format(agent="", reason="")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"warm_summary may use only {{agent}} and {{reason}}: {e}") from None
        return v

    @field_validator("dtmf")
    @classmethod
    def _keys_are_dtmf(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if k not in "0123456789*#ABCD" or len(k) != 1]
        if bad:
            raise ValueError(f"not DTMF keys: {bad}")
        return v


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, description="The business or agent's name.")
    language: str = Field("en", pattern=r"^[a-z]{2}$", description="ISO 639-1 language of the calls, e.g. 'en'.")
    persona: str = Field(..., min_length=1, description="One or two sentences on how the agent speaks.")
    greeting: str = Field(..., min_length=1, description="Spoken as soon as the call is answered.")
    facts: dict[str, str] = Field(..., min_length=1, description="Named facts: all the agent may state.")
    intents: list[Intent] = Field(default_factory=list, description="What callers ask for, and the answers.")
    reprompts: list[str] = Field(
        default_factory=lambda: ["Sorry, I didn't catch that. Could you say it again?"],
        min_length=1,
        description="The ladder for unclear turns, one step per consecutive unclear turn.",
    )
    after_reprompts: Literal["transfer", "goodbye"] = Field(
        "transfer", description="What happens after the last re-prompt step."
    )
    actions: Actions = Field(default_factory=Actions)
    tiers: Tiers = Field(default_factory=Tiers)
    booking: BookingConfig = Field(default_factory=BookingConfig, description="Older files: the booking form "
                                   "the intent named 'booking' runs, when the file has no [[forms]].")
    forms: list[Form] = Field(default_factory=list, description="What the agent collects: bookings, messages, "
                              "callback requests, each started by an intent.")
    phone_region: str | None = Field(None, description="Where callers' phone numbers are from when they give no "
                                     "country code (ISO 3166 region, e.g. 'GB', 'US'); unset: only +country numbers.")
    out_of_scope: list[str] = Field(
        default_factory=list,
        description="Things callers of this business ask that no intent covers (other trades, other services). "
        "Added to a small trade-neutral base (jokes, weather, sport scores).",
    )
    recognizer: Recognizer = Field(default_factory=Recognizer)
    hours: Hours | None = Field(None, description="Opening hours as data; derives the facts hours_<weekday>, "
                                "opening_hours and closed_days.")
    replies: Replies = Field(default_factory=Replies)
    outcomes: OutcomesConfig = Field(
        default_factory=OutcomesConfig,
        description="Where bookings, messages and callback requests are delivered (webhook, email, calendar).",
    )
    goodbye: str = Field("Thanks for calling. Goodbye!", min_length=1)
    goodbye_phrases: list[str] = Field(
        default_factory=lambda: ["bye", "goodbye", "good bye", "that's all", "that is all"],
        description="Caller phrases that end the call (matched as whole words, case-insensitive).",
    )
    apology: str = Field(
        "I'm sorry, something went wrong on our side. Please call again in a moment. Goodbye.",
        min_length=1,
        description="Spoken before hanging up after an internal error.",
    )
    model_failed: str = Field(
        "Sorry, I lost my train of thought there. Could you say that again?",
        min_length=1,
        description="Said when the model's worker process fails mid-reply; the call goes on.",
    )
    no_information: str = Field(
        "I'm sorry, I don't have that information. I can put you through to the front desk.",
        min_length=1,
        description="Said instead of anything the model cannot back with a fact.",
    )
    max_call_goodbye: str = Field(
        "I'm sorry, we've reached the time limit for this call. Goodbye.", min_length=1
    )
    confirm_below_logprob: float = Field(
        -0.5, ge=-5.0, le=0.0,
        description="A transcript this unsure (mean token log-probability) that carries a day, time, "
        "name or number is read back for a yes before it is acted on.",
    )

    @field_validator("goodbye_phrases", "reprompts", "out_of_scope")
    @classmethod
    def _no_blank_items(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("items must not be blank")
        return v

    @field_validator("facts")
    @classmethod
    def _no_blank_facts(cls, v: dict[str, str]) -> dict[str, str]:
        blank = [k for k, text in v.items() if not text.strip()]
        if blank:
            raise ValueError(f"blank facts: {blank}")
        return v

    @model_validator(mode="after")
    def _derive_hours_facts(self) -> "AgentConfig":
        # The hours facts are written from [hours], never by hand, so a template and the clock
        # cannot disagree about when the business is open.
        if self.hours is None:
            return self
        from voicebox.thinking.opening_hours import hours_facts  # the formatting lives with the clock

        derived = hours_facts(self.hours)
        clash = sorted(set(derived) & set(self.facts))
        if clash:
            raise ValueError(f"facts: {clash} are derived from [hours]; remove them from [facts]")
        self.facts.update(derived)
        return self

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import phonenumbers

        if v.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{v!r} is not a region phone numbers are known for (e.g. 'GB', 'US')")
        return v.upper()

    @model_validator(mode="after")
    def _forms_fit_the_file(self) -> "AgentConfig":
        if self.forms and "booking" in self.model_fields_set:
            raise ValueError("forms: the file has both [[forms]] and [booking]; describe the booking as a form")
        intents = {i.name for i in self.intents}
        seen: dict[str, str] = {}
        for form in self.forms:
            if form.intent not in intents:
                raise ValueError(f"forms: form {form.name!r} is started by intent {form.intent!r}, "
                                 f"which the file does not have; known: {sorted(intents)}")
            if form.intent in seen:
                raise ValueError(f"forms: intent {form.intent!r} starts both {seen[form.intent]!r} and {form.name!r}")
            seen[form.intent] = form.name
            if self.hours is None and any(f.type == "datetime" for f in form.fields):
                raise ValueError(f"forms: form {form.name!r} has a datetime field, which needs [hours] "
                                 "(its time zone and opening hours)")
        names = [f.name for f in self.forms]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"forms: names used twice: {dupes}")
        return self

    @model_validator(mode="after")
    def _intent_actions_have_what_they_need(self) -> "AgentConfig":
        hours_intents = [i.name for i in self.intents if i.action == "hours"]
        if hours_intents and self.hours is None:
            raise ValueError(f"intents {hours_intents} have action 'hours' but the file has no [hours] section")
        return self

    @model_validator(mode="after")
    def _templates_use_known_facts(self) -> "AgentConfig":
        names = [i.name for i in self.intents]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"intents: names used twice: {dupes}")
        for i, intent in enumerate(self.intents):
            for field in template_fields(intent.answer or ""):
                if field not in self.facts:
                    raise ValueError(
                        f"intents.{i}.answer ({intent.name}): unknown fact {{{field}}}; "
                        f"known: {', '.join(sorted(self.facts))}"
                    )
        return self

    def intent(self, name: str) -> Intent | None:
        return next((i for i in self.intents if i.name == name), None)

    def fill(self, template: str) -> str:
        return template.format_map(self.facts)

    def prompt_facts(self) -> dict[str, str]:
        """The facts a language model is given: all but the per-weekday hours, which repeat
        opening_hours and would only lengthen the prompt (and its prefill) on every turn."""
        if self.hours is None:
            return dict(self.facts)
        per_day = {f"hours_{d}" for d in WEEKDAYS}
        return {k: v for k, v in self.facts.items() if k not in per_day}

    def active_forms(self) -> list[Form]:
        """The file's [[forms]]; an older file's [booking] as the form of the intent named 'booking'."""
        if self.forms:
            return list(self.forms)
        if self.intent("booking") is None:
            return []
        return [booking_form(self.booking)]

    def form_for(self, intent: str | None) -> Form | None:
        return next((f for f in self.active_forms() if f.intent == intent), None)

    def choices(self) -> list[Service]:
        """Every option of every choice field of every form (what can be booked, and the like)."""
        return [c for form in self.active_forms() for f in form.fields for c in f.choices]

    def service_cues(self) -> dict[str, tuple[str, ...]]:
        """Each option of the forms' choice fields → the words that name it (its name first)."""
        return {c.name: c.cues() for c in self.choices()}

    def vocabulary(self) -> list[str]:
        """Words this business's callers are likely to say that a recognizer may not expect:
        the business name, services and their other names, the correct side of each known
        confusion, and the capitalized words of the facts (streets, towns, insurers)."""
        words: list[str] = [self.name]
        for choice in self.choices():
            words += [choice.name, *choice.also]
        words += [said for said, _ in self.recognizer.confusions]
        for text in self.facts.values():
            words += re.findall(r"\b[A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+)*", text)
        words += self.recognizer.vocabulary
        return list(dict.fromkeys(w.strip() for w in words if w.strip()))


def template_fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def agent_file(name_or_path: str) -> Path:
    """The TOML of a built-in agent (by name) or the user's own (by path)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = BUILTIN_DIR / f"{name_or_path}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in BUILTIN_DIR.glob("*.toml")))
        raise ConfigError(f"agent {name_or_path!r}: no such file (built-in agents: {known})")
    return path


def load_agent(name_or_path: str) -> AgentConfig:
    """Load a built-in agent by name, or an agent TOML by path; ConfigError names the field."""
    path = agent_file(name_or_path)
    raw = read_toml(path, "agent file")
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path))) from None
