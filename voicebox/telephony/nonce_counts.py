"""The highest digest nonce count (``nc``) seen per nonce: what makes a captured answer useless.

A digest answer is good for a nonce's whole lifetime unless the server remembers which counts of
that nonce were used. Only answers that carried the right password are recorded, so the table
grows with real clients, not with floods; it is bounded all the same, and forgets nonces once
they are too old to be accepted anyway.
"""

from __future__ import annotations


class NonceCounts:
    def __init__(self, lifetime_s: float, max_nonces: int = 4096) -> None:
        self.lifetime_s = lifetime_s
        self.max_nonces = max_nonces
        self._counts: dict[str, tuple[int, int]] = {}  # nonce -> (its issue time, highest nc used)
        # Issue time at and below which a nonce absent from the table may have been evicted
        # while still young: such a nonce is sent back as stale (a fresh one is issued), never
        # accepted as if it had never been used.
        self._forgotten_through = -1

    def __len__(self) -> int:
        return len(self._counts)

    def use(self, nonce: str, issued: int, nc: int, now: float) -> str:
        """Record ``nc`` for ``nonce``: 'ok' when it is higher than any count used before,
        'replay' when it is not, 'stale' when the nonce may have been forgotten."""
        seen = self._counts.get(nonce)
        if seen is None:
            if issued <= self._forgotten_through:
                return "stale"
            self._make_room(now)
        elif nc <= seen[1]:
            return "replay"
        self._counts[nonce] = (issued, nc)
        return "ok"

    def _make_room(self, now: float) -> None:
        if len(self._counts) < self.max_nonces:
            return
        expired = [n for n, (issued, _) in self._counts.items() if now - issued > self.lifetime_s]
        for n in expired:
            del self._counts[n]  # too old to be accepted: nothing to remember
        while len(self._counts) >= self.max_nonces:
            oldest = min(self._counts, key=lambda n: self._counts[n][0])
            self._forgotten_through = max(self._forgotten_through, self._counts.pop(oldest)[0])
