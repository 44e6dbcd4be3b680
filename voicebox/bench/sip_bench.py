"""The SIP benchmark: corpus scenarios as real calls to a real `voicebox serve`, on loopback.

Every number is measured twice where it can be: on the agent's side (its call records) and on
the caller's side (the pjsua2 caller's own media clock), so the report can show they agree.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from voicebox.audio.wavio import read_wav
from voicebox.bench.metrics import last_voiced_ms, percentiles
from voicebox.bench.scenarios import Scenario, load_scenarios
from voicebox.telephony.probe import free_port, sip_options

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
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
    caller_v2v_ms: float | None = None  # caller's own measurement of voice-to-voice
    task_ok: bool | None = None
    why: str = ""


class Server:
    """`voicebox serve` with full-content records (so replies can be checked), plus a front desk."""

    def __init__(self, work: Path, extra_config: str = "") -> None:
        self.work = work
        self.port = free_port(HOST)
        self.frontdesk_port = free_port(HOST)
        agent = (ROOT / "voicebox" / "agents" / "riverside_dental.toml").read_text()
        agent = re.sub(r'transfer_uri = "[^"]*"', f'transfer_uri = "sip:frontdesk@{HOST}:{self.frontdesk_port}"', agent)
        (work / "agent.toml").write_text(agent)
        (work / "voicebox.toml").write_text(
            f'agent = "{work / "agent.toml"}"\n[privacy]\ncontent = "full"\n[metrics]\nport = 0\n'
            f"[sip]\nmax_calls = 8\n{extra_config}"
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
                ["sipp", "-sn", "uas", "-i", HOST, "-p", str(self.frontdesk_port), "-nostdin", "-bg"],
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
        subprocess.run(["pkill", "-f", f"sipp -sn uas -i {HOST} -p {self.frontdesk_port}"], check=False)

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """Call records by SIP Call-ID."""
        out = {}
        for path in (self.data / "calls").glob("*/*.jsonl"):
            events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            start = next((e for e in events if e["event"] == "call_start"), None)
            if start:
                out[start["sip_call_id"]] = events
        return out


def _place_call(server: Server, sc: Scenario, base: Path, codec: str, work: Path, n: int) -> dict[str, Any]:
    result = work / f"{sc.id}-{n}.json"
    cmd = [sys.executable, "-m", "voicebox.telephony.caller", f"sip:agent@{HOST}:{server.port}",
           "--codec", codec, "--json", str(result), "--rtp-port", str(48000 + 20 * (n % 40)),
           "--quiet-ms", "1500", "--reply-timeout-s", "15"]
    for t in sc.turns:
        cmd += ["--play", str(base / t.wav)]
    if any(t.expect in ("hangup", "transfer") for t in sc.turns):
        cmd += ["--wait-hangup-s", "8"]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=300, check=True)
    return json.loads(result.read_text())


def _judge(turn_spec, record: dict | None, call: dict, caller_turn: dict) -> tuple[bool | None, str]:
    """Did the agent do what the scenario expects? (None when the scenario expects nothing.)"""
    said = (record or {}).get("agent_text") or ""
    if turn_spec.expect == "transfer":
        return bool(call.get("transfer_to")), f"transfer_to={call.get('transfer_to')!r}"
    if turn_spec.expect == "hangup":
        return call.get("disconnected_by") == "agent", f"disconnected_by={call.get('disconnected_by')}"
    if turn_spec.expect in ("reprompt", "reprompt_or_silence"):
        silent = caller_turn.get("reply_onset_ms") is None
        reprompted = "catch that" in said.lower() or "didn't get that" in said.lower()
        ok = reprompted or (silent and turn_spec.expect == "reprompt_or_silence")
        return ok, f"reply={said[:60]!r}"
    if turn_spec.expect_any:
        ok = any(w.lower() in said.lower() for w in turn_spec.expect_any)
        return ok, f"reply={said[:60]!r}"
    return None, ""


def run_bench(scenario_file: Path, repeat: int, codec: str, work: Path, progress: bool = True) -> dict[str, Any]:
    scenarios, base = load_scenarios(scenario_file)
    results: list[TurnResult] = []
    calls: list[tuple[Scenario, dict]] = []
    total = len(scenarios) * repeat
    t_start = time.time()
    with Server(work) as server:
        n = 0
        for rep in range(repeat):
            for sc in scenarios:
                n += 1
                if progress:
                    print(f"[{n}/{total}] {sc.id} (run {rep + 1})", file=sys.stderr, flush=True)
                calls.append((sc, _place_call(server, sc, base, codec, work, n)))
        time.sleep(1.0)  # the last call's record is written by the server's writer thread
        records = server.records()
    for sc, call in calls:
        events = records.get(call.get("sip_call_id", ""), [])
        turn_records = [e for e in events if e["event"] == "turn"]
        for i, spec in enumerate(sc.turns):
            caller_turn = call["turns"][i] if i < len(call["turns"]) else {}
            rec = turn_records[i] if i < len(turn_records) else None
            tr = TurnResult(sc.id, i, call.get("codec", ""), spec.expect_intent)
            if rec is not None:
                tr.intent, tr.tier = rec.get("intent"), rec.get("source")
                tr.agent = {k: rec.get(k) for k in STAGES}
            onset = caller_turn.get("reply_onset_ms")
            if onset is not None and caller_turn.get("play_start_ms") is not None:
                samples, _ = read_wav(base / spec.wav, 16000)
                tr.caller_v2v_ms = onset - (caller_turn["play_start_ms"] + last_voiced_ms(samples, 16000))
            tr.task_ok, tr.why = _judge(spec, rec, call, caller_turn)
            results.append(tr)
    return summarize(results, {
        "command": " ".join(["voicebox", "bench", *sys.argv[2:]]) if sys.argv[1:2] == ["bench"] else " ".join(sys.argv),
        "scenarios": str(scenario_file), "repeat": repeat, "codec": codec,
        "cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
        "git_revision": _git_rev(), "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t_start)),
        "duration_s": round(time.time() - t_start, 1),
    })


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def summarize(results: list[TurnResult], meta: dict[str, Any]) -> dict[str, Any]:
    stages = {s: percentiles([r.agent.get(s) for r in results]) for s in STAGES}
    template = [r for r in results if r.tier == "template"]
    stages["first_audio_ms (template turns)"] = percentiles([r.agent.get("first_audio_ms") for r in template])
    stages["voice_to_voice_ms (caller side)"] = percentiles([r.caller_v2v_ms for r in results])
    pairs = [(r.agent.get("voice_to_voice_ms"), r.caller_v2v_ms) for r in results]
    diffs = [abs(a - c) for a, c in pairs if a is not None and c is not None]
    intents = [r for r in results if r.expect_intent]
    judged = [r for r in results if r.task_ok is not None]
    return {
        "meta": meta,
        "stages": stages,
        "agent_vs_caller_v2v_abs_diff_ms": percentiles(diffs),
        "intent_accuracy": (sum(r.intent == r.expect_intent for r in intents) / len(intents)) if intents else None,
        "task_success": (sum(bool(r.task_ok) for r in judged) / len(judged)) if judged else None,
        "turns": [asdict(r) for r in results],
    }


def to_markdown(report: dict[str, Any]) -> str:
    m = report["meta"]
    lines = [
        "# SIP benchmark: corpus scenarios as real calls",
        "",
        f"- Command: `{m['command']}`",
        f"- Git revision {m['git_revision']}, {m['cores']} cores ({m['machine']}), Python {m['python']}, "
        f"started {m['started']}, took {m['duration_s']} s",
        f"- {m['repeat']} run(s) of `{m['scenarios']}` over {m['codec']}, one call at a time",
        "",
        "| stage (ms) | n | p50 | p95 | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, p in report["stages"].items():
        lines.append(f"| {name} | {p['n']} | {_f(p['p50'])} | {_f(p['p95'])} | {_f(p['max'])} |")
    d = report["agent_vs_caller_v2v_abs_diff_ms"]
    acc, ok = report["intent_accuracy"], report["task_success"]
    lines += [
        "",
        f"- Voice-to-voice, agent's record vs the caller's own measurement: |difference| p50 {_f(d['p50'])} ms, "
        f"p95 {_f(d['p95'])} ms, max {_f(d['max'])} ms (n={d['n']}).",
        f"- Intent accuracy (recognized through the codec): {_pct(acc)}; task success (expect/expect_any): {_pct(ok)}.",
        "",
        "| scenario | turn | intent (expected) | tier | v2v agent | v2v caller | task |",
        "|---|---:|---|---|---:|---:|---|",
    ]
    for t in report["turns"]:
        task = "-" if t["task_ok"] is None else ("ok" if t["task_ok"] else f"FAIL {t['why']}")
        lines.append(
            f"| {t['scenario']} | {t['turn']} | {t['intent']} ({t['expect_intent'] or '-'}) | {t['tier']} | "
            f"{_f(t['agent'].get('voice_to_voice_ms'))} | {_f(t['caller_v2v_ms'])} | {task} |"
        )
    return "\n".join(lines) + "\n"


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def main(args: Any) -> int:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voicebox-bench-") as tmp:
        report = run_bench(Path(args.scenarios), args.repeat, args.codec, Path(tmp))
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    out.with_suffix(".md").write_text(to_markdown(report))
    print(to_markdown(report))
    return 0
