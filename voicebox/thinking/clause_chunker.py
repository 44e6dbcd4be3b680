"""A chunker whose first chunk ends at the first clause, so the first audio starts early.

Piper's time to first sample grows with the chunk's length, and the caller waits in silence for
all of it. Cutting the first chunk at a comma after a few words ("We're open Monday to Friday,")
lets that audio play while the rest of the sentence is still being generated and synthesized.
Later chunks are whole sentences: by then playout is ahead, and a sentence has better prosody
than a fragment.
"""

from __future__ import annotations

import re

from voicebox.thinking.chunker import SentenceChunker

# A clause ends at , ; : or a spaced dash, and only once whitespace follows: "1," may yet
# become "1,000" and "9:" become "9:30", so a boundary is never judged before the next piece.
_CLAUSE_END = re.compile(r"([,;:]|\s[-\u2013\u2014])(\s+)")


class ClauseChunker:
    """First chunk: up to the first clause boundary with at least ``min_words`` words before it
    (or the first sentence, if that ends sooner). Then: whole sentences, as ``SentenceChunker``.
    """

    def __init__(self, min_words: int = 4, min_chars: int = 12) -> None:
        if min_words < 1:
            raise ValueError("min_words must be at least 1")
        self.min_words = min_words
        self.min_chars = min_chars
        self._head: str | None = ""  # text before the first chunk; None once it is out
        self._sentences = SentenceChunker(min_chars)

    def feed(self, piece: str) -> list[str]:
        if self._head is None:
            return self._sentences.feed(piece)
        self._head += piece
        cut = self._first_clause_end(self._head)
        if cut is None:
            # No clause yet; a whole sentence may already be complete.
            sentences = SentenceChunker(self.min_chars).feed(self._head)
            if not sentences:
                return []
            head, self._head = self._head, None
            return self._sentences.feed(head)
        head, self._head = self._head, None
        first = head[:cut].strip().rstrip("-\u2013\u2014").rstrip()
        return [first] + self._sentences.feed(head[cut:].lstrip())

    def flush(self) -> str | None:
        if self._head is not None:
            rest, self._head = self._head.strip(), ""
            return rest or None
        tail = self._sentences.flush()
        self._head = ""  # ready for the next reply
        return tail

    def _first_clause_end(self, text: str) -> int | None:
        """Where the first chunk ends (after the punctuation), or None if not yet."""
        for m in _CLAUSE_END.finditer(text):
            before = text[: m.start(1)]
            if SentenceChunker(self.min_chars).feed(text[: m.start(1)] + " "):
                return None  # a sentence ended first: that sentence is the first chunk
            if len(before.split()) < self.min_words:
                continue
            after = text[m.end():]
            if before[-1:].isdigit():
                if not after:
                    return None  # "at 9, " may go on "10 or 11": wait for the next piece
                if after[:1].isdigit():
                    continue  # a list of numbers is one thought; keep reading
            return m.end(1)
        return None
