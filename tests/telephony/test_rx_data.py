"""The guard reads pjsip_rx_data at one wheel's offsets: it must refuse any other build (issue #17, item 7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voicebox.telephony import rx_data
from voicebox.telephony.probe import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_pinned_wheel_is_the_one_the_offsets_are_for():
    pin = next(line for line in (ROOT / "pyproject.toml").read_text().splitlines() if "pjsua2-python==" in line)
    assert pin.strip().strip('",') == f"pjsua2-python=={rx_data.PJSUA2_VERSION}"
    rx_data.check_version()  # and it is what this venv has


def test_another_version_is_refused_in_one_line_naming_both():
    with pytest.raises(rx_data.GuardUnavailable) as e:
        rx_data.check_version(installed="2.16", expected="2.15.1.post1")
    msg = str(e.value)
    assert "\n" not in msg and "pjsua2-python 2.16 is installed" in msg and "pjsua2-python==2.15.1.post1" in msg


def _selftest(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "tests/telephony/guard_selftest.py"), str(free_port()), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_self_test_passes_on_the_pinned_wheel():
    assert _selftest() == {"installed": True, "error": ""}


@pytest.mark.parametrize("msg_buf", [rx_data.LAYOUT.msg_buf - 8, rx_data.LAYOUT.msg_buf + 8])
def test_self_test_refuses_a_wrong_offset(msg_buf):
    res = _selftest("--msg-buf", str(msg_buf))
    assert not res["installed"]
    assert f"pjsua2-python {rx_data.installed_version()}: pjsip_rx_data is not laid out" in res["error"], res
    assert f"+{msg_buf}" in res["error"], res


def test_install_refuses_a_version_it_has_no_offsets_for():
    res = _selftest("--expect-version", "0.0.1")
    assert not res["installed"] and f"pjsua2-python {rx_data.installed_version()} is installed" in res["error"], res
