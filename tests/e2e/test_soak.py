"""A one-minute soak (the ten-minute one is `make soak`): no admitted call fails, nothing grows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_short_soak_has_no_failed_calls_and_flat_resources(tmp_path):
    out = tmp_path / "soak"
    proc = subprocess.run(
        [sys.executable, "benchmarks/soak.py", "--duration-s", "60", "--out", str(out), "--no-png"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.with_suffix(".json").read_text())
    summary = {k: v for k, v in r.items() if k != "samples"}
    assert r["calls_placed"] >= 14, summary
    assert r["admitted_calls_failed"] == 0, summary
    assert r["calls_completed"] + r["calls_rejected_by_admission"] == r["calls_placed"], summary
    assert r["server_calls_started"] == r["server_calls_ended"] and r["idle_at_end"], summary
    assert r["server_tracebacks"] == 0 and r["server_exit_code"] == 0, summary
    # Flat: back to the post-warm-up baseline once the calls are over (bounds generous: 2 shared cores).
    assert r["fd_growth"] <= 2, summary
    assert r["thread_growth"] <= 2, summary
    assert r["rss_growth_mb"] <= 60, summary
