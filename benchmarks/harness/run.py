"""`python -m benchmarks.harness`: corpus scenarios through the real agent, in-process and/or over SIP.

In-process runs drive the very CallPipeline the SIP server builds (and, with ``--baseline
sequential``, the naive pipeline on the same models) over a simulated phone line; SIP runs place
real pjsua2 calls to a `voicebox serve` started here on loopback. Concurrency levels above 1
run batches of simultaneous calls. Writes OUT.json, OUT.md and OUT-*.png.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.harness.channel import ChannelSpec
from benchmarks.harness.metrics import percentiles
from benchmarks.harness.report import to_markdown, write_plots
from benchmarks.harness.results import CallResult, TurnResult, as_dicts, summarize_calls, summarize_turns
from benchmarks.harness.scenarios import Scenario, load_scenarios
from voicebox.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_levels(text: str) -> list[int]:
    try:
        levels = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise ConfigError(f"--concurrency: expected numbers like 1,2,4,8, got {text!r}") from None
    if not levels or levels[0] < 1 or levels[-1] > 24:
        raise ConfigError("--concurrency: levels must be between 1 and 24")
    return levels


def select(scenarios: list[Scenario], only: str) -> list[Scenario]:
    if not only:
        return scenarios
    wanted = [s.strip() for s in only.split(",") if s.strip()]
    known = {s.id for s in scenarios}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ConfigError(f"--only: no scenario named {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return [s for s in scenarios if s.id in wanted]


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="call", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
        self.lock = threading.Lock()

    def stage(self, text: str) -> None:
        self.bar.set_description(text)

    def tick(self) -> None:
        with self.lock:
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _run_entry(name: str, mode: str, pipeline: str, codec: str, concurrency: int,
               turns: list[TurnResult], calls: list[CallResult], cpu_s: float | None = None) -> dict[str, Any]:
    cs = summarize_calls(calls)
    if cpu_s is not None and cs["call_seconds"]:
        cs["cpu_s_per_call_s"] = cpu_s / cs["call_seconds"]
    ts = summarize_turns(turns)
    if pipeline == "sequential":
        ts["intent_accuracy"] = None  # no intent router in the naive pipeline: nothing to score
    return {"name": name, "mode": mode, "pipeline": pipeline, "codec": codec, "concurrency": concurrency,
            "turns_summary": ts, "calls_summary": cs}


def _tag(items: list[dict[str, Any]], run: str, concurrency: int) -> list[dict[str, Any]]:
    for d in items:
        d["run"], d["concurrency"] = run, concurrency
    return items


def run(args: Any) -> dict[str, Any]:
    scenarios, base = load_scenarios(Path(args.scenarios))
    scenarios = select(scenarios, args.only)
    levels = parse_levels(args.concurrency)
    modes = ["inprocess", "sip"] if args.mode == "both" else [args.mode]
    channel = ChannelSpec(args.codec, args.loss_pct, args.jitter_ms, args.jitter_buffer_ms)
    work = [(sc, base) for _ in range(args.repeat) for sc in scenarios]
    sweep_batches = {c: [work[(i + k) % len(work)] for k in range(c)] for i, c in enumerate(levels) if c > 1}
    pipelines = 2 if args.baseline == "sequential" else 1
    total = sum(
        len(work) * (pipelines if m == "inprocess" else 1) + sum(len(b) * args.repeat for b in sweep_batches.values())
        for m in modes
    )
    progress = _Progress(total, not args.no_progress)
    runs: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    sweep: list[dict[str, Any]] = []
    t_start = time.time()

    def add(name, mode, pipeline, conc, t_res, c_res, cpu_s=None):
        runs.append(_run_entry(name, mode, pipeline, channel.codec if mode == "inprocess" else args.codec,
                               conc, t_res, c_res, cpu_s))
        turns.extend(_tag(as_dicts(t_res), name, conc))
        calls.extend(_tag(as_dicts(c_res), name, conc))
        if len(levels) > 1 and pipeline == "voicebox":
            agent_v2v = [t.agent.get("voice_to_voice_ms") for t in t_res]
            s = runs[-1]["calls_summary"]
            sweep.append({"mode": mode, "concurrency": conc, "calls": len(c_res),
                          "v2v_caller_p95": percentiles([t.caller_v2v_ms for t in t_res])["p95"],
                          "v2v_agent_p95": percentiles(agent_v2v)["p95"],
                          "underruns": s["underruns"], "rejected": s["rejected"],
                          "max_frame_gap_ms": s.get("max_frame_gap_ms"),
                          "frame_gaps_over_40ms": s.get("frame_gaps_over_40ms"),
                          "cpu_s_per_call_s": s["cpu_s_per_call_s"]})

    server_rss = None
    try:
        if "inprocess" in modes:
            _inprocess(args, work, sweep_batches, channel, progress, add)
        if "sip" in modes:
            server_rss = _sip(args, work, sweep_batches, progress, add)
    finally:
        progress.close()
    from benchmarks.harness.inprocess import peak_rss_mb

    meta = {
        "command": getattr(args, "command", None) or " ".join(sys.argv),
        "scenarios": str(args.scenarios), "scenario_count": len(scenarios), "repeat": args.repeat,
        "agent": args.agent or None,
        "modes": modes, "baseline": args.baseline or None, "concurrency": levels,
        "channel": "; ".join(
            ([f"simulated {channel.codec} line, loss {channel.loss_pct}%, jitter {channel.jitter_ms} ms "
              f"(buffer {channel.jitter_buffer_ms} ms) in-process"] if "inprocess" in modes else [])
            + ([f"{args.codec} over SIP on loopback"] if "sip" in modes else [])),
        "cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
        "git_revision": _git_rev(), "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t_start)),
        "duration_s": round(time.time() - t_start, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "server_peak_rss_mb": None if server_rss is None else round(server_rss, 1),
    }
    report = {"meta": meta, "runs": runs, "speedup": _speedups(runs), "sweep": sweep, "turns": turns, "calls": calls}
    return report


def _speedups(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in runs:
        if r["pipeline"] != "voicebox" or r["concurrency"] != 1:
            continue
        twin = next((b for b in runs if b["pipeline"] == "sequential" and b["mode"] == r["mode"]
                     and b["concurrency"] == 1), None)
        if twin is None:
            continue
        a = r["turns_summary"]["stages"]["voice_to_voice_ms (caller side)"]
        b = twin["turns_summary"]["stages"]["voice_to_voice_ms (caller side)"]
        ratio = lambda q: (b[q] / a[q]) if a[q] and b[q] else None  # noqa: E731
        out.append({"run": r["name"], "baseline": twin["name"], "p50_ratio": ratio("p50"), "p95_ratio": ratio("p95")})
    return out


def _inprocess(args, work, sweep_batches, channel, progress, add) -> None:
    from benchmarks.harness.baseline import SequentialPipeline
    from benchmarks.harness.inprocess import run_calls
    from voicebox.agent import load_agent
    from voicebox.config import load_config
    from voicebox.engines import load_engines
    from voicebox.pipeline import CallPipeline

    progress.stage("loading models")
    cfg = load_config(Path(args.config) if args.config else None, {"privacy.content": "full"})
    agent = load_agent(args.agent or cfg.agent)
    engines = load_engines(cfg, agent)
    for t in threading.enumerate():
        if t.name == "tts-cache":
            t.join()  # fixed phrases synthesized before timing starts, as on a warm server
    kinds = [("voicebox", CallPipeline)] + ([("sequential", SequentialPipeline)] if args.baseline == "sequential" else [])
    for name, factory in kinds:
        progress.stage(f"in-process {name}")
        t_res, c_res = run_calls(factory, name, engines, agent, cfg, work, channel, 1, progress.tick)
        add(f"inprocess {name} {channel.codec}", "inprocess", name, 1, t_res, c_res)
    for conc, batch in sweep_batches.items():
        progress.stage(f"in-process x{conc}")
        t_res, c_res = run_calls(CallPipeline, "voicebox", engines, agent, cfg, batch * args.repeat, channel, conc, progress.tick)
        add(f"inprocess voicebox x{conc}", "inprocess", "voicebox", conc, t_res, c_res)


def _sip(args, work, sweep_batches, progress, add) -> float:
    """Returns the server's peak resident memory (MB)."""
    from benchmarks.harness.sip_bench import Server, parse_rtp_ports, run_sip, sip_results, split_rtp_ports

    ports = parse_rtp_ports(getattr(args, "rtp_ports", ""))
    server_ports, caller_ports = split_rtp_ports(ports) if ports else (None, None)
    progress.stage("starting voicebox serve")
    with tempfile.TemporaryDirectory(prefix="voicebox-bench-") as tmp:
        agent_jb = args.agent_jitter_buffer_ms if args.agent_jitter_buffer_ms >= 0 else None
        with Server(Path(tmp), args.server_config, agent_jb, agent=args.agent, rtp_ports=server_ports) as server:
            placed = []
            n = 0
            progress.stage("SIP one call at a time")
            cpu0 = server.usage()["cpu_s"]
            jb = args.caller_jitter_buffer_ms if args.caller_jitter_buffer_ms >= 0 else None
            calls = run_sip(server, work, args.codec, Path(tmp), 1, progress.tick, caller_jitter_buffer_ms=jb,
                            rtp_ports=caller_ports)
            placed.append((1, calls, server.usage()["cpu_s"] - cpu0))
            n += len(calls)
            for conc, batch in sweep_batches.items():
                progress.stage(f"SIP x{conc}")
                cpu0 = server.usage()["cpu_s"]
                calls = run_sip(server, batch * args.repeat, args.codec, Path(tmp), conc, progress.tick, first_n=n,
                                caller_jitter_buffer_ms=jb, rtp_ports=caller_ports)
                placed.append((conc, calls, server.usage()["cpu_s"] - cpu0))
                n += len(calls)
            time.sleep(1.0)  # the last call's record is written by the server's writer thread
            records = server.records()
            usage = server.usage()
        for conc, calls, cpu in placed:
            t_res, c_res = sip_results(calls, records, conc)
            name = f"sip voicebox {args.codec}" if conc == 1 else f"sip voicebox x{conc}"
            add(name, "sip", "voicebox", conc, t_res, c_res, cpu)
    return usage["peak_rss_mb"]


def main(args: Any) -> int:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = run(args)
    pngs = write_plots(report, out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    md = to_markdown(report, pngs)
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0
