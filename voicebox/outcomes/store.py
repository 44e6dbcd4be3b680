"""The outcome store: one SQLite file in the data directory holding every call's outcome, the
outbox of its deliveries, and the slots bookings hold.

An outcome is committed (WAL, ``synchronous=FULL``: on disk when ``record`` returns) together
with one pending delivery per channel of its agent and, for a booking, its slot, in a single
``BEGIN IMMEDIATE`` transaction. So either the caller can be told "you're booked" and the
outbox will deliver it, or nothing at all was written and ``OutcomeNotStored`` says so. The
write lock taken by ``BEGIN IMMEDIATE`` is also what makes the slot check safe: two calls (or
two processes) asking for the same time are serialised, and the second sees the first's slot.

The file holds personal data: it is created 0600 in a 0700 directory (SQLite gives its -wal and
-shm files the database's mode), and nothing here logs a field's value.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voicebox.outcomes.channel import StoredOutcome
from voicebox.outcomes.draft import OutcomeDraft, OutcomeNotStored, SlotTaken
from voicebox.records.private_files import make_private_dirs, open_private

log = logging.getLogger("voicebox.outcomes")

OUTCOMES_FILE = "outcomes.sqlite3"
DeliveryState = Literal["pending", "delivered", "dead"]
DELIVERY_STATES: tuple[str, ...] = ("pending", "delivered", "dead")
_BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order: what "in order" means
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    agent TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    form TEXT NOT NULL,
    summary TEXT NOT NULL,
    fields TEXT NOT NULL,
    extra TEXT NOT NULL,
    start TEXT,
    "end" TEXT,
    time_zone TEXT
);
CREATE INDEX IF NOT EXISTS outcomes_created ON outcomes(created_at);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    outcome_id TEXT NOT NULL REFERENCES outcomes(id) ON DELETE CASCADE,
    agent TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    tries INTEGER NOT NULL DEFAULT 0,
    next_try_at REAL NOT NULL,
    last_error TEXT,
    delivered_at REAL,
    UNIQUE (outcome_id, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(state, agent, channel, seq);
CREATE TABLE IF NOT EXISTS booked_slots (
    agent TEXT NOT NULL,
    start_ts REAL NOT NULL,
    end_ts REAL NOT NULL,
    outcome_id TEXT NOT NULL REFERENCES outcomes(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS booked_slots_agent ON booked_slots(agent, start_ts);
"""


@dataclass(frozen=True)
class Delivery:
    """One outcome's delivery over one channel, as the outbox table holds it."""

    seq: int
    outcome_id: str
    agent: str
    channel: str
    state: str
    tries: int
    next_try_at: float
    last_error: str | None
    delivered_at: float | None


@dataclass(frozen=True)
class OutcomeFilter:
    agent: str | None = None
    kind: str | None = None
    state: str | None = None  # outcomes with at least one delivery in this state
    since: float | None = None  # epoch seconds
    limit: int | None = None


def new_outcome_id(now: float) -> str:
    """Unique and sortable by time: 12 hex digits of milliseconds, then 64 random bits."""
    return f"{int(now * 1000):012x}{secrets.token_hex(8)}"


class OutcomeStore:
    """Implements ``OutcomeSink``; also the outbox's table and what ``voicebox outcomes`` reads.

    ``channels`` names, per agent id, the channels its outcomes are delivered over: ``record``
    writes one pending delivery for each. ``max_pages`` caps the file (SQLite's
    ``max_page_count``; None: no cap), which is how a full disk is simulated.
    """

    def __init__(
        self,
        path: Path,
        channels: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
        max_pages: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.channels = {agent: tuple(names) for agent, names in (channels or {}).items()}
        self.clock = clock
        self._lock = threading.RLock()  # one connection, shared by the call threads and the outbox
        make_private_dirs(self.path.parent)
        # Created 0600 before SQLite opens it, so the file (and the -wal/-shm SQLite derives
        # from its mode) is never readable by others, whatever the umask.
        open_private(self.path, "ab").close()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            self._conn.executescript(_SCHEMA)
            if max_pages is not None:
                self._conn.execute(f"PRAGMA max_page_count={int(max_pages)}")
        except sqlite3.Error as e:
            raise OutcomeNotStored(f"cannot open {self.path}: {e}") from e

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- OutcomeSink ------------------------------------------------------------------------

    def is_free(self, agent: str, start: dt.datetime, end: dt.datetime) -> bool:
        _check_slot(start, end)
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM booked_slots WHERE agent = ? AND start_ts < ? AND end_ts > ? LIMIT 1",
                (agent, end.timestamp(), start.timestamp()),
            ).fetchone()
        return row is None

    def record(self, draft: OutcomeDraft) -> str:
        if (draft.start is None) != (draft.end is None):
            raise ValueError("an outcome has both start and end, or neither")
        if draft.start is not None and draft.end is not None:
            _check_slot(draft.start, draft.end)
        now = self.clock()
        oid = new_outcome_id(now)
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._insert(oid, now, draft)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except SlotTaken:
                raise
            except sqlite3.Error as e:
                log.error("error outcome.not_stored agent=%s kind=%s: %s", draft.agent, draft.kind, e,
                          extra={"code": "outcome.not_stored", "agent": draft.agent})
                raise OutcomeNotStored(f"outcome not stored: {e}") from e
        log.info("outcome.stored id=%s agent=%s kind=%s deliveries=%d",
                 oid, draft.agent, draft.kind, len(self.channels.get(draft.agent, ())))
        return oid

    def _insert(self, oid: str, now: float, draft: OutcomeDraft) -> None:
        c = self._conn
        if draft.start is not None and draft.end is not None:
            taken = c.execute(
                "SELECT 1 FROM booked_slots WHERE agent = ? AND start_ts < ? AND end_ts > ? LIMIT 1",
                (draft.agent, draft.end.timestamp(), draft.start.timestamp()),
            ).fetchone()
            if taken:
                raise SlotTaken(f"{draft.start.isoformat()} is already booked")
        c.execute(
            'INSERT INTO outcomes (id, kind, agent, session_id, created_at, form, summary, fields, extra,'
            ' start, "end", time_zone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            (
                oid, draft.kind, draft.agent, draft.session_id, now, draft.form, draft.summary,
                json.dumps(draft.fields, ensure_ascii=False), json.dumps(draft.extra, ensure_ascii=False),
                draft.start.isoformat() if draft.start else None,
                draft.end.isoformat() if draft.end else None,
                _zone_name(draft.start),
            ),
        )
        if draft.start is not None and draft.end is not None:
            c.execute(
                "INSERT INTO booked_slots (agent, start_ts, end_ts, outcome_id) VALUES (?, ?, ?, ?)",
                (draft.agent, draft.start.timestamp(), draft.end.timestamp(), oid),
            )
        for channel in self.channels.get(draft.agent, ()):
            c.execute(
                "INSERT INTO deliveries (outcome_id, agent, channel, state, next_try_at) VALUES (?, ?, ?, 'pending', ?)",
                (oid, draft.agent, channel, now),
            )

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite already rolled back (it does on SQLITE_FULL and I/O errors)

    # --- The outbox ---------------------------------------------------------------------------

    def pending_head(self, agent: str, channel: str) -> Delivery | None:
        """The oldest pending delivery of this agent over this channel: the only one that may be
        tried, so a later outcome never overtakes an earlier one that is still being retried."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM deliveries WHERE state = 'pending' AND agent = ? AND channel = ?"
                " ORDER BY seq LIMIT 1", (agent, channel),
            ).fetchone()
        return _delivery(row) if row else None

    def mark_delivered(self, seq: int, now: float) -> None:
        self._update(
            "UPDATE deliveries SET state = 'delivered', tries = tries + 1, delivered_at = ?, last_error = NULL"
            " WHERE seq = ?", (now, seq),
        )

    def mark_failed(self, seq: int, error: str, next_try_at: float | None) -> None:
        """One more failed try: retried at ``next_try_at``, or dead-lettered when it is None."""
        if next_try_at is None:
            self._update(
                "UPDATE deliveries SET state = 'dead', tries = tries + 1, last_error = ? WHERE seq = ?",
                (error, seq),
            )
        else:
            self._update(
                "UPDATE deliveries SET tries = tries + 1, last_error = ?, next_try_at = ? WHERE seq = ?",
                (error, next_try_at, seq),
            )

    def retry(self, outcome_id: str, channel: str | None = None) -> int:
        """Dead-lettered deliveries of an outcome go back to pending, due now, with a fresh count
        of tries; returns how many."""
        sql = "UPDATE deliveries SET state = 'pending', tries = 0, next_try_at = ? WHERE outcome_id = ? AND state = 'dead'"
        args: tuple = (self.clock(), outcome_id)
        if channel is not None:
            sql += " AND channel = ?"
            args += (channel,)
        return self._update(sql, args)

    def _update(self, sql: str, args: tuple) -> int:
        with self._lock:
            return self._conn.execute(sql, args).rowcount

    # --- Reading ------------------------------------------------------------------------------

    def get(self, outcome_id: str) -> StoredOutcome | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM outcomes WHERE id = ?", (outcome_id,)).fetchone()
        return _outcome(row) if row else None

    def find(self, prefix: str) -> list[str]:
        """Ids starting with ``prefix`` (at most two: enough to tell a unique prefix)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._lock:
            rows = self._conn.execute(
                "SELECT id FROM outcomes WHERE id LIKE ? ESCAPE '\\' ORDER BY seq LIMIT 2", (escaped + "%",)
            ).fetchall()
        return [r["id"] for r in rows]

    def deliveries(self, outcome_id: str) -> list[Delivery]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM deliveries WHERE outcome_id = ? ORDER BY seq", (outcome_id,)
            ).fetchall()
        return [_delivery(r) for r in rows]

    def query(self, flt: OutcomeFilter = OutcomeFilter()) -> list[StoredOutcome]:
        """Outcomes matching ``flt``, oldest first (the newest ``limit`` of them when limited)."""
        where, args = [], []
        if flt.agent is not None:
            where.append("agent = ?")
            args.append(flt.agent)
        if flt.kind is not None:
            where.append("kind = ?")
            args.append(flt.kind)
        if flt.since is not None:
            where.append("created_at >= ?")
            args.append(flt.since)
        if flt.state is not None:
            where.append("id IN (SELECT outcome_id FROM deliveries WHERE state = ?)")
            args.append(flt.state)
        sql = "SELECT * FROM outcomes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC"
        if flt.limit is not None:
            sql += " LIMIT ?"
            args.append(flt.limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [_outcome(r) for r in reversed(rows)]

    def iter_all(self, flt: OutcomeFilter = OutcomeFilter()) -> Iterator[tuple[StoredOutcome, list[Delivery]]]:
        for o in self.query(flt):
            yield o, self.deliveries(o.id)

    # --- Retention ----------------------------------------------------------------------------

    def purge(self, older_than_s: float, now: float | None = None) -> int:
        """Delete outcomes created more than ``older_than_s`` ago, with their deliveries and
        slots; returns the count. One still waiting to be delivered is kept until it is
        delivered or dead-lettered: retention must not drop what the business never got."""
        cutoff = (self.clock() if now is None else now) - older_than_s
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                n = self._conn.execute(
                    "DELETE FROM outcomes WHERE created_at < ?"
                    " AND id NOT IN (SELECT outcome_id FROM deliveries WHERE state = 'pending')",
                    (cutoff,),
                ).rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        if n:
            log.info("outcome.purged count=%d", n)
        return n


def _check_slot(start: dt.datetime, end: dt.datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("a slot's start and end must be aware datetimes")
    if end <= start:
        raise ValueError("a slot must end after it starts")


def _zone_name(when: dt.datetime | None) -> str | None:
    if when is not None and isinstance(when.tzinfo, ZoneInfo):
        return when.tzinfo.key
    return None


def _when(text: str | None, zone: str | None) -> dt.datetime | None:
    if text is None:
        return None
    when = dt.datetime.fromisoformat(text)
    if zone:
        try:
            when = when.astimezone(ZoneInfo(zone))
        except ZoneInfoNotFoundError:
            pass  # the fixed offset stored with it is still the right instant
    return when


def _outcome(row: sqlite3.Row) -> StoredOutcome:
    return StoredOutcome(
        id=row["id"],
        kind=row["kind"],
        agent=row["agent"],
        session_id=row["session_id"],
        created_at=dt.datetime.fromtimestamp(row["created_at"], tz=dt.timezone.utc),
        fields=json.loads(row["fields"]),
        summary=row["summary"],
        start=_when(row["start"], row["time_zone"]),
        end=_when(row["end"], row["time_zone"]),
        form=row["form"],
        extra=json.loads(row["extra"]),
    )


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        seq=row["seq"], outcome_id=row["outcome_id"], agent=row["agent"], channel=row["channel"],
        state=row["state"], tries=row["tries"], next_try_at=row["next_try_at"],
        last_error=row["last_error"], delivered_at=row["delivered_at"],
    )


def outcome_json(outcome: StoredOutcome) -> dict:
    """An outcome as every channel and export writes it (the webhook's body)."""
    return {
        "id": outcome.id,
        "kind": outcome.kind,
        "agent": outcome.agent,
        "session_id": outcome.session_id,
        "created_at": outcome.created_at.isoformat(),
        "form": outcome.form,
        "summary": outcome.summary,
        "fields": dict(outcome.fields),
        "start": outcome.start.isoformat() if outcome.start else None,
        "end": outcome.end.isoformat() if outcome.end else None,
        "extra": dict(outcome.extra),
    }


def outcomes_path(data_dir: Path) -> Path:
    return Path(data_dir) / OUTCOMES_FILE
