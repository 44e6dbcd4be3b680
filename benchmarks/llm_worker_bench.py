"""What running the language model in a worker process costs: start, restart, and token latency.

The default agent's system prompt and a short caller question; the same replies from the
in-process ``LanguageModel`` and from a ``WorkerModel``, interleaved so both see the same load.
A restart is timed after a "die" fault (``testing.llm_worker_fault``), and hang detection after a
"hang" fault with a 2 s hang timeout.

Run from the repository root:

    .venv/bin/python benchmarks/llm_worker_bench.py

Writes benchmarks/results/llm_worker.md and benchmarks/results/llm_worker.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicebox.agent import load_agent  # noqa: E402
from voicebox.config import load_config  # noqa: E402
from voicebox.model_store import resolve  # noqa: E402
from voicebox.thinking.dialog import system_prompt  # noqa: E402
from voicebox.thinking.language_model import LanguageModel  # noqa: E402
from voicebox.thinking.llm_worker import WorkerFailed, WorkerModel  # noqa: E402

QUESTION = "Can you tell me about all the services you offer?"
# A different question each reply, as on a call: only the system prompt's prefix is cached.
QUESTIONS = [
    QUESTION, "Do you do teeth whitening?", "What should I bring to my first visit?",
    "Is parking available near the clinic?", "Can children be seen at your practice?",
    "How long does a cleaning take?", "Do you offer emergency appointments?",
    "What languages do your dentists speak?", "Can I get a checkup and a cleaning on the same day?",
    "Do you treat patients who are nervous about the dentist?", "What happens at a first appointment?",
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed_reply(model, messages, max_tokens: int, temperature: float) -> dict:
    t0 = time.perf_counter()
    stamps = []
    for _ in model.stream(messages, max_tokens, temperature):
        stamps.append(time.perf_counter())
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {"first_ms": (stamps[0] - t0) * 1000, "total_ms": (stamps[-1] - t0) * 1000,
            "gap_ms": statistics.mean(gaps) * 1000 if gaps else 0.0, "pieces": len(stamps)}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def summary(rows: list[dict], key: str) -> dict:
    xs = [r[key] for r in rows]
    return {"p50": round(pct(xs, 0.5), 1), "p95": round(pct(xs, 0.95), 1), "mean": round(statistics.mean(xs), 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--replies", type=int, default=10, help="replies per mode")
    p.add_argument("--restarts", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args()
    cfg = load_config(None, {})
    agent = load_agent(cfg.agent)
    m = cfg.models
    gguf = resolve(m.llm, "llm", ROOT / cfg.data_dir)
    warm = [{"role": "system", "content": system_prompt(agent)}, {"role": "user", "content": "Hi"}]
    ask = [warm[0], {"role": "user", "content": QUESTION}]

    starts = []
    for _ in range(3):
        w = WorkerModel(gguf, m.llm_threads, m.llm_context_tokens, warm_messages=warm)
        starts.append({"start_ms": w.start_s * 1000, "warm_up_ms": w.warm_up_s * 1000})
        w.close()

    local = LanguageModel(gguf, m.llm_threads, m.llm_context_tokens)
    local.warm_up(warm)
    worker = WorkerModel(gguf, m.llm_threads, m.llm_context_tokens, warm_messages=warm,
                         hang_timeout_ms=60000)
    rss = {"parent_mb_with_in_process_model": round(rss_mb(os.getpid()), 1),
           "worker_child_mb": round(rss_mb(worker.pid), 1)}
    rows = {"in_process": [], "worker": []}
    for i in range(args.replies + 1):
        for name, model in (("in_process", local), ("worker", worker)):
            messages = [warm[0], {"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
            r = timed_reply(model, messages, m.llm_max_reply_tokens, m.llm_temperature)
            if i:  # the first of each is a second warm-up
                rows[name].append(r)
    worker.close()

    restarts = []
    for _ in range(args.restarts):
        w = WorkerModel(gguf, m.llm_threads, m.llm_context_tokens, warm_messages=warm, fault="die",
                        hang_timeout_ms=60000)
        t0 = time.perf_counter()
        try:
            list(w.stream(ask, 8, 0.0))
        except WorkerFailed:
            pass
        failed = time.perf_counter()
        list(w.stream(ask, 1, 0.0))  # waits for the restart
        restarts.append({"detected_ms": (failed - t0) * 1000,
                         "restart_to_first_token_ms": (time.perf_counter() - failed) * 1000})
        w.close()

    w = WorkerModel(gguf, m.llm_threads, m.llm_context_tokens, warm_messages=warm, fault="hang", hang_timeout_ms=2000)
    t0 = time.perf_counter()
    try:
        list(w.stream(ask, 8, 0.0))
    except WorkerFailed:
        pass
    hang_ms = (time.perf_counter() - t0) * 1000
    w.close()

    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": ".venv/bin/python benchmarks/llm_worker_bench.py",
        "machine": {"nproc": os.cpu_count(), "arch": platform.machine(), "python": platform.python_version(),
                    "loadavg_at_end": os.getloadavg()},
        "model": m.llm, "threads": m.llm_threads, "max_tokens": m.llm_max_reply_tokens,
        "starts": starts, "restarts": restarts, "hang_detected_ms_with_2000_ms_timeout": round(hang_ms),
        "rss": rss,
        "replies": {name: {k: summary(r, k) for k in ("first_ms", "gap_ms", "total_ms")} for name, r in rows.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "llm_worker.json").write_text(json.dumps(result, indent=1) + "\n")
    rep = result["replies"]
    lines = [
        "# The language model in a worker process",
        "",
        f"- Date: {result['date']}",
        f"- Command: `{result['command']}`",
        f"- Machine: `nproc` = {os.cpu_count()}, {platform.machine()}, Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.2f} (a shared box: other work ran meanwhile)",
        f"- Model: {m.llm}, {m.llm_threads} threads, the default agent's system prompt, "
        f"{args.replies} different short questions, up to {m.llm_max_reply_tokens} tokens at temperature "
        f"{m.llm_temperature}; first piece includes the question's prefill (the system prompt is cached)",
        "",
        "## Replies (interleaved, ms)",
        "",
        "| mode | first piece p50 | p95 | gap between pieces p50 | p95 | whole reply p50 | p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("in_process", "worker"):
        r = rep[name]
        lines.append(f"| {name} | {r['first_ms']['p50']} | {r['first_ms']['p95']} | {r['gap_ms']['p50']} | "
                     f"{r['gap_ms']['p95']} | {r['total_ms']['p50']} | {r['total_ms']['p95']} |")
    lines += [
        "",
        "## Start, restart, hang",
        "",
        "- Worker start (spawn to ready, load + prompt warm-up): "
        + ", ".join(f"{s['start_ms']:.0f} ms (warm-up {s['warm_up_ms']:.0f})" for s in starts),
        "- After a \"die\" fault: failure seen in "
        + ", ".join(f"{r['detected_ms']:.0f}" for r in restarts)
        + " ms; restarted and first token of the next request in "
        + ", ".join(f"{r['restart_to_first_token_ms']:.0f}" for r in restarts) + " ms",
        f"- A \"hang\" fault with a 2000 ms hang timeout: failure raised after {hang_ms:.0f} ms (first token included)",
        f"- Memory: worker child {rss['worker_child_mb']} MB RSS; this process, holding the in-process "
        f"model too, {rss['parent_mb_with_in_process_model']} MB",
        "",
    ]
    (args.out / "llm_worker.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
