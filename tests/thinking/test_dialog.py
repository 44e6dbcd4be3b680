"""The off-ramp: router decisions, templates, booking, the re-prompt ladder and model tiers."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest

from voicebox.agent import load_agent
from voicebox.config import ModelsConfig
from voicebox.thinking.dialog import Dialog, is_goodbye, system_prompt, unsupported_numbers
from voicebox.thinking.form_fields import find_choice
from voicebox.thinking.intent_router import IntentRouter

from memory_sink import MemorySink


class FakeModel:
    """Streams a scripted reply; ``logprob`` is what mean_logprob reports for every sentence."""

    def __init__(self, reply: str, logprob: float | None = -0.2, name: str = "small") -> None:
        self.reply, self.logprob, self.name = reply, logprob, name
        self.calls = 0
        self.stop_after: int | None = None
        self.cancel: threading.Event | None = None

    def stream(self, messages, max_tokens, temperature, cancelled=None):
        self.calls += 1
        self.messages = messages
        for i, word in enumerate(self.reply.split(" ")):
            if cancelled is not None and cancelled.is_set():
                return
            if self.stop_after is not None and i == self.stop_after and self.cancel is not None:
                self.cancel.set()
            yield word + " "

    def tokens_so_far(self) -> int:
        return 0

    def mean_logprob(self, since: int = 0):
        return self.logprob


@pytest.fixture(scope="module")
def agent():
    return load_agent("riverside_dental")


@pytest.fixture(scope="module")
def router(agent):
    return IntentRouter.for_agent(agent)


# A Wednesday morning at the practice: every test answers from this clock, never the real one.
WEDNESDAY_10AM = dt.datetime(2025, 3, 5, 10, 0, tzinfo=ZoneInfo("America/Chicago"))


def make(agent, router, small=None, large=None, now: dt.datetime = WEDNESDAY_10AM, outcomes=None) -> Dialog:
    return Dialog(agent, router, small, ModelsConfig(), large, clock=lambda: now, outcomes=outcomes,
                  agent_id="test_agent", session_id="s-1")


@pytest.mark.parametrize(
    "said, kind, intent, must_contain",
    [
        ("Hi, what time do you open on Saturday?", "say", "hours", "9 am to 1 pm"),
        ("Where are you located?", "say", "location", "42 Mill Lane"),
        ("How much does a cleaning cost?", "say", "prices", "90 dollars"),
        ("Do you take Aetna insurance?", "say", "insurance", "Aetna"),
        ("Can I speak to a real person, please?", "transfer", "human", "front desk"),
        ("That's everything, thanks so much. Bye!", "hangup", "goodbye", "Goodbye"),
        ("I want to pay my bill.", "say", "billing", "front desk"),
    ],
)
def test_templated_intents_answer_from_the_facts_without_a_model(agent, router, said, kind, intent, must_contain):
    small = FakeModel("A cleaning is 25 dollars.")
    d = make(agent, router, small).decide(said)
    assert (d.kind, d.intent, d.tier) == (kind, intent, "template")
    assert must_contain in d.text
    assert small.calls == 0


def test_billing_is_sensitive(agent, router):
    assert make(agent, router).decide("I want to pay my bill with my card").sensitive


def test_out_of_scope_question_gets_no_invented_answer(agent, router):
    small = FakeModel("Yes, we do heart surgery on Tuesdays.")
    d = make(agent, router, small).decide("Do you do heart surgery?")
    assert d.kind == "say" and d.intent is None and d.tier == "none"
    assert d.text == agent.no_information and "front desk" in d.text
    assert small.calls == 0


def test_out_of_scope_goes_to_the_large_model_when_one_is_configured(agent, router):
    large = FakeModel("We only do dentistry here.", name="large")
    dialog = make(agent, router, FakeModel("x"), large)
    d = dialog.decide("Do you do heart surgery?")
    assert (d.kind, d.tier) == ("model", "large")
    said = list(dialog.model_reply("Do you do heart surgery?", d.tier, threading.Event()))
    assert said == ["We only do dentistry here."] and dialog.last_tier == "large"


def test_booking_collects_slots_and_reads_them_back(agent, router):
    dialog = make(agent, router)
    first = dialog.decide("I'd like to book a cleaning for next Tuesday morning.")
    assert first.intent == "booking" and first.tier == "booking"
    # The morning's first free time on the real date (the practice opens at 8).
    assert first.text == "Sure, cleaning, Tuesday, March 11 at 8 am. Could I have your name, please?"
    second = dialog.decide("My name is Dana Smith.")
    assert second.tier == "booking" and "phone number" in second.text
    third = dialog.decide("It's 312 555 0142.")
    assert third.text == ("Thank you, Dana Smith. That's a cleaning on Tuesday, March 11, at 8 am, and we can reach "
                          "you on 3 1 2, 5 5 5, 0 1 4 2. Is that right?")


def test_reprompt_ladder_then_transfer_and_reset_on_a_clear_turn(agent, router):
    dialog = make(agent, router)
    steps = [dialog.decide("um uh hmm") for _ in range(len(agent.reprompts) + 1)]
    assert [s.kind for s in steps] == ["reprompt"] * len(agent.reprompts) + ["give_up"]
    assert [s.text for s in steps[:-1]] == agent.reprompts
    assert steps[-1].tier == "person"
    dialog.decide("um uh")
    assert dialog.decide("Where are you located?").kind == "say"
    assert dialog.decide("um uh").text == agent.reprompts[0]  # a clear turn started the ladder again


def test_unreliable_transcript_uses_the_same_ladder(agent, router):
    dialog = make(agent, router)
    assert dialog.not_understood().text == agent.reprompts[0]
    assert dialog.not_understood().text == agent.reprompts[1]


def test_small_model_trusted_when_confident_and_grounded(agent, router):
    small = FakeModel("Nice to meet you. How can I help?", logprob=-0.3)
    dialog = make(agent, router, small)
    out = list(dialog.model_reply("hello there", "small", threading.Event()))
    assert out == ["Nice to meet you.", "How can I help?"] and dialog.last_tier == "small"
    assert dialog.history[-1]["content"] == "Nice to meet you. How can I help?"


@pytest.mark.parametrize("reply, logprob", [("A cleaning is $25 here.", -0.1), ("We are open late today.", -2.5)])
def test_untrusted_small_answer_goes_to_a_person_without_a_large_model(agent, router, reply, logprob):
    dialog = make(agent, router, FakeModel(reply, logprob=logprob))
    out = list(dialog.model_reply("question", "small", threading.Event()))
    assert out == [agent.no_information]
    assert dialog.last_tier == "person" and dialog.last_reason


def test_untrusted_small_answer_escalates_to_the_large_model(agent, router):
    large = FakeModel("A cleaning is 90 dollars.", logprob=None, name="large")
    dialog = make(agent, router, FakeModel("A cleaning is $25.", logprob=-0.1), large)
    out = list(dialog.model_reply("how much is a cleaning", "small", threading.Event()))
    assert out == ["A cleaning is 90 dollars."] and dialog.last_tier == "large" and large.calls == 1


def test_large_model_numbers_are_checked_too(agent, router):
    large = FakeModel("It costs 999 dollars.", logprob=None, name="large")
    dialog = make(agent, router, None, large)
    assert list(dialog.model_reply("q", "large", threading.Event())) == [agent.no_information]


def test_cancel_stops_between_tokens_and_says_nothing_more(agent, router):
    cancelled = threading.Event()
    small = FakeModel("We are a dental clinic. We do not do anything else at all.")
    small.stop_after, small.cancel = 6, cancelled
    out = list(make(agent, router, small).model_reply("q", "small", cancelled))
    assert out == ["We are a dental clinic."]


def test_history_in_the_prompt_is_bounded(agent, router):
    small = FakeModel("Sure thing.")
    dialog = make(agent, router, small)
    for i in range(6):
        dialog.remember(f"caller {i}", f"agent {i}")
    messages = dialog.messages_for("now")
    assert messages[0]["role"] == "system" and messages[-1]["content"] == "now"
    assert len(messages) == 2 + 6 and "caller 3" in messages[1]["content"]


def test_system_prompt_lists_every_fact(agent):
    prompt = system_prompt(agent)
    assert all(f"{k.replace('_', ' ')}: {v}" in prompt for k, v in agent.prompt_facts().items())
    # The per-weekday hours repeat opening_hours: left out of the model's prompt, kept for templates.
    assert "hours monday" not in prompt and "opening hours: Monday to Friday, 8 am to 6 pm" in prompt


@pytest.mark.parametrize(
    "text, expected",
    [("That's everything, thanks so much. Bye!", True), ("Goodbye", True), ("I'd like to buy a toothbrush", False)],
)
def test_is_goodbye_matches_whole_words(agent, text, expected):
    assert is_goodbye(text, agent.goodbye_phrases) is expected


def test_unsupported_numbers():
    facts = "9 am to 1 pm, 90 dollars"
    assert unsupported_numbers("It is 90 dollars", facts) == set()
    assert unsupported_numbers("It is 25 dollars at 9", facts) == {"25"}


def test_yes_after_the_booking_read_back_confirms_it(agent, router):
    sink = MemorySink()
    dialog = make(agent, router, outcomes=sink)
    for said in ("I'd like to book a cleaning for next Tuesday morning.", "My name is Dana Smith.", "312 555 0142"):
        dialog.remember(said, dialog.decide(said).text)
    d = dialog.decide("Yes, that's right.")
    assert d.tier == "booking" and "booked in" in d.text
    assert not dialog.form.active
    assert d.outcome is sink.recorded[0] and d.outcome_id == "out-1"
    assert (d.outcome.agent, d.outcome.session_id) == ("test_agent", "s-1")


def test_yes_to_a_transfer_offer_transfers(agent, router):
    dialog = make(agent, router)
    said = "I want to pay my bill."
    dialog.remember(said, dialog.decide(said).text)  # "... Would you like me to put you through?"
    assert dialog.decide("yes please").kind == "transfer"


@pytest.mark.parametrize("text, expected", [("Yes.", True), ("Yeah, that's right", True), ("No thanks", False),
                                             ("Um, no.", False), ("Yes, on Tuesday", None), ("Where are you?", None)])
def test_yes_or_no(text, expected):
    from voicebox.thinking.dialog import yes_or_no

    assert yes_or_no(text) is expected


# -- middling confidence on what matters is read back, not acted on ------------------------------
from voicebox.thinking.dialog import details_that_matter  # noqa: E402


@pytest.mark.parametrize(
    "text, read_back",
    [
        ("Can I come on Tuesday at 10 am?", "Tuesday at 10 am"),
        ("I want a cleaning Friday afternoon.", "Friday afternoon"),
        ("My name is Dana Smith.", "the name Dana Smith"),
        ("You can reach me on 555 123 4567.", "the number 5 5 5 1 2 3 4 5 6 7"),
        ("My card number is 4111 1111 1111 1111.", ""),  # never read a card back aloud
        ("What time do you open?", ""),
    ],
)
def test_details_that_matter(text, read_back):
    assert details_that_matter(text) == read_back


def test_unsure_booking_details_wait_for_the_forms_own_read_back(agent, router):
    """A form reads every detail back before it stores anything; the unsure day is not asked
    about twice (once alone, once in the read-back)."""
    dialog = make(agent, router)
    d = dialog.decide("I'd like a cleaning on Tuesday at 10 am.", logprob=-0.65)
    assert d.kind == "say" and d.tier == "booking", d
    assert dialog.form.values["when"] == dt.datetime(2025, 3, 11, 10, 0, tzinfo=ZoneInfo("America/Chicago"))
    dialog.remember("I'd like a cleaning on Tuesday at 10 am.", d.text)
    d = dialog.decide("My name is Dana Smith.", logprob=-0.7)
    assert d.tier == "booking" and dialog.form.values["name"] == "Dana Smith", d
    assert dialog.unconfirmed is None


def test_an_unsure_cancellation_is_read_back_before_it_is_acted_on(agent, router):
    dialog = make(agent, router)
    d = dialog.decide("I need to cancel my appointment on Tuesday at 10 am.", logprob=-0.65)
    assert d.tier == "confirm" and "Tuesday at 10 am" in d.text, d
    dialog.remember("I need to cancel my appointment on Tuesday at 10 am.", d.text)
    d = dialog.decide("No.", logprob=-0.2)
    assert d.tier == "confirm" and "again" in d.text
    assert dialog.unconfirmed is None


def test_sure_transcripts_and_unimportant_ones_are_not_read_back(agent, router):
    dialog = make(agent, router)
    assert dialog.decide("I'd like a cleaning on Tuesday at 10 am.", logprob=-0.2).tier != "confirm"
    assert dialog.decide("What time do you open?", logprob=-0.7).tier != "confirm"
    # A question that mentions a day is answered, not read back (the corpus robot voice).
    assert make(agent, router).decide("What time do you open on Saturday?", logprob=-0.7).tier == "template"


# -- hours from the clock, bookings checked against them, wording from the agent file ------------
@pytest.mark.parametrize(
    "said, now, expected",
    [
        ("Are you open right now?", WEDNESDAY_10AM, "Yes, we're open now, until 6 pm."),
        ("Are you open now?", dt.datetime(2025, 3, 8, 14, 0, tzinfo=ZoneInfo("America/Chicago")),
         "We're closed right now. We open again on Monday at 8 am."),
        ("Are you open on Saturday?", WEDNESDAY_10AM, "On Saturday we're open 9 am to 1 pm."),
        ("What are your opening hours?", WEDNESDAY_10AM,
         "We're open Monday to Friday, 8 am to 6 pm, and Saturday, 9 am to 1 pm. On Sunday we're closed."),
    ],
)
def test_hours_questions_are_answered_from_the_clock(agent, router, said, now, expected):
    d = make(agent, router, now=now).decide(said)
    assert (d.kind, d.intent, d.tier, d.text) == ("say", "hours", "template", expected)


def test_booking_on_a_closed_day_is_refused_and_open_days_offered(agent, router):
    dialog = make(agent, router)
    d = dialog.decide("I'd like to book a cleaning on Sunday at 10 am.")
    assert d.tier == "booking" and d.text == (
        "On Sunday we're closed. We open again on Monday at 8 am. The nearest appointments I can offer are "
        "Saturday, March 8 at 10 am or Monday, March 10 at 10 am. Would one of those suit you?")
    assert "when" not in dialog.form.values and dialog.form.values["service"] == "cleaning"


def test_another_trade_books_its_own_services_in_its_own_words():
    plumber = load_agent("harbor_plumbing")
    dialog = make(plumber, IntentRouter.for_agent(plumber),
                  now=dt.datetime(2025, 3, 5, 10, 0, tzinfo=ZoneInfo("Europe/London")))
    sink = MemorySink()
    dialog = make(plumber, IntentRouter.for_agent(plumber),
                  now=dt.datetime(2025, 3, 5, 10, 0, tzinfo=ZoneInfo("Europe/London")), outcomes=sink)
    first = dialog.decide("I have a blocked drain, can someone come on Friday at 9 am?")
    assert first.intent == "booking"
    assert first.text == "Right, drain unblocking, Friday, March 7 at 9 am. Who should the engineer ask for?"
    for said in ("Sam Jones.", "12 Quay Street, HB1 2AA", "0161 496"):
        reply = dialog.decide(said)
        dialog.remember(said, reply.text)
    assert reply.text == "Sorry, that number didn't sound complete. Last thing: a mobile number in case we're running late?"
    read_back = dialog.decide("020 7946 0958")
    assert read_back.text == (
        "Lovely. So that's drain unblocking at 12 Quay Street, HB1 2AA, on Friday, March 7, at 9 am, for Sam Jones, "
        "and we'll ring 0 2 0, 7 9 4 6, 0 9 5 8 if we're held up. Is that all correct?")
    confirmed = dialog.decide("Yes.")
    assert confirmed.text == plumber.form_for("booking").confirmed
    assert sink.recorded[0].fields["phone"] == "+442079460958"
    # Nothing of the dental practice is bookable here.
    assert find_choice("a teeth whitening please", plumber.form_for("booking").fields[0].choices) is None


def test_yes_transfers_only_after_a_line_with_an_offer_phrase(agent, router):
    dialog = make(agent.model_copy(update={"actions": agent.actions.model_copy(
        update={"offer_phrases": ["connect you"]})}), router)
    dialog.remember("I want to pay my bill.", "Shall I connect you to the office?")
    assert dialog.decide("yes please").kind == "transfer"
    dialog.remember("I want to pay my bill.", "Would you like me to put you through?")
    assert dialog.decide("yes please").kind == "say"  # not this agent's offer phrase
