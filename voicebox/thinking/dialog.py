"""The conversation with one caller: what to do with each of their turns.

The off-ramp, cheapest first:
1. the intent router (trained at start-up on the agent's examples) picks an intent;
2. a templated intent is answered from the facts, exactly, with no model at all;
3. an intent left to the model goes to the small model, whose sentences are trusted only while
   their mean token log-probability stays above the agent's threshold and every number in them
   is backed by a fact;
4. an untrusted answer escalates to the bigger model when one is configured, else to a person:
   "I don't have that information" and an offer to transfer.
Unclear turns climb the agent's re-prompt ladder instead; nothing unclear is acted on.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Iterator, Literal

from voicebox.agent import AgentConfig
from voicebox.config import ModelsConfig
from voicebox.outcomes.draft import OutcomeDraft, OutcomeSink
from voicebox.thinking.form_fields import find_name, loose_when
from voicebox.thinking.forms import FormSession
from voicebox.thinking.clause_chunker import ClauseChunker
from voicebox.thinking.intent_router import IntentRouter
from voicebox.thinking.language_model import ChatModel
from voicebox.thinking.opening_hours import Clock, OpeningHours

# An intent name with a meaning of its own (README, "The agent file"): "cancel", like every
# intent that starts a form, acts on a day, time or name, so an unsure transcript of it is read
# back before it is acted on.
CANCEL_INTENT = "cancel"
HISTORY_TURNS = 3  # caller/agent pairs kept in the prompt; short prompts keep prefill fast
MAX_SENTENCES = 2  # the persona promises one or two short sentences

Kind = Literal["say", "model", "transfer", "hangup", "reprompt", "give_up"]


@dataclass
class Decision:
    """What to do with one caller turn, and why (the why goes into the call record)."""

    kind: Kind
    text: str = ""  # what to say, for every kind but "model"
    intent: str | None = None
    confidence: float = 0.0
    tier: str = ""  # template | booking (a form's turn) | confirm | small | large | person | none
    reason: str = ""
    sensitive: bool = False
    outcome: OutcomeDraft | None = None  # a form just stored (a booking, a message, a callback request)
    outcome_id: str = ""


def system_prompt(agent: AgentConfig) -> str:
    facts = "\n".join(f"- {k.replace('_', ' ')}: {v}" for k, v in agent.prompt_facts().items())
    return (
        f"{agent.persona}\nFacts:\n{facts}\n"
        "Answer the caller in one or two short sentences, using only these facts. "
        "If the facts do not answer the question, say you don't have that information."
    )


_NUMBER = re.compile(r"\d+")


def unsupported_numbers(sentence: str, facts_text: str) -> set[str]:
    """Numbers the model said that no fact contains: the usual shape of an invented price or time."""
    known = set(_NUMBER.findall(facts_text))
    return set(_NUMBER.findall(sentence)) - known


_YES = {"yes", "yeah", "yep", "yup", "sure", "correct", "right", "ok", "okay", "perfect", "exactly", "absolutely"}
_NO = {"no", "nope", "nah", "wrong", "incorrect"}
_ALONGSIDE = {"um", "uh", "oh", "well", "that", "that's", "thats", "is", "it's", "it", "thanks", "thank", "you",
              "please", "sounds", "good", "great", "not", "really", "quite", "all"}


def yes_or_no(text: str) -> bool | None:
    """True/False for a bare yes or no ("yeah, that's right", "um, no"), else None."""
    words = re.sub(r"[^a-z' ]+", " ", text.lower()).split()
    if not words or any(w not in _YES | _NO | _ALONGSIDE for w in words):
        return None  # more was said than yes or no: let the router hear it
    yes, no = any(w in _YES for w in words), any(w in _NO for w in words) or "not" in words
    if yes != no:
        return yes
    return None


_DIGIT_RUN = re.compile(r"\d[\d ,.-]{2,}\d")


def _details(text: str) -> dict[str, str]:
    """The parts of a sentence a wrong guess would be costly on: a day, a time, a name, a number."""
    found = {}
    when = loose_when(text)
    if when:
        found["when"] = when  # "Friday afternoon", "Tuesday at 10 am"
    name = find_name(text, asked=False)
    if name:
        found["name"] = f"the name {name}"
    number = _DIGIT_RUN.search(text)
    if number and not re.search(r"card|cvv|security code|expir", text, re.I):
        found["number"] = "the number " + " ".join(re.sub(r"\D", "", number.group(0)))
    return found


def details_that_matter(text: str) -> str:
    """"Tuesday at 10 am", "the name Dana Smith": what to read back, or "" when nothing matters.

    Card numbers are never read back aloud; a payment turn is confirmed by the front desk.
    """
    d = _details(text)
    when = d.get("when", "")
    rest = [v for k, v in d.items() if k in ("name", "number")]
    return " and ".join([p for p in [when, *rest] if p])


def details_kinds(text: str) -> str:
    return ", ".join(_details(text))


def is_goodbye(text: str, phrases: list[str]) -> bool:
    low = re.sub(r"[^a-z' ]+", " ", text.lower())
    return any(re.search(rf"\b{re.escape(p.lower())}\b", low) for p in phrases)


class Dialog:
    def __init__(
        self, agent: AgentConfig, router: IntentRouter, small: ChatModel | None, models: ModelsConfig,
        large: ChatModel | None = None, *, clock: Clock | None = None, outcomes: OutcomeSink | None = None,
        session_id: str = "", agent_id: str = "",
    ) -> None:
        """``clock`` (tests: a fake one) returns an aware datetime; the hours are computed from it.
        ``outcomes`` keeps what a form collects (None: the caller is told it could not be saved
        and offered a person); ``session_id`` and ``agent_id`` go into each outcome."""
        self.agent = agent
        self.router = router
        self.small = small
        self.large = large
        self.models = models
        self.history: list[dict[str, str]] = []
        self._system = {"role": "system", "content": system_prompt(agent)}
        self._facts_text = " ".join(agent.facts.values())
        self.unclear_streak = 0
        self.hours = OpeningHours(agent.hours, clock, agent.language) if agent.hours is not None else None
        self.clock = clock
        self.outcomes = outcomes
        self.session_id = session_id
        self.agent_id = agent_id
        self._forms = agent.active_forms()
        self._acting = frozenset({CANCEL_INTENT, *(f.intent for f in self._forms)})
        self.form: FormSession | None = None  # the form being filled, if any
        self.last_tier = ""
        self.last_reason = ""
        self.unconfirmed: str | None = None  # a turn read back, waiting for the caller's yes

    # -- deciding ----------------------------------------------------------------------------
    def decide(self, text: str, logprob: float | None = None) -> Decision:
        """What to do with a reliable transcript; ``logprob`` (whisper's mean token
        log-probability) decides whether what matters in it must be confirmed first."""
        if self.unconfirmed is not None:
            heard, self.unconfirmed = self.unconfirmed, None
            answer = yes_or_no(text)
            if answer is True:
                text, logprob = heard, None  # confirmed: act on what was read back
            elif answer is False:
                return Decision("say", self.agent.replies.details_refused, tier="confirm",
                                reason="read-back refused")
            # Anything else is the caller restating it: decided afresh below.
        if logprob is not None and logprob <= self.agent.confirm_below_logprob and self._would_act_on(text):
            details = details_that_matter(text)
            if details:
                self.unconfirmed = text
                return Decision("say", self.agent.replies.confirm_details.format(details=details), tier="confirm",
                                reason=f"middling confidence ({logprob:.2f}) on {details_kinds(text)}")
        route = None
        if self.form is not None and self.form.active:
            route = self.router.route(text)
            decided = self._form_turn(text, route)
            if decided is not None:
                return decided
        answer = yes_or_no(text)
        if answer is not None and self.history and self.history[-1]["content"].rstrip().endswith("?"):
            # A bare yes/no answers our last question; the router would call it unclear.
            self.unclear_streak = 0
            return self._confirmation(answer)
        route = route or self.router.route(text)
        base = {"intent": route.intent, "confidence": route.confidence}
        if route.unclear:
            if is_goodbye(text, self.agent.goodbye_phrases):
                return Decision("hangup", self.agent.goodbye, tier="template", reason="goodbye phrase", **base)
            return self._reprompt(base, "router unclear")
        self.unclear_streak = 0
        if route.intent is None:
            if self.large is not None:
                return Decision("model", tier="large", reason="out of scope for the templates", **base)
            return Decision("say", self.agent.no_information, tier="none", reason="out of scope", **base)
        intent = self.agent.intent(route.intent)
        if intent is None:  # the router and the agent file disagree: say so, never guess
            return Decision("say", self.agent.no_information, tier="none", reason="unknown intent", **base)
        answer = self.agent.fill(intent.answer) if intent.answer else ""
        extra = {"sensitive": intent.sensitive, **base}
        form = next((f for f in self._forms if f.intent == intent.name), None)
        if form is not None:
            self.form = FormSession(form, self.agent, self.hours, clock=self.clock, outcomes=self.outcomes,
                                    agent_id=self.agent_id, session_id=self.session_id)
            reply = self.form.open(text)
            return Decision("say", reply.text, tier="booking", reason=reply.reason, **extra)
        if intent.action == "transfer":
            return Decision("transfer", answer or self.agent.actions.transfer_announcement, tier="template",
                            reason="intent", **extra)
        if intent.action == "hangup":
            return Decision("hangup", answer or self.agent.goodbye, tier="template", reason="intent", **extra)
        if intent.action == "hours" and self.hours is not None:
            return Decision("say", self.hours.answer(text, answer), tier="template", reason="hours from the clock",
                            **extra)
        if intent.action == "model":
            tier = "large" if intent.complex and self.large is not None else "small"
            return Decision("model", tier=tier, reason="complex intent" if tier == "large" else "intent", **extra)
        return Decision("say", answer, tier="template", reason="intent", **extra)

    def _form_turn(self, text: str, route) -> Decision | None:
        """The form's answer to ``text``, or None when the sentence is for another intent (a
        question asked mid-form is answered; the form waits for the next sentence)."""
        form = self.form
        assert form is not None
        if route.intent != form.form.intent and not form.claims(text):
            return None  # another intent, out of scope or unclear: answered as ever, the form waits
        reply = form.turn(text)
        self.unclear_streak = 0
        return Decision("say", reply.text, intent=form.form.intent, confidence=1.0, tier="booking",
                        reason=reply.reason, outcome=reply.outcome, outcome_id=reply.outcome_id)

    def _would_act_on(self, text: str) -> bool:
        """Read-backs are for details the agent is about to act on at once (a cancellation), not
        for a question that merely mentions a day ("What time do you open on Saturday?"). A
        form's details are not read back one by one: the form reads all of them back before it
        stores anything, and a second "is that right?" on the same number only lengthens the call."""
        if self.form is not None and self.form.active:
            return False
        return self.router.route(text).intent in self._acting - {f.intent for f in self._forms}

    def _confirmation(self, yes: bool) -> Decision:
        last = self.history[-1]["content"].lower()
        if yes and any(p.lower() in last for p in self.agent.actions.offer_phrases):
            return Decision("transfer", self.agent.actions.transfer_announcement, tier="template", reason="accepted offer")
        text = self.agent.replies.after_yes if yes else self.agent.replies.after_no
        return Decision("say", text, tier="template", reason="yes/no to our question")

    def not_understood(self) -> Decision:
        """A turn whose transcript is unreliable: the same ladder as an unclear one."""
        return self._reprompt({}, "transcript unreliable")

    def _reprompt(self, base: dict, reason: str) -> Decision:
        step = self.unclear_streak
        self.unclear_streak += 1
        if step < len(self.agent.reprompts):
            return Decision("reprompt", self.agent.reprompts[step], tier="none", reason=reason, **base)
        self.unclear_streak = 0
        if self.agent.after_reprompts == "transfer":
            return Decision("give_up", self.agent.actions.transfer_announcement, tier="person",
                            reason=f"{reason}, ladder exhausted", **base)
        return Decision("give_up", self.agent.goodbye, tier="none", reason=f"{reason}, ladder exhausted", **base)

    # -- model replies -------------------------------------------------------------------------
    def messages_for(self, caller_text: str) -> list[dict[str, str]]:
        recent = self.history[-2 * HISTORY_TURNS :]
        return [self._system, *recent, {"role": "user", "content": caller_text}]

    def model_reply(self, caller_text: str, tier: str, cancelled: threading.Event) -> Iterator[str]:
        """Sentences of a model's answer, each checked before it is let through.

        ``last_tier``/``last_reason`` say which tier answered in the end and why.
        """
        order = [m for m in ((self.large,) if tier == "large" else (self.small, self.large)) if m is not None]
        said: list[str] = []
        reason = "no model configured"
        for model in order:
            if said or cancelled.is_set():
                break
            self.last_tier = model.name
            for sentence, trusted, why in self._checked(model, caller_text, cancelled):
                if not trusted:
                    reason = why
                    break
                said.append(sentence)
                yield sentence
            else:
                if said:
                    self.last_reason = "trusted"
        if not said and not cancelled.is_set():
            # Nobody could answer with confidence: be honest and offer a person.
            self.last_tier, self.last_reason = "person", reason
            said.append(self.agent.no_information)
            yield self.agent.no_information
        self.remember(caller_text, " ".join(said))

    def _checked(
        self, model: ChatModel, caller_text: str, cancelled: threading.Event
    ) -> Iterator[tuple[str, bool, str]]:
        chunker = ClauseChunker()  # a short first chunk: the first audio starts sooner
        count = 0
        threshold = self.agent.tiers.min_mean_logprob

        def verdict(sentence: str, since: int) -> tuple[str, bool, str]:
            if unsupported_numbers(sentence, self._facts_text):
                return sentence, False, f"{model.name}: a number no fact backs"
            mean = model.mean_logprob(since)
            if mean is not None and mean < threshold:
                return sentence, False, f"{model.name}: mean logprob {mean:.2f} < {threshold}"
            return sentence, True, ""

        since = 0  # each stream starts its own count
        pieces = model.stream(
            self.messages_for(caller_text), self.models.llm_max_reply_tokens, self.models.llm_temperature, cancelled
        )
        while True:
            try:
                piece = next(pieces, None)
            except OSError as e:  # a server on the LAN that is down, refuses or times out
                yield "", False, f"{model.name}: unavailable ({type(e).__name__})"
                return
            if piece is None:
                break
            for sentence in chunker.feed(piece):
                result = verdict(sentence, since)
                since = model.tokens_so_far()
                yield result
                count += sentence.rstrip().endswith((".", "!", "?"))  # a first clause is not a sentence
                if not result[1] or count >= MAX_SENTENCES:
                    return
        tail = None if cancelled.is_set() else chunker.flush()
        if tail and count < MAX_SENTENCES:
            yield verdict(tail, since)

    def cut_last_reply(self, heard: str) -> None:
        """The caller talked over the last reply: keep only the words they heard, marked as cut.

        The model must not believe it said what the caller never heard ("as I said, ...").
        """
        for entry in reversed(self.history):
            if entry["role"] == "assistant":
                entry["content"] = f"{heard} [interrupted]" if heard else "[interrupted before speaking]"
                return

    def remember(self, caller_text: str, agent_text: str) -> None:
        self.history += [
            {"role": "user", "content": caller_text},
            {"role": "assistant", "content": agent_text},
        ]
