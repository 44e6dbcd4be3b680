"""Writing call records: JSONL files under ``data_dir/calls/<date>/<session>.jsonl``.

Events come from the SIP and pipeline threads (never from media callbacks) through a bounded
queue; one writer thread owns the files, so no caller of ``emit`` ever waits on the disk.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from voicebox.records.private_files import make_private_dirs, open_private

log = logging.getLogger("voicebox.records")

CALLS_DIR = "calls"
_CLOSE = "__close__"


def call_path(data_dir: Path, session: str, started: float) -> Path:
    day = datetime.fromtimestamp(started, tz=timezone.utc).strftime("%Y-%m-%d")
    return data_dir / CALLS_DIR / day / f"{session}.jsonl"


class RecordStore:
    def __init__(self, data_dir: Path, max_queue: int = 10000) -> None:
        self.data_dir = data_dir
        self._q: queue.Queue = queue.Queue(maxsize=max_queue)
        self._files: dict[str, Any] = {}
        self._paths: dict[str, Path] = {}
        self.lost = 0
        self._thread = threading.Thread(target=self._run, name="records", daemon=True)
        self._thread.start()

    def open(self, session: str, started: float | None = None) -> Path:
        """Choose the call's file now, so that every event of the call lands in one place."""
        path = call_path(self.data_dir, session, started or time.time())
        self._paths[session] = path
        return path

    def emit(self, session: str, event: str, **fields: Any) -> None:
        """Queue one event; never blocks. Lost events are counted, not silently dropped."""
        rec = {"ts": round(time.time(), 3), "session": session, "event": event, **fields}
        try:
            self._q.put_nowait((session, rec))
        except queue.Full:
            self.lost += 1

    def close(self, session: str) -> None:
        try:
            self._q.put_nowait((session, _CLOSE))
        except queue.Full:
            self.lost += 1

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is on disk (tests, shutdown)."""
        done = threading.Event()
        try:
            self._q.put(("", done), timeout=timeout)
        except queue.Full:
            return
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            session, rec = self._q.get()
            if isinstance(rec, threading.Event):
                for f in self._files.values():
                    f.flush()
                rec.set()
                continue
            try:
                if rec == _CLOSE:
                    f = self._files.pop(session, None)
                    self._paths.pop(session, None)
                    if f is not None:
                        f.close()
                    continue
                f = self._files.get(session)
                if f is None:
                    path = self._paths.get(session) or call_path(self.data_dir, session, rec["ts"])
                    make_private_dirs(path.parent)
                    f = self._files[session] = open_private(path, "a", encoding="utf-8", buffering=1)
                f.write(json.dumps(rec, separators=(",", ":")) + "\n")
            except Exception as e:  # noqa: BLE001 -- one bad event must not end the writer
                self.lost += 1
                log.error("error records.write_failed %s", e, extra={"session": session, "code": "records.write_failed"})
