"""`python -m benchmarks.harness`: corpus scenarios through the agent (in-process and/or over SIP),
latency and quality reported in OUT.json, OUT.md and OUT-*.png. Run from the repository root."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def parser() -> argparse.ArgumentParser:
    b = argparse.ArgumentParser(prog="python -m benchmarks.harness",
                                description="run corpus scenarios through the agent (in-process and/or over SIP); "
                                "report latency and quality")
    b.add_argument("--scenarios", default=str(ROOT.parent / "shared" / "corpus" / "scenarios.json"))
    b.add_argument("--only", default="", help="comma-separated scenario ids (default: all)")
    b.add_argument("--repeat", type=int, default=3, help="runs of the whole scenario file")
    b.add_argument("--mode", default="both", choices=["inprocess", "sip", "both"])
    b.add_argument("--baseline", default="", choices=["", "sequential"], help="also run the naive pipeline (in-process)")
    b.add_argument("--concurrency", default="1", help="simultaneous-call levels, e.g. 1,2,4,8")
    b.add_argument("--codec", default="PCMU", choices=["PCMU", "PCMA", "G722"], help="SIP and simulated line codec")
    b.add_argument("--loss-pct", type=float, default=0.0, help="simulated line: packet loss (in-process)")
    b.add_argument("--jitter-ms", type=float, default=0.0, help="simulated line: network jitter (in-process)")
    b.add_argument("--jitter-buffer-ms", type=int, default=60, help="simulated line: jitter buffer (in-process)")
    b.add_argument("--config", help="voicebox TOML for the in-process agent")
    b.add_argument("--agent", default="", help="agent TOML (or built-in name) to bench instead of the configured one")
    b.add_argument("--server-config", default="", help="extra TOML lines for the SIP run's voicebox serve")
    b.add_argument("--rtp-ports", default="", help="SIP run: the UDP port range for RTP, e.g. 58000-58999 "
                   "(the server gets the lower half, the callers the upper)")
    b.add_argument("--caller-jitter-buffer-ms", type=int, default=-1,
                   help="the SIP caller's fixed jitter buffer (-1: pjmedia's adaptive default)")
    b.add_argument("--agent-jitter-buffer-ms", type=int, default=-1,
                   help="the SIP run's voicebox serve media.jitter_buffer_ms (-1: pjmedia's adaptive default)")
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--out", default="benchmarks/results/bench", help="writes OUT.json, OUT.md and OUT-*.png")
    return b


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.command = " ".join(["python -m benchmarks.harness", *argv])  # recorded in the report
    from benchmarks.harness.run import main as bench_main
    from voicebox.config import ConfigError

    try:
        return bench_main(args)
    except ConfigError as e:
        print(f"python -m benchmarks.harness: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
