"""Prometheus metrics, served on localhost by default.

Observed from the SIP and pipeline threads, never from the media callbacks. Whatever one call
produces carries the ``agent`` label (the id of the agent that answered: its file's name), so a
server answering as several agents (``[agents]``) reports each business apart; ``sum without
(agent)`` gives the whole server.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata

from prometheus_client import (
    CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector, start_http_server,
)

# The distributions whose versions decide how a call behaves: a latency change across a fleet is
# first checked against these (``voicebox_build_info``).
BUILD_PACKAGES = {"version": "voicebox", "pjsua2": "pjsua2-python", "llama_cpp": "llama-cpp-python"}


def build_versions() -> dict[str, str]:
    """The ``voicebox_build_info`` labels: installed versions ("unknown" for one not installed as a
    distribution, e.g. run from a source tree without ``pip install -e``) and Python's."""
    versions = {}
    for label, dist in BUILD_PACKAGES.items():
        try:
            versions[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[label] = "unknown"
    return {**versions, "python": platform.python_version()}


# Latency buckets for telephone turn-taking: 50 ms resolution where it matters.
LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # The serve process's own CPU, RSS, open files and start time (process_*), and python_info:
        # the registry is our own (one per Metrics), so the default registry's copies are not in it.
        # The language model's worker is a child process: its memory is not in process_*.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        versions = build_versions()
        self.build_info = Gauge(
            "voicebox_build_info", "Always 1; the labels are the versions this process runs", list(versions),
            registry=r,
        )
        self.build_info.labels(**versions).set(1)
        self.calls_active = Gauge("voicebox_calls_active", "Calls in progress", ["agent"], registry=r)
        self.calls_total = Counter("voicebox_calls_total", "Calls answered", ["agent"], registry=r)
        # Refused before any agent answered (capacity, load, or nobody at the dialled user).
        self.calls_rejected = Counter("voicebox_calls_rejected_total", "Calls refused", ["reason"], registry=r)
        self.stage_seconds = Histogram(
            "voicebox_turn_stage_seconds", "Per-turn latency of each stage", ["agent", "stage"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.voice_to_voice = Histogram(
            "voicebox_voice_to_voice_seconds", "Caller's last voiced frame to the agent's first reply audio",
            ["agent"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.turns = Counter("voicebox_turns_total", "Caller turns handled", ["agent", "source"], registry=r)
        # outcome: "stopped" (the reply was cut; the caller's words are the next turn) or "resumed"
        # (the reply was held for a noise or an "mm-hm" and went on).
        self.barge_ins = Counter("voicebox_barge_ins_total", "Agent speech interrupted by the caller",
                                 ["agent", "outcome"], registry=r)
        self.fillers = Counter("voicebox_fillers_total", "Filler phrases played while a reply was late", ["agent"],
                               registry=r)
        self.budget_misses = Counter("voicebox_budget_misses_total", "Turns over budget", ["agent", "stage"], registry=r)
        self.errors = Counter("voicebox_errors_total", "Errors by code", ["agent", "code"], registry=r)
        self.underruns = Counter(
            "voicebox_playout_underruns_total", "Playout frames short of audio", ["agent"], registry=r,
        )
        self.worker_restarts = Counter(
            "voicebox_model_worker_restarts_total", "Model worker processes restarted after dying or hanging",
            ["model"], registry=r,
        )

    def add_agents(self, agent_ids: Iterable[str]) -> None:
        """Export each agent's call counts from the start (at 0), before its first call."""
        for agent in agent_ids:
            self.calls_active.labels(agent)
            self.calls_total.labels(agent)
            self.underruns.labels(agent)
            self.fillers.labels(agent)
            for outcome in ("stopped", "resumed"):
                self.barge_ins.labels(agent, outcome)

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP endpoint; returns the port actually bound (port 0 picks one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_address[1]
