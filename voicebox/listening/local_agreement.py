"""LocalAgreement: which words of a growing turn's transcript can be trusted yet.

Each partial decode re-transcribes the whole turn so far, and its last words flicker as more
audio arrives ("I'd like to" → "I'd like to book a" → "I'd like to book a cleaning"). A word is
committed once two consecutive hypotheses agree on it and on everything before it; committed
words never change. The rest is tentative: shown to the endpointer and the router, never acted on
as if it were final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_KEY = re.compile(r"[^a-z0-9']+")


def _key(word: str) -> str:
    """Compare words as spoken: "Saturday?" agrees with "saturday", "4,111" with "4111"."""
    return _KEY.sub("", word.lower())


@dataclass(frozen=True)
class Partial:
    committed: tuple[str, ...]
    tentative: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.committed + self.tentative)

    @property
    def committed_text(self) -> str:
        return " ".join(self.committed)


class LocalAgreement:
    """One turn's partial hypotheses in, a stable prefix out. Not thread-safe: one owner."""

    def __init__(self) -> None:
        self._committed: list[str] = []
        self._previous: list[str] = []

    def reset(self) -> None:
        self._committed = []
        self._previous = []

    @property
    def committed(self) -> tuple[str, ...]:
        return tuple(self._committed)

    def update(self, hypothesis: str) -> Partial:
        words = hypothesis.split()
        n = len(self._committed)
        # A new hypothesis that no longer starts with the committed words (whisper re-spelled an
        # early word) keeps the commitment: committed words are a promise to the listener.
        agreed = n
        if [_key(w) for w in words[:n]] == [_key(w) for w in self._committed]:
            prev = self._previous
            while (
                agreed < len(words)
                and agreed < len(prev)
                and _key(words[agreed]) == _key(prev[agreed])
                and _key(words[agreed])
            ):
                agreed += 1
            self._committed.extend(words[n:agreed])
            tentative = words[agreed:]
        else:
            tentative = _after_committed(words, self._committed)
        self._previous = words
        return Partial(tuple(self._committed), tuple(tentative))


def _after_committed(words: list[str], committed: list[str]) -> list[str]:
    """The words of a diverging hypothesis that come after what was committed (best effort)."""
    keys = [_key(w) for w in words]
    last = _key(committed[-1]) if committed else ""
    for i in range(len(keys) - 1, -1, -1):
        if keys[i] == last:
            return words[i + 1 :]
    return words[len(committed) :]
