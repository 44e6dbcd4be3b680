"""The words of a business as a recognizer prompt: short, each word once, the most telling first.

Whisper reads its prompt as text said just before the audio, so the words it holds become likelier
("Cigna" over "signal", benchmarks/results/wer.md). Every prompt token costs decode time on every
partial, hence the cap. Tiny models also read a prompt back on silence ("Friday, Sunday, Sunday,
Sunday" from a second of it, full window): ``echoes`` tells such a transcript from a caller's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicebox.agent import AgentConfig

# About ten words: the name, what can be booked, the file's proper nouns (``prompt_words``).
# Measured on tiny.en through G.711 (benchmarks/results/wer.md): 32 tokens heard every proper
# noun of the shipped agents' sentences that 64 did, and 64 made the decoder start transcripts
# with the prompt's last word ("it. I'd like to book...", after "look at").
MAX_PROMPT_TOKENS = 32


def prompt_words(agent: "AgentConfig") -> list[str]:
    """The agent's vocabulary, the words whisper is least likely to get alone first: the business
    name, what can be booked, the proper nouns of the file (insurers, streets, towns), then the
    rest (other names for the services, confusions). Day names go: whisper knows them, and the
    hours facts would spend the cap on them."""
    from voicebox.agent import WEEKDAYS

    vocabulary = [w for w in agent.vocabulary() if w.lower() not in WEEKDAYS]
    proper = [w for w in vocabulary if any(c.isupper() for c in w)]
    return [agent.name, *(c.name for c in agent.choices()), *proper, *agent.recognizer.vocabulary, *vocabulary]


def vocabulary_text(words: Sequence[str], encode: Callable[[str], list[int]], max_tokens: int | None = None) -> str:
    """``words`` as one comma-separated line whisper can read, within ``max_tokens`` tokens.

    Duplicates up to case, spaces and hyphens go (the capitalised spelling is kept: whisper copies
    the casing it is shown), and so does a word that starts a word of a longer phrase in the list
    ("north" in "North Street", "clean" in "cleaning"): the longer form primes it too.
    """
    cap = MAX_PROMPT_TOKENS if max_tokens is None else max_tokens
    distinct = _distinct(words)
    kept: list[str] = []
    for word in distinct:
        if any(_inside(word, other) for other in distinct if other is not word):
            continue
        line = ", ".join([*kept, word])
        if len(encode(" " + line)) > cap:
            break
        kept.append(word)
    return ", ".join(kept)


def _distinct(words: Sequence[str]) -> list[str]:
    """One spelling per word, in first-seen order, preferring one with capitals."""
    chosen: dict[str, str] = {}
    for raw in words:
        word = " ".join(raw.split())
        if not word:
            continue
        key = re.sub(r"[\W_]+", "", word.lower())
        if key not in chosen or (chosen[key].islower() and not word.islower()):
            chosen[key] = word
    return list(chosen.values())


def _inside(word: str, phrase: str) -> bool:
    return len(phrase) > len(word) and re.search(rf"(?<!\w){re.escape(word.lower())}", phrase.lower()) is not None


def echoes(text: str, prompt_text: str) -> bool:
    """Whether a transcript is the prompt read back: three words or more, every one of them a
    prompt word. Tiny whisper models do this on silence ("Friday, Sunday, Sunday, Sunday"); a
    caller's sentence has words of its own between the business's."""
    if not prompt_text:
        return False
    words = _plain_words(text)
    return len(words) >= 3 and set(words) <= set(_plain_words(prompt_text))


def _plain_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())
