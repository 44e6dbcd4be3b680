"""Soak: many short calls with audio (sipp) against a fresh `voicebox serve`, memory sampled.

    python benchmarks/soak.py --duration-s 600 --out benchmarks/results/soak     # `make soak`
    python benchmarks/soak.py --duration-s 60 --out /tmp/soak                      # the e2e test

A warm-up call first (it loads what the first call loads for good), then sipp places calls at a
fixed rate for the duration: each plays Debian sip-tester's 7 s G.711 A-law recording and hangs
up after --call-ms. RSS (with its model workers'), open FDs and threads of the server are read
from /proc every second; active calls and CPU from the server's own OPTIONS load hint. Writes
OUT.json, OUT.md, OUT.png.
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

from voicebox.bench.processes import process_tree  # noqa: E402
from voicebox.telephony.probe import free_port, sip_options  # noqa: E402

HOST = "127.0.0.1"
SCENARIO = ROOT / "sip" / "scenarios" / "soak_call.xml"
PCAP = Path("/usr/share/sip-tester/g711a.pcap")


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


def sipp(port: int, scenario: Path, calls: int, calls_per_s: float, limit: int, timeout_s: float) -> tuple[int, str]:
    period_ms = max(1, round(1000 / calls_per_s))
    cmd = ["sipp", f"{HOST}:{port}", "-sf", str(scenario), "-i", HOST, "-p", str(free_port()),
           "-mp", str(free_port()), "-r", "1", "-rp", str(period_ms), "-m", str(calls), "-l", str(limit),
           "-nostdin", "-timeout", f"{int(timeout_s)}s", "-timeout_error"]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout_s + 30)
    return proc.returncode, proc.stdout + proc.stderr


def sipp_counts(out: str) -> dict:
    def cumulative(name: str) -> int:
        m = re.findall(rf"{name}\s*\|\s*\d+\s*\|\s*(\d+)", out)
        return int(m[-1]) if m else 0
    return {"created": cumulative("Outgoing calls created"), "successful": cumulative("Successful call"),
            "failed": cumulative("Failed call")}


def wait_idle(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        hint = load_hint(port)
        if hint is not None and hint[0] == 0:
            return True
        time.sleep(0.5)
    return False


def run(duration_s: float, calls_per_s: float, call_ms: int, max_calls: int, work: Path) -> dict:
    if not PCAP.exists():
        raise SystemExit(f"{PCAP} missing: apt-get install sip-tester")
    scenario = work / "soak_call.xml"
    scenario.write_text(SCENARIO.read_text().replace('milliseconds="8000"', f'milliseconds="{call_ms}"'))
    port = free_port()
    cfg = work / "voicebox.toml"
    cfg.write_text(f"[sip]\nrtp_port = 48000\nmax_calls = {max_calls}\n[metrics]\nenabled = false\n")
    log = work / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "voicebox", "serve", "--config", str(cfg), "--sip-host", HOST, "--sip-port", str(port),
         "--data-dir", str(work / "data")],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        deadline = time.monotonic() + 180
        while (sip_options(HOST, port, 0.5) or "").split(" ")[1:2] != ["200"]:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"voicebox serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        sampler = Sampler(server.pid, port)
        warm_rc, _ = sipp(port, scenario, 1, 1.0, 1, call_ms / 1000 + 60)  # loads what the first call loads
        wait_idle(port, 30)
        time.sleep(2)
        sampler.t0 = time.monotonic()
        baseline = sampler.take()
        sampler.start()
        calls = max(1, int(duration_s * calls_per_s))
        t0 = time.monotonic()
        rc, out = sipp(port, scenario, calls, calls_per_s, max_calls, duration_s + call_ms / 1000 + 120)
        elapsed = time.monotonic() - t0
        idle = wait_idle(port, 60)
        time.sleep(3)  # ended calls' pipeline threads finish
        sampler.stop()
        end = sampler.take()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            exit_code = server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            exit_code = server.wait(5)
    text = log.read_text(errors="replace")
    counts = sipp_counts(out)
    rejected = len(re.findall(r"call rejected status=", text))
    errors = sorted(set(re.findall(r"error ([a-z_]+\.[a-z_]+)", text)))
    series = sampler.samples
    rss = [s["rss_mb"] for s in series]
    half = series[len(series) // 2:]
    slope = _slope([s["t_s"] for s in half], [s["rss_mb"] for s in half]) * 3600 if len(half) > 2 else 0.0
    return {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "duration_s": round(elapsed, 1),
        "calls_per_s": calls_per_s, "call_ms": call_ms, "max_calls": max_calls,
        "warmup_sipp_rc": warm_rc, "sipp_rc": rc,
        "calls_placed": counts["created"], "calls_completed": counts["successful"], "calls_failed": counts["failed"],
        "calls_rejected_by_admission": rejected,
        "admitted_calls_failed": max(0, counts["failed"] - rejected),
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
        "samples": series,
    }


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def write_md(r: dict, path: Path, png: Path | None) -> None:
    b, e = r["baseline"], r["end"]
    lines = [
        "# Soak: many short calls with audio", "",
        f"Command: `{r['command']}` (2 cores shared, loopback, sipp from Debian sip-tester).", "",
        f"Each call: INVITE (PCMA), sip-tester's 7 s g711a.pcap played as RTP, BYE after {r['call_ms']} ms; "
        f"{r['calls_per_s']} calls/s, at most {r['max_calls']} at once. One warm-up call before the baseline.", "",
        "| | |", "|---|---|",
        f"| duration | {r['duration_s']} s |",
        f"| calls placed / completed / failed | {r['calls_placed']} / {r['calls_completed']} / {r['calls_failed']} |",
        f"| refused by admission (503) | {r['calls_rejected_by_admission']} |",
        f"| **admitted calls failed** | **{r['admitted_calls_failed']}** |",
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
    fig.suptitle(f"voicebox soak: {r['calls_placed']} calls, {r['admitted_calls_failed']} admitted failed")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration-s", type=float, default=600)
    ap.add_argument("--calls-per-s", type=float, default=0.25)
    ap.add_argument("--call-ms", type=int, default=8000)
    ap.add_argument("--max-calls", type=int, default=4)
    ap.add_argument("--out", type=Path, required=True, help="path prefix: writes OUT.json, OUT.md, OUT.png")
    ap.add_argument("--no-png", action="store_true")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voicebox-soak-") as tmp:
        r = run(args.duration_s, args.calls_per_s, args.call_ms, args.max_calls, Path(tmp))
    png = None if args.no_png else args.out.with_suffix(".png")
    if png is not None:
        write_png(r, png)
    args.out.with_suffix(".json").write_text(json.dumps(r, indent=1) + "\n")
    write_md(r, args.out.with_suffix(".md"), png)
    print(args.out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
