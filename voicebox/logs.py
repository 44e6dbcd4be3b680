"""Logging set-up: every line carries a session id ("-" outside calls)."""

from __future__ import annotations

import logging
import sys


class _SessionDefault(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session"):
            record.session = "-"
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_SessionDefault())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(session)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
