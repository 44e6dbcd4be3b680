"""Cut a stream of model tokens into pieces worth synthesizing on their own."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"([.!?]+[\"')\]]*)(\s+|$)")
# Titles and abbreviations whose period ends no sentence ("ask for Dr. Smith").
_ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "st", "prof", "jr", "sr", "vs", "etc", "e.g", "i.e", "approx", "no"}


class SentenceChunker:
    """Emit each sentence as soon as it is complete, so speech can start before the reply ends.

    Decimal points ("$1.50") and abbreviations followed by a digit are not sentence ends, because
    the end must be followed by whitespace before it counts.
    """

    def __init__(self, min_chars: int = 12) -> None:
        self.min_chars = min_chars
        self._buf = ""

    def feed(self, piece: str) -> list[str]:
        self._buf += piece
        out = []
        while True:
            m = None
            for cand in _SENTENCE_END.finditer(self._buf):
                # Needs trailing whitespace (more text came), else wait: "1." may become "1.5".
                if cand.group(2) and cand.end(1) >= self.min_chars:
                    before = self._buf[: cand.start(1)].rsplit(None, 1)
                    if before and before[-1].lower().rstrip(".") in _ABBREVIATIONS and cand.group(1) == ".":
                        continue
                    m = cand
                    break
            if m is None:
                return out
            sentence = self._buf[: m.end(1)].strip()
            self._buf = self._buf[m.end() :]
            if sentence:
                out.append(sentence)

    def flush(self) -> str | None:
        rest, self._buf = self._buf.strip(), ""
        return rest or None
