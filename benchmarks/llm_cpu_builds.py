"""Which llama.cpp build to ship: first-token time and tokens/s of each candidate, on this CPU.

A candidate is a folder of llama-cpp-python shared libraries (``llama_cpp/lib`` from a wheel:
the portable build with its CPU variants, a fixed-baseline build, a native build) and, for the
portable one, which CPU variant to run. Each is measured in a fresh process
(``LLAMA_CPP_LIB_PATH`` points llama-cpp-python at the folder; the Python side is the same
version for all), with the default agent's system prompt and a different caller question per
reply, as on a call (only the system prompt's prefix is cached between replies). Candidates are
measured round-robin, ``--repeat`` rounds, so that all see the same load on the machine.

    unzip -q PORTABLE.whl 'llama_cpp/lib/*' 'bin/*' -d /tmp/builds/portable   # from the wheel cache
    unzip -q NATIVE.whl 'llama_cpp/lib/*' -d /tmp/builds/native                # LLAMA_BUILD=native
    .venv/bin/python benchmarks/llm_cpu_builds.py \
        --candidate portable=/tmp/builds/portable/lib \
        --candidate portable:haswell=/tmp/builds/portable/lib \
        --candidate native=/tmp/builds/native/lib --repeat 5

Writes benchmarks/results/llm-cpu-builds.md and .json (``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "Can you tell me about all the services you offer?", "Do you do teeth whitening?",
    "What should I bring to my first visit?", "Is parking available near the clinic?",
    "Can children be seen at your practice?", "How long does a cleaning take?",
]
MAX_TOKENS = 48


def measure(gguf: Path, variant: str, replies: int, threads: int) -> dict:
    """In this process: load the model, then time ``replies`` replies (the child's side)."""
    sys.path.insert(0, str(ROOT))
    from voicebox.agent import load_agent
    from voicebox.config import load_config
    from voicebox.thinking.dialog import system_prompt
    from voicebox.thinking.language_model import LanguageModel

    cfg = load_config(None, {})
    system = system_prompt(load_agent(cfg.agent))
    t0 = time.perf_counter()
    lm = LanguageModel(gguf, threads, cfg.models.llm_context_tokens, cpu_exclude=["sapphirerapids"],
                       cpu_variant=variant)
    load_ms = (time.perf_counter() - t0) * 1000
    lm.warm_up([{"role": "system", "content": system}, {"role": "user", "content": "Hi"}])
    first, rate = [], []
    for i in range(replies):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
        t0 = time.perf_counter()
        stamps = [time.perf_counter() for _ in lm.stream(messages, MAX_TOKENS, 0.0)]
        n = lm.tokens_so_far()
        first.append((stamps[0] - t0) * 1000)
        if n > 1 and stamps[-1] > stamps[0]:
            rate.append((n - 1) / (stamps[-1] - stamps[0]))
    return {"variant": lm.backend.variant, "load_ms": load_ms, "first_token_ms": first, "tokens_per_s": rate}


def run_candidate(label: str, lib: Path, variant: str, gguf: Path, replies: int, threads: int) -> dict:
    env = dict(os.environ, LLAMA_CPP_LIB_PATH=str(lib))
    cmd = [sys.executable, __file__, "--child", str(gguf), "--variant", variant, "--replies", str(replies),
           "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    if out.returncode != 0:
        return {"label": label, "error": f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}"}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["label"] = label
    return result


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summarize(rounds: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for label, results in rounds.items():
        good = [r for r in results if "error" not in r]
        if not good:
            rows.append({"label": label, "error": results[0]["error"]})
            continue
        first = [v for r in good for v in r["first_token_ms"]]
        rate = [v for r in good for v in r["tokens_per_s"]]
        rows.append({
            "label": label, "variant": good[0]["variant"], "replies": len(first),
            "load_ms_median": statistics.median(r["load_ms"] for r in good),
            "first_token_ms_median": statistics.median(first), "first_token_ms_p95": p95(first),
            "tokens_per_s_median": statistics.median(rate), "tokens_per_s_p5": sorted(rate)[len(rate) // 20],
        })
    return rows


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def write(rows: list[dict], args: argparse.Namespace, out: Path) -> None:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    meta = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "git": rev, "cpu": cpu_model(),
            "cores": os.cpu_count(), "date": dt.date.today().isoformat(), "gguf": Path(args.gguf).name,
            "repeat": args.repeat, "replies_per_round": args.replies, "max_tokens": MAX_TOKENS}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "# llama.cpp builds on this CPU", "",
        f"`{meta['command']}` at `{rev}`, {meta['date']}: {meta['cpu']}, {meta['cores']} cores.",
        f"Model `{meta['gguf']}`; {args.repeat} rounds of {args.replies} replies each (a new process per "
        f"candidate and round, candidates round-robin), {MAX_TOKENS} tokens at most, the default agent's "
        "system prompt cached, a different question per reply.", "",
        "| candidate | CPU variant | load ms | first token ms p50 | p95 | tokens/s p50 | p5 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['label']} | failed: {r['error']} | | | | | |")
            continue
        lines.append(f"| {r['label']} | {r['variant']} | {r['load_ms_median']:.0f} | {r['first_token_ms_median']:.0f} "
                     f"| {r['first_token_ms_p95']:.0f} | {r['tokens_per_s_median']:.0f} | {r['tokens_per_s_p5']:.0f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidate", action="append", default=[],
                   help="LABEL[:VARIANT]=LIB_DIR (VARIANT: a CPU variant of a portable build; default auto)")
    p.add_argument("--gguf", default="", help="model file (default: the configured small model)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--replies", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "llm-cpu-builds"))
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    p.add_argument("--variant", default="auto", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child), args.variant, args.replies, args.threads)))
        return 0
    if not args.gguf:
        sys.path.insert(0, str(ROOT))
        from voicebox.config import load_config
        from voicebox.model_store import resolve

        cfg = load_config(None, {})
        args.gguf = str(resolve(cfg.models.llm, "llm", ROOT / cfg.data_dir))
    candidates = []
    for spec in args.candidate:
        name, _, lib = spec.partition("=")
        label, _, variant = name.partition(":")
        candidates.append((name, Path(lib), variant or "auto"))
    rounds: dict[str, list[dict]] = {name: [] for name, _, _ in candidates}
    for i in range(args.repeat):
        for name, lib, variant in candidates:
            r = run_candidate(name, lib, variant, Path(args.gguf), args.replies, args.threads)
            rounds[name].append(r)
            print(f"round {i + 1}/{args.repeat} {name}: "
                  + (r["error"] if "error" in r else
                     f"{r['variant']} first {statistics.median(r['first_token_ms']):.0f} ms, "
                     f"{statistics.median(r['tokens_per_s']):.0f} tok/s"), flush=True)
    rows = summarize(rounds)
    write(rows, args, Path(args.out))
    print(Path(args.out).with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
