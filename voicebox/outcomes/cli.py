"""``voicebox outcomes``: list, show, export and retry what calls produced.

    voicebox outcomes [list] [--agent A] [--kind booking] [--state dead] [--since 7d] [--limit 50]
    voicebox outcomes show ID              (or a unique prefix of it)
    voicebox outcomes export [--format jsonl|csv] [--out FILE] [filters as for list]
    voicebox outcomes retry ID [--channel webhook]

The output holds callers' personal data: it goes to the terminal or a file the operator names,
never to the logs.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import IO, Iterable

from voicebox.outcomes.channel import StoredOutcome
from voicebox.outcomes.store import (
    DELIVERY_STATES, Delivery, OutcomeFilter, OutcomeStore, outcome_json, outcomes_path,
)

KINDS = ("booking", "message", "callback", "transfer")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Adds ``outcomes`` to the ``voicebox`` command's subcommands."""
    o = sub.add_parser("outcomes", help="list, show, export and retry stored outcomes "
                       "(bookings, messages, callback requests, transfers)")
    _common(o, None)
    _filters(o, None)
    o.set_defaults(fn=run, action="list")
    acts = o.add_subparsers(dest="action")
    ls = acts.add_parser("list", help="outcomes, oldest first, with each delivery's state")
    _common(ls, argparse.SUPPRESS)
    _filters(ls, argparse.SUPPRESS)
    show = acts.add_parser("show", help="one outcome in full, with its deliveries")
    show.add_argument("id", help="outcome id, or a unique prefix")
    _common(show, argparse.SUPPRESS)
    ex = acts.add_parser("export", help="write outcomes as JSON lines or CSV")
    ex.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    ex.add_argument("--out", type=Path, help="file to write (default: standard output)")
    _common(ex, argparse.SUPPRESS)
    _filters(ex, argparse.SUPPRESS)
    rt = acts.add_parser("retry", help="send a dead-lettered outcome again (a running serve picks it up)")
    rt.add_argument("id", help="outcome id, or a unique prefix")
    rt.add_argument("--channel", help="only this channel's delivery (webhook, email, calendar)")
    _common(rt, argparse.SUPPRESS)


def _common(p: argparse.ArgumentParser, default: object) -> None:
    # Given on both levels, so `voicebox outcomes --data-dir D list` and `... list --data-dir D`
    # both work; SUPPRESS keeps an action's unset option from hiding the outer one.
    p.add_argument("--config", type=Path, default=default, help="TOML config (its data_dir)")
    p.add_argument("--data-dir", type=Path, default=default)


def _filters(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("--agent", default=default, help="agent id (its file's stem)")
    p.add_argument("--kind", choices=KINDS, default=default)
    p.add_argument("--state", choices=DELIVERY_STATES, default=default,
                   help="outcomes with a delivery in this state")
    p.add_argument("--since", default=default, help="an age (7d, 12h) or a date/time (2026-12-01, 2026-12-01T09:00)")
    p.add_argument("--limit", type=int, default=default,
                   help="only the newest N")


def run(args: argparse.Namespace) -> int:
    args.action = args.action or "list"  # plain `voicebox outcomes` lists
    data_dir = args.data_dir if args.data_dir is not None else _config_data_dir(args.config)
    path = outcomes_path(data_dir)
    if not path.exists():
        print(f"no outcomes stored in {data_dir}", file=sys.stderr)
        return 0 if args.action in ("list", "export") else 1
    store = OutcomeStore(path)
    try:
        if args.action == "show":
            return _show(store, args.id)
        if args.action == "retry":
            return _retry(store, args.id, args.channel)
        try:
            flt = _filter(args)
        except ValueError as e:
            print(f"voicebox: {e}", file=sys.stderr)
            return 2
        if args.action == "export":
            return _export(store, flt, args.format, args.out)
        return _list(store, flt)
    finally:
        store.close()


def _config_data_dir(config: Path | None) -> Path:
    from voicebox.config import load_config

    return load_config(config).data_dir


def _filter(args: argparse.Namespace) -> OutcomeFilter:
    since = parse_since(args.since, time.time()) if args.since else None
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    return OutcomeFilter(agent=args.agent, kind=args.kind, state=args.state, since=since, limit=args.limit)


def parse_since(text: str, now: float) -> float:
    """'7d', '12h' (that long before ``now``) or an ISO date/time (local time unless it has an
    offset) → epoch seconds."""
    from voicebox.records.retention import parse_age

    if text.strip()[-1:].lower() in ("d", "h", "m", "s") and not text.strip()[:1].isalpha():
        try:
            return now - parse_age(text)
        except ValueError:
            pass
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: use an age (7d, 12h) or a date (2026-12-01)") from None
    return when.timestamp()  # a naive datetime is taken as local time


def _resolve(store: OutcomeStore, prefix: str) -> str | None:
    found = store.find(prefix.strip().lower())
    if len(found) != 1:
        what = "no outcome" if not found else "more than one outcome"
        print(f"voicebox: {what} matches {prefix!r}", file=sys.stderr)
        return None
    return found[0]


def _local(when: dt.datetime | float | None) -> str:
    if when is None:
        return "-"
    if isinstance(when, float | int):
        when = dt.datetime.fromtimestamp(when, tz=dt.timezone.utc)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _delivery_cell(d: Delivery) -> str:
    cell = f"{d.channel}:{d.state}"
    if d.state == "pending" and d.tries:
        cell += f"(try {d.tries + 1})"
    return cell


def _list(store: OutcomeStore, flt: OutcomeFilter) -> int:
    rows = list(store.iter_all(flt))
    if not rows:
        print("no outcomes match")
        return 0
    for o, ds in rows:
        deliveries = " ".join(_delivery_cell(d) for d in ds) or "stored"
        summary = o.summary if len(o.summary) <= 60 else o.summary[:57] + "..."
        print(f"{o.id}  {_local(o.created_at)}  {o.agent:16} {o.kind:8} {deliveries:28} {summary}")
        for d in ds:
            if d.state == "dead":
                print(f"    {d.channel} dead after {d.tries} tries: {d.last_error}")
    return 0


def _show(store: OutcomeStore, prefix: str) -> int:
    oid = _resolve(store, prefix)
    if oid is None:
        return 1
    o = store.get(oid)
    assert o is not None
    print(json.dumps(_record(o, store.deliveries(oid)), indent=2, ensure_ascii=False))
    return 0


def _record(o: StoredOutcome, ds: Iterable[Delivery]) -> dict:
    rec = outcome_json(o)
    rec["deliveries"] = [
        {
            "channel": d.channel, "state": d.state, "tries": d.tries, "last_error": d.last_error,
            "delivered_at": _iso(d.delivered_at),
            "next_try_at": _iso(d.next_try_at) if d.state == "pending" else None,
        }
        for d in ds
    ]
    return rec


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).isoformat()


def _export(store: OutcomeStore, flt: OutcomeFilter, fmt: str, out: Path | None) -> int:
    rows = list(store.iter_all(flt))
    if out is None:
        _write(sys.stdout, rows, fmt)
    else:
        from voicebox.records.private_files import open_private

        with open_private(out, "w", encoding="utf-8", newline="") as f:  # personal data: 0600
            _write(f, rows, fmt)
        print(f"wrote {len(rows)} outcomes to {out}", file=sys.stderr)
    return 0


def _write(f: IO[str], rows: list[tuple[StoredOutcome, list[Delivery]]], fmt: str) -> None:
    if fmt == "jsonl":
        for o, ds in rows:
            f.write(json.dumps(_record(o, ds), ensure_ascii=False) + "\n")
        return
    # CSV for a spreadsheet: one column per form field (the union over the rows), then deliveries.
    names = sorted({k for o, _ in rows for k in o.fields})
    base = ["id", "created_at", "agent", "kind", "form", "session_id", "summary", "start", "end"]
    w = csv.writer(f)
    w.writerow(base + [f"field.{n}" for n in names] + ["deliveries", "last_error"])
    for o, ds in rows:
        j = outcome_json(o)
        errors = "; ".join(f"{d.channel}: {d.last_error}" for d in ds if d.state == "dead")
        w.writerow([j[k] if j[k] is not None else "" for k in base]
                   + [o.fields.get(n, "") for n in names]
                   + [" ".join(f"{d.channel}:{d.state}" for d in ds), errors])


def _retry(store: OutcomeStore, prefix: str, channel: str | None) -> int:
    oid = _resolve(store, prefix)
    if oid is None:
        return 1
    n = store.retry(oid, channel)
    if not n:
        print(f"voicebox: {oid} has no dead-lettered delivery" + (f" over {channel}" if channel else ""),
              file=sys.stderr)
        return 1
    print(f"{oid}: {n} delivery back to pending; a running voicebox serve sends it within seconds")
    return 0
