"""A real Prometheus scrapes a real `voicebox serve` (issue #21, item 5).

The Debian ``prometheus`` binary runs on a free loopback port with the shipped alert rules; the
dashboard's queries and the rules then run against what it scraped. The server logs in JSON
(``log.format = "json"``), so its start-up log is checked line by line too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, free_port, start_server, stop_server, wait_for
from tests.test_monitoring import ALERTS, dashboard_queries

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary: apt-get install prometheus (.ci/run does)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("scraped"),
                          '[sip]\nrtp_port = 56000\nrtp_port_range = 100\n[log]\nformat = "json"\n')
    yield server
    stop_server(server)


class Prometheus:
    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log

    def api(self, path: str, **params: str) -> dict:
        """GET /api/v1/<path>; an error answer (a bad query: HTTP 400) is returned, not raised."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

    def query(self, promql: str) -> list[dict]:
        answer = self.api("query", query=promql)
        assert answer["status"] == "success", (promql, answer)
        return answer["data"]["result"]


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = tmp / "prometheus.yml"
    # JSON is YAML. 1 s intervals: the test waits seconds, not the default minute.
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "voicebox", "static_configs": [{"targets": [f"{HOST}:{server.metrics_port}"]}]}],
    }))
    log = tmp / "prometheus.log"
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address={HOST}:{port}"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    prom = Prometheus(f"http://{HOST}:{port}", log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        assert wait_for(ready, 60), f"prometheus not ready in 60 s:\n{log.read_text()[-3000:]}"
        yield prom
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_prometheus_scrapes_the_build_and_the_calls(server, prometheus):
    target = f"{HOST}:{server.metrics_port}"
    scraped = lambda: prometheus.query("voicebox_build_info") and prometheus.query("voicebox_calls_active")  # noqa: E731
    assert wait_for(scraped, 60), f"nothing scraped in 60 s:\n{prometheus.log.read_text()[-3000:]}"
    (build,) = prometheus.query("voicebox_build_info")
    assert build["metric"]["job"] == "voicebox" and build["metric"]["instance"] == target
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", build["metric"]["version"])
    assert build["metric"]["pjsua2"] != "unknown" and build["metric"]["llama_cpp"] != "unknown"
    assert build["value"][1] == "1"
    active = prometheus.query("voicebox_calls_active")
    assert active and all(s["value"][1] == "0" for s in active)  # exported per agent at 0 before a call
    assert {s["metric"]["agent"] for s in active}
    (up,) = prometheus.query(f'up{{job="voicebox", instance="{target}"}}')
    assert up["value"][1] == "1"
    (rss,) = prometheus.query("process_resident_memory_bytes")
    assert float(rss["value"][1]) > 100 * 2**20  # the speech models live in this process


def test_every_dashboard_query_runs_on_the_scraped_data(server, prometheus):
    assert wait_for(lambda: prometheus.query("process_cpu_seconds_total"), 60)
    errors = {}
    for where, promql in dashboard_queries():
        answer = prometheus.api("query", query=promql)
        if answer["status"] != "success":
            errors[where] = answer.get("error")
    assert not errors, errors
    # These panels have data before any call (the others wait for calls, turns or errors).
    queries = dict(dashboard_queries())
    for panel in ("Calls active/A", "Calls active by agent/A", "Resident memory/A", "Uptime/A", "Build/A"):
        assert prometheus.query(queries[panel]), (panel, queries[panel])


def test_the_alert_rules_load_evaluate_and_stay_quiet_on_a_healthy_server(server, prometheus):
    def evaluated() -> list[dict] | None:
        groups = prometheus.api("rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r["health"] != "unknown" for r in rules) else None

    assert wait_for(evaluated, 60), prometheus.api("rules")
    rules = evaluated()
    assert len(rules) == 6
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    assert wait_for(lambda: prometheus.query("voicebox_build_info"), 60)
    assert prometheus.api("alerts")["data"]["alerts"] == []


def test_the_servers_log_is_one_json_object_per_line(server):
    lines = server.log_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    started = [r for r in records if r["logger"] == "voicebox" and r["message"].startswith("metrics on http://")]
    assert started and set(started[0]) >= {"timestamp", "level", "logger", "message"}
    # No Python log line in the text layout slipped past the JSON formatter.
    text = [line for line in lines if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", line)]
    assert not text, text[:5]
