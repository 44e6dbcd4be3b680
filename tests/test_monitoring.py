"""deploy/grafana/voicebox.json and deploy/prometheus/alerts.yml against the metrics voicebox exports.

A metric renamed in voicebox/telemetry/metrics.py breaks a panel or an alert silently (an empty
graph, an alert that never fires); here it breaks a test. The PromQL itself is checked by
promtool (Debian package ``prometheus``), and the alerts fire on made-up series in
deploy/prometheus/alerts_test.yml. tests/e2e/test_monitoring.py runs them against a real
Prometheus scraping a real ``voicebox serve``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # PyYAML: faster-whisper's huggingface_hub needs it, so it is always installed

from voicebox.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "voicebox.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
# What Grafana puts in place of its variables before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$instance": ".*", "$agent": ".*"}
# Series Prometheus makes itself for every target rather than reads from /metrics.
PROMETHEUS_OWN = {"up"}
# The exported sample names of a metric family, by its type (the text format's suffixes).
SUFFIXES = {
    "counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"), "info": ("_info",), "stateset": ("",), "unknown": ("",),
}


def exported_names(metrics: Metrics) -> set[str]:
    """Every sample name the registry can export, labelled series created yet or not."""
    return {f.name + suffix for f in metrics.registry.collect() for suffix in SUFFIXES[f.type]}


def metric_names(promql: str) -> set[str]:
    """Metric names in a query: identifiers before a label matcher ``{``, and any ``voicebox_``,
    ``process_`` or ``python_`` identifier (label values and Grafana's ``$__`` variables aside)."""
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)  # label values are not names
    code = re.sub(r"\$\w+", "", code)
    selected = set(re.findall(r"(?<![\w:])([a-zA-Z_:][\w:]*)\s*\{", code))
    prefixed = set(re.findall(r"(?<![\w:])((?:voicebox|process|python)_[\w:]*)", code))
    return selected | prefixed


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL as Prometheus receives it) for every panel target."""
    out = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(var, value)
            out.append((f'{panel["title"]}/{target["refId"]}', expr))
    return out


def alert_exprs() -> dict[str, str]:
    """alert name -> expr."""
    return {r["alert"]: r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}


def test_the_dashboard_is_an_importable_grafana_dashboard_with_a_datasource_variable():
    d = dashboard()
    assert d["title"] and d["uid"] and d["schemaVersion"] >= 36 and d.get("id") is None
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in p["targets"]), p["title"]
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"]["uid"] == "${datasource}", v["name"]


def test_the_panels_asked_for_are_there():
    titles = " | ".join(p["title"] for p in dashboard()["panels"]).lower()
    for words in ("calls active", "calls answered", "calls rejected", "voice-to-voice p50 / p95", "stage latency p95",
                  "barge-ins", "fillers", "errors per minute by code", "budget misses", "underruns",
                  "model worker restarts", "resident memory", "cpu"):
        assert words in titles, words


def test_every_metric_a_panel_or_variable_queries_is_exported():
    exported = exported_names(Metrics())
    queries = dashboard_queries() + [
        (f'variable {v["name"]}', v["definition"]) for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    unknown = {}
    for where, expr in queries:
        names = metric_names(expr)
        assert names, f"{where}: no metric found in {expr!r}"
        if names - exported:
            unknown[where] = sorted(names - exported)
    assert not unknown, unknown


def test_every_voicebox_metric_has_a_panel():
    """A metric added to metrics.py and left off the dashboard: operators never see it."""
    used = set().union(*(metric_names(expr) for _, expr in dashboard_queries()))
    families = [f for f in Metrics().registry.collect() if f.name.startswith("voicebox_")]
    unseen = {f.name for f in families if not {f.name + suffix for suffix in SUFFIXES[f.type]} & used}
    assert not unseen, sorted(unseen)


def test_every_metric_an_alert_uses_is_exported():
    exprs = alert_exprs()
    assert len(exprs) == 6 and "VoiceboxDown" in exprs  # the parse found the rules
    exported = exported_names(Metrics()) | PROMETHEUS_OWN
    unknown = {name: sorted(metric_names(e) - exported) for name, e in exprs.items() if metric_names(e) - exported}
    assert not unknown, unknown
    assert all(metric_names(e) for e in exprs.values())


def test_metric_names_are_read_out_of_promql():
    # The parser the two tests above rely on: it must see a renamed metric.
    q = 'histogram_quantile(0.95, sum by (le) (rate(voicebox_v2v_seconds_bucket{agent=~"$agent", code="a_b"}[$__rate_interval])))'
    assert metric_names(q) == {"voicebox_v2v_seconds_bucket"}
    assert metric_names('time() - max(process_start_time_seconds{instance=~".*"})') == {"process_start_time_seconds"}
    assert metric_names('up{job="voicebox"} == 0') == {"up"}
    assert {"voicebox_voice_to_voice_seconds_bucket", "voicebox_calls_total", "process_cpu_seconds_total",
            "voicebox_build_info"} <= exported_names(Metrics())


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not found: apt-get install prometheus (.ci/run installs it)")
    return path


def _run(*args: str, cwd: Path | None = None) -> None:
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_accepts_the_alert_rules():
    _run(_promtool(), "check", "rules", str(ALERTS))


def test_each_alert_fires_on_series_that_should_page_and_no_others():
    promtool = _promtool()
    tested = set(re.findall(r"alertname: (\w+)", ALERTS_TEST.read_text()))
    assert tested == set(alert_exprs()), "every alert in alerts.yml has a case in alerts_test.yml"
    _run(promtool, "test", "rules", ALERTS_TEST.name, cwd=ALERTS_TEST.parent)


def test_every_dashboard_query_is_valid_promql(tmp_path):
    """promtool parses each panel's query as the expr of a recording rule."""
    promtool = _promtool()
    queries = dashboard_queries()
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard_query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    _run(promtool, "check", "rules", str(path))
