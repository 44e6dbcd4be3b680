"""Overload: admission from measured CPU, and floods that must not hurt the call in progress."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    CORPUS, HOST, SCENARIOS, _sipp_exe, caller_cmd, free_port, sip_options, sipp, start_server, stop_server,
)
from tests.e2e.test_edge import load, wait_idle

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory):
    """Three calls at most, none past 2 % CPU with a call up, 10 requests/s from one source."""
    config = (
        "[sip]\nrtp_port = 46000\nmax_calls = 3\nadmit_cpu_max_fraction = 0.02\nload_window_s = 3\n"
        "source_requests_per_s = 10\nsource_burst_requests = 20\nrtp_timeout_s = 4\nretry_after_s = 7\n"
    )
    server = start_server(tmp_path_factory.mktemp("busy"), config)
    yield server
    stop_server(server)


def proc_counts(pid: int) -> tuple[int, int]:
    """Open file descriptors and threads of ``pid``, from /proc."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    return fds, threads


def hold_call(server, tmp_path: Path, wav: str | None, **opts) -> subprocess.Popen:
    before = server.log_text().count("media active")
    proc = subprocess.Popen(
        caller_cmd(server.uri, "PCMU", [WAV / wav] if wav else [], tmp_path / "heard.wav", tmp_path / "call.json",
                   **opts),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 30
    while server.log_text().count("media active") == before:
        assert time.monotonic() < deadline and proc.poll() is None, "the held call never came up"
        time.sleep(0.2)
    return proc


def flood(scenario: str, port: int, rate: int, count: int) -> subprocess.Popen:
    cmd = [_sipp_exe(), f"{HOST}:{port}", "-sf", str(SCENARIOS / scenario), "-i", HOST, "-p", str(free_port()),
           "-mp", str(free_port()), "-r", str(rate), "-m", str(count), "-nostdin", "-timeout", "60s"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)


def test_call_refused_for_cpu_with_503_and_retry_after(busy_server, tmp_path):
    wait_idle(busy_server.port, 30)
    holder = hold_call(busy_server, tmp_path, "hours_saturday_0.wav")
    try:
        time.sleep(2)  # the greeting and the first turn keep the models busy
        calls, _, cpu = load(busy_server.port)
        assert calls == 1 and cpu > 0.02, (calls, cpu)
        proc = sipp("invite_expect_busy.xml", busy_server.port)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert re.search(r"call rejected status=503 reason=cpu active=1 load=calls=1/3; cpu=0\.\d\d",
                         busy_server.log_text())
        # Refusing calls, still answering OPTIONS, with the load a dispatcher needs.
        assert load(busy_server.port)[0] == 1
    finally:
        holder.communicate(timeout=150)


def test_flood_is_rate_limited_and_call_in_progress_keeps_its_audio(busy_server, tmp_path, transcribe):
    wait_idle(busy_server.port, 40)
    time.sleep(3)  # the source's bucket refills after earlier tests
    holder = hold_call(busy_server, tmp_path, "hours_saturday_0.wav", wait_hangup_s=5)
    time.sleep(1)
    # The baseline has one call up (its RTP sockets, its pipeline threads): what the first call
    # opens for good (onnxruntime's cache db) is then already counted.
    fds0, threads0 = proc_counts(busy_server.proc.pid)
    floods = [flood("flood_options.xml", busy_server.port, 400, 2000),
              flood("flood_invite_cancel.xml", busy_server.port, 60, 300)]
    for f, sent in zip(floods, (2000, 300)):
        out, _ = f.communicate(timeout=90)
        # sipp counts a flood "call" failed when an answer races its end: 1 is fine, 255 is not.
        assert f.returncode in (0, 1), out[-3000:]
        assert re.search(rf"Outgoing calls created\s*\|\s*\d+\s*\|\s*{sent}\b", out), out[-3000:]
    out, _ = holder.communicate(timeout=150)
    assert holder.returncode == 0, out[-3000:]
    # The call that was up all along heard the agent's answer.
    heard = transcribe(tmp_path / "heard.wav")
    assert re.search(r"saturday[^.]*(?<!\d)(9|nine)(?!\d)", heard), heard
    log = busy_server.log_text()
    assert "source rate-limited src=127.0.0.1" in log
    # Every call the flood got in ends (RTP timeout, 4 s); nothing is left holding sockets or threads.
    wait_idle(busy_server.port, 60)
    time.sleep(3)  # pipelines of ended calls finish their threads
    fds1, threads1 = proc_counts(busy_server.proc.pid)
    assert fds1 <= fds0 + 4, (fds0, fds1)
    assert threads1 <= threads0 + 4, (threads0, threads1)
    assert sip_options(busy_server.port) == "SIP/2.0 200 OK"
    assert "Traceback" not in log
