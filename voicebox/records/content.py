"""How much of what was said may be kept: the one place that decides it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from voicebox.agent import AgentConfig
    from voicebox.privacy.redact import BusinessWords

Level = Literal["metadata", "redacted", "full"]


class ContentPolicy:
    """``text()`` returns what may be stored or logged of a caller's or agent's words, or None."""

    def __init__(self, level: Level, business: "BusinessWords | None" = None) -> None:
        """``business``: the call's agent's own words, so "this is <the business>" is not taken
        for a caller's name (``BusinessWords.of(agent.name, agent.vocabulary())``)."""
        self.level = level
        self.business = business

    @classmethod
    def for_agent(cls, level: Level, agent: "AgentConfig") -> "ContentPolicy":
        from voicebox.privacy.redact import BusinessWords

        return cls(level, BusinessWords.of(agent.name, agent.vocabulary()))

    def text(self, words: str) -> str | None:
        if self.level == "metadata":
            return None
        if self.level == "redacted":
            from voicebox.privacy.redact import redact

            return redact(words) if self.business is None else redact(words, self.business)
        return words

    def for_log(self, words: str) -> str:
        kept = self.text(words)
        return f"<{len(words.split())} words>" if kept is None else repr(kept)
