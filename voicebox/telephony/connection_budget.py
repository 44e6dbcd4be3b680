"""How many incoming TCP/TLS connections the SIP edge keeps, per source and in all.

Every connection pjsip accepts takes a slot of the SIP ioqueue (64 in the pjsua2 wheel, shared
with the listeners and voicebox's own outgoing connections), and pjsip keeps an idle one open for
as long as its peer likes. Measured: 62 idle connections from one address filled it, and from then
on no TCP or TLS client, a PBX included, was served (issue #17, "Also"). So the guard counts the
connections pjsip reports as accepted (``sip_guard``) and has pjsip close what does not fit:

* past ``per_source`` from one address, the new connection;
* past ``total``, the oldest connection that has not sent one valid request yet (a PBX's
  connection has), or else the new one.

A flood of connections opened and closed as fast as possible can still keep slots busy for
the half second pjlib holds each; SECURITY.md says so. Runs on the SIP thread; O(1) per event
except the eviction scan, which is bounded by ``total``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class _Conn:
    source: str
    spoke: bool = False


@dataclass
class ConnectionBudget:
    per_source: int
    total: int
    _live: dict[int, _Conn] = field(default_factory=dict)  # insertion order: oldest first
    _by_source: Counter = field(default_factory=Counter)

    def opened(self, key: int, source: str) -> list[int]:
        """A connection was accepted; the connections to close now (``key`` itself, or an idle one)."""
        self.closed(key)  # pjsip may reuse a freed transport's address
        if self._by_source[source] >= self.per_source:
            return [key]
        if len(self._live) >= self.total:
            idle = next((k for k, c in self._live.items() if not c.spoke), None)
            if idle is None:
                return [key]
            self.closed(idle)
            self._add(key, source)
            return [idle]
        self._add(key, source)
        return []

    def _add(self, key: int, source: str) -> None:
        self._live[key] = _Conn(source)
        self._by_source[source] += 1

    def spoke(self, key: int) -> None:
        """A valid request came over ``key``: it is a peer, not a squatter."""
        conn = self._live.get(key)
        if conn is not None:
            conn.spoke = True

    def closed(self, key: int) -> None:
        conn = self._live.pop(key, None)
        if conn is not None:
            self._by_source[conn.source] -= 1
            if not self._by_source[conn.source]:
                del self._by_source[conn.source]

    def live(self, source: str | None = None) -> int:
        return len(self._live) if source is None else self._by_source[source]
