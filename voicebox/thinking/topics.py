"""Grounded answers: a caller question matched to one of the agent's topics, answered verbatim.

A 135M-parameter model cannot be trusted to repeat "Saturday 9 am to 1 pm" correctly (measured:
it says "$250" for a $90 cleaning). So a question about a known topic gets the topic's answer as
written in the agent file, and the model is left the turns no topic covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voicebox.agent import Topic

_WORD = re.compile(r"[a-z0-9']+")


def stem(word: str) -> str:
    """Crude suffix stripping: enough to make "opening"/"opens"/"open" meet."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    return [stem(w.strip("'")) for w in _WORD.findall(text.lower())]


@dataclass(frozen=True)
class TopicMatch:
    topic: Topic
    score: float


class TopicMatcher:
    def __init__(self, topics: list[Topic]) -> None:
        self.topics = topics
        self._keys = [(t, {stem(k.lower()) for k in t.keywords}) for t in topics]

    def match(self, text: str) -> TopicMatch | None:
        """The topic with the most keyword hits (at least ``min_hits``), or None.

        Ties go to the narrower topic (fewer keywords): "cancel my appointment" is about
        cancelling, not booking.
        """
        said = set(words(text))
        best: TopicMatch | None = None
        best_key = (0, 0.0)
        for topic, keys in self._keys:
            hits = len(said & keys)
            key = (hits, hits / len(keys))
            if hits >= topic.min_hits and key > best_key:
                best, best_key = TopicMatch(topic, hits), key
        return best
