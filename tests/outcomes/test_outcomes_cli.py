"""`voicebox outcomes`, run as the operator runs it: list and filter, show, export, retry a
dead-lettered delivery; `voicebox purge` applies retention to outcomes too (issue #19, item 4)."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.outcomes.receiver import SECRET, Receiver
from voicebox.outcomes.draft import OutcomeDraft
from voicebox.outcomes.outbox import Outbox, Route
from voicebox.outcomes.settings import Retries, Secret, WebhookConfig
from voicebox.outcomes.store import OutcomeStore, outcomes_path
from voicebox.outcomes.webhook import WebhookChannel

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400.0


def voicebox(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voicebox", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def message(name: str, text: str, agent: str = "clinic") -> OutcomeDraft:
    return OutcomeDraft(kind="message", agent=agent, session_id="ab12cd34", fields={"name": name, "message": text},
                        summary=f"Message from {name}", form="message")


@pytest.fixture
def data(tmp_path):
    """Two outcomes over a webhook that answers 422 to the first: one dead-lettered, one delivered;
    and one of another agent with no channel."""
    data = tmp_path / "data"
    store = OutcomeStore(outcomes_path(data), {"clinic": ["webhook"]})
    with Receiver() as rx:
        dead = store.record(message("Dana", "Call me back"))
        ok = store.record(message("Lee", "Running late"))
        other = store.record(message("Sam", "Hello", agent="garage"))
        rx.answer = lambda key: 422 if key == dead else 200
        cfg = WebhookConfig(url=rx.url, secret=Secret(value=SECRET))
        route = Route("clinic", WebhookChannel(cfg), Retries())
        box = Outbox(store, [route])
        box.step(route)
        box.step(route)
    store.close()
    return data, {"dead": dead, "ok": ok, "other": other}


def test_list_shows_every_outcome_and_a_dead_letter_with_its_reason(data):
    d, ids = data
    r = voicebox("outcomes", "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == [ids["dead"], ids["ok"], ids["other"]]
    row = next(line for line in lines if line.startswith(ids["dead"]))
    assert "webhook:dead" in row
    reason = lines[lines.index(row) + 1]
    assert "webhook dead after 1 tries: HTTP 422 Unprocessable Entity" in reason and "not a number" in reason
    assert "webhook:delivered" in next(line for line in lines if line.startswith(ids["ok"]))


def test_list_filters(data):
    d, ids = data
    dead = voicebox("outcomes", "list", "--state", "dead", "--data-dir", str(d))
    assert dead.returncode == 0 and dead.stdout.split()[0] == ids["dead"]
    assert ids["ok"] not in dead.stdout
    garage = voicebox("outcomes", "list", "--agent", "garage", "--data-dir", str(d))
    assert garage.stdout.split()[0] == ids["other"] and ids["dead"] not in garage.stdout
    assert "no outcomes match" in voicebox("outcomes", "list", "--kind", "booking", "--data-dir", str(d)).stdout
    assert ids["dead"] in voicebox("outcomes", "list", "--since", "1h", "--data-dir", str(d)).stdout
    assert "no outcomes match" in voicebox("outcomes", "list", "--since", "2999-01-01", "--data-dir", str(d)).stdout
    bad = voicebox("outcomes", "list", "--since", "last tuesdayish", "--data-dir", str(d))
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_show_prints_one_outcome_in_full_by_a_unique_prefix(data):
    d, ids = data
    r = voicebox("outcomes", "show", ids["dead"][:20], "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["id"] == ids["dead"] and shown["fields"] == {"name": "Dana", "message": "Call me back"}
    assert shown["deliveries"][0]["state"] == "dead"
    assert shown["deliveries"][0]["last_error"].startswith("HTTP 422")
    missing = voicebox("outcomes", "show", "ffff", "--data-dir", str(d))
    assert missing.returncode == 1 and "no outcome matches" in missing.stderr


def test_export_as_json_lines_and_as_a_private_csv_file(data, tmp_path):
    d, ids = data
    r = voicebox("outcomes", "export", "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["id"] for x in rows] == [ids["dead"], ids["ok"], ids["other"]]
    assert rows[1]["deliveries"][0]["state"] == "delivered" and rows[2]["deliveries"] == []
    out = tmp_path / "export.csv"
    r = voicebox("outcomes", "export", "--format", "csv", "--out", str(out), "--agent", "clinic", "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [t["id"] for t in table] == [ids["dead"], ids["ok"]]
    assert table[0]["field.message"] == "Call me back" and table[0]["deliveries"] == "webhook:dead"
    assert table[0]["last_error"].startswith("webhook: HTTP 422")


def test_retry_sends_a_dead_lettered_outcome_again(data):
    d, ids = data
    r = voicebox("outcomes", "retry", ids["dead"], "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    assert voicebox("outcomes", "retry", ids["ok"], "--data-dir", str(d)).returncode == 1  # nothing dead there
    store = OutcomeStore(outcomes_path(d), {"clinic": ["webhook"]})
    with Receiver() as rx:  # the receiver fixed, as a running serve's outbox would find it
        route = Route("clinic", WebhookChannel(WebhookConfig(url=rx.url, secret=Secret(value=SECRET))), Retries())
        Outbox(store, [route]).step(route)
        assert rx.order == [ids["dead"]]
    store.close()
    listed = voicebox("outcomes", "list", "--state", "dead", "--data-dir", str(d))
    assert "no outcomes match" in listed.stdout


def test_no_database_yet_is_not_an_error_for_list(tmp_path):
    r = voicebox("outcomes", "--data-dir", str(tmp_path))
    assert r.returncode == 0 and "no outcomes stored" in r.stderr
    assert not outcomes_path(tmp_path).exists()  # looking does not create it


def test_purge_applies_retention_to_outcomes(tmp_path):
    d = tmp_path / "data"
    store = OutcomeStore(outcomes_path(d), {}, clock=lambda: time.time() - 40 * DAY)
    old = store.record(message("Dana", "old"))
    store.clock = time.time
    new = store.record(message("Lee", "new"))
    store.close()
    r = voicebox("purge", "--older-than", "30d", "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    assert "removed 1 outcomes" in r.stdout
    store = OutcomeStore(outcomes_path(d))
    assert [o.id for o in store.query()] == [new] and store.get(old) is None
    store.close()
