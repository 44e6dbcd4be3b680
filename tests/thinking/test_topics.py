"""TopicMatcher: caller questions matched to the built-in agent's verbatim answers."""

from __future__ import annotations

import pytest

from voicebox.agent import Topic, load_agent
from voicebox.thinking.topics import TopicMatcher, stem, words


@pytest.fixture(scope="module")
def matcher() -> TopicMatcher:
    return TopicMatcher(load_agent("riverside_dental").topics)


@pytest.mark.parametrize(
    "question,topic",
    [
        ("Hi, what time do you open on Saturday?", "hours"),
        ("Where are you located?", "location"),
        ("How much does a cleaning cost?", "prices"),
        ("Do you take Aetna insurance?", "insurance"),
        ("What are your hours on weekdays?", "hours"),
        ("Can you tell me about all the services you offer?", "services"),
        ("Do you do heart surgery?", None),
        ("My name is Dana Smith.", None),
        # More phrasings a caller might use.
        ("Are you opened on Sundays?", "hours"),
        ("WHAT'S YOUR ADDRESS", "location"),
        ("I have a terrible toothache, it really hurts", "emergency"),
        ("I'd like to book an appointment for Tuesday", "booking"),
        ("I need to cancel, sorry", "cancel"),
        ("", None),
        ("um", None),
    ],
)
def test_corpus_questions(matcher, question, topic):
    m = matcher.match(question)
    got = m.topic.name if m is not None else None
    assert got == topic
    if m is not None:
        assert m.score >= m.topic.min_hits


def test_match_returns_the_agent_topic_answer(matcher):
    agent = load_agent("riverside_dental")
    m = matcher.match("Where are you located?")
    assert m.topic.answer == next(t.answer for t in agent.topics if t.name == "location")
    assert m.score == 2  # "where" and "located"


def test_most_hits_wins():
    topics = [
        Topic(name="a", keywords=["open"], answer="A."),
        Topic(name="b", keywords=["open", "saturday"], answer="B."),
    ]
    m = TopicMatcher(topics)
    assert m.match("Are you open on Saturday?").topic.name == "b"
    assert m.match("Are you open?").topic.name == "a"  # tie: the first topic listed


def test_min_hits():
    topics = [Topic(name="price", keywords=["cost", "cleaning", "price"], answer="90.", min_hits=2)]
    m = TopicMatcher(topics)
    assert m.match("What does it cost?") is None
    got = m.match("What does a cleaning cost?")
    assert got is not None and got.score == 2


def test_keywords_are_whole_words():
    m = TopicMatcher([Topic(name="park", keywords=["park"], answer="Behind us.")])
    assert m.match("Where can I park?") is not None
    assert m.match("Parking?") is not None  # stemmed
    assert m.match("I live in Parkville") is None


@pytest.mark.parametrize(
    "word,stemmed",
    [("opening", "open"), ("opens", "open"), ("opened", "open"), ("open", "open"), ("hours", "hour"),
     ("services", "servic"), ("is", "is"), ("yes", "yes"), ("sing", "sing")],
)
def test_stem(word, stemmed):
    assert stem(word) == stemmed


def test_words_lowercases_and_strips_quotes():
    assert words("Are you OPEN on 'Sundays'?") == ["are", "you", "open", "on", "sunday"]
