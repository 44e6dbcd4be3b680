"""Metrics: an own registry, served over HTTP on the address asked for."""

from __future__ import annotations

import platform
import time
import urllib.request
from importlib import metadata

from voicebox.telemetry import metrics as metrics_module
from voicebox.telemetry.metrics import Metrics, build_versions


def _get(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        assert r.status == 200
        return r.read().decode()


def test_serve_on_port_zero_returns_the_bound_port_and_serves_metrics():
    m = Metrics()
    port = m.serve("127.0.0.1", 0)
    assert isinstance(port, int) and 0 < port < 65536
    m.calls_total.labels("dental").inc()
    m.calls_total.labels("dental").inc()
    m.errors.labels("dental", "sip.rtp_timeout").inc()
    body = _get(port)
    assert 'voicebox_calls_total{agent="dental"} 2.0' in body
    assert 'voicebox_errors_total{agent="dental",code="sip.rtp_timeout"} 1.0' in body
    assert "# TYPE voicebox_turn_stage_seconds histogram" in body
    # its own registry: the global default registry's collectors (GC) are not in it
    assert "python_gc_objects_collected_total" not in body


def test_each_instance_has_its_own_registry():
    a, b = Metrics(), Metrics()  # no "Duplicated timeseries" error
    a.calls_total.labels("dental").inc()
    assert a.registry.get_sample_value("voicebox_calls_total", {"agent": "dental"}) == 1
    assert b.registry.get_sample_value("voicebox_calls_total", {"agent": "dental"}) is None


def test_added_agents_are_exported_at_zero_before_their_first_call():
    m = Metrics()
    m.add_agents(["riverside_dental", "harbor_plumbing"])
    m.calls_total.labels("harbor_plumbing").inc()
    port = m.serve("127.0.0.1", 0)
    body = _get(port)
    assert 'voicebox_calls_total{agent="riverside_dental"} 0.0' in body
    assert 'voicebox_calls_total{agent="harbor_plumbing"} 1.0' in body
    assert 'voicebox_calls_active{agent="riverside_dental"} 0.0' in body
    assert 'voicebox_playout_underruns_total{agent="harbor_plumbing"} 0.0' in body


def test_two_servers_get_different_ports():
    a, b = Metrics(), Metrics()
    pa, pb = a.serve("127.0.0.1", 0), b.serve("127.0.0.1", 0)
    assert pa != pb
    a.add_agents(["x"])
    b.add_agents(["x"])
    a.fillers.labels("x").inc()
    assert 'voicebox_fillers_total{agent="x"} 1.0' in _get(pa)
    assert 'voicebox_fillers_total{agent="x"} 0.0' in _get(pb)


def test_build_info_names_the_versions_this_process_runs():
    m = Metrics()
    (sample,) = [s for f in m.registry.collect() if f.name == "voicebox_build_info" for s in f.samples]
    assert sample.value == 1
    assert sample.labels == {
        "version": metadata.version("voicebox"), "pjsua2": metadata.version("pjsua2-python"),
        "llama_cpp": metadata.version("llama-cpp-python"), "python": platform.python_version(),
    }
    body = _get(m.serve("127.0.0.1", 0))
    assert f'voicebox_build_info{{llama_cpp="{sample.labels["llama_cpp"]}",' in body


def test_a_package_not_installed_is_unknown_not_an_error(monkeypatch):
    monkeypatch.setitem(metrics_module.BUILD_PACKAGES, "pjsua2", "no-such-distribution-voicebox")
    assert build_versions()["pjsua2"] == "unknown"


def test_the_process_and_platform_are_exported():
    m = Metrics()
    rss = m.registry.get_sample_value("process_resident_memory_bytes")
    assert rss is not None and rss > 10 * 2**20  # this Python with numpy and pydantic loaded
    start = m.registry.get_sample_value("process_start_time_seconds")
    assert start is not None and start <= time.time()
    assert m.registry.get_sample_value("process_cpu_seconds_total") > 0
    assert m.registry.get_sample_value("process_open_fds") > 0
    py = platform.python_version_tuple()
    assert m.registry.get_sample_value(
        "python_info", {"implementation": platform.python_implementation(), "major": py[0], "minor": py[1],
                        "patchlevel": py[2], "version": platform.python_version()}) == 1
