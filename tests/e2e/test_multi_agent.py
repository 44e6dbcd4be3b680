"""Several agents on one `voicebox serve`, chosen by the dialled user (issue #18 item 6).

One server answers `sip:dental@...` as the dental agent and `sip:plumbing@...` as the plumbing
one (one set of models, a router per agent); anyone else gets 404 before any media is set up.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import CORPUS, HOST, ROOT, call_events, sip_options, start_server, stop_server
from tests.e2e.rawsip import Peer, Response, request, sdp

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"
RTP_SERVER = 56000  # this file's RTP ports: 56000-56999 (server 56000-56199, callers from 56500)
RTP_CALLERS = iter(range(56500, 57000, 20))
CONFIG = f"""
[agents]
dental = "riverside_dental"
plumbing = "harbor_plumbing"
[sip]
rtp_port = {RTP_SERVER}
rtp_port_range = 200
[privacy]
content = "full"
"""


@pytest.fixture(scope="module")
def two_agents(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("agents"), CONFIG)
    yield server
    stop_server(server)


def _call(server, user: str, tmp_path: Path) -> dict:
    """One scripted pjsua2 call to ``user``: the greeting, then the Saturday-hours question."""
    record, result = tmp_path / f"heard-{user}.wav", tmp_path / f"call-{user}.json"
    cmd = [sys.executable, "-m", "benchmarks.harness.caller", f"sip:{user}@{HOST}:{server.port}",
           "--codec", "PCMU", "--play", str(WAV / "hours_saturday_0.wav"), "--record", str(record),
           "--json", str(result), "--rtp-port", str(next(RTP_CALLERS))]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(result.read_text())
    out["recording"] = str(record)
    return out


def _invite(port: int, user: str) -> Response | None:
    with Peer(port) as p:
        p.send(request(p, "INVITE", user=user, body=sdp(RTP_SERVER + 900)))
        return p.final(3, "INVITE")


def _metrics(server) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as r:
        return r.read().decode()


def test_start_up_names_who_reaches_which_agent(two_agents):
    assert "agents: dental -> riverside_dental, plumbing -> harbor_plumbing, anyone else -> 404" in two_agents.log_text()


def test_unknown_user_gets_404_before_any_media(two_agents):
    # 40 INVITEs at once: past the per-source INVITE burst (10) and the media budget (30 pairs),
    # so a 404 that came after admission would turn into 503s here.
    for i in range(40):
        r = _invite(two_agents.port, "nobody" if i % 2 else "agent")
        assert r is not None and (r.status, r.reason) == (404, "Not Found"), r and r.raw
    log = two_agents.log_text()
    assert "reason=unknown_user" in log and "call start" not in log  # no call was ever set up
    assert not (two_agents.data_dir / "calls").exists() or not list((two_agents.data_dir / "calls").glob("*/*.jsonl"))
    # The OPTIONS probe answers whatever the user part, as on a single-agent server.
    assert sip_options(two_agents.port) == "SIP/2.0 200 OK"
    with Peer(two_agents.port) as p:
        p.send(request(p, "OPTIONS", user="nobody"))
        r = p.final()
    assert r is not None and r.status == 200


def test_each_dialled_user_reaches_its_own_agent(two_agents, tmp_path, transcribe):
    dental = _call(two_agents, "dental", tmp_path)
    plumbing = _call(two_agents, "Plumbing", tmp_path)  # user parts match ignoring case
    heard = {name: transcribe(res["recording"]) for name, res in (("dental", dental), ("plumbing", plumbing))}
    assert "riverside" in heard["dental"] and not re.search(r"harbou?r", heard["dental"]), heard
    assert re.search(r"harbou?r", heard["plumbing"]) and "riverside" not in heard["plumbing"], heard
    for res, agent_id, hours in ((dental, "riverside_dental", "9 am to 1 pm"),
                                 (plumbing, "harbor_plumbing", "8 am to 12 pm")):
        assert res["answered"] and res["turns"][0]["reply_onset_ms"] is not None, res
        events = call_events(two_agents, res["sip_call_id"])
        assert events, f"no record of {res['sip_call_id']}"
        assert events[0]["event"] == "call_start" and events[0]["agent"] == agent_id, events[0]
        turn = next(e for e in events if e["event"] == "turn")
        # Each agent's own router and facts answered: the same question, each business's hours.
        assert turn["intent"] == "hours" and hours in turn["agent_text"], turn
    listing = subprocess.run(
        [sys.executable, "-m", "voicebox", "calls", "--data-dir", str(two_agents.data_dir)],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout
    assert "riverside_dental" in listing and "harbor_plumbing" in listing, listing


def test_metrics_carry_the_agent_label(two_agents):
    text = _metrics(two_agents)
    for agent_id in ("riverside_dental", "harbor_plumbing"):
        assert f'voicebox_calls_total{{agent="{agent_id}"}} 1.0' in text, text
        assert f'voicebox_calls_active{{agent="{agent_id}"}} 0.0' in text
        assert _value(text, f'voicebox_turns_total{{agent="{agent_id}",source="template"}}') >= 1
        assert _value(text, f'voicebox_voice_to_voice_seconds_count{{agent="{agent_id}"}}') >= 1
    assert _value(text, 'voicebox_calls_rejected_total{reason="unknown_user"}') == 40


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.rsplit(" ", 1)[0] == series:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in metrics:\n{text}")


def test_a_broken_agent_file_stops_start_up_naming_it(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "Broken"\npersona = "p"\n')  # no greeting, no facts
    cfg = tmp_path / "voicebox.toml"
    cfg.write_text(f'[agents]\ndental = "riverside_dental"\nother = "{broken}"\n[metrics]\nenabled = false\n')
    proc = subprocess.run(
        [sys.executable, "-m", "voicebox", "serve", "--config", str(cfg), "--data-dir", str(tmp_path / "data"),
         "--sip-host", HOST, "--sip-port", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert str(broken) in proc.stderr and "greeting" in proc.stderr, proc.stderr
