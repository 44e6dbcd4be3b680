"""CallEvents / TurnTimeline: stage timings, budget misses, metrics, and the content policy."""

from __future__ import annotations

import json
import logging
import re
import sys
import types
from pathlib import Path

import pytest

from voicebox.config import BudgetConfig
from voicebox.records.call_events import CallEvents, TurnTimeline
from voicebox.records.content import ContentPolicy
from voicebox.records.store import RecordStore
from voicebox.telemetry.metrics import Metrics

SESSION = "0123456789ab"
AGENT_ID = "riverside_dental"
CALLER = "my card is 4111 1111"
AGENT = ["Thanks, I have 16 digits.", "Anything else?"]


def _timeline(**kw) -> TurnTimeline:
    base = dict(
        turn=1, speech_start_ms=3000, last_voiced_ms=4400, decided_ms=5000, decided_at=100.0,
        transcript_at=100.3, first_token_at=100.5, first_audio_at=101.5, source="topic:hours",
        caller_text=CALLER, agent_text=list(AGENT), avg_logprob=-0.23456, no_speech_prob=0.01234,
    )
    base.update(kw)
    return TurnTimeline(**base)


@pytest.fixture
def stub_redact(monkeypatch):
    mod = types.ModuleType("voicebox.privacy.redact")
    mod.redact = lambda text: re.sub(r"\d", "#", text)
    monkeypatch.setitem(sys.modules, "voicebox.privacy.redact", mod)
    return mod


@pytest.fixture
def store(tmp_path):
    return RecordStore(tmp_path)


def _records(store: RecordStore, session: str = SESSION) -> list[dict]:
    store.flush()
    files = list(Path(store.data_dir, "calls").glob(f"*/{session}.jsonl"))
    assert len(files) == 1
    return [json.loads(line) for line in files[0].read_text().splitlines()]


def _events(store, metrics=None, level="metadata", budget=None, agent=AGENT_ID) -> CallEvents:
    return CallEvents(SESSION, store, metrics, ContentPolicy(level), budget or BudgetConfig(), agent)


def _sample(m: Metrics, agent: str = AGENT_ID):
    """The registry's sample getter, for the series of one agent."""
    return lambda name, labels=None: m.registry.get_sample_value(name, {"agent": agent, **(labels or {})})


# -- TurnTimeline ---------------------------------------------------------------------------


def test_stages_from_perf_counter_values():
    st = _timeline().stages_ms()
    assert set(st) == {"endpoint_ms", "transcript_ms", "first_token_ms", "first_audio_ms", "voice_to_voice_ms"}
    assert st["endpoint_ms"] == 600.0  # decided_ms - last_voiced_ms
    assert st["transcript_ms"] == pytest.approx(300.0)
    assert st["first_token_ms"] == pytest.approx(500.0)
    assert st["first_audio_ms"] == pytest.approx(1500.0)
    assert st["voice_to_voice_ms"] == pytest.approx(600.0 + 1500.0)


def test_stages_not_reached_are_none():
    st = _timeline(transcript_at=None, first_token_at=None, first_audio_at=None).stages_ms()
    assert st["endpoint_ms"] == 600.0
    assert st["transcript_ms"] is None
    assert st["first_token_ms"] is None
    assert st["first_audio_ms"] is None
    assert st["voice_to_voice_ms"] is None


# -- budget and metrics -------------------------------------------------------------------------


def test_budget_misses_listed_by_stage_name(store):
    budget = BudgetConfig(endpoint_ms=600, transcript_ms=200, first_token_ms=900, first_audio_ms=1200,
                          voice_to_voice_ms=2000)
    _events(store, budget=budget).turn(_timeline())
    (rec,) = _records(store)
    # endpoint exactly on budget is not a miss; transcript 300>200, first_audio 1500>1200, v2v 2100>2000
    assert rec["budget_misses"] == ["transcript", "first_audio", "voice_to_voice"]


def test_no_misses_within_budget(store):
    _events(store).turn(_timeline(first_audio_at=100.9))  # defaults: all comfortably met
    (rec,) = _records(store)
    assert rec["budget_misses"] == []


def test_missing_stages_are_never_misses(store):
    budget = BudgetConfig(endpoint_ms=1, transcript_ms=1, first_token_ms=1, first_audio_ms=1, voice_to_voice_ms=1)
    _events(store, budget=budget).turn(_timeline(first_token_at=None, first_audio_at=None))
    (rec,) = _records(store)
    assert rec["budget_misses"] == ["endpoint", "transcript"]
    assert rec["first_token_ms"] is None and rec["voice_to_voice_ms"] is None


def test_metrics_observe_stages_and_count_misses(store):
    m = Metrics()
    budget = BudgetConfig(transcript_ms=200)
    ev = _events(store, m, budget=budget)
    ev.turn(_timeline())
    g = _sample(m)
    for stage, seconds in [("endpoint", 0.6), ("transcript", 0.3), ("first_token", 0.5), ("first_audio", 1.5)]:
        assert g("voicebox_turn_stage_seconds_count", {"stage": stage}) == 1, stage
        assert g("voicebox_turn_stage_seconds_sum", {"stage": stage}) == pytest.approx(seconds), stage
    # voice-to-voice has its own histogram, not a stage label
    assert g("voicebox_turn_stage_seconds_count", {"stage": "voice_to_voice"}) is None
    assert g("voicebox_voice_to_voice_seconds_count") == 1
    assert g("voicebox_voice_to_voice_seconds_sum") == pytest.approx(2.1)
    # 0.3 s lands in the 0.3 bucket, not in 0.2
    assert g("voicebox_turn_stage_seconds_bucket", {"stage": "transcript", "le": "0.2"}) == 0
    assert g("voicebox_turn_stage_seconds_bucket", {"stage": "transcript", "le": "0.4"}) == 1
    assert g("voicebox_budget_misses_total", {"stage": "transcript"}) == 1
    assert g("voicebox_budget_misses_total", {"stage": "endpoint"}) is None
    assert g("voicebox_turns_total", {"source": "topic"}) == 1

    ev.turn(_timeline(turn=2, transcript_at=100.1, source="", first_token_at=None))
    assert g("voicebox_turn_stage_seconds_count", {"stage": "transcript"}) == 2
    assert g("voicebox_turn_stage_seconds_count", {"stage": "first_token"}) == 1  # None not observed
    assert g("voicebox_budget_misses_total", {"stage": "transcript"}) == 1  # 100 ms: within budget
    assert g("voicebox_turns_total", {"source": "none"}) == 1
    assert g("voicebox_voice_to_voice_seconds_count") == 2


def test_turn_record_fields(store):
    _events(store).turn(_timeline(end_reason="max_turn"))
    (rec,) = _records(store)
    assert rec["event"] == "turn" and rec["session"] == SESSION
    assert rec["turn"] == 1 and rec["source"] == "topic:hours" and rec["end_reason"] == "max_turn"
    assert (rec["speech_start_ms"], rec["last_voiced_ms"], rec["decided_ms"]) == (3000, 4400, 5000)
    assert rec["endpoint_ms"] == 600.0
    assert rec["transcript_ms"] == 300.0  # rounded to 0.1 ms
    assert rec["first_token_ms"] == 500.0
    assert rec["first_audio_ms"] == 1500.0
    assert rec["voice_to_voice_ms"] == 2100.0
    assert rec["avg_logprob"] == -0.235 and rec["no_speech_prob"] == 0.012


# -- content policy ---------------------------------------------------------------------------


def test_metadata_level_keeps_no_words(store, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="voicebox.call")
    _events(store, level="metadata").turn(_timeline())
    (rec,) = _records(store)
    assert "caller_text" not in rec and "agent_text" not in rec
    assert rec["caller_words"] == 5
    raw = next(Path(tmp_path, "calls").glob("*/*.jsonl")).read_text()
    assert "4111" not in raw and "card" not in raw and "Anything" not in raw
    assert "4111" not in caplog.text and "card" not in caplog.text
    assert "<5 words>" in caplog.text


def test_redacted_level_stores_redacted_texts(store, stub_redact):
    _events(store, level="redacted").turn(_timeline())
    (rec,) = _records(store)
    assert rec["caller_text"] == "my card is #### ####"
    assert rec["agent_text"] == "Thanks, I have ## digits. Anything else?"
    assert rec["caller_words"] == 5


def test_full_level_stores_texts(store):
    _events(store, level="full").turn(_timeline())
    (rec,) = _records(store)
    assert rec["caller_text"] == CALLER
    assert rec["agent_text"] == "Thanks, I have 16 digits. Anything else?"


def test_content_policy_levels(stub_redact):
    assert ContentPolicy("metadata").text("call 555 1234") is None
    assert ContentPolicy("redacted").text("call 555 1234") == "call ### ####"
    assert ContentPolicy("full").text("call 555 1234") == "call 555 1234"
    assert ContentPolicy("metadata").for_log("call 555 1234") == "<3 words>"
    assert ContentPolicy("full").for_log("hi") == "'hi'"


# -- errors and plain events ------------------------------------------------------------------


def test_error_counts_and_writes_an_event(store):
    m = Metrics()
    ev = _events(store, m)
    ev.error("llm.failed", turn=3)
    ev.error("llm.failed", turn=4)
    ev.error("stt.decode_failed")
    g = _sample(m)
    assert g("voicebox_errors_total", {"code": "llm.failed"}) == 2
    assert g("voicebox_errors_total", {"code": "stt.decode_failed"}) == 1
    recs = _records(store)
    assert [(r["event"], r["code"], r.get("turn")) for r in recs] == [
        ("error", "llm.failed", 3), ("error", "llm.failed", 4), ("error", "stt.decode_failed", None),
    ]


def test_metrics_keep_agents_apart(store):
    m = Metrics()
    _events(store, m, agent="dental").turn(_timeline())
    plumbing = _events(store, m, agent="plumbing")
    plumbing.turn(_timeline(turn=2))
    plumbing.turn(_timeline(turn=3))
    plumbing.error("llm.failed")
    dental, other = _sample(m, "dental"), _sample(m, "plumbing")
    assert dental("voicebox_voice_to_voice_seconds_count") == 1
    assert other("voicebox_voice_to_voice_seconds_count") == 2
    assert dental("voicebox_turns_total", {"source": "topic"}) == 1
    assert other("voicebox_turns_total", {"source": "topic"}) == 2
    assert dental("voicebox_errors_total", {"code": "llm.failed"}) is None
    assert other("voicebox_errors_total", {"code": "llm.failed"}) == 1


def test_event_passes_fields_through(store):
    _events(store).event("media", codec="PCMA")
    (rec,) = _records(store)
    assert (rec["event"], rec["codec"], rec["session"]) == ("media", "PCMA", SESSION)


def test_works_without_store_or_metrics():
    ev = CallEvents(SESSION, None, None, ContentPolicy("full"), BudgetConfig())
    ev.turn(_timeline())
    ev.error("x.y")
    ev.event("media", codec="PCMU")


def test_barge_ins_and_fillers_move_their_counters_and_are_recorded(tmp_path):
    metrics = Metrics()
    metrics.add_agents([AGENT_ID])
    store = RecordStore(tmp_path)
    ev = CallEvents(SESSION, store, metrics, ContentPolicy("metadata"), BudgetConfig(), AGENT_ID)
    ev.barge_in(resumed=False, heard_words=3, reply_words=9)
    ev.barge_in(resumed=True, onset_ms=120)
    ev.barge_in(resumed=True, onset_ms=130)
    ev.filler(turn=1, late_by_ms=400)
    value = metrics.registry.get_sample_value
    assert value("voicebox_barge_ins_total", {"agent": AGENT_ID, "outcome": "stopped"}) == 1
    assert value("voicebox_barge_ins_total", {"agent": AGENT_ID, "outcome": "resumed"}) == 2
    assert value("voicebox_fillers_total", {"agent": AGENT_ID}) == 1
    store.flush()
    kinds = [json.loads(line)["event"] for f in tmp_path.rglob("*.jsonl") for line in f.read_text().splitlines()]
    assert kinds.count("barge_in") == 3 and kinds.count("filler") == 1, kinds


def test_every_agent_exports_its_barge_in_and_filler_counters_at_zero():
    metrics = Metrics()
    metrics.add_agents(["a", "b"])
    value = metrics.registry.get_sample_value
    for agent in ("a", "b"):
        assert value("voicebox_fillers_total", {"agent": agent}) == 0
        assert value("voicebox_barge_ins_total", {"agent": agent, "outcome": "stopped"}) == 0
