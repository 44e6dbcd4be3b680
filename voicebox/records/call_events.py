"""One call's telemetry: turn timelines against the budget, events, errors, metrics.

Everything a call reports goes through here, so the content policy is applied in one place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from voicebox.config import BudgetConfig
from voicebox.logs import context_log
from voicebox.records.content import ContentPolicy
from voicebox.records.store import RecordStore
from voicebox.telemetry.metrics import Metrics


@dataclass
class TurnTimeline:
    """One caller turn. ``*_ms`` are media times; ``*_at`` are ``time.perf_counter()`` values."""

    turn: int
    speech_start_ms: int
    last_voiced_ms: int
    decided_ms: int
    decided_at: float
    end_reason: str = "silence"
    endpoint_rule: str = "default"  # which hangover ended the turn: default, complete, unfinished
    transcript_at: float | None = None
    first_token_at: float | None = None
    first_audio_at: float | None = None  # when the first reply sample reaches the caller's line
    source: str = ""  # the tier that answered: template, booking, small, large, person, none, noise
    intent: str | None = None
    confidence: float | None = None
    reason: str = ""  # why that tier
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    speech_share: float | None = None  # the VAD's voiced share of the turn's audio
    noise_floor_dbfs: float | None = None  # the line's background level when the turn ended (None: not yet known)
    reliability: str = ""  # "reliable", or why the transcript was not trusted
    stt_context: str = ""  # the encoder window of the final decode: fit, full, fit+full
    decode_ms: float | None = None  # the final decode's own time (it may start before the decision)
    partials: int = 0  # partial decodes done while the caller spoke
    partials_skipped: int = 0  # ... and skipped because the recognizer had more urgent work
    partial_intent: str | None = None  # the first intent the router was sure of from a partial
    partial_intent_lead_ms: int | None = None  # how long before the last voiced frame it knew
    fillers: int = 0  # filler phrases played while this turn's reply was late
    caller_text: str = ""
    agent_text: list[str] = field(default_factory=list)

    def _since_decision(self, at: float | None) -> float | None:
        return None if at is None else (at - self.decided_at) * 1000

    def stages_ms(self) -> dict[str, float | None]:
        endpoint = float(self.decided_ms - self.last_voiced_ms)
        first_audio = self._since_decision(self.first_audio_at)
        return {
            "endpoint_ms": endpoint,
            "transcript_ms": self._since_decision(self.transcript_at),
            "first_token_ms": self._since_decision(self.first_token_at),
            "first_audio_ms": first_audio,
            "voice_to_voice_ms": None if first_audio is None else endpoint + first_audio,
        }


# Error codes whose prefix names a stage of a caller's turn (hearing, thinking, speaking): the
# log record's ``stage`` field, so a JSON log can be split by stage the way the metrics are.
PIPELINE_STAGES = frozenset({"stt", "llm", "tts"})


class CallEvents:
    def __init__(
        self, session: str, store: RecordStore | None, metrics: Metrics | None, policy: ContentPolicy,
        budget: BudgetConfig, agent: str = "",
    ) -> None:
        self.session = session
        self.agent = agent  # the answering agent's id: the metrics' agent label
        self.store = store
        self.metrics = metrics
        self.policy = policy
        self.budget = budget
        self.log = context_log("voicebox.call", session=session, agent=agent)
        self.started = time.time()

    def event(self, name: str, **fields: Any) -> None:
        if self.store is not None:
            self.store.emit(self.session, name, **fields)

    def barge_in(self, resumed: bool, **fields: Any) -> None:
        """The caller spoke over the agent: the reply was held and went on (``resumed``) or was cut."""
        if self.metrics is not None:
            self.metrics.barge_ins.labels(self.agent, "resumed" if resumed else "stopped").inc()
        self.event("barge_in", resumed=resumed, **fields)

    def filler(self, **fields: Any) -> None:
        """A filler phrase went out while the reply was late."""
        if self.metrics is not None:
            self.metrics.fillers.labels(self.agent).inc()
        self.event("filler", **fields)

    def error(self, code: str, **fields: Any) -> None:
        # The code as a field too: a JSON log is filtered on it without parsing the message.
        stage = code.partition(".")[0]
        extra: dict[str, Any] = {"code": code, **({"stage": stage} if stage in PIPELINE_STAGES else {})}
        if fields.get("turn") is not None:
            extra["turn"] = fields["turn"]
        self.log.error("error %s", code, extra=extra)
        if self.metrics is not None:
            self.metrics.errors.labels(self.agent, code).inc()
        self.event("error", code=code, **fields)

    def turn(self, tl: TurnTimeline) -> None:
        stages = tl.stages_ms()
        misses = [
            name[:-3] for name, value in stages.items()
            if value is not None and value > getattr(self.budget, name)
        ]
        if self.metrics is not None:
            m = self.metrics
            m.turns.labels(self.agent, tl.source.split(":")[0] or "none").inc()
            for name, value in stages.items():
                if value is None:
                    continue
                if name == "voice_to_voice_ms":
                    m.voice_to_voice.labels(self.agent).observe(value / 1000)
                else:
                    m.stage_seconds.labels(self.agent, name[:-3]).observe(value / 1000)
            for stage in misses:
                m.budget_misses.labels(self.agent, stage).inc()
        fields: dict[str, Any] = {
            "turn": tl.turn, "source": tl.source, "intent": tl.intent,
            "confidence": None if tl.confidence is None else round(tl.confidence, 3),
            "tier_reason": tl.reason, "end_reason": tl.end_reason, "endpoint_rule": tl.endpoint_rule,
            "speech_start_ms": tl.speech_start_ms, "last_voiced_ms": tl.last_voiced_ms,
            "decided_ms": tl.decided_ms,
            **{k: (None if v is None else round(v, 1)) for k, v in stages.items()},
            "budget_misses": misses,
            "avg_logprob": None if tl.avg_logprob is None else round(tl.avg_logprob, 3),
            "no_speech_prob": None if tl.no_speech_prob is None else round(tl.no_speech_prob, 3),
            "compression_ratio": None if tl.compression_ratio is None else round(tl.compression_ratio, 2),
            "speech_share": None if tl.speech_share is None else round(tl.speech_share, 2),
            "noise_floor_dbfs": None if tl.noise_floor_dbfs is None else round(tl.noise_floor_dbfs, 1),
            "reliability": tl.reliability, "stt_context": tl.stt_context,
            "decode_ms": None if tl.decode_ms is None else round(tl.decode_ms, 1),
            "partials": tl.partials, "partials_skipped": tl.partials_skipped, "fillers": tl.fillers,
            "partial_intent": tl.partial_intent, "partial_intent_lead_ms": tl.partial_intent_lead_ms,
            "caller_words": len(tl.caller_text.split()),
        }
        caller = self.policy.text(tl.caller_text)
        if caller is not None:
            fields["caller_text"] = caller
            fields["agent_text"] = self.policy.text(" ".join(tl.agent_text))
        self.event("turn", **fields)
        fmt = lambda v: "-" if v is None else f"{v:.0f}"  # noqa: E731
        self.log.info(
            "turn %d %s/%s heard %s endpoint=%s transcript=%s first_token=%s first_audio=%s v2v=%s ms%s",
            tl.turn, tl.source, tl.intent or "-", self.policy.for_log(tl.caller_text),
            *(fmt(v) for v in stages.values()),
            f" budget_miss={','.join(misses)}" if misses else "",
            extra={"turn": tl.turn, "budget_misses": misses},
        )
