"""Soak: many short calls with audio (the pjsua2 caller) against a fresh `voicebox serve`, memory sampled.

    python benchmarks/soak.py --duration-s 600 --out benchmarks/results/soak     # `make soak`
    python benchmarks/soak.py --duration-s 60 --out /tmp/soak                      # the e2e test

A warm-up call first (it loads what the first call loads for good), then calls are placed at a
fixed rate for the duration, at most --max-calls at once: each is a `benchmarks.harness.caller`
process that waits for the greeting, says one corpus sentence, waits for the answer and hangs
up, and reports what it heard. RSS (with its model workers'), open FDs and threads of the
server are read from /proc every second; active calls and CPU from the server's own OPTIONS
load hint. Writes OUT.json, OUT.md, OUT.png, and exits 1 (listing why) unless every placed call
completed, heard the greeting and an answer, and threads, FDs and memory ended where they began
(no more threads or FDs than at the start, RSS within MAX_RSS_GROWTH_MB).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicebox.telemetry.processes import process_tree  # noqa: E402
from voicebox.telephony.probe import free_port, sip_options  # noqa: E402

HOST = "127.0.0.1"
WAV = ROOT.parent / "shared" / "corpus" / "wav" / "hours_saturday_0.wav"  # answered from a template
# Callers' own RTP ports: 53000-53999, 20 a call, reused after 50 calls (long since ended by then).
CALLER_RTP_BASE, CALLER_RTP_SLOTS = 53000, 50
# What "ended where it began" allows: no thread or FD more than at the start, RSS within allocator noise.
MAX_RSS_GROWTH_MB = 60.0


def proc_sample(pid: int) -> dict:
    """RSS of the server and its model workers (the LLM runs in one); FDs and threads of the server."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    for child in process_tree(pid)[1:]:
        try:
            rss_kb += int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{child}/status").read_text()).group(1))
        except (OSError, AttributeError):
            pass  # gone meanwhile
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    return {"rss_mb": round(rss_kb / 1024, 1), "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads}


def load_hint(port: int) -> tuple[int, float] | None:
    """(active calls, cpu) from the X-Voicebox-Load header of an OPTIONS answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(1.0)
        tag = uuid.uuid4().hex
        s.sendto((f"OPTIONS sip:agent@{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{s.getsockname()[1]};"
                  f"branch=z9hG4bK{tag};rport\r\nMax-Forwards: 70\r\nFrom: <sip:soak@{HOST}>;tag={tag[:8]}\r\n"
                  f"To: <sip:agent@{HOST}>\r\nCall-ID: {tag}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(),
                 (HOST, port))
        try:
            text = s.recv(65535).decode(errors="replace")
        except OSError:
            return None
    m = re.search(r"X-Voicebox-Load: calls=(\d+)/\d+; cpu=([\d.]+)", text)
    return (int(m.group(1)), float(m.group(2))) if m else None


class Sampler(threading.Thread):
    def __init__(self, pid: int, port: int, period_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.port, self.period_s = pid, port, period_s
        self.samples: list[dict] = []
        self.t0 = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.period_s):
            self.samples.append(self.take())

    def take(self) -> dict:
        s = {"t_s": round(time.monotonic() - self.t0, 1), **proc_sample(self.pid)}
        hint = load_hint(self.port)
        s["calls"], s["cpu"] = hint if hint else (None, None)
        return s

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


class Callers:
    """Places scripted calls (one caller process each) and collects what each heard."""

    def __init__(self, uri: str, work: Path) -> None:
        self.uri, self.work = uri, work
        self.running: list[tuple[int, subprocess.Popen, Path]] = []
        self.results: list[dict] = []
        self.placed = 0

    def place(self) -> None:
        i = self.placed
        self.placed += 1
        result = self.work / f"call-{i}.json"
        rtp = CALLER_RTP_BASE + 20 * (i % CALLER_RTP_SLOTS)
        cmd = [sys.executable, "-m", "benchmarks.harness.caller", self.uri, "--codec", "PCMA",
               "--play", str(WAV), "--json", str(result), "--rtp-port", str(rtp), "--reply-timeout-s", "30"]
        log = (self.work / f"call-{i}.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.running.append((i, proc, result))

    def reap(self, wait: bool = False, timeout_s: float = 120) -> None:
        """Collect the callers that have ended (``wait``: all of them, killing any past ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        still = []
        for i, proc, result in self.running:
            if wait:
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            if proc.poll() is None:
                still.append((i, proc, result))
                continue
            self.results.append(call_outcome(i, proc.returncode, result))
        self.running = still


def call_outcome(i: int, rc: int, result: Path) -> dict:
    """One call as the caller saw it: answered and ended normally, greeting heard, answer heard."""
    try:
        r = json.loads(result.read_text())
    except (OSError, json.JSONDecodeError):
        r = {}
    turns = r.get("turns") or [{}]
    return {
        "call": i, "caller_rc": rc, "answered": bool(r.get("answered")), "status": r.get("status"),
        "error": r.get("error", "no result" if not r else ""),
        "completed": rc == 0 and bool(r.get("answered")) and not r.get("error")
        and r.get("disconnected_by") == "caller",  # it lasted until the caller was done
        "heard_greeting": r.get("greeting_onset_ms") is not None,
        "heard_answer": turns[0].get("reply_onset_ms") is not None,
    }


def place_calls(callers: Callers, calls: int, calls_per_s: float, max_calls: int) -> None:
    """``calls`` calls at ``calls_per_s``, never more than ``max_calls`` up at once."""
    t0 = time.monotonic()
    for n in range(calls):
        time.sleep(max(0.0, t0 + n / calls_per_s - time.monotonic()))
        callers.reap()
        while len(callers.running) >= max_calls:
            time.sleep(0.2)
            callers.reap()
        callers.place()
    callers.reap(wait=True)


def wait_idle(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        hint = load_hint(port)
        if hint is not None and hint[0] == 0:
            return True
        time.sleep(0.5)
    return False


def steady(sampler: "Sampler", timeout_s: float = 15) -> dict:
    """A sample once threads and FDs have held still for 2 s (or ``timeout_s`` passed): threads
    of a call that has just ended finish a moment later, and must not count as the baseline."""
    deadline = time.monotonic() + timeout_s
    last, held = sampler.take(), 0
    while held < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
        now = sampler.take()
        held = held + 1 if (now["threads"], now["fds"]) == (last["threads"], last["fds"]) else 0
        last = now
    return last


def settle(sampler: "Sampler", baseline: dict, timeout_s: float = 15) -> dict:
    """The server's resources once ended calls' threads have finished (or ``timeout_s`` passed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        end = sampler.take()
        if (end["threads"] <= baseline["threads"] and end["fds"] <= baseline["fds"]) or time.monotonic() > deadline:
            return end
        time.sleep(0.5)


def run(duration_s: float, calls_per_s: float, max_calls: int, work: Path, call_port: int = 0) -> dict:
    if not WAV.exists():
        raise SystemExit(f"{WAV} missing: the shared corpus is not checked out beside this repository")
    port = free_port()
    cfg = work / "voicebox.toml"
    # One spare call slot: a call the caller has left may still be ending on the server for a
    # moment, and must not turn the next one away. CPU admission off: every placed call has to
    # complete, whatever else the machine is doing.
    cfg.write_text(f"[sip]\nrtp_port = 48000\nmax_calls = {max_calls + 1}\nadmit_cpu_max_fraction = 1.0\n"
                   "[metrics]\nenabled = false\n")
    log = work / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "voicebox", "serve", "--config", str(cfg), "--sip-host", HOST, "--sip-port", str(port),
         "--data-dir", str(work / "data")],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    # call_port: place the calls somewhere else (a dead port shows the soak failing when calls fail).
    uri = f"sip:agent@{HOST}:{call_port or port}"
    try:
        deadline = time.monotonic() + 180
        while (sip_options(HOST, port, 0.5) or "").split(" ")[1:2] != ["200"]:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"voicebox serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        sampler = Sampler(server.pid, port)
        warmup = Callers(uri, work / "warmup")
        warmup.work.mkdir()
        place_calls(warmup, 1, 1.0, 1)  # loads what the first call loads
        wait_idle(port, 30)
        sampler.t0 = time.monotonic()
        baseline = steady(sampler)
        sampler.start()
        calls = max(1, int(duration_s * calls_per_s))
        callers = Callers(uri, work)
        t0 = time.monotonic()
        place_calls(callers, calls, calls_per_s, max_calls)
        elapsed = time.monotonic() - t0
        idle = wait_idle(port, 60)
        sampler.stop()
        end = settle(sampler, baseline)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            exit_code = server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            exit_code = server.wait(5)
    text = log.read_text(errors="replace")
    outcomes = sorted(callers.results, key=lambda o: o["call"])
    rejected = len(re.findall(r"call rejected status=", text))
    errors = sorted(set(re.findall(r"error ([a-z_]+\.[a-z_]+)", text)))
    series = sampler.samples
    rss = [s["rss_mb"] for s in series]
    half = series[len(series) // 2:]
    slope = _slope([s["t_s"] for s in half], [s["rss_mb"] for s in half]) * 3600 if len(half) > 2 else 0.0
    r = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "duration_s": round(elapsed, 1),
        "calls_per_s": calls_per_s, "max_calls": max_calls,
        "warmup_completed": all(o["completed"] for o in warmup.results),
        "calls_planned": calls, "calls_placed": callers.placed,
        "calls_completed": sum(o["completed"] for o in outcomes),
        "calls_heard_greeting": sum(o["heard_greeting"] for o in outcomes),
        "calls_heard_answer": sum(o["heard_answer"] for o in outcomes),
        "calls_rejected_by_admission": rejected,
        "server_calls_started": text.count("call start"), "server_calls_ended": text.count("call end"),
        "server_error_codes": errors, "server_tracebacks": text.count("Traceback"),
        "idle_at_end": idle, "server_exit_code": exit_code,
        "baseline": baseline, "end": end,
        "rss_growth_mb": round(end["rss_mb"] - baseline["rss_mb"], 1),
        "rss_max_mb": max(rss) if rss else None,
        "rss_slope_second_half_mb_per_h": round(slope, 1),
        "fd_growth": end["fds"] - baseline["fds"], "fds_max": max((s["fds"] for s in series), default=None),
        "thread_growth": end["threads"] - baseline["threads"],
        "threads_max": max((s["threads"] for s in series), default=None),
        "max_active_calls": max((s["calls"] or 0 for s in series), default=0),
        "cpu_mean": round(statistics.mean([s["cpu"] for s in series if s["cpu"] is not None] or [0]), 2),
        "failed_calls": [o for o in outcomes if not (o["completed"] and o["heard_greeting"] and o["heard_answer"])],
        "samples": series,
    }
    r["problems"] = problems(r)
    return r


def problems(r: dict) -> list[str]:
    """Why the soak failed; empty when it passed. Nothing counts as a pass by default: an empty
    run (no call placed, none completed) fails like a broken one."""
    out = []
    placed = r["calls_placed"]
    if placed == 0 or placed != r["calls_planned"]:
        out.append(f"{placed} calls placed of {r['calls_planned']} planned")
    for key, what in (("calls_completed", "completed"), ("calls_heard_greeting", "heard the greeting"),
                      ("calls_heard_answer", "heard an answer")):
        if r[key] != placed or placed == 0:
            out.append(f"{r[key]} of {placed} calls {what}")
    if not r["warmup_completed"]:
        out.append("the warm-up call did not complete")
    if r["calls_rejected_by_admission"]:
        out.append(f"{r['calls_rejected_by_admission']} calls refused by admission")
    if r["server_calls_started"] != placed + 1 or r["server_calls_ended"] != r["server_calls_started"]:
        out.append(f"server saw {r['server_calls_started']} calls start and {r['server_calls_ended']} end "
                   f"for {placed} placed and one warm-up")
    if not r["idle_at_end"]:
        out.append("server still had calls up at the end")
    if r["server_tracebacks"] or r["server_exit_code"] != 0:
        out.append(f"server: {r['server_tracebacks']} tracebacks, exit code {r['server_exit_code']}")
    if r["thread_growth"] > 0:
        out.append(f"threads {r['baseline']['threads']} -> {r['end']['threads']}")
    if r["fd_growth"] > 0:
        out.append(f"open FDs {r['baseline']['fds']} -> {r['end']['fds']}")
    if r["rss_growth_mb"] > MAX_RSS_GROWTH_MB:
        out.append(f"RSS grew {r['rss_growth_mb']} MB (more than {MAX_RSS_GROWTH_MB:.0f})")
    return out


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def write_md(r: dict, path: Path, png: Path | None) -> None:
    b, e = r["baseline"], r["end"]
    lines = [
        "# Soak: many short calls with audio", "",
        f"Command: `{r['command']}` (2 cores shared, loopback, callers: `benchmarks.harness.caller`, pjsua2).", "",
        f"Each call: INVITE (PCMA); wait for the greeting, say one sentence ({WAV.name}), wait for the answer, "
        f"hang up. {r['calls_per_s']} calls/s, at most {r['max_calls']} at once. One warm-up call before the "
        "baseline.", "",
        f"**{'PASSED' if not r['problems'] else 'FAILED: ' + '; '.join(r['problems'])}**", "",
        "| | |", "|---|---|",
        f"| duration | {r['duration_s']} s |",
        f"| calls planned / placed / completed | {r['calls_planned']} / {r['calls_placed']} / {r['calls_completed']} |",
        f"| calls that heard the greeting / an answer | {r['calls_heard_greeting']} / {r['calls_heard_answer']} |",
        f"| refused by admission (503) | {r['calls_rejected_by_admission']} |",
        f"| calls started / ended (server log) | {r['server_calls_started']} / {r['server_calls_ended']} |",
        f"| most calls at once | {r['max_active_calls']} |",
        f"| server error codes | {', '.join(r['server_error_codes']) or 'none'} |",
        f"| tracebacks / exit code | {r['server_tracebacks']} / {r['server_exit_code']} |",
        f"| RSS baseline → end (max) | {b['rss_mb']} → {e['rss_mb']} MB ({r['rss_max_mb']} MB) |",
        f"| RSS slope, second half | {r['rss_slope_second_half_mb_per_h']} MB/h |",
        f"| open FDs baseline → end (max) | {b['fds']} → {e['fds']} ({r['fds_max']}) |",
        f"| threads baseline → end (max) | {b['threads']} → {e['threads']} ({r['threads_max']}) |",
        f"| mean process CPU (fraction of cores) | {r['cpu_mean']} |",
        "",
    ]
    if png is not None:
        lines += [f"![RSS, FDs, threads and calls over time]({png.name})", ""]
    path.write_text("\n".join(lines))


def write_png(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = r["samples"]
    t = [x["t_s"] / 60 for x in s]
    fig, axes = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    for ax, key, label in zip(axes, ("rss_mb", "fds", "threads", "calls"),
                              ("RSS (MB)", "open FDs", "threads", "active calls")):
        ax.plot(t, [x[key] if x[key] is not None else float("nan") for x in s], lw=1)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, max(x["rss_mb"] for x in s) * 1.2)
    axes[-1].set_xlabel("minutes")
    fig.suptitle(f"voicebox soak: {r['calls_placed']} calls, {r['calls_completed']} completed")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration-s", type=float, default=600)
    ap.add_argument("--calls-per-s", type=float, default=0.25)
    ap.add_argument("--max-calls", type=int, default=4)
    ap.add_argument("--out", type=Path, required=True, help="path prefix: writes OUT.json, OUT.md, OUT.png")
    ap.add_argument("--no-png", action="store_true")
    ap.add_argument("--call-port", type=int, default=0,
                    help="place the calls at this port instead of the server's (to see the soak fail when calls do)")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voicebox-soak-") as tmp:
        r = run(args.duration_s, args.calls_per_s, args.max_calls, Path(tmp), args.call_port)
    png = None if args.no_png else args.out.with_suffix(".png")
    if png is not None:
        write_png(r, png)
    args.out.with_suffix(".json").write_text(json.dumps(r, indent=1) + "\n")
    write_md(r, args.out.with_suffix(".md"), png)
    print(args.out.with_suffix(".md").read_text())
    return 1 if r["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
