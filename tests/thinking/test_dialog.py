"""Dialog: topic answers verbatim, model answers streamed, short and checked against the facts."""

from __future__ import annotations

import threading

import pytest

from voicebox.agent import load_agent
from voicebox.config import ModelsConfig
from voicebox.thinking.dialog import HISTORY_TURNS, Dialog, is_goodbye, system_prompt, unsupported_numbers


class FakeLM:
    """Stands in for LanguageModel: yields scripted tokens, and stops once ``cancelled`` is set."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.calls: list[dict] = []
        self.pulled = 0  # tokens handed out

    def stream(self, messages, max_tokens, temperature, cancelled=None):
        self.calls.append({"messages": [dict(m) for m in messages], "max_tokens": max_tokens, "temperature": temperature})
        for t in self.tokens:
            if cancelled is not None and cancelled.is_set():
                return
            self.pulled += 1
            yield t


class ExplodingLM:
    def stream(self, *a, **k):
        raise AssertionError("the language model must not be used for a topic question")


def tokenize(text: str) -> list[str]:
    """Roughly how a chat model streams: words with their leading space, punctuation apart."""
    out = []
    for w in text.split(" "):
        lead = " " if out else ""
        if w and w[-1] in ".!?,":
            out += [lead + w[:-1], w[-1]]
        else:
            out.append(lead + w)
    return out


@pytest.fixture(scope="module")
def agent():
    return load_agent("riverside_dental")


MODELS = ModelsConfig(llm_max_reply_tokens=33, llm_temperature=0.4)
NON_TOPIC = "Do you do heart surgery?"


def reply(dialog: Dialog, text: str, cancelled: threading.Event | None = None) -> list[str]:
    return list(dialog.reply(text, cancelled or threading.Event()))


# -- is_goodbye / unsupported_numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("That's everything, thanks so much. Bye!", True),
        ("Okay, goodbye.", True),
        ("BYE BYE", True),
        ("Thanks, that is all.", True),
        ("I'd like to buy a toothbrush", False),
        ("Can I stop by tomorrow?", False),
        ("I was singing a lullabye", False),
        ("What time do you open?", False),
        ("", False),
    ],
)
def test_is_goodbye(agent, text, expected):
    assert is_goodbye(text, agent.goodbye_phrases) is expected


def test_is_goodbye_default_phrases():
    assert is_goodbye("Good bye then", ["bye", "good bye"])
    assert not is_goodbye("Goodness me", ["bye", "good bye"])


def test_unsupported_numbers():
    facts = "A check-up is 60 dollars, a cleaning is 90 dollars. Saturday 9 am to 1 pm."
    assert unsupported_numbers("A cleaning is $25.", facts) == {"25"}
    assert unsupported_numbers("A cleaning is 90 dollars.", facts) == set()
    assert unsupported_numbers("We open at 9 and close at 1.", facts) == set()
    assert unsupported_numbers("It costs $1.50 or $60.", facts) == {"50"}
    assert unsupported_numbers("No numbers here.", facts) == set()
    # Whole numbers are compared, not digits: 6 is not backed by 60.
    assert unsupported_numbers("Open till 6.", facts) == {"6"}


# -- topic answers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question,topic",
    [("Hi, what time do you open on Saturday?", "hours"), ("How much does a cleaning cost?", "prices")],
)
def test_topic_question_is_answered_verbatim_without_the_model(agent, question, topic):
    d = Dialog(agent, ExplodingLM(), MODELS)
    sentences = reply(d, question)
    answer = next(t.answer for t in agent.topics if t.name == topic)
    assert sentences
    assert " ".join(sentences) == answer
    assert d.last_source == f"topic:{topic}"
    assert d.history == [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def test_topic_answer_needs_no_model_at_all(agent):
    d = Dialog(agent, None, MODELS)
    assert " ".join(reply(d, "Where are you located?")).startswith("We're at 42 Mill Lane")
    with pytest.raises(RuntimeError, match="no language model"):
        reply(d, NON_TOPIC)


def test_hours_answer_is_split_into_sentences(agent):
    d = Dialog(agent, None, MODELS)
    assert reply(d, "What are your hours on weekdays?") == [
        "We're open Monday to Friday from 8 am to 6 pm, and Saturday from 9 am to 1 pm.",
        "We're closed on Sunday.",
    ]


# -- model answers -------------------------------------------------------------------------------


def test_non_topic_question_streams_model_sentences(agent):
    lm = FakeLM(tokenize("Sorry, we don't offer heart surgery. We are a dental clinic. Anything else I can do?"))
    d = Dialog(agent, lm, MODELS)
    sentences = reply(d, NON_TOPIC)
    assert sentences == ["Sorry, we don't offer heart surgery.", "We are a dental clinic."]
    assert d.last_source == "llm"
    (call,) = lm.calls
    assert call["max_tokens"] == 33 and call["temperature"] == 0.4
    assert call["messages"][0] == {"role": "system", "content": system_prompt(agent)}
    assert call["messages"][-1] == {"role": "user", "content": NON_TOPIC}
    # It stopped asking the model for tokens after the second sentence.
    assert lm.pulled < len(lm.tokens)


def test_reply_yields_each_sentence_before_the_model_finishes(agent):
    lm = FakeLM(tokenize("We are a dental clinic. We do not do surgery."))
    d = Dialog(agent, lm, MODELS)
    gen = d.reply(NON_TOPIC, threading.Event())
    assert next(gen) == "We are a dental clinic."
    assert lm.pulled < len(lm.tokens)  # the first sentence came out mid-stream
    assert list(gen) == ["We do not do surgery."]


def test_one_sentence_reply_from_the_tail(agent):
    lm = FakeLM(tokenize("We only do dental care."))  # no space after the final "."
    d = Dialog(agent, lm, MODELS)
    assert reply(d, NON_TOPIC) == ["We only do dental care."]


def test_empty_model_reply_yields_nothing(agent):
    d = Dialog(agent, FakeLM([]), MODELS)
    assert reply(d, NON_TOPIC) == []


def test_system_prompt_lists_every_fact(agent):
    prompt = system_prompt(agent)
    assert prompt.startswith(agent.persona)
    for fact in agent.facts:
        assert f"- {fact}" in prompt


@pytest.mark.parametrize(
    "text",
    [
        "A cleaning is $25. Anything else?",  # invented figure mid-stream
        "A cleaning is $25.",  # invented figure in the tail
        "Sure, happy to help here. A cleaning is $25. Thanks for asking!",  # in the second sentence
    ],
)
def test_invented_number_is_replaced_and_nothing_after_it_is_said(agent, text):
    lm = FakeLM(tokenize(text))
    d = Dialog(agent, lm, MODELS)
    sentences = reply(d, "What about a cleaning for my dog?")
    assert agent.no_information in sentences
    assert sentences[-1] == agent.no_information
    assert not any("25" in s for s in sentences)
    assert not any("Anything else" in s or "Thanks" in s for s in sentences)
    assert "25" not in d.history[-1]["content"]
    assert d.history[-1]["content"].endswith(agent.no_information)


def test_number_backed_by_a_fact_is_kept(agent):
    lm = FakeLM(tokenize("A dog cleaning is not offered, but a cleaning is 90 dollars. Anything else?"))
    d = Dialog(agent, lm, MODELS)
    sentences = reply(d, "What about a cleaning for my dog?")
    assert sentences[0] == "A dog cleaning is not offered, but a cleaning is 90 dollars."
    assert agent.no_information not in sentences


def test_history_records_exchanges_and_prompt_keeps_only_recent_turns(agent):
    lm = FakeLM(tokenize("We are a dental clinic only."))
    d = Dialog(agent, lm, MODELS)
    asked = []
    for i in range(HISTORY_TURNS + 2):
        q = f"Question number {i} about nothing?"
        asked.append(q)
        reply(d, q)
    assert len(d.history) == 2 * (HISTORY_TURNS + 2)
    assert d.history[0] == {"role": "user", "content": asked[0]}
    assert d.history[1] == {"role": "assistant", "content": "We are a dental clinic only."}
    last = lm.calls[-1]["messages"]
    assert len(last) == 1 + 2 * HISTORY_TURNS + 1
    users = [m["content"] for m in last if m["role"] == "user"]
    assert users == asked[-HISTORY_TURNS - 1 :]
    # Topic answers are remembered too, and show up in the next model prompt.
    reply(d, "Where are you located?")
    reply(d, NON_TOPIC)
    assert {"role": "user", "content": "Where are you located?"} in lm.calls[-1]["messages"]


def test_history_joins_both_sentences(agent):
    lm = FakeLM(tokenize("We are a dental clinic. We do not do surgery. Goodbye now."))
    d = Dialog(agent, lm, MODELS)
    reply(d, NON_TOPIC)
    assert d.history[-1]["content"] == "We are a dental clinic. We do not do surgery."


def test_cancel_before_start_says_nothing(agent):
    lm = FakeLM(tokenize("We are a dental clinic. We do not do surgery."))
    d = Dialog(agent, lm, MODELS)
    cancelled = threading.Event()
    cancelled.set()
    assert reply(d, NON_TOPIC, cancelled) == []
    assert lm.pulled == 0


def test_cancel_mid_reply_stops_at_once(agent):
    """Once ``cancelled`` is set, reply() yields nothing more (not even a half sentence)."""
    lm = FakeLM(tokenize("We are a dental clinic. We do not do heart surgery, sorry. Bye."))
    d = Dialog(agent, lm, MODELS)
    cancelled = threading.Event()
    gen = d.reply(NON_TOPIC, cancelled)
    assert next(gen) == "We are a dental clinic."
    pulled = lm.pulled
    cancelled.set()
    rest = list(gen)
    assert lm.pulled == pulled  # the model was not asked for another token
    assert rest == []
