"""Several boxes behind Kamailio's dispatcher (sip/kamailio/kamailio.cfg), all on loopback.

Two `voicebox serve` boxes are shared by the tests of this module, which run in file order:
calls spread over both, a transfer's REFER goes through the proxy, then one box is killed (new
calls go to the other) and the last one is drained with SIGTERM during a call.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    CORPUS, HOST, agent_with_frontdesk, call, caller_cmd, free_port, sip_options, sipp_uas, start_server, stop_server,
    wait_for,
)
from voicebox.telephony import kamailio

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


class Cluster:
    def __init__(self, proxy_port: int, run: Path, proxy: subprocess.Popen, boxes: list, frontdesk_port: int) -> None:
        self.proxy_port = proxy_port
        self.run = run
        self.proxy = proxy
        self.boxes = boxes
        self.frontdesk_port = frontdesk_port

    @property
    def uri(self) -> str:
        return f"sip:agent@{HOST}:{self.proxy_port}"

    def proxy_log(self) -> str:
        return kamailio.log_text(self.run)

    def calls_per_box(self) -> list[int]:
        return [b.log_text().count("call start") for b in self.boxes]

    def alive(self) -> list:
        return [b for b in self.boxes if b.proc.poll() is None]


def _marked_down(cluster: Cluster, port: int, since: int = 0) -> bool:
    downs = [line for line in cluster.proxy_log().splitlines() if "dispatcher: box down" in line][since:]
    # "box down OPTIONS sip:H:P (<null>)" from the probe, "box down INVITE sip:agent@... (sip:H:P)" from a call
    return any(re.search(rf"sip:{re.escape(HOST)}:{port}\b", line) for line in downs)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    kamailio.kamailio_exe()  # a clear error if Debian's kamailio is missing (.ci/run installs it)
    tmp = tmp_path_factory.mktemp("cluster")
    frontdesk = free_port()
    agent = agent_with_frontdesk(tmp, frontdesk)
    dirs = [tmp / "box1", tmp / "box2"]
    for d in dirs:
        d.mkdir()
    configs = [f'agent = "{agent}"\n[sip]\nrtp_port = {rtp}\n' for rtp in (38000, 36000)]
    with ThreadPoolExecutor(2) as pool:  # both load their models at once
        futures = [pool.submit(start_server, d, c) for d, c in zip(dirs, configs)]
        boxes = [f.result() for f in futures]
    run = tmp / "kamailio"
    port = free_port()
    proxy = kamailio.start_dispatcher(run, HOST, port, [kamailio.Box(HOST, b.port) for b in boxes], ping_interval_s=1)
    c = Cluster(port, run, proxy, boxes, frontdesk)
    try:
        assert wait_for(lambda: sip_options(port, 0.5) == "SIP/2.0 200 OK", 15), c.proxy_log()[-3000:]
        yield c
    finally:
        kamailio.stop(proxy)
        errors = []
        for b in boxes:  # every box is stopped even if one of them fails to stop cleanly
            if b.proc.poll() is None:
                try:
                    stop_server(b)
                except AssertionError as e:
                    errors.append(e)
        if errors:
            raise errors[0]


def test_calls_spread_over_both_boxes_with_audio_both_ways(cluster, tmp_path, transcribe):
    before = cluster.calls_per_box()
    procs = []
    for i, (codec, wav) in enumerate((("PCMU", "hours_saturday_0.wav"), ("G722", "location_0.wav"))):
        d = tmp_path / f"c{i}"
        d.mkdir()
        procs.append((d, subprocess.Popen(caller_cmd(cluster.uri, codec, [WAV / wav], d / "heard.wav", d / "call.json"),
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
        time.sleep(1.5)  # the first call is counted before the second is dispatched
    for d, p in procs:
        out, _ = p.communicate(timeout=150)
        assert p.returncode == 0, out[-2000:]
    after = cluster.calls_per_box()
    # Dispatcher algorithm 10: the second call went to the box without a call.
    assert [a - b for a, b in zip(after, before)] == [1, 1], (before, after, cluster.proxy_log()[-3000:])
    heard = [transcribe(d / "heard.wav") for d, _ in procs]
    assert "saturday" in heard[0] and "springfield" in heard[1], heard  # each caller was heard and answered
    log = cluster.proxy_log()
    assert log.count("dispatch: call") >= 2 and "in-dialog BYE" in log  # BYE followed the record-route


def test_refer_from_the_agent_reaches_the_caller_through_the_proxy(cluster, tmp_path, transcribe):
    frontdesk = sipp_uas(cluster.frontdesk_port)
    try:
        res = call(cluster.uri, "PCMU", [WAV / "human_0.wav"], tmp_path, wait_hangup_s=20)
    finally:
        out, _ = frontdesk.communicate(timeout=70)
    # The Refer-To names the desk (with the caller's reason as display name and URI headers).
    target = re.search(r"<([^?>]+)", res["transfer_to"])
    assert target and target.group(1) == f"sip:frontdesk@{HOST}:{cluster.frontdesk_port}", res
    assert res["transfer_answered"] and frontdesk.returncode == 0, out[-2000:]
    assert res["disconnected_by"] == "agent", res
    log = cluster.proxy_log()
    box_ports = {b.port for b in cluster.boxes}
    refers = [line for line in log.splitlines() if "in-dialog REFER from" in line]
    assert refers and any(f":{p} to " in refers[-1] for p in box_ports), log[-3000:]
    assert "front desk" in transcribe(res["recording"])


def test_killed_box_gets_no_new_calls(cluster, tmp_path):
    victim, survivor = cluster.boxes
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    before = survivor.log_text().count("call start")
    procs = []
    for i in range(2):
        d = tmp_path / f"k{i}"
        d.mkdir()
        procs.append(subprocess.Popen(
            caller_cmd(cluster.uri, "PCMU", [], d / "heard.wav", d / "call.json", quiet_ms=500),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        ))
    for p in procs:
        out, _ = p.communicate(timeout=90)
        assert p.returncode == 0, out[-2000:]
    results = [json.loads((tmp_path / f"k{i}" / "call.json").read_text()) for i in range(2)]
    assert all(r["answered"] for r in results), results
    assert survivor.log_text().count("call start") - before == 2
    # Marked down (by a call that timed out on it, or by the OPTIONS probe, whichever came first).
    assert wait_for(lambda: _marked_down(cluster, victim.port), 10), cluster.proxy_log()[-3000:]


def test_sigterm_drains_without_dropping_the_call_in_progress(cluster, tmp_path):
    (box,) = cluster.alive()
    active = box.log_text().count("media active")
    d = tmp_path / "held"
    d.mkdir()
    held = subprocess.Popen(
        caller_cmd(cluster.uri, "PCMU", [WAV / "hours_saturday_0.wav"], d / "heard.wav", d / "call.json"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(lambda: box.log_text().count("media active") > active, 20), box.log_text()[-2000:]
        down_before = cluster.proxy_log().count("box down")
        box.proc.send_signal(signal.SIGTERM)
        # Draining: OPTIONS and new INVITEs get 480, so the dispatcher marks the box down...
        assert wait_for(lambda: sip_options(box.port, 0.5) == "SIP/2.0 480 Temporarily Unavailable", 5)
        assert wait_for(lambda: _marked_down(cluster, box.port, since=down_before), 10), cluster.proxy_log()[-3000:]
        # ...and a new call finds no box (the only other one was killed above).
        res = call(cluster.uri, "PCMU", [], tmp_path)
        assert not res["answered"] and res["status"] in (480, 503), res
        assert box.proc.poll() is None, "exited with a call in progress"
        out, _ = held.communicate(timeout=120)
    finally:
        if held.poll() is None:
            held.kill()
    assert held.returncode == 0 and (d / "call.json").exists(), out[-3000:].decode(errors="replace")
    res = json.loads((d / "call.json").read_text())
    # The call in progress went on: the question was answered and the caller hung up, not the box.
    assert res["answered"] and res["turns"][0]["reply_onset_ms"] is not None, res
    assert res["disconnected_by"] == "caller", res
    assert box.proc.wait(30) == 0, box.log_text()[-2000:]
    log = box.log_text()
    assert "draining: new calls refused, 1 in progress" in log
    assert "hang up reason=shutdown" not in log
