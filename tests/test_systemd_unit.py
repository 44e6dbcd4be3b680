"""deploy/systemd/voicebox.service: systemd itself finds nothing wrong with it, and it keeps its promises.

`systemd-analyze verify` checks that ExecStart='s program exists, and /opt/voicebox is not
installed here: the unit is verified as a copy whose ExecStart= names a real executable, every
other line as shipped. Its exit status is 0 even for unknown keys and unparsable values (it only
prints them), so the tests require its output to be empty.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from voicebox.config import Config

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "systemd" / "voicebox.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian: apt-get install systemd; .ci/run does)")


def _settings(text: str) -> dict[str, list[str]]:
    """Each key's values in order (comments left out): ``Environment=`` and friends repeat."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _seconds(value: str) -> float:
    """A systemd time span as this unit writes them: ``30s``, ``11min``, ``1h``."""
    m = re.fullmatch(r"(\d+)\s*(s|min|h)", value)
    assert m, f"unexpected time span {value!r}"
    return int(m.group(1)) * {"s": 1, "min": 60, "h": 3600}[m.group(2)]


def _verify(unit_text: str, tmp_path: Path) -> str:
    """`systemd-analyze verify` of ``unit_text`` with ExecStart='s program swapped for a real one."""
    program = _settings(unit_text)["ExecStart"][0].split()[0]
    assert program.startswith("/"), program
    stub = tmp_path / "voicebox"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    copy = tmp_path / "voicebox.service"  # the name matters: verify reads the type from the suffix
    copy.write_text(unit_text.replace(f"ExecStart={program} ", f"ExecStart={stub} "))
    assert str(stub) in copy.read_text()
    out = subprocess.run([ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    return (out.stdout + out.stderr).strip() + ("" if out.returncode == 0 else f"\n(exit {out.returncode})")


@needs_analyze
def test_systemd_analyze_verify_finds_nothing(tmp_path):
    assert _verify(UNIT.read_text(), tmp_path) == ""


@needs_analyze
def test_the_commented_examples_verify_too(tmp_path):
    # The credential lines a reader uncomments for a PBX password must be valid as written.
    text = re.sub(r"^#((?:LoadCredential|Environment)=)", r"\1", UNIT.read_text(), flags=re.M)
    examples = _settings(text)
    assert "VOICEBOX_SIP__REGISTER__PASSWORD_FILE=%d/register-password" in examples["Environment"]
    assert "register-password:/etc/voicebox/register-password" in examples["LoadCredential"]
    assert _verify(text, tmp_path) == ""


@needs_analyze
def test_verify_would_report_a_mistake(tmp_path):
    # Else an empty output above proves nothing: this systemd-analyze does read the settings.
    text = UNIT.read_text().replace("NoNewPrivileges=yes", "NoNewPrivileges=perhaps\nDynamicUsr=yes")
    out = _verify(text, tmp_path)
    assert "perhaps" in out and "DynamicUsr" in out, out


def test_the_unit_is_a_sandboxed_notify_service():
    s = _settings(UNIT.read_text())
    one = {k: v[-1] for k, v in s.items()}
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main"
    assert one["ExecStart"].split()[1:] == ["serve", "--config", "/etc/voicebox/voicebox.toml"]
    assert one["DynamicUser"] == "yes" and one["StateDirectory"] == "voicebox"
    assert "VOICEBOX_DATA_DIR=/var/lib/voicebox" in s["Environment"]  # data_dir is the state directory
    assert one["ProtectSystem"] == "strict" and one["ProtectHome"] == "yes" and one["PrivateTmp"] == "yes"
    assert one["NoNewPrivileges"] == "yes"
    assert s["CapabilityBoundingSet"] == [""] and s["AmbientCapabilities"] == [""]  # no capabilities at all
    assert one["RestrictAddressFamilies"].split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
    assert one["Restart"] == "on-failure" and one["KillSignal"] == "SIGTERM"
    # Not in force (left out on purpose: see the comment in the unit).
    assert "MemoryDenyWriteExecute" not in s


def test_stop_outlasts_the_drain_and_the_watchdog_is_pinged_in_time():
    one = {k: v[-1] for k, v in _settings(UNIT.read_text()).items()}
    drain_s = Config().sip.drain_timeout_s
    # systemd SIGKILLs at TimeoutStopSec: the drain, then hanging up and closing, must fit.
    assert _seconds(one["TimeoutStopSec"]) >= drain_s + 30, (one["TimeoutStopSec"], drain_s)
    assert _seconds(one["TimeoutStartSec"]) >= 120  # model loading, split models joined on first start
    # serve pings at half WatchdogSec from a loop that turns every few ms; 30 s leaves room for a
    # busy moment without hiding a hung SIP thread for long.
    assert 10 <= _seconds(one["WatchdogSec"]) <= 120
