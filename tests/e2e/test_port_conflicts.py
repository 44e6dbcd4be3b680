"""A second `voicebox serve` on ports that are taken: one line naming the setting, exit 2 (issue #21, item 4).

Before, the second server loaded its models for seconds and then died on the metrics port with a
Python traceback and "terminate called without an active exception". The taken ports here are
held by a real running server (SIP) and by plain sockets (metrics). A launcher that skips the
preflight check plays the port being taken while the models load, so the real binds are tried
and must fail as cleanly.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.e2e.conftest import HOST, ROOT, free_port, start_server, stop_server

pytestmark = pytest.mark.e2e

LAUNCH = """
import sys
{patch}
from voicebox.cli import main
sys.exit(main(sys.argv[1:]))
"""
SKIP_PREFLIGHT = "import voicebox.preflight as p; p.check_ports = lambda cfg: None"


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("first"), "[sip]\nrtp_port = 54300\nrtp_port_range = 100\n")
    yield server
    stop_server(server)


def _second(tmp_path, sip_port: int, metrics_port: int, patch: str = "") -> subprocess.CompletedProcess:
    cfg = tmp_path / "voicebox.toml"
    cfg.write_text(f"[sip]\nrtp_port = 54500\nrtp_port_range = 100\n[metrics]\nport = {metrics_port}\n")
    return subprocess.run(
        [sys.executable, "-c", LAUNCH.format(patch=patch), "serve", "--config", str(cfg), "--sip-host", HOST,
         "--sip-port", str(sip_port), "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, cwd=ROOT, timeout=240)


def _one_clean_line(out: subprocess.CompletedProcess) -> str:
    both = out.stdout + out.stderr
    assert out.returncode == 2, both[-3000:]
    assert "Traceback" not in both and "terminate called" not in both and "Assertion" not in both, both[-3000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("voicebox: ")]
    assert len(lines) == 1, out.stderr[-3000:]
    return lines[0]


def test_a_taken_sip_port_is_one_line_before_the_models_load(first, tmp_path):
    out = _second(tmp_path, first.port, free_port())
    line = _one_clean_line(out)
    assert line == (f"voicebox: sip.port: {HOST}:{first.port}/UDP is in use by another program (another "
                    "voicebox?); set sip.port to a free port")
    assert "models loaded" not in out.stdout + out.stderr


def test_a_taken_metrics_port_is_one_line_before_the_models_load(first, tmp_path):
    out = _second(tmp_path, free_port(), first.metrics_port)
    assert _one_clean_line(out).startswith(f"voicebox: metrics.port: {HOST}:{first.metrics_port}/TCP is in use")
    assert "models loaded" not in out.stdout + out.stderr


def test_a_sip_port_taken_while_the_models_load_is_one_line_too(first, tmp_path):
    out = _second(tmp_path, first.port, free_port(), SKIP_PREFLIGHT)
    line = _one_clean_line(out)
    assert line.startswith(f"voicebox: sip.port: {HOST}:{first.port}/UDP cannot be opened ("), line
    assert line.endswith("; set sip.port to a free port")
    assert "models loaded" in out.stdout + out.stderr  # it got this far: the real bind said no


def test_a_metrics_port_taken_while_the_models_load_is_one_line_too(first, tmp_path):
    with socket.socket() as held:
        held.bind((HOST, 0))
        held.listen()
        port = held.getsockname()[1]
        out = _second(tmp_path, free_port(), port, SKIP_PREFLIGHT)
    line = _one_clean_line(out)
    assert line.startswith(f"voicebox: metrics.port: {HOST}:{port}/TCP cannot be bound ("), line


def test_the_first_server_is_untouched(first):
    from tests.e2e.conftest import sip_options

    assert first.proc.poll() is None
    assert sip_options(first.port, 2.0) == "SIP/2.0 200 OK"
