"""The conversation with one caller: what to answer to each of their turns."""

from __future__ import annotations

import re
import threading
from typing import Iterator

from voicebox.agent import AgentConfig
from voicebox.config import ModelsConfig
from voicebox.thinking.chunker import SentenceChunker
from voicebox.thinking.language_model import LanguageModel
from voicebox.thinking.topics import TopicMatcher

HISTORY_TURNS = 3  # caller/agent pairs kept in the prompt; short prompts keep prefill fast


def system_prompt(agent: AgentConfig) -> str:
    facts = "\n".join(f"- {f}" for f in agent.facts)
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


def is_goodbye(text: str, phrases: list[str]) -> bool:
    low = re.sub(r"[^a-z' ]+", " ", text.lower())
    return any(re.search(rf"\b{re.escape(p.lower())}\b", low) for p in phrases)


class Dialog:
    def __init__(self, agent: AgentConfig, lm: LanguageModel | None, models: ModelsConfig) -> None:
        self.agent = agent
        self.lm = lm
        self.models = models
        self.history: list[dict[str, str]] = []
        self._system = {"role": "system", "content": system_prompt(agent)}
        self.topics = TopicMatcher(agent.topics)
        self._facts_text = " ".join(agent.facts) + " " + " ".join(t.answer for t in agent.topics)
        self.last_source = ""  # "topic:<name>" or "llm": how the last reply was made

    def messages_for(self, caller_text: str) -> list[dict[str, str]]:
        recent = self.history[-2 * HISTORY_TURNS :]
        return [self._system, *recent, {"role": "user", "content": caller_text}]

    def reply(self, caller_text: str, cancelled: threading.Event) -> Iterator[str]:
        """Sentences of the agent's answer, streamed as the model writes them."""
        match = self.topics.match(caller_text)
        if match is not None:
            self.last_source = f"topic:{match.topic.name}"
            chunker = SentenceChunker()
            sentences = chunker.feed(match.topic.answer + " ")
            tail = chunker.flush()
            sentences += [tail] if tail else []
            yield from sentences
            self._remember(caller_text, match.topic.answer)
            return
        self.last_source = "llm"
        if self.lm is None:
            raise RuntimeError("no language model loaded")
        chunker = SentenceChunker()
        said: list[str] = []
        for piece in self.lm.stream(
            self.messages_for(caller_text), self.models.llm_max_reply_tokens, self.models.llm_temperature, cancelled
        ):
            for sentence in chunker.feed(piece):
                if unsupported_numbers(sentence, self._facts_text):
                    sentence = self.agent.no_information
                    said.append(sentence)
                    yield sentence
                    said.append("")  # stop here: nothing after an invented figure is trusted
                    break
                said.append(sentence)
                yield sentence
                if len(said) >= 2:  # the persona promises short answers; hold the model to it
                    break
            if len(said) >= 2:
                break
        else:
            tail = None if cancelled.is_set() else chunker.flush()
            if tail and len(said) < 2:
                if unsupported_numbers(tail, self._facts_text):
                    tail = self.agent.no_information
                said.append(tail)
                yield tail
        self._remember(caller_text, " ".join(s for s in said if s))

    def _remember(self, caller_text: str, agent_text: str) -> None:
        self.history += [
            {"role": "user", "content": caller_text},
            {"role": "assistant", "content": agent_text},
        ]
