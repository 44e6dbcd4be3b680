"""`voicebox serve` on a pjsua2 build the SIP guard cannot read: it exits 2 with one line that
names the version, before answering anything (issue #17, item 7). The wrong build is simulated
by this test's own launcher, which swaps the guard's pinned version or one offset."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.conftest import HOST, ROOT, free_port
from voicebox.telephony import rx_data

pytestmark = pytest.mark.e2e

LAUNCH = """
import dataclasses, sys
from voicebox.telephony import rx_data
{patch}
from voicebox.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("patch, says", [
    # Checked before the models load.
    ("rx_data.PJSUA2_VERSION = '2.14.1'",
     f"pjsua2-python {rx_data.installed_version()} is installed, but the SIP guard reads pjsip_rx_data at the "
     "offsets of 2.14.1"),
    # The self-test, once pjsua listens: msg_buf 8 bytes off, as a wheel with another struct would be.
    (f"rx_data.LAYOUT = dataclasses.replace(rx_data.LAYOUT, msg_buf={rx_data.LAYOUT.msg_buf + 8})",
     f"pjsua2-python {rx_data.installed_version()}: pjsip_rx_data is not laid out as the SIP guard reads it"),
], ids=["version", "offset"])
def test_serve_refuses_a_pjsua2_build_it_cannot_read(tmp_path, patch, says):
    cfg = tmp_path / "voicebox.toml"
    cfg.write_text("[sip]\nrtp_port = 54100\n[metrics]\nenabled = false\n")
    out = subprocess.run(
        [sys.executable, "-c", LAUNCH.format(patch=patch), "serve", "--config", str(cfg), "--sip-host", HOST,
         "--sip-port", str(free_port()), "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, stdin=subprocess.DEVNULL,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 2, text[-3000:]
    assert "Traceback" not in text and "Assertion" not in text, text[-3000:]
    lines = [line for line in text.splitlines() if says in line]
    assert len(lines) == 1 and lines[0].startswith("voicebox: "), text[-3000:]
    assert "listening on sip:" not in text, text[-3000:]
