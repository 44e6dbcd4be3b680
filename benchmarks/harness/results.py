"""What one benchmarked turn and call produced, how a turn is judged, and the per-run summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from benchmarks.harness.metrics import percentiles, word_error_rate
from benchmarks.harness.scenarios import Turn
from voicebox.privacy.redact import redact

STAGES = ("endpoint_ms", "transcript_ms", "first_token_ms", "first_audio_ms", "voice_to_voice_ms")


@dataclass
class TurnResult:
    scenario: str
    turn: int
    codec: str
    expect_intent: str | None
    intent: str | None = None
    tier: str | None = None
    agent: dict[str, float | None] = field(default_factory=dict)  # stage timings from the record
    caller_v2v_ms: float | None = None  # the caller's own measurement of voice-to-voice (the headline)
    # The same, from the caller's stereo recording alone (SIP): no live stamps, so it checks them.
    recording_v2v_ms: float | None = None
    task_ok: bool | None = None
    why: str = ""
    mode: str = "sip"  # sip | inprocess
    pipeline: str = "voicebox"  # voicebox | sequential
    barge: bool = False  # the caller started this turn while the agent talked
    barge_stop_ms: float | None = None  # caller speech onset -> agent audio stopped at the caller
    wer: float | None = None
    heard: str = ""  # the agent's transcript of the turn (what a failed turn was answered from)
    fillers: int = 0
    budget_misses: list[str] = field(default_factory=list)
    agent_jitter_ms: float | None = None  # the agent's inbound jitter buffer, average delay (SIP)
    caller_jitter_ms: float | None = None  # the caller's inbound jitter buffer, average delay (SIP)
    # The agent's "last voiced frame" minus where the recording's speech really ends, on one
    # clock (in-process only): how much of the end of turn the agent's own figures cannot see.
    speech_end_lag_ms: float | None = None


@dataclass
class CallResult:
    scenario: str
    mode: str
    pipeline: str
    concurrency: int = 1
    duration_s: float = 0.0
    cpu_s: float | None = None  # process CPU while it ran (None when calls overlap)
    false_barge_ins: int = 0
    underruns: int = 0
    # Longest wait between two of the bridge clock's frame requests for this call (SIP only):
    # the media thread's health, since every late request is a frame the caller hears late.
    max_frame_gap_ms: float | None = None
    late_frame_requests: int | None = None  # requests more than 10 ms late (a gap over 30 ms)
    rejected: bool = False
    error: str = ""
    channel: dict[str, Any] = field(default_factory=dict)


def judge(spec: Turn, reply: str, *, transfer_to: str = "", hung_up_by_agent: bool = False,
          replied: bool = True, talked_during_turn: bool | None = None) -> tuple[bool | None, str]:
    """Did the agent do what the scenario expects? (None when the scenario expects nothing.)"""
    if spec.expect == "transfer":
        return bool(transfer_to), f"transfer_to={transfer_to!r}"
    if spec.expect == "hangup":
        return hung_up_by_agent, f"hung_up_by_agent={hung_up_by_agent}"
    if spec.expect in ("reprompt", "reprompt_or_silence"):
        low = reply.lower()
        reprompted = "catch that" in low or "didn't get that" in low
        ok = reprompted or (not replied and spec.expect == "reprompt_or_silence")
        return ok, f"reply={reply[:60]!r}"
    if spec.expect == "no_reply_during_pause" and talked_during_turn is not None:
        return not talked_during_turn, "agent talked during the caller's pause" if talked_during_turn else ""
    if spec.expect_any:
        ok = any(w.lower() in reply.lower() for w in spec.expect_any)
        return ok, f"reply={reply[:60]!r}"
    return None, ""


def summarize_turns(turns: Iterable[TurnResult]) -> dict[str, Any]:
    turns = list(turns)
    stages = {s: percentiles([t.agent.get(s) for t in turns]) for s in STAGES}
    stages["voice_to_voice_ms (caller side)"] = percentiles([t.caller_v2v_ms for t in turns])
    stages["voice_to_voice_ms (caller recording)"] = percentiles([t.recording_v2v_ms for t in turns])
    stages["barge_stop_ms (caller side)"] = percentiles([t.barge_stop_ms for t in turns])
    stages["agent last voiced - speech end"] = percentiles([t.speech_end_lag_ms for t in turns])
    pairs = [(t.agent.get("voice_to_voice_ms"), t.caller_v2v_ms) for t in turns]
    diffs = [abs(a - c) for a, c in pairs if a is not None and c is not None]
    with_jb = [(agent_v2v_with_jitter(t), t.caller_v2v_ms) for t in turns if t.agent_jitter_ms is not None]
    stages["voice_to_voice_ms + agent jitter buffer"] = percentiles([a for a, _ in with_jb])
    intents = [t for t in turns if t.expect_intent]
    judged = [t for t in turns if t.task_ok is not None]
    barges = [t for t in turns if t.barge]
    return {
        "turns": len(turns),
        "stages": stages,
        "agent_vs_caller_v2v_abs_diff_ms": percentiles(diffs),
        "caller_vs_recording_v2v_abs_diff_ms": percentiles(
            [abs(t.caller_v2v_ms - t.recording_v2v_ms) for t in turns
             if t.caller_v2v_ms is not None and t.recording_v2v_ms is not None]),
        "agent_with_jitter_vs_caller_v2v_abs_diff_ms": percentiles(
            [abs(a - c) for a, c in with_jb if a is not None and c is not None]),
        # Both ends at their network edge: the caller's figure less its own receive buffer.
        "edge_to_edge_v2v_abs_diff_ms": percentiles(
            [abs(agent_v2v_with_jitter(t) - (t.caller_v2v_ms - t.caller_jitter_ms)) for t in turns
             if agent_v2v_with_jitter(t) is not None and t.caller_v2v_ms is not None and t.caller_jitter_ms is not None]),
        "intent_accuracy": (sum(t.intent == t.expect_intent for t in intents) / len(intents)) if intents else None,
        "task_success": (sum(bool(t.task_ok) for t in judged) / len(judged)) if judged else None,
        "task_passed": sum(bool(t.task_ok) for t in judged),  # "26 of 27": the counts behind the rate
        "task_judged": len(judged),
        "wer": percentiles([t.wer for t in turns]),
        "mean_wer": _mean([t.wer for t in turns]),
        "tiers": _count(t.tier or "-" for t in turns),
        "fillers": sum(t.fillers for t in turns),
        "budget_misses": sum(len(t.budget_misses) for t in turns),
        "barge_turns": len(barges),
        "barge_stopped": sum(t.barge_stop_ms is not None for t in barges),
    }


def agent_v2v_with_jitter(t: TurnResult) -> float | None:
    """The agent's v2v plus the time the caller's audio waited in its jitter buffer: all the
    agent can measure itself (its turn records run on the bridge clock, after that buffer)."""
    v2v = t.agent.get("voice_to_voice_ms")
    return None if v2v is None or t.agent_jitter_ms is None else v2v + t.agent_jitter_ms


def summarize_calls(calls: Iterable[CallResult]) -> dict[str, Any]:
    calls = list(calls)
    timed = [c for c in calls if c.cpu_s is not None and c.duration_s > 0]
    call_s = sum(c.duration_s for c in timed)
    return {
        "calls": len(calls),
        "call_seconds": round(sum(c.duration_s for c in calls), 1),
        "cpu_s_per_call_s": (sum(c.cpu_s for c in timed) / call_s) if call_s else None,
        "false_barge_ins": sum(c.false_barge_ins for c in calls),
        "underruns": sum(c.underruns for c in calls),
        "max_frame_gap_ms": max((c.max_frame_gap_ms for c in calls if c.max_frame_gap_ms is not None), default=None),
        "late_frame_requests": sum(c.late_frame_requests or 0 for c in calls),
        "frame_gaps_over_40ms": sum(1 for c in calls if c.max_frame_gap_ms is not None and c.max_frame_gap_ms > 40),
        "rejected": sum(c.rejected for c in calls),
        "errors": [f"{c.scenario}: {c.error}" for c in calls if c.error],
    }


def as_dicts(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [asdict(i) for i in items]


def _mean(values: Iterable[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def _count(keys: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in keys:
        out[k] = out.get(k, 0) + 1
    return out


def apply_record(tr: "TurnResult", rec: dict[str, Any], spec: Turn) -> str:
    """Fill a turn's agent-side figures from the agent's call record; returns the reply text."""
    tr.intent, tr.tier = rec.get("intent"), rec.get("source")
    tr.agent = {k: rec.get(k) for k in STAGES}
    tr.budget_misses = list(rec.get("budget_misses") or [])
    tr.fillers = int(rec.get("fillers") or 0)
    heard = rec.get("caller_text") or ""
    tr.wer = word_error_rate(spec.text, heard) if spec.text else None
    # Reports are committed: what was heard is kept only with card numbers and the like taken out.
    tr.heard = redact(heard)
    return rec.get("agent_text") or ""
