"""Reading call records back: the list of recent calls and one call's timeline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from voicebox.records.session_ids import is_session_id, is_session_prefix
from voicebox.records.store import CALLS_DIR


@dataclass
class CallSummary:
    session: str
    path: Path
    started: float = 0.0
    agent: str = ""  # the id of the agent that answered (records before multi-agent serving: none)
    duration_s: float | None = None
    codec: str = ""
    status: int | None = None
    end_reason: str = ""
    turns: int = 0
    errors: list[str] = field(default_factory=list)
    budget_misses: int = 0


def read_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash; the rest of the record still counts
    return events


def summarize(path: Path) -> CallSummary:
    s = CallSummary(path.stem, path)
    for ev in read_events(path):
        kind = ev.get("event")
        if kind == "call_start":
            s.started = ev["ts"]
            s.agent = ev.get("agent") or ""
        elif kind == "media":
            s.codec = ev.get("codec", "")
        elif kind == "turn":
            s.turns += 1
            s.budget_misses += len(ev.get("budget_misses", []))
        elif kind == "error":
            s.errors.append(ev.get("code", "?"))
        elif kind == "call_end":
            s.duration_s = ev.get("duration_s")
            s.status = ev.get("status")
            s.end_reason = ev.get("hung_up_by") or ev.get("reason", "")
    if not s.started:
        s.started = path.stat().st_mtime
    return s


def list_calls(data_dir: Path, limit: int = 20) -> list[CallSummary]:
    files = sorted((data_dir / CALLS_DIR).glob("*/*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    return sorted((summarize(p) for p in files[:limit]), key=lambda s: s.started, reverse=True)


def find_call(data_dir: Path, session: str) -> Path | None:
    """The record of the one call whose session id is, or starts with, ``session``.

    ``session`` comes from the command line: it is checked against the session id format and
    then compared as plain text with file names, never put into a glob pattern or a path, so
    ``*``, ``?``, ``[`` and ``../`` match nothing. None when it is not a session id (prefix),
    when no call matches, or when several do.
    """
    prefix = session.lower()  # ids are lowercase hex; a pasted upper-case id still finds its call
    if not is_session_prefix(prefix):
        return None
    root = data_dir / CALLS_DIR
    if not root.is_dir():
        return None
    hits = [
        f
        for day in root.iterdir()
        if day.is_dir()
        for f in day.iterdir()
        if f.suffix == ".jsonl" and is_session_id(f.stem) and f.stem.startswith(prefix) and f.is_file()
    ]
    return hits[0] if len(hits) == 1 else None


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*[str(c) for c in r]) for r in rows]
    return "\n".join(lines)


def format_calls(calls: list[CallSummary]) -> str:
    if not calls:
        return "no calls recorded"
    rows = [
        [
            c.session,
            c.agent or "-",
            datetime.fromtimestamp(c.started).strftime("%Y-%m-%d %H:%M:%S"),
            f"{c.duration_s:.1f}s" if c.duration_s is not None else "(open)",
            c.codec or "-",
            str(c.turns),
            str(c.status) if c.status is not None else "-",
            c.end_reason or "-",
            ",".join(c.errors) or "-",
            str(c.budget_misses),
        ]
        for c in calls
    ]
    return _table(rows, ["session", "agent", "started", "length", "codec", "turns", "sip", "ended", "errors", "misses"])


def _fmt_ms(v: Any) -> str:
    return "-" if v is None else f"{v:.0f}"


def format_timeline(path: Path) -> str:
    """One row per event, times in seconds since the call started; turns show stage timings."""
    events = read_events(path)
    if not events:
        return f"{path}: empty record"
    t0 = next((e["ts"] for e in events if e.get("event") == "call_start"), events[0]["ts"])
    rows = []
    for ev in events:
        kind = ev.get("event", "?")
        at = f"{ev['ts'] - t0:7.2f}"
        skip = {"ts", "session", "event"}
        if kind == "turn":
            miss = ev.get("budget_misses", [])
            detail = (
                f"#{ev.get('turn')} {ev.get('source', '-')}/{ev.get('intent') or '-'}"
                f" endpoint={_fmt_ms(ev.get('endpoint_ms'))}"
                f" transcript={_fmt_ms(ev.get('transcript_ms'))} first_token={_fmt_ms(ev.get('first_token_ms'))}"
                f" first_audio={_fmt_ms(ev.get('first_audio_ms'))} v2v={_fmt_ms(ev.get('voice_to_voice_ms'))} ms"
                + (f" MISSED {','.join(miss)}" if miss else "")
            )
            for key in ("caller_text", "agent_text"):
                if key in ev:
                    detail += f" | {key.split('_')[0]}: {ev[key]}"
        else:
            detail = " ".join(f"{k}={v}" for k, v in ev.items() if k not in skip and v is not None)
        rows.append([at, kind, detail])
    return _table(rows, ["t (s)", "event", "detail"])
