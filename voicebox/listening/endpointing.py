"""Does a transcript sound finished? Decides how long a pause must last to end the turn.

A person waits longer after "I'm looking for…" than after "What time do you open?". The
speculative transcript of the turn so far is judged here, and the turn detector's hangover is
shortened for a finished-sounding turn and lengthened for an unfinished one.
"""

from __future__ import annotations

import re
from typing import Literal

from voicebox.config import VadConfig

Judgement = Literal["complete", "unfinished", "unknown"]

# Words a sentence does not end on: conjunctions, prepositions, articles, fillers.
TRAILING = frozenset(
    "and or but so because um uh er erm for to the a an with my your our is are was on at in of from "
    "like then if that which who about around near by than as".split()
)
# Self-repair markers: a caller who says them is about to correct or add something.
SELF_REPAIR = tuple(
    tuple(m.split()) for m in ("wait", "no wait", "hold on", "actually", "i mean", "let me see", "let me think", "hang on")
)
NUMBER_CUES = frozenset("number card phone code zip is".split())
# An opener with no content yet ("I'm looking for it.": whisper fills a cut-off object with a
# pronoun): nothing but these words means the caller has not said what they want.
LIGHT = frozenset(
    "i i'm im i'd i'll we we're you it this that them there here me my a an the to for of on in at "
    "looking look like want wanted need needed would could can get have make see ask wondering was "
    "just so um uh well "
    # A greeting alone: "Hi," is how a question starts, not the whole of it.
    "hi hello hey hiya good morning afternoon evening "
    # ... and so is an apology or a call for attention ("Sorry, [pause] just the price…").
    "sorry excuse pardon".split()
)
GREETINGS = frozenset(
    "hi hello hey hiya good morning afternoon evening there anyone anybody is sorry excuse me pardon".split()
)
_WORD = re.compile(r"[a-z0-9']+")
_NUMBER_WORDS = frozenset("zero oh one two three four five six seven eight nine ten".split())


def hangover_ms(text: str | None, cfg: VadConfig) -> tuple[int, str]:
    """How long a pause after ``text`` must last to end the turn, and the rule that chose it.

    ``None`` stands for a transcript that is not to be trusted (or not there yet): the plain
    hangover, whatever its words seem to say.
    """
    if text is None:
        return cfg.hangover_ms, "default"
    verdict = judge(text)
    if verdict == "complete":
        return min(cfg.short_hangover_ms, cfg.hangover_ms), verdict
    if verdict == "unfinished":
        return max(cfg.long_hangover_ms, cfg.hangover_ms), verdict
    return cfg.hangover_ms, verdict


def turn_is_over(text: str | None, silence_ms: int, cfg: VadConfig) -> bool:
    """The end-of-turn rule in one line: has the caller been silent long enough after ``text``?"""
    return silence_ms >= hangover_ms(text, cfg)[0]


def judge(text: str) -> Judgement:
    stripped = text.strip()
    if not stripped:
        return "unknown"
    if stripped.endswith(("...", "…", ",", "-", "—")):
        return "unfinished"  # whisper marks a trailing-off voice with an ellipsis
    words = _WORD.findall(stripped.lower())
    if not words:
        return "unknown"
    if words[-1] in TRAILING:
        return "unfinished"
    if any(tuple(words[-len(m):]) == m for m in SELF_REPAIR):
        return "unfinished"  # "Monday, no wait," — the correction is still to come
    if _reading_a_number(words):
        return "unfinished"
    if stripped.endswith("?") and all(w in GREETINGS for w in words):
        return "complete"  # "Hello?": checking the line is there, and waiting for an answer
    if len(words) <= 5 and all(w in LIGHT for w in words):
        return "unfinished"
    if stripped[-1] in ".?!":
        return "complete"
    return "unknown"


def _reading_a_number(words: list[str]) -> bool:
    """A phone or card number still being read out: digits after a cue, fewer than a full one."""
    tail = []
    for w in reversed(words):
        if w.isdigit() or w in _NUMBER_WORDS:
            tail.append(w)
        else:
            break
    if not tail:
        return False
    cue_index = len(words) - len(tail) - 1
    if cue_index < 0 or not any(w in NUMBER_CUES for w in words[max(0, cue_index - 2) : cue_index + 1]):
        return False
    digits = sum(len(w) if w.isdigit() else 1 for w in tail)
    return digits < 10  # fewer than a phone number's ten: more is coming
