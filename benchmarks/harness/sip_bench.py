"""The SIP benchmark: corpus scenarios as real calls to a real `voicebox serve`, on loopback.

Every number is measured twice where it can be: on the agent's side (its call records) and on
the caller's side (the pjsua2 caller's own media clock), so the report can show they agree. The
caller's voice-to-voice is measured a third time from its stereo recording alone (what it sent
and what it heard, on its one clock): the check on the caller's live stamps.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from benchmarks.harness.metrics import last_voiced_ms
from benchmarks.harness.recording_v2v import recording_v2v_ms
from benchmarks.harness.results import CallResult, TurnResult, apply_record, judge
from benchmarks.harness.scenarios import Scenario
from voicebox.agent import agent_file
from voicebox.audio.wavio import read_wav
from voicebox.config import ConfigError, default_agent
from voicebox.telemetry.processes import tree_usage
from voicebox.telephony.probe import free_port, sip_options

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
CALLER_RTP_FIRST, CALLER_RTP_STEP, CALLER_RTP_SLOTS = 30000, 200, 100  # callers' RTP ports unless told


def parse_rtp_ports(text: str) -> tuple[int, int] | None:
    """``--rtp-ports 58000-58999``: the UDP ports the run may use for RTP (None: the defaults)."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not m or not 1024 <= int(m.group(1)) < int(m.group(2)) <= 65535 or int(m.group(2)) - int(m.group(1)) < 63:
        raise ConfigError(f"--rtp-ports: expected a range of at least 64 ports like 58000-58999, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def split_rtp_ports(ports: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """The server's half of a port range and the callers' half."""
    lo, hi = ports
    mid = lo + (hi - lo + 1) // 2
    return (lo, mid - 1), (mid, hi)


def caller_rtp_port(n: int, ports: tuple[int, int] | None) -> int:
    """Call ``n``'s RTP port: calls at once get ports far enough apart (RTP, RTCP, retries)."""
    if ports is None:
        return CALLER_RTP_FIRST + CALLER_RTP_STEP * (n % CALLER_RTP_SLOTS)
    lo, hi = ports
    step = 10
    return lo + step * (n % ((hi - lo + 1) // step))


class Server:
    """`voicebox serve` with full-content records (so replies can be checked), plus a front desk."""

    def __init__(
        self, work: Path, extra_config: str = "", jitter_buffer_ms: int | None = None, agent: str = "",
        rtp_ports: tuple[int, int] | None = None,
    ) -> None:
        self.work = work
        self.port = free_port(HOST)
        self.frontdesk_port = free_port(HOST)
        agent = agent_file(agent or default_agent()).read_text()
        agent = re.sub(r'transfer_uri = "[^"]*"', f'transfer_uri = "sip:frontdesk@{HOST}:{self.frontdesk_port}"', agent)
        (work / "agent.toml").write_text(agent)
        (work / "voicebox.toml").write_text(
            f'agent = "{work / "agent.toml"}"\n[privacy]\ncontent = "full"\n[metrics]\nport = 0\n'
            f"[sip]\nmax_calls = 8\n"
            + (f"rtp_port = {rtp_ports[0]}\nrtp_port_range = {rtp_ports[1] - rtp_ports[0] + 1}\n" if rtp_ports else "")
            + (f"[media]\njitter_buffer_ms = {jitter_buffer_ms}\n" if jitter_buffer_ms is not None else "")
            + extra_config
        )
        self.data = work / "data"
        self.log = work / "serve.log"
        self.proc: subprocess.Popen | None = None
        self.frontdesk: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voicebox", "serve", "--config", str(self.work / "voicebox.toml"),
             "--sip-host", HOST, "--sip-port", str(self.port), "--data-dir", str(self.data)],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
        )
        deadline = time.monotonic() + 180
        while (sip_options(HOST, self.port, 0.5) or "") != "SIP/2.0 200 OK":
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"voicebox serve did not come up:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.5)
        try:  # a real SIP peer as the front desk, so transfers complete
            self.frontdesk = subprocess.Popen(
                ["sipp", "-sn", "uas", "-i", HOST, "-p", str(self.frontdesk_port), "-nostdin"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            self.frontdesk = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.frontdesk is not None:
            self.frontdesk.terminate()
            try:
                self.frontdesk.wait(5)
            except subprocess.TimeoutExpired:
                self.frontdesk.kill()

    def usage(self) -> dict[str, float]:
        """CPU seconds so far and peak resident memory of the server and its model workers."""
        return tree_usage(self.proc.pid)

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """Call records by SIP Call-ID."""
        out = {}
        for path in (self.data / "calls").glob("*/*.jsonl"):
            events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            start = next((e for e in events if e["event"] == "call_start"), None)
            if start:
                out[start["sip_call_id"]] = events
        return out


def play_args(sc: Scenario, base: Path) -> list[str]:
    """The caller's ``--play`` arguments: a barge-in turn is played that long into the agent's
    reply, over it (the caller's ``wav@ms``), as the in-process bench plays it."""
    out: list[str] = []
    for t in sc.turns:
        barge = f"@{t.barge_after_ms}" if t.barge_after_ms is not None else ""
        out += ["--play", f"{base / t.wav}{barge}"]
    return out


def _place_call(server: Server, sc: Scenario, base: Path, codec: str, work: Path, n: int,
                caller_jitter_buffer_ms: int | None = None,
                rtp_ports: tuple[int, int] | None = None) -> dict[str, Any]:
    result, stereo = work / f"{sc.id}-{n}.json", work / f"{sc.id}-{n}.wav"
    cmd = [sys.executable, "-m", "benchmarks.harness.caller", f"sip:agent@{HOST}:{server.port}",
           "--codec", codec, "--json", str(result), "--rtp-port", str(caller_rtp_port(n, rtp_ports)),
           "--quiet-ms", "1500", "--reply-timeout-s", "15", "--stereo-wav", str(stereo)]
    cmd += play_args(sc, base)
    if any(t.expect in ("hangup", "transfer") for t in sc.turns):
        cmd += ["--wait-hangup-s", "8"]
    if caller_jitter_buffer_ms is not None:
        cmd += ["--jitter-buffer-ms", str(caller_jitter_buffer_ms)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=300)
    if proc.returncode != 0 or not result.exists():
        return {"error": f"caller exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}", "turns": []}
    out = json.loads(result.read_text())
    if stereo.exists():
        out["stereo_wav"] = str(stereo)
    return out


def run_sip(
    server: Server, scenarios: list[tuple[Scenario, Path]], codec: str, work: Path, concurrency: int = 1,
    on_done: Callable[[], None] | None = None, first_n: int = 0, caller_jitter_buffer_ms: int | None = None,
    rtp_ports: tuple[int, int] | None = None,
) -> list[tuple[Scenario, Path, dict]]:
    """Place every scenario as a call, ``concurrency`` at a time; the callers' results in order."""
    out: list[tuple[Scenario, Path, dict]] = []
    n = first_n
    for start in range(0, len(scenarios), concurrency):
        batch = scenarios[start : start + concurrency]
        with ThreadPoolExecutor(len(batch)) as pool:
            futures = []
            for sc, base in batch:
                n += 1
                futures.append(pool.submit(_place_call, server, sc, base, codec, work, n, caller_jitter_buffer_ms,
                                           rtp_ports))
            for (sc, base), f in zip(batch, futures):
                out.append((sc, base, f.result()))
                if on_done is not None:
                    on_done()
    return out


def sip_results(
    calls: list[tuple[Scenario, Path, dict]], records: dict[str, list[dict[str, Any]]], concurrency: int = 1,
) -> tuple[list[TurnResult], list[CallResult]]:
    """Join each caller's own timings with the agent's record of the same call (by Call-ID)."""
    turns: list[TurnResult] = []
    results: list[CallResult] = []
    for sc, base, call in calls:
        events = records.get(call.get("sip_call_id", ""), [])
        turn_records = [e for e in events if e["event"] == "turn"]
        end = next((e for e in events if e["event"] == "call_end"), {})
        rejected = bool(call.get("status")) and not call.get("answered") and call.get("status") in (486, 503)
        results.append(CallResult(
            sc.id, "sip", "voicebox", concurrency, duration_s=float(end.get("duration_s") or 0.0),
            underruns=int(end.get("underruns") or 0), rejected=rejected,
            max_frame_gap_ms=end.get("max_frame_gap_ms"), late_frame_requests=end.get("late_frame_requests"),
            error=call.get("error", "") or ("" if call.get("answered") else f"not answered: {call.get('status')}"),
            channel={"caller_jitter_buffer_ms": call.get("jitter_buffer_ms"),
                     "agent_jitter_buffer_ms": end.get("jitter_buffer_ms")},
        ))
        from_recording = recording_v2v_ms(call["stereo_wav"], len(sc.turns)) if call.get("stereo_wav") else []
        for i, spec in enumerate(sc.turns):
            caller_turn = call["turns"][i] if i < len(call.get("turns", [])) else {}
            rec = turn_records[i] if i < len(turn_records) else None
            tr = TurnResult(sc.id, i, call.get("codec", ""), spec.expect_intent, mode="sip")
            reply = ""
            if rec is not None:
                reply = apply_record(tr, rec, spec)
            tr.agent_jitter_ms = end.get("jitter_buffer_ms")
            tr.caller_jitter_ms = call.get("jitter_buffer_ms")
            onset = caller_turn.get("reply_onset_ms")
            if onset is not None and caller_turn.get("play_start_ms") is not None:
                samples, _ = read_wav(base / spec.wav, 16000)
                tr.caller_v2v_ms = onset - (caller_turn["play_start_ms"] + last_voiced_ms(samples, 16000))
            if i < len(from_recording):
                tr.recording_v2v_ms = from_recording[i]
            if spec.barge_after_ms is not None:
                # The caller's own clock: its speech onset over the reply -> the agent fell silent.
                tr.barge = True
                stopped, onset_ms = caller_turn.get("agent_stopped_ms"), caller_turn.get("speech_onset_ms")
                if stopped is not None and onset_ms is not None:
                    tr.barge_stop_ms = stopped - onset_ms
            tr.task_ok, tr.why = judge(
                spec, reply, transfer_to=call.get("transfer_to", ""),
                hung_up_by_agent=call.get("disconnected_by") == "agent", replied=onset is not None,
            )
            turns.append(tr)
    return turns, results
