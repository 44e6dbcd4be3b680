"""In-process calls: the very CallPipeline the SIP server builds, over a simulated phone line.

A clock thread plays the part of the conference bridge: every 20 ms (real time) it takes one
frame of agent audio from the playout ring buffer, passes it through the line to the simulated
caller, and pushes one frame of the caller's audio through the other direction of the line into
the inbound ring buffer. Everything the caller hears is timed on that clock, at the caller.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.harness.channel import ChannelSpec, LineDirection
from benchmarks.harness.metrics import barge_stop_ms, false_barge_ins, reply_onset_ms, voiced
from benchmarks.harness.recording_v2v import FRAME_MS, recorded_turns
from benchmarks.harness.results import CallResult, TurnResult, apply_record, judge
from benchmarks.harness.scenarios import Scenario
from benchmarks.harness.sim_caller import PlayedTurn, ScriptedCaller
from voicebox.agent import AgentConfig
from voicebox.audio.ringbuffer import RingBuffer
from voicebox.audio.wavio import read_wav
from voicebox.config import Config
from voicebox.engines import Engines
from voicebox.records.call_events import CallEvents
from voicebox.records.content import ContentPolicy
from voicebox.telemetry.processes import tree_usage

PipelineFactory = Callable[..., Any]  # CallPipeline's constructor, or the sequential baseline's


class EventLog:
    """Stands in for the record store: keeps the call's events in memory, in order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def emit(self, session: str, event: str, **fields: Any) -> None:
        with self._lock:
            self.events.append({"event": event, "session": session, **fields})

    def of(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["event"] == name]


@dataclass
class LineLog:
    """What the clock saw, frame by frame, in caller media time."""

    heard: list[bool] = field(default_factory=list)  # the caller heard agent speech in this frame
    # The audio itself, both ways at the caller: its recording, for the stamp-free v2v check.
    sent_audio: list[np.ndarray] = field(default_factory=list)
    heard_audio: list[np.ndarray] = field(default_factory=list)
    cuts_ms: list[float] = field(default_factory=list)  # the agent dropped queued audio here
    max_late_ms: float = 0.0  # how far the clock fell behind real time


class SimulatedCall:
    def __init__(
        self, factory: PipelineFactory, engines: Engines, agent: AgentConfig, cfg: Config,
        scenario: Scenario, base: Path, channel: ChannelSpec, quiet_ms: int = 1500,
        reply_timeout_ms: int = 15000,
    ) -> None:
        self.scenario = scenario
        self.cfg = cfg
        self.channel = channel
        media = cfg.media
        self.rate = media.clock_rate_hz
        self.frame_ms = media.frame_ms
        self.frame = self.rate * media.frame_ms // 1000
        self.inbound = RingBuffer(self.rate * media.inbound_buffer_ms // 1000)
        self.playout = RingBuffer(self.rate * media.playout_buffer_ms // 1000)
        self.up = LineDirection(channel, self.frame)  # caller -> agent
        self.down = LineDirection(ChannelSpec(channel.codec, channel.loss_pct, channel.jitter_ms,
                                              channel.jitter_buffer_ms, channel.seed + 1), self.frame)
        turns = [(t, read_wav(base / t.wav, self.rate)[0]) for t in scenario.turns]
        ends_call = any(t.expect in ("hangup", "transfer") for t in scenario.turns)
        self.caller = ScriptedCaller(turns, self.frame, self.rate, quiet_ms, reply_timeout_ms,
                                     wait_hangup_ms=8000 if ends_call else 0)
        self.log = EventLog()
        self.session = "bench-" + uuid.uuid4().hex[:8]
        events = CallEvents(self.session, self.log, None, ContentPolicy("full"), cfg.budget)
        self.hung_up_by_agent = False
        self.transfer_to = ""
        self._ended = threading.Event()
        self.pipeline = factory(
            self.session, engines, agent, cfg, self.inbound, self.playout,
            self._on_hang_up, events, None, self._on_transfer,
        )
        self.line = LineLog()
        self.duration_s = 0.0

    def _on_hang_up(self, reason: str, code: str | None) -> None:
        self.hung_up_by_agent = True
        self._ended.set()

    def _on_transfer(self, uri: str) -> None:
        self.transfer_to = uri
        self._ended.set()  # a real front desk answers and the agent's leg ends

    def run(self, max_call_s: float = 180.0) -> None:
        """Place the call and pace it in real time until the caller is done or the agent ends it."""
        self.pipeline.start()
        t0 = time.perf_counter()
        dropped = self.playout.dropped
        out = np.zeros(self.frame, dtype=np.int16)
        k = 0
        while not self.caller.done and not self._ended.is_set() and k * self.frame_ms < max_call_s * 1000:
            due = t0 + k * self.frame_ms / 1000
            late = time.perf_counter() - due
            if late < 0:
                time.sleep(-late)
            else:
                self.line.max_late_ms = max(self.line.max_late_ms, late * 1000)
            now_ms = float(k * self.frame_ms)
            self.playout.read_into(out)
            if self.playout.dropped != dropped:
                dropped = self.playout.dropped
                self.line.cuts_ms.append(now_ms)
            heard = self.down.process(out)
            self.line.heard.append(voiced(heard))
            said = self.caller.step(now_ms, self.line.heard[-1])
            self.line.heard_audio.append(heard)
            self.line.sent_audio.append(said)
            self.inbound.write_overwrite(self.up.process(said))
            k += 1
        self.duration_s = k * self.frame_ms / 1000
        self.pipeline.stop()
        self.pipeline.join(5.0)
        time.sleep(0.05)  # the voice thread reports a turn's record just after its audio

    # -- figures -------------------------------------------------------------------------------
    def results(self, pipeline_name: str) -> tuple[list[TurnResult], CallResult]:
        records = self.log.of("turn")
        out: list[TurnResult] = []
        speech: list[tuple[float, float]] = []
        from_recording = self._recording_v2v()
        for played in self.caller.played:
            spec = self.scenario.turns[played.index]
            speech.append((played.speech_onset_ms, played.play_end_ms))
            rec = self._record_for(played, records)
            tr = TurnResult(self.scenario.id, played.index, self.channel.codec, spec.expect_intent,
                            mode="inprocess", pipeline=pipeline_name, barge=played.barge)
            reply = ""
            if rec is not None:
                reply = apply_record(tr, rec, spec)
                if rec.get("last_voiced_ms") is not None:
                    tr.speech_end_lag_ms = rec["last_voiced_ms"] - self.up.delay_ms - played.speech_end_ms
            onset = self._reply_onset(played)
            if onset is not None:
                tr.caller_v2v_ms = onset - played.speech_end_ms
            tr.recording_v2v_ms = from_recording[played.index] if played.index < len(from_recording) else None
            if played.barge:
                tr.barge_stop_ms = barge_stop_ms(self.line.heard, self.frame_ms, played.speech_onset_ms, self.line.cuts_ms)
            talked = any(self._heard_between(played.speech_onset_ms, played.speech_end_ms)) if not played.barge else None
            tr.task_ok, tr.why = judge(
                spec, reply, transfer_to=self.transfer_to, hung_up_by_agent=self.hung_up_by_agent,
                replied=onset is not None, talked_during_turn=talked,
            )
            out.append(tr)
        ending = self.duration_s * 1000 - 2 * self.frame_ms
        cuts = [c for c in self.line.cuts_ms if c < ending]  # a hang-up clears the queue too
        call = CallResult(
            self.scenario.id, "inprocess", pipeline_name, duration_s=self.duration_s,
            false_barge_ins=false_barge_ins(cuts, speech), underruns=self.playout.underruns,
            channel={"up": self.up.stats(), "down": self.down.stats(), "clock_max_late_ms": round(self.line.max_late_ms, 1)},
        )
        errors = self.log.of("error")
        if errors:
            call.error = ",".join(e.get("code", "?") for e in errors)
        return out, call

    def _recording_v2v(self) -> list[float | None]:
        """Per turn played, v2v from the caller's two-way recording alone (no stamps)."""
        if not self.line.sent_audio or self.frame_ms != FRAME_MS:
            return []
        sent, heard = np.concatenate(self.line.sent_audio), np.concatenate(self.line.heard_audio)
        turns = recorded_turns(sent, heard, len(self.caller.played), self.rate)
        return [None if t is None else t.v2v_ms for t in turns]

    def _heard_between(self, start_ms: float, end_ms: float) -> list[bool]:
        return self.line.heard[int(start_ms // self.frame_ms) : int(end_ms // self.frame_ms)]

    def _reply_onset(self, played: PlayedTurn) -> float | None:
        if not played.barge:
            # From where the caller's speech ended, as the SIP caller looks: an agent that spoke
            # during the turn (over a pause in it) has not replied yet.
            return reply_onset_ms(self.line.heard, self.frame_ms, played.speech_end_ms)
        # Talking over the agent: if it cut its audio, its reply is the next thing heard after
        # that stop and after the caller finished. If it never stopped, what the caller hears
        # next may still be the old reply: energy cannot tell them apart, so there is no figure.
        stop = barge_stop_ms(self.line.heard, self.frame_ms, played.speech_onset_ms, self.line.cuts_ms)
        if stop is None:
            return None
        return reply_onset_ms(self.line.heard, self.frame_ms, max(played.speech_onset_ms + stop, played.speech_end_ms))

    def _record_for(self, played: PlayedTurn, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The agent's record of this turn: the last one whose speech ended inside the caller's turn.

        Matched on media time, not by count: a turn the agent split in two, or never heard,
        must not shift every later turn. Agent and caller clocks differ by the line's delay.
        """
        lo, hi = played.play_start_ms, played.play_end_ms + self.up.delay_ms + 200
        hits = [r for r in records if r.get("last_voiced_ms") is not None and lo <= r["last_voiced_ms"] <= hi]
        return hits[-1] if hits else None


def cpu_seconds() -> float:
    """This process's, and its model workers' (the LLM runs in one)."""
    return tree_usage(os.getpid())["cpu_s"]


def peak_rss_mb() -> float:
    return tree_usage(os.getpid())["peak_rss_mb"]


def run_calls(
    factory: PipelineFactory, pipeline_name: str, engines: Engines, agent: AgentConfig, cfg: Config,
    scenarios: list[tuple[Scenario, Path]], channel: ChannelSpec, concurrency: int = 1,
    on_done: Callable[[], None] | None = None,
) -> tuple[list[TurnResult], list[CallResult]]:
    """Each scenario as one call; ``concurrency`` calls at a time (CPU is per call only when 1)."""
    turns: list[TurnResult] = []
    calls: list[CallResult] = []
    for start in range(0, len(scenarios), concurrency):
        batch = scenarios[start : start + concurrency]
        sims = [SimulatedCall(factory, engines, agent, cfg, sc, base, channel) for sc, base in batch]
        cpu0 = cpu_seconds()
        threads = [threading.Thread(target=s.run, name=f"bench-call-{i}", daemon=True) for i, s in enumerate(sims)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu = cpu_seconds() - cpu0
        for s in sims:
            t_res, c_res = s.results(pipeline_name)
            c_res.concurrency = concurrency
            # With calls overlapping, CPU belongs to the batch: shared out by call length.
            total = sum(x.duration_s for x in sims) or 1.0
            c_res.cpu_s = cpu * s.duration_s / total
            turns += t_res
            calls.append(c_res)
            if on_done is not None:
                on_done()
    return turns, calls
