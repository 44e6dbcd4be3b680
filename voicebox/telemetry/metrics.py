"""Prometheus metrics, served on localhost by default.

Observed from the SIP and pipeline threads, never from the media callbacks.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Latency buckets for telephone turn-taking: 50 ms resolution where it matters.
LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.calls_active = Gauge("voicebox_calls_active", "Calls in progress", registry=r)
        self.calls_total = Counter("voicebox_calls_total", "Calls answered", registry=r)
        self.calls_rejected = Counter("voicebox_calls_rejected_total", "Calls refused", ["reason"], registry=r)
        self.stage_seconds = Histogram(
            "voicebox_turn_stage_seconds", "Per-turn latency of each stage", ["stage"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.voice_to_voice = Histogram(
            "voicebox_voice_to_voice_seconds", "Caller's last voiced frame to the agent's first reply audio",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.turns = Counter("voicebox_turns_total", "Caller turns handled", ["source"], registry=r)
        self.barge_ins = Counter("voicebox_barge_ins_total", "Agent speech interrupted by the caller", registry=r)
        self.fillers = Counter("voicebox_fillers_total", "Filler phrases played", registry=r)
        self.budget_misses = Counter("voicebox_budget_misses_total", "Turns over budget", ["stage"], registry=r)
        self.errors = Counter("voicebox_errors_total", "Errors by code", ["code"], registry=r)
        self.underruns = Counter("voicebox_playout_underruns_total", "Playout frames short of audio", registry=r)
        self.worker_restarts = Counter(
            "voicebox_model_worker_restarts_total", "Model worker processes restarted after dying or hanging",
            ["model"], registry=r,
        )

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP endpoint; returns the port actually bound (port 0 picks one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_address[1]
