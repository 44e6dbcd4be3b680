"""How much of what was said may be kept: the one place that decides it."""

from __future__ import annotations

from typing import Literal

Level = Literal["metadata", "redacted", "full"]


class ContentPolicy:
    """``text()`` returns what may be stored or logged of a caller's or agent's words, or None."""

    def __init__(self, level: Level) -> None:
        self.level = level

    def text(self, words: str) -> str | None:
        if self.level == "metadata":
            return None
        if self.level == "redacted":
            from voicebox.privacy.redact import redact

            return redact(words)
        return words

    def for_log(self, words: str) -> str:
        kept = self.text(words)
        return f"<{len(words.split())} words>" if kept is None else repr(kept)
