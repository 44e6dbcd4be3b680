"""Logging set-up: every line carries a session id ("-" outside calls).

Two formats (``log.format``): ``text``, one human line per record, and ``json``, one JSON object
per line for a log shipper (Loki, Elasticsearch, journald with a JSON parser). Context is passed
the standard way, as ``extra=`` fields on the record, so both formats read the same record:

* ``session``: the call's session id (the key of its call record);
* ``agent``: the id of the agent that answered the call;
* ``code``: the error code on a record that reports one (the ``code`` label of
  ``voicebox_errors_total`` and of the call record's ``error`` event);
* ``stage``: the pipeline stage (stt, llm, tts) an error code belongs to;
* ``turn``: the caller turn a record is about.

The text format shows the session and the message only (its layout is what people grep); JSON
carries every field.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(session)s] %(message)s"
NO_SESSION = "-"


class _SessionDefault(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session"):
            record.session = NO_SESSION
        return True


class JsonLines(JsonFormatter):
    """One JSON object per record: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, then the record's ``extra=`` fields (session, agent, code, stage, turn...) and
    ``exc_info`` for an exception."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # "-" is the text format's placeholder outside calls; in JSON an absent field says it
        # without a value a query would have to know about.
        if log_data.get("session") == NO_SESSION:
            del log_data["session"]
        # timestamp first: a person reading the raw stream scans it like the text format.
        return {"timestamp": log_data.pop("timestamp"), **log_data}


class ContextLog(logging.LoggerAdapter):
    """A logger with fixed context fields (session, agent) that keeps a call site's own
    ``extra=`` too: Python 3.11's ``LoggerAdapter`` replaces it with the adapter's, which would
    drop the ``code`` an error line passes."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs

    def bind(self, **fields: Any) -> None:
        """Add context learnt later (a call's agent is known only once the INVITE is routed)."""
        self.extra = {**(self.extra or {}), **fields}


def context_log(name: str | logging.Logger, **fields: Any) -> ContextLog:
    """A :class:`ContextLog` over the named logger with ``fields`` on every record."""
    logger = name if isinstance(name, logging.Logger) else logging.getLogger(name)
    return ContextLog(logger, dict(fields))


def formatter(fmt: LogFormat) -> logging.Formatter:
    """The formatter for ``log.format``."""
    if fmt == "json":
        return JsonLines()
    if fmt == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"unknown log format {fmt!r}")


def setup_logging(level: str = "INFO", fmt: LogFormat = "text", stream: TextIO | None = None) -> None:
    """Send every logger's records to ``stream`` (stderr) in ``fmt``, at ``level`` and above."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(_SessionDefault())
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

