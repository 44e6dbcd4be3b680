"""Who may talk to the agent, and whether one more call fits: allow-list, per-source rate, capacity.

The capacity rule (documented in README under "The SIP edge"):

* never more than ``sip.max_calls`` calls at once,
* never more INVITEs in pjsua at once than pjmedia has sockets for (``media_budget.py``), and
* while at least one call is up, a new call is admitted only if the CPU use of the process and
  its children over the last ``sip.load_window_s`` seconds is below
  ``sip.admit_cpu_max_fraction`` of the cores it may run on. The models run on the process's
  threads and in its model worker processes, so their CPU time together is what the calls cost;
  when it is near the cores' total, one more caller would only slow every call down. The first
  call is always admitted (an idle process has nothing to compare with).

All of this runs on the SIP thread; it keeps O(1) state per source and a bounded number of
sources, so a flood from spoofed addresses cannot grow it.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable

from voicebox.config import SipConfig
from voicebox.telemetry.processes import tree_cpu_s
from voicebox.telephony.connection_budget import ConnectionBudget
from voicebox.telephony.media_budget import MediaBudget


QUIET_S = 10.0


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float
    stamp: float
    limited_at: float = float("-inf")  # last refusal: a flood is logged once, not per request

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate_per_s)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class SourceLimiter:
    """A token bucket per source address, for requests that start something (out of dialog)."""

    def __init__(self, rate_per_s: float, burst: int, max_sources: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.limited = 0

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def allow(self, source: str, now: float | None = None) -> bool:
        return self.check(source, now) == "ok"

    def check(self, source: str, now: float | None = None) -> str:
        """'ok'; 'limited'; or 'limited_first' for a refusal after QUIET_S without one (worth a log line)."""
        if not self.enabled:
            return "ok"
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst, self.burst, now)
            self._buckets[source] = bucket
            if len(self._buckets) > self.max_sources:
                self._buckets.popitem(last=False)  # the least recently seen source forgets its debt
        else:
            self._buckets.move_to_end(source)
        if bucket.take(now):
            return "ok"
        self.limited += 1
        first = now - bucket.limited_at > QUIET_S
        bucket.limited_at = now
        return "limited_first" if first else "limited"

    def __len__(self) -> int:
        return len(self._buckets)


class NetworkFilter:
    """``sip.allow_networks``: empty allows everyone."""

    def __init__(self, cidrs: list[str]) -> None:
        self.networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def allows(self, address: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


def _own_tree_cpu_s() -> float:
    return tree_cpu_s(os.getpid())


class CpuLoad:
    """The CPU use of the process and its children (the model workers), as a fraction of the
    cores it may use, over a sliding window.

    ``os.times()`` alone missed the llama.cpp worker: a live child's time is nobody's rusage until
    it is reaped, so a worker busy on every core read as an idle server (issue #17)."""

    def __init__(self, window_s: float, cores: int | None = None,
                 read_cpu_s: Callable[[], float] = _own_tree_cpu_s) -> None:
        self.window_s = window_s
        self.cores = cores or len(os.sched_getaffinity(0))
        self.read_cpu_s = read_cpu_s  # CPU seconds so far; injected by tests
        self._samples: deque[tuple[float, float]] = deque()

    def sample(self, now: float | None = None, cpu_s: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._samples.append((now, self.read_cpu_s() if cpu_s is None else cpu_s))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()

    @property
    def fraction(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return 0.0
        return max(0.0, (c1 - c0) / (t1 - t0) / self.cores)


@dataclass
class Decision:
    admit: bool
    reason: str = ""  # "capacity" (max_calls) or "cpu"


class Admission:
    """The SIP edge's policy, built from ``sip`` config; the server and the guard both ask it."""

    def __init__(self, sip: SipConfig, cpu: CpuLoad | None = None) -> None:
        self.sip = sip
        self.cpu = cpu or CpuLoad(sip.load_window_s)
        self.networks = NetworkFilter(sip.allow_networks)
        self.limiter = SourceLimiter(sip.source_requests_per_s, sip.source_burst_requests, sip.max_tracked_sources)
        # New calls only: an INVITE that gets through opens RTP sockets before anyone decides on it.
        self.invites = SourceLimiter(sip.source_invites_per_s, sip.source_burst_invites, sip.max_tracked_sources)
        self.media = MediaBudget()  # the server points its ``live`` at its own call count
        self.connections = ConnectionBudget(sip.max_connections_per_source, sip.max_connections)
        self.active_calls = 0  # kept up to date by the server

    def decide(self, active: int) -> Decision:
        if active >= self.sip.max_calls:
            return Decision(False, "capacity")
        cap = self.sip.admit_cpu_max_fraction
        if active > 0 and cap < 1.0 and self.cpu.fraction >= cap:  # 1.0: the count alone decides
            return Decision(False, "cpu")
        return Decision(True)

    def load_hint(self) -> str:
        """The X-Voicebox-Load value: what a dispatcher needs to pick the least loaded agent."""
        return f"calls={self.active_calls}/{self.sip.max_calls}; cpu={self.cpu.fraction:.2f}"
