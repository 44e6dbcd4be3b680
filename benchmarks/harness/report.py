"""The benchmark's outputs: the Markdown summary and the PNG plots (from the JSON report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

AGREE_MS = 60  # issue #6: the headline v2v and an independent measurement of it agree this closely


def _f(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _p(run: dict[str, Any], stage: str, q: str = "p50") -> float | None:
    return run["turns_summary"]["stages"][stage][q]


def _of(turns_summary: dict[str, Any]) -> str:
    """The judged-turn counts behind a task rate, " (26/27)"; older reports have none."""
    judged = turns_summary.get("task_judged")
    return f" ({turns_summary['task_passed']}/{judged})" if judged else ""


def to_markdown(report: dict[str, Any], png_names: dict[str, str] | None = None) -> str:
    m = report["meta"]
    lines = [
        "# voicebox benchmark",
        "",
        f"- Command: `{m['command']}`",
        f"- Git revision {m['git_revision']}, {m['cores']} cores ({m['machine']}), Python {m['python']}, "
        f"started {m['started']}, took {m['duration_s']} s, peak RSS {_f(m.get('peak_rss_mb'))} MB (bench process, in-process runs) / "
        f"{_f(m.get('server_peak_rss_mb'))} MB (voicebox serve, SIP runs)",
        f"- Scenarios `{m['scenarios']}` ({m['scenario_count']}), {m['repeat']} run(s); channel: {m['channel']}",
        *([f"- Agent: `{m['agent']}`"] if m.get("agent") else []),
        "- Voice-to-voice (v2v): the caller's last voiced frame -> the first agent audio the caller hears. "
        "The headline figure is \"v2v caller\": measured live at the caller (the simulated one in-process; over SIP "
        "the pjsua2 caller, on its conference-bridge clock: the tick that sent the turn's first frame plus the "
        "WAV's last voiced frame -> the first voiced frame of the agent's next talk spurt). \"agent\" is the "
        "agent's own call record: over SIP it cannot see the line, the jitter buffers or the caller's playout.",
        f"- Agreement criterion: the headline v2v of a turn agrees within {AGREE_MS} ms with an independent "
        "measurement of the same call at the caller, \"v2v recording\": the same span found in the caller's "
        "two-way recording alone (what it sent and what it heard, on its one clock, no live timestamps; "
        "benchmarks/harness/recording_v2v.py; over SIP the pjsua2 caller's --stereo-wav). The agent-vs-caller "
        "rows below are not the criterion: over SIP they show the transport path the agent cannot see.",
        "",
        "## Runs",
        "",
        "| run | turns | v2v caller p50 | p95 | v2v agent p50 | p95 | endpoint p50 | transcript p50 | first token p50 "
        "| first audio p50 | barge stop p50 | false barge-ins | WER | intent | task | fillers | budget misses "
        "| CPU s / call s | underruns | max frame gap | rejected |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in report["runs"]:
        t, c = run["turns_summary"], run["calls_summary"]
        lines.append(
            f"| {run['name']} | {t['turns']} | {_f(_p(run, 'voice_to_voice_ms (caller side)'))} "
            f"| {_f(_p(run, 'voice_to_voice_ms (caller side)', 'p95'))} | {_f(_p(run, 'voice_to_voice_ms'))} "
            f"| {_f(_p(run, 'voice_to_voice_ms', 'p95'))} | {_f(_p(run, 'endpoint_ms'))} | {_f(_p(run, 'transcript_ms'))} "
            f"| {_f(_p(run, 'first_token_ms'))} | {_f(_p(run, 'first_audio_ms'))} "
            f"| {_f(_p(run, 'barge_stop_ms (caller side)'))} | {c['false_barge_ins']} | {_f(t['mean_wer'], 2)} "
            f"| {_pct(t['intent_accuracy'])} | {_pct(t['task_success'])}{_of(t)} | {t['fillers']} | {t['budget_misses']} "
            f"| {_f(c['cpu_s_per_call_s'], 2)} | {c['underruns']} | {_f(c.get('max_frame_gap_ms'))} | {c['rejected']} |"
        )
    lines += ["", f"## Agreement: the headline v2v against an independent measurement (criterion: within {AGREE_MS} ms)",
              "", "| run | headline compared against | turns | p50 abs diff | p95 | max | all within "
              f"{AGREE_MS} ms |", "|---|---|---:|---:|---:|---:|---|"]
    for run in report["runs"]:
        d, against = run["turns_summary"].get("caller_vs_recording_v2v_abs_diff_ms") or {"n": 0}, "the caller's recording"
        if not d["n"]:  # a report from before the recording check: the agent's record is all there is
            d, against = run["turns_summary"].get("agent_vs_caller_v2v_abs_diff_ms") or {"n": 0}, "the agent's call record"
        if d["n"]:
            ok = "yes" if d["max"] <= AGREE_MS else "no"
            lines.append(f"| {run['name']} | {against} | {d['n']} | {_f(d['p50'])} | {_f(d['p95'])} | {_f(d['max'])} | {ok} |")
    sip_runs = [r for r in report["runs"] if r["calls_summary"].get("max_frame_gap_ms") is not None]
    if sip_runs:
        lines += ["", "## Media thread (SIP): the conference bridge asks each call for a frame every 20 ms", "",
                  "| run | calls at once | calls | call-seconds | longest gap between two frame requests (ms) "
                  "| calls with a gap > 40 ms | requests > 10 ms late (gap > 30 ms) | underruns |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in sip_runs:
            c = r["calls_summary"]
            lines.append(f"| {r['name']} | {r['concurrency']} | {c['calls']} | {_f(c['call_seconds'])} "
                         f"| {_f(c['max_frame_gap_ms'])} | {c['frame_gaps_over_40ms']} | {c.get('late_frame_requests', '-')} "
                         f"| {c['underruns']} |")
    if report.get("speedup"):
        lines += ["", "## Against the sequential baseline (same models, same run, same machine)", "",
                  "| run | v2v caller p50: baseline / voicebox | p95: baseline / voicebox |", "|---|---:|---:|"]
        for s in report["speedup"]:
            lines.append(f"| {s['run']} | {_f(s['p50_ratio'], 2)}x | {_f(s['p95_ratio'], 2)}x |")
    if report.get("sweep"):
        lines += ["", "## Concurrency", "", "| mode | calls at once | calls | v2v caller p95 | v2v agent p95 "
                  "| underruns | max frame gap ms | calls with a gap > 40 ms | rejected | CPU s / call s |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s in report["sweep"]:
            lines.append(f"| {s['mode']} | {s['concurrency']} | {s['calls']} | {_f(s['v2v_caller_p95'])} "
                         f"| {_f(s['v2v_agent_p95'])} | {s['underruns']} | {_f(s.get('max_frame_gap_ms'))} "
                         f"| {_f(s.get('frame_gaps_over_40ms'))} | {s['rejected']} | {_f(s['cpu_s_per_call_s'], 2)} |")
    lines += ["", "## Stages (ms), per run", "", "| run | stage | n | p50 | p95 | max |", "|---|---|---:|---:|---:|---:|"]
    for run in report["runs"]:
        for name, p in run["turns_summary"]["stages"].items():
            if p["n"]:
                lines.append(f"| {run['name']} | {name} | {p['n']} | {_f(p['p50'])} | {_f(p['p95'])} | {_f(p['max'])} |")
        for key, label in (("caller_vs_recording_v2v_abs_diff_ms", "abs(caller v2v - recording v2v): the agreement check"),
                           ("agent_vs_caller_v2v_abs_diff_ms", "abs(agent v2v - caller v2v)"),
                           ("agent_with_jitter_vs_caller_v2v_abs_diff_ms", "abs(agent v2v + its jitter buffer - caller v2v)"),
                           ("edge_to_edge_v2v_abs_diff_ms",
                            "abs(agent v2v + its jitter buffer - (caller v2v - its jitter buffer))")):
            d = run["turns_summary"].get(key) or {"n": 0}
            if d["n"]:
                lines.append(f"| {run['name']} | {label} | {d['n']} | {_f(d['p50'])} | {_f(d['p95'])} | {_f(d['max'])} |")
    lines += ["", "## Turns (one call at a time)", "",
              "| run | scenario | turn | intent (expected) | tier | endpoint | v2v agent | v2v caller | v2v recording "
              "| agent - caller | agent late end | jitter buf. agent / caller | barge stop | WER | task |",
              "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for t in report["turns"]:
        if t.get("concurrency", 1) != 1:
            continue
        a, c = t["agent"].get("voice_to_voice_ms"), t["caller_v2v_ms"]
        diff = None if a is None or c is None else a - c
        task = "-" if t["task_ok"] is None else ("ok" if t["task_ok"] else f"FAIL {t['why']}")
        barge = _f(t["barge_stop_ms"]) if t["barge"] else ""
        lines.append(
            f"| {t['run']} | {t['scenario']} | {t['turn']}{' (barge)' if t['barge'] else ''} "
            f"| {t['intent']} ({t['expect_intent'] or '-'}) | {t['tier']} | {_f(t['agent'].get('endpoint_ms'))} "
            f"| {_f(a)} | {_f(c)} | {_f(t.get('recording_v2v_ms'))} | {_f(diff)} | {_f(t.get('speech_end_lag_ms'))} "
            f"| {_f(t.get('agent_jitter_ms'))} / {_f(t.get('caller_jitter_ms'))} | {barge} | {_f(t['wer'], 2)} | {task} |"
        )
    if png_names:
        lines += ["", "## Plots", ""] + [f"![{k}]({v})" for k, v in png_names.items()]
    return "\n".join(lines) + "\n"


def write_plots(report: dict[str, Any], out: Path) -> dict[str, str]:
    """Latency CDF, stacked stage bars and p95 against concurrency; returns {title: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: dict[str, str] = {}
    single = [r for r in report["runs"] if r["concurrency"] == 1]
    turns = [t for t in report["turns"] if t.get("concurrency", 1) == 1]

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in single:
        xs = np.sort([t["caller_v2v_ms"] for t in turns if t["run"] == run["name"] and t["caller_v2v_ms"] is not None])
        if xs.size:
            ax.step(xs, np.arange(1, xs.size + 1) / xs.size, where="post", label=run["name"])
    ax.set_xlabel("voice-to-voice at the caller (ms)")
    ax.set_ylabel("share of turns")
    ax.set_title("Voice-to-voice latency, CDF")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    made["latency CDF"] = _save(fig, out, "cdf")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    parts = ("end of turn", "transcript", "reply + voice", "line + playout")
    colors = ("#4c72b0", "#dd8452", "#55a868", "#8172b3")
    names = [r["name"] for r in single]
    bottoms = np.zeros(len(single))
    for part, color in zip(parts, colors):
        vals = np.array([_stage_part(r, part) for r in single])
        ax.bar(names, vals, bottom=bottoms, label=part, color=color)
        bottoms += vals
    ax.set_ylabel("ms (medians; they stack to the caller's median v2v)")
    ax.set_title("Where the voice-to-voice time goes")
    ax.legend(fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=15, ha="right", fontsize=8)
    made["stages"] = _save(fig, out, "stages")

    if report.get("sweep"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for mode in sorted({s["mode"] for s in report["sweep"]}):
            pts = sorted((s["concurrency"], s["v2v_caller_p95"]) for s in report["sweep"] if s["mode"] == mode)
            pts = [(c, v) for c, v in pts if v is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=mode)
        ax.set_xlabel("simultaneous calls")
        ax.set_ylabel("p95 voice-to-voice at the caller (ms)")
        ax.set_title("p95 voice-to-voice against concurrency")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        made["p95 vs concurrency"] = _save(fig, out, "concurrency")
    return made


def _stage_part(run: dict[str, Any], part: str) -> float:
    """One run's median v2v split into stages (each the difference of two medians, floored at 0)."""
    endpoint = _p(run, "endpoint_ms") or 0.0
    transcript = _p(run, "transcript_ms") or 0.0
    first_audio = _p(run, "first_audio_ms") or 0.0
    caller = _p(run, "voice_to_voice_ms (caller side)")
    agent = _p(run, "voice_to_voice_ms") or 0.0
    return max(0.0, {
        "end of turn": endpoint,
        "transcript": transcript,
        "reply + voice": first_audio - transcript,
        "line + playout": (caller - agent) if caller is not None else 0.0,
    }[part])


def _save(fig, out: Path, suffix: str) -> str:
    path = out.parent / f"{out.name}-{suffix}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name
