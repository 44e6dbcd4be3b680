"""Log formats (``log.format``): text lines unchanged, JSON lines with the call's context as fields."""

from __future__ import annotations

import ast
import io
import json
import logging
import re
from pathlib import Path

import pytest

from voicebox.config import BudgetConfig, load_config
from voicebox.logs import context_log, setup_logging
from voicebox.records.call_events import CallEvents
from voicebox.records.content import ContentPolicy

ROOT = Path(__file__).resolve().parents[1]
SESSION = "0123456789ab"


@pytest.fixture
def stream():
    """setup_logging on a buffer; the root logger (pytest's capture handlers) put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buf = io.StringIO()
    yield buf
    root.handlers[:] = handlers
    root.setLevel(level)


def _json_lines(buf: io.StringIO) -> list[dict]:
    lines = buf.getvalue().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line on its own is one JSON object


def _events(agent: str = "riverside_dental") -> CallEvents:
    return CallEvents(SESSION, None, None, ContentPolicy("metadata"), BudgetConfig(), agent)


def test_text_lines_keep_their_layout(stream):
    setup_logging("INFO", "text", stream)
    logging.getLogger("voicebox.sip").info("listening on %d", 5060)
    _events().error("stt.decode_failed", turn=3)
    first, second = stream.getvalue().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO voicebox\.sip \[-\] listening on 5060", first)
    assert second.endswith(f" ERROR voicebox.call [{SESSION}] error stt.decode_failed")


def test_json_lines_carry_the_record_and_the_calls_context(stream):
    setup_logging("INFO", "json", stream)
    logging.getLogger("voicebox.sip").info("listening on %d", 5060)
    _events().error("stt.decode_failed", turn=3)
    outside, error = _json_lines(stream)
    assert list(outside) == ["timestamp", "level", "logger", "message"]  # no "-" session outside a call
    assert outside["level"] == "INFO" and outside["logger"] == "voicebox.sip"
    assert outside["message"] == "listening on 5060"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", outside["timestamp"])
    assert error["level"] == "ERROR" and error["logger"] == "voicebox.call"
    assert error["message"] == "error stt.decode_failed"
    assert error["session"] == SESSION and error["agent"] == "riverside_dental"
    assert error["code"] == "stt.decode_failed" and error["stage"] == "stt" and error["turn"] == 3


def test_a_code_outside_the_turn_stages_has_no_stage(stream):
    setup_logging("INFO", "json", stream)
    _events().error("sip.rtp_timeout")
    (line,) = _json_lines(stream)
    assert line["code"] == "sip.rtp_timeout" and "stage" not in line and "turn" not in line


def test_an_exception_is_one_json_line_with_its_traceback(stream):
    setup_logging("INFO", "json", stream)
    log = context_log("voicebox.sip", session=SESSION)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("error sip.callback_failed", extra={"code": "sip.callback_failed"})
    (line,) = _json_lines(stream)
    assert line["code"] == "sip.callback_failed" and line["session"] == SESSION
    assert "RuntimeError: boom" in line["exc_info"]


def test_context_learnt_later_and_a_call_sites_extra_both_reach_the_record(stream):
    # The stdlib LoggerAdapter (3.11) would drop the call site's extra: the code would be lost.
    setup_logging("DEBUG", "json", stream)
    log = context_log("voicebox.sip", session=SESSION)
    log.bind(agent="birchwood_vet")
    log.warning("error sip.hangup_failed %s", "gone", extra={"code": "sip.hangup_failed"})
    (line,) = _json_lines(stream)
    assert (line["session"], line["agent"], line["code"]) == (SESSION, "birchwood_vet", "sip.hangup_failed")


def test_level_still_filters(stream):
    setup_logging("WARNING", "json", stream)
    logging.getLogger("voicebox").info("not shown")
    logging.getLogger("voicebox").warning("shown")
    assert [line["message"] for line in _json_lines(stream)] == ["shown"]


def test_the_format_is_a_setting_from_the_file_or_the_environment(tmp_path):
    assert load_config(None, None, {}).log.format == "text"
    assert load_config(None, None, {"VOICEBOX_LOG__FORMAT": "json"}).log.format == "json"
    (tmp_path / "v.toml").write_text('[log]\nformat = "json"\n')
    assert load_config(tmp_path / "v.toml", None, {}).log.format == "json"


def test_an_unknown_format_is_refused_naming_the_field():
    with pytest.raises(Exception, match="log.format"):
        load_config(None, None, {"VOICEBOX_LOG__FORMAT": "xml"})


def _error_log_calls() -> list[tuple[str, int, ast.Call]]:
    """Every logging call in voicebox/ whose message starts with "error <code>"."""
    found = []
    for path in sorted((ROOT / "voicebox").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"debug", "info", "warning", "error", "exception", "critical"}
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                    and node.args[0].value.startswith("error ")):
                found.append((str(path.relative_to(ROOT)), node.lineno, node))
    return found


def test_every_error_line_passes_its_code_as_a_field():
    """A new ``log.error("error x.y ...")`` without ``extra={"code": ...}`` would log a code a JSON
    query on ``code`` never finds; this names it."""
    calls = _error_log_calls()
    assert len(calls) >= 20  # the scan finds the call sites (a broken scan must not pass quietly)
    wrong = []
    for where, line, node in calls:
        extra = next((k.value for k in node.keywords if k.arg == "extra"), None)
        if where == "voicebox/records/call_events.py" and isinstance(extra, ast.Name):
            continue  # CallEvents.error builds its extra above the call (test_json_lines_carry_...)
        fields = dict(zip((getattr(k, "value", None) for k in extra.keys), extra.values)) \
            if isinstance(extra, ast.Dict) else {}
        literal = re.match(r"error ([a-z_]+\.[a-z_]+)", node.args[0].value)
        code = fields.get("code")
        if code is None:
            wrong.append(f"{where}:{line}: no extra code")
        elif literal and not (isinstance(code, ast.Constant) and code.value == literal.group(1)):
            wrong.append(f"{where}:{line}: logs {literal.group(1)}, its code field is {ast.unparse(code)}")
    assert not wrong, wrong
