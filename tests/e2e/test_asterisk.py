"""Interop with a real Asterisk (22 LTS) running the repository's sip/asterisk/ files.

Asterisk reads sip/asterisk/pjsip.conf and extensions.conf with only their addresses and ports
changed (tests/e2e/asterisk.py), and voicebox reads the [sip.register] block of
sip/asterisk/README.md the same way, so these tests prove what an operator copies. The phones
around them are test-only: ``caller`` (the pjsua2 caller, matched by its user name, dialling in
the ``from-internal`` context) and ``6001`` (the front desk: a sipp UAS).

Asterisk's own view is the evidence: each test prints the CLI output and log lines it relies on.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import asterisk
from tests.e2e.conftest import (
    CORPUS, HOST, ROOT, Server, _sipp_exe, agent_with_frontdesk, free_port, start_server, stop_server, wait_for,
)
from tests.e2e.test_transports import self_signed_cert

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"

# RTP, all inside 59000-59999: voicebox 59000-59399 (four servers), Asterisk 59400-59599 (four
# instances), callers from 59600 (pjsua2 takes the first free pair), the front desk's sipp 59950.
VOICEBOX_RTP = (59000, 59100, 59200, 59300)
ASTERISK_RTP = ((59400, 59449), (59450, 59499), (59500, 59549), (59550, 59599))
DESK_MEDIA_PORT = 59950
_caller_rtp = itertools.cycle(range(59600, 59720, 20))


def phones_conf(desk_port: int) -> str:
    """The PBX's own phones, which an operator already has: not part of the reference files."""
    return (
        "[caller]\ntype=endpoint\ntransport=transport-udp\ncontext=from-internal\ndisallow=all\n"
        "allow=ulaw,alaw,g722\ndirect_media=no\n\n"
        f"[6001]\ntype=aor\ncontact=sip:6001@{HOST}:{desk_port}\n\n"
        "[6001]\ntype=endpoint\ntransport=transport-udp\ncontext=from-internal\ndisallow=all\nallow=ulaw\n"
        "aors=6001\ndirect_media=no\n\n"
        "[global]\ntype=global\ndebug=yes\n"  # every SIP message in Asterisk's log, from the start
    )


def readme_block(table: str, swaps: dict[str, str]) -> str:
    """voicebox's ``[table]`` settings exactly as sip/asterisk/README.md gives them, with only
    the ``swaps`` (addresses, ports, file paths) made."""
    text = (asterisk.REFERENCE / "README.md").read_text()
    block = re.search(rf"```toml\n(\[{re.escape(table)}\]\n.*?)```", text, re.S)
    assert block, f"sip/asterisk/README.md lost its [{table}] example"
    toml = block.group(1)
    for old, new in swaps.items():
        assert old in toml, f"README's [{table}] no longer says {old}"
        toml = toml.replace(old, new)
    tomllib.loads(toml)
    return toml


@dataclass
class Pbx:
    ast: asterisk.Asterisk
    voicebox: Server
    desk_port: int


def start_pbx(tmp: Path, binary: Path, voicebox_rtp: int, asterisk_rtp: tuple[int, int], tls: bool = False) -> Pbx:
    """voicebox (trunk target and registered as 7000: both ways in), then Asterisk in front of it.

    ``tls``: the trunk over TLS with SRTP, as the (TLS) lines of pjsip.conf and the README say."""
    ast_port, desk_port = free_port(), free_port()
    ports = asterisk.Ports(ast_port, 0, *asterisk_rtp)
    agent = agent_with_frontdesk(tmp, ast_port)  # transfer_uri = sip:frontdesk@<asterisk>
    config = (f'agent = "{agent}"\n[sip]\nrtp_port = {voicebox_rtp}\nrtp_port_range = 100\n'
              + readme_block("sip.register", {f'"sip:{asterisk.ASTERISK_ADDR}"': f'"sip:{HOST}:{ast_port}"'}))
    if tls:
        ports.tls_cert, ports.tls_key = self_signed_cert(tmp)
        ports.asterisk_tls, ports.voicebox_tls = free_port(), free_port()
        config += readme_block("sip.tls", {
            "port = 5061": f"port = {ports.voicebox_tls}",
            "/etc/voicebox/tls/cert.pem": str(ports.tls_cert), "/etc/voicebox/tls/key.pem": str(ports.tls_key),
        })
    server = start_server(tmp, config)
    ports.voicebox_sip = server.port
    pjsip = asterisk.render("pjsip.conf", ports)
    try:
        ast = asterisk.start(binary, ports, asterisk.enable_marked(pjsip) if tls else pjsip,
                             asterisk.render("extensions.conf", ports), phones_conf(desk_port))
    except BaseException:
        stop_server(server)
        raise
    pbx = Pbx(ast, server, desk_port)
    # voicebox came up first and has been retrying its REGISTER (5 s, then doubling) meanwhile.
    if not (wait_for(lambda: contact_status(ast, "voicebox-trunk") == "Avail", 30)
            and wait_for(lambda: contact_status(ast, "7000") == "Avail", 90)):
        contacts = ast.cli("pjsip show contacts")
        stop_pbx(pbx)
        raise AssertionError(f"voicebox not reachable from Asterisk:\n{contacts}\n{server.log_text()[-2000:]}")
    return pbx


def stop_pbx(pbx: Pbx) -> None:
    # voicebox first: it unregisters on the way out, and Asterisk should be there to hear it.
    try:
        if pbx.voicebox.proc.poll() is None:
            stop_server(pbx.voicebox)
    finally:
        asterisk.stop(pbx.ast)


@pytest.fixture(scope="module")
def asterisk_binary() -> Path:
    return asterisk.find_binary()


@pytest.fixture(scope="module")
def pbx(tmp_path_factory, asterisk_binary):
    pbx = start_pbx(tmp_path_factory.mktemp("pbx"), asterisk_binary, VOICEBOX_RTP[0], ASTERISK_RTP[0])
    yield pbx
    stop_pbx(pbx)


def caller(uri: str, codec: str, wavs: list[Path], tmp: Path, **opts) -> subprocess.Popen:
    """The pjsua2 caller (benchmarks/harness/caller.py) as the phone ``caller``."""
    record, result = tmp / f"heard-{codec}.wav", tmp / f"call-{codec}.json"
    cmd = [sys.executable, "-m", "benchmarks.harness.caller", uri, "--codec", codec, "--record", str(record),
           "--json", str(result), "--rtp-port", str(next(_caller_rtp))]
    for w in wavs:
        cmd += ["--play", str(w)]
    for k, v in opts.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, tmp: Path, codec: str, timeout: float = 150) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    res = json.loads((tmp / f"call-{codec}.json").read_text())
    res["recording"] = str(tmp / f"heard-{codec}.wav")
    return res


def call(uri: str, codec: str, wavs: list[Path], tmp: Path, **opts) -> dict:
    return finish(caller(uri, codec, wavs, tmp, **opts), tmp, codec)


def desk_phone(port: int, timeout_s: int = 90) -> subprocess.Popen:
    """The front desk (6001): sipp's UAS answering one call, its media port in the test's range."""
    cmd = [_sipp_exe(), "-sn", "uas", "-i", HOST, "-p", str(port), "-mp", str(DESK_MEDIA_PORT), "-m", "1",
           "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)


def evidence(ast: asterisk.Asterisk, pattern: str, since: int = 0) -> list[str]:
    """Asterisk log lines (after offset ``since``) matching ``pattern``; printed for the notes."""
    lines = [line for line in ast.log_text()[since:].splitlines() if re.search(pattern, line)]
    print(f"\n[asterisk log /{pattern}/]\n" + "\n".join(lines[-6:]), flush=True)
    return lines


def contact_status(ast: asterisk.Asterisk, aor: str) -> str:
    """The status column of ``pjsip show contacts`` for the AOR's contact ('' if none)."""
    for line in ast.cli("pjsip show contacts").splitlines():
        m = re.match(rf"\s*Contact:\s+{re.escape(aor)}/\S+\s+\S+\s+(\w+)", line)
        if m:
            return m.group(1)
    return ""


def test_asterisk_sees_both_ways_in_available(pbx):
    """The trunk's static contact answers qualify, and voicebox's REGISTER as 7000 (digest auth)
    is bound to the 7000 AOR, not swallowed by the trunk endpoint (the issue's failure 1)."""
    ast = pbx.ast
    ast.cli("pjsip qualify voicebox-trunk")
    assert wait_for(lambda: contact_status(ast, "voicebox-trunk") == "Avail", 10), ast.cli("pjsip show contacts")
    assert wait_for(lambda: contact_status(ast, "7000") == "Avail", 40), ast.cli("pjsip show contacts") + ast.log_text()[-3000:]
    contacts = asterisk.show(ast, "pjsip show contacts")
    assert re.search(rf"Contact:\s+7000/sip:\S+@{re.escape(HOST)}:{pbx.voicebox.port}\b", contacts), contacts
    asterisk.show(ast, "pjsip show endpoints")
    # The REGISTER was challenged, then accepted with credentials, and landed on the right AOR.
    assert evidence(ast, r"SIP/2\.0 401 Unauthorized"), "Asterisk never challenged the REGISTER"
    assert evidence(ast, r"Added contact 'sip:\S+' to AOR '7000'"), ast.log_text()[-3000:]
    assert not evidence(ast, r"AOR '' not found for endpoint")


@pytest.mark.parametrize("codec", ["PCMU", "PCMA", "G722"])
def test_trunk_call_greets_and_answers_on_each_codec(pbx, tmp_path, transcribe, codec):
    """Dial 7100: Asterisk Dial()s voicebox over the trunk; the caller hears the greeting and the
    answer to its question, and both legs use the caller's codec (no transcoding)."""
    before = pbx.voicebox.log_text().count(f"media active codec={codec}")
    mark = len(pbx.ast.log_text())
    res = call(pbx.ast.uri("7100"), codec, [WAV / "hours_saturday_0.wav"], tmp_path)
    assert res["answered"], res
    assert res["codec"].upper().startswith(codec), res
    assert res["greeting_onset_ms"] is not None, res
    assert res["turns"][0]["reply_onset_ms"] is not None, "the agent never answered through Asterisk"
    heard = transcribe(res["recording"])
    print(f"\n[caller heard over {codec}] {heard}")
    assert "riverside" in heard, heard
    assert re.search(r"saturday[^.]*(?<!\d)(9|nine)(?!\d)", heard), heard
    trunk_leg = [line for line in pbx.voicebox.log_text().splitlines() if f"media active codec={codec}" in line]
    assert len(trunk_leg) == before + 1, "the trunk leg did not use the caller's codec"
    print(f"[voicebox log] {trunk_leg[-1]}")
    assert evidence(pbx.ast, r"Called PJSIP/voicebox-trunk", mark)
    assert evidence(pbx.ast, r"PJSIP/voicebox-trunk-\S+ answered PJSIP/caller", mark)
    # Asterisk offers the trunk all three codecs, the caller's first (the README's codec
    # paragraph); the caller's own offer and Asterisk's answer to it name one codec only.
    payload_type = {"PCMU": 0, "PCMA": 8, "G722": 9}[codec]
    assert evidence(pbx.ast, rf"m=audio \d+ RTP/AVP {payload_type}( [089]){{2}} ", mark)


def test_refer_to_the_front_desk_rings_the_desk_phone(pbx, tmp_path, transcribe):
    """Asking for a person: voicebox sends a blind REFER to frontdesk; Asterisk routes it through
    the from-voicebox context to 6001 (a sipp UAS), which answers; voicebox leaves the call."""
    mark = len(pbx.ast.log_text())
    desk = desk_phone(pbx.desk_port)
    try:
        res = call(pbx.ast.uri("7100"), "PCMU", [WAV / "human_0.wav"], tmp_path, wait_hangup_s=6)
    finally:
        out, _ = desk.communicate(timeout=100)
    assert res["answered"], res
    assert "front desk" in transcribe(res["recording"])  # announced before the REFER
    # sipp exits 0 only after a whole call: INVITE answered, then the caller's BYE via Asterisk.
    assert desk.returncode == 0, out[-2000:]
    assert evidence(pbx.ast, rf"Refer-To: .*sip:frontdesk@{re.escape(HOST)}:{pbx.ast.ports.asterisk_sip}\b", mark)
    assert evidence(pbx.ast, r"SIP/2\.0 202 Accepted", mark)
    assert evidence(pbx.ast, r"Executing \[frontdesk@from-voicebox:1\] .*PJSIP/caller-", mark)
    assert evidence(pbx.ast, r"Called PJSIP/6001", mark)
    assert evidence(pbx.ast, r'Reason: SIP;cause=200;text="transferred"', mark)  # voicebox's BYE
    assert evidence(pbx.ast, r"PJSIP/6001-\S+ answered", mark)
    assert wait_for(lambda: "hang up reason=transferred" in pbx.voicebox.log_text(), 10)


def test_call_to_the_registered_extension(pbx, tmp_path, transcribe):
    """Dial 7000: Asterisk calls the contact voicebox registered (way 2)."""
    assert wait_for(lambda: contact_status(pbx.ast, "7000") == "Avail", 40), pbx.ast.cli("pjsip show contacts")
    mark = len(pbx.ast.log_text())
    res = call(pbx.ast.uri("7000"), "G722", [], tmp_path)
    assert res["answered"], res
    heard = transcribe(res["recording"])
    print(f"\n[caller heard via 7000] {heard}")
    assert re.search(r"thanks for calling|riverside|dental", heard), heard  # the greeting
    assert evidence(pbx.ast, r"Called PJSIP/7000", mark)
    assert evidence(pbx.ast, r"PJSIP/7000-\S+ answered PJSIP/caller", mark)


def test_drain_marks_voicebox_unavailable_and_the_front_desk_gets_the_next_call(
    tmp_path_factory, asterisk_binary, tmp_path
):
    """SIGTERM with a call up: voicebox drains (OPTIONS get 480), unregisters 7000, Asterisk's
    qualify marks the trunk Unavailable (qualify_2xx_only=yes), and the next call to 7100 goes
    to the dialplan's fallback, the front desk. When the held call ends voicebox exits 0."""
    pbx = start_pbx(tmp_path_factory.mktemp("drain"), asterisk_binary, VOICEBOX_RTP[1], ASTERISK_RTP[1])
    ast, server = pbx.ast, pbx.voicebox
    desk = None
    try:
        ast.cli("pjsip qualify voicebox-trunk")
        assert wait_for(lambda: contact_status(ast, "voicebox-trunk") == "Avail", 10), ast.cli("pjsip show contacts")
        assert wait_for(lambda: contact_status(ast, "7000") == "Avail", 40), ast.cli("pjsip show contacts")
        held_dir = tmp_path / "held"
        held_dir.mkdir()
        held = caller(ast.uri("7100"), "PCMU", [], held_dir, wait_hangup_s=30, quiet_ms=500)
        assert wait_for(lambda: "media active" in server.log_text(), 30), server.log_text()[-2000:]
        server.proc.send_signal(signal.SIGTERM)
        assert wait_for(lambda: "draining" in server.log_text(), 10), server.log_text()[-2000:]
        ast.cli("pjsip qualify voicebox-trunk")
        assert wait_for(lambda: contact_status(ast, "voicebox-trunk") == "Unavail", 15), ast.cli("pjsip show contacts")
        assert wait_for(lambda: contact_status(ast, "7000") == "", 15), ast.cli("pjsip show contacts")
        asterisk.show(ast, "pjsip show contacts")
        assert evidence(ast, r"SIP/2\.0 480 "), "the qualify did not get voicebox's 480"
        assert evidence(ast, r"Contact voicebox-trunk/\S+ is now Unreachable")
        assert evidence(ast, r"Removed contact 'sip:7000@\S+' from AOR '7000' due to request")
        mark = len(ast.log_text())
        desk = desk_phone(pbx.desk_port)
        fallback_dir = tmp_path / "fallback"
        fallback_dir.mkdir()
        res = call(ast.uri("7100"), "PCMU", [], fallback_dir, reply_timeout_s=2)
        assert res["answered"], res
        assert server.proc.poll() is None, "voicebox stopped early: it was not draining during the fallback"
        out, _ = desk.communicate(timeout=30)
        assert desk.returncode == 0, out[-2000:]
        assert evidence(ast, r"voicebox unavailable \(CHANUNAVAIL\)", mark), ast.log_text()[mark:][-3000:]
        assert evidence(ast, r"PJSIP/6001-\S+ answered PJSIP/caller", mark)
        finish(held, held_dir, "PCMU")
        code = server.proc.wait(30)
        assert code == 0, server.log_text()[-2000:]
    finally:
        if desk is not None and desk.poll() is None:
            desk.kill()
        stop_pbx(pbx)


def test_trunk_over_tls_with_srtp(tmp_path_factory, asterisk_binary, tmp_path, transcribe):
    """The (TLS) lines enabled: Asterisk qualifies and calls voicebox's TLS port (the issue's
    failure 2 was TLS sent to the UDP port), with SDES-SRTP on that leg; the caller hears the
    greeting and the answer through it."""
    pbx = start_pbx(tmp_path_factory.mktemp("tls"), asterisk_binary, VOICEBOX_RTP[2], ASTERISK_RTP[2], tls=True)
    ast = pbx.ast
    try:
        ast.cli("pjsip qualify voicebox-trunk")
        assert wait_for(lambda: contact_status(ast, "voicebox-trunk") == "Avail", 15), \
            ast.cli("pjsip show contacts") + ast.log_text()[-3000:]
        asterisk.show(ast, "pjsip show contacts")  # (the CLI cuts the URI short; the AOR shows it whole)
        aor = asterisk.show(ast, "pjsip show aor voicebox-trunk")
        assert f"sip:agent@{HOST}:{ast.ports.voicebox_tls};transport=tls" in aor, aor
        mark = len(ast.log_text())
        res = call(ast.uri("7100"), "PCMU", [WAV / "hours_saturday_0.wav"], tmp_path)
        assert res["answered"], res
        assert res["turns"][0]["reply_onset_ms"] is not None, "the agent never answered through Asterisk"
        heard = transcribe(res["recording"])
        print(f"\n[caller heard over TLS+SRTP] {heard}")
        assert re.search(r"saturday[^.]*(?<!\d)(9|nine)(?!\d)", heard), heard
        log = ast.log_text()[mark:]
        assert evidence(ast, rf"Transmitting SIP request .* to TLS:{re.escape(HOST)}:{ast.ports.voicebox_tls}", mark)
        assert evidence(ast, r"m=audio \d+ RTP/SAVP", mark), "no SRTP offer on the trunk leg"
        assert evidence(ast, r"a=crypto:", mark)
        assert "Called PJSIP/voicebox-trunk" in log
    finally:
        stop_pbx(pbx)


def test_unregister_on_stop(tmp_path_factory, asterisk_binary):
    """SIGTERM with no call up: voicebox unregisters 7000 and stops, with no error on the way
    (the issue's failure 5: PJSIP_EBUSY while unregistering)."""
    pbx = start_pbx(tmp_path_factory.mktemp("unregister"), asterisk_binary, VOICEBOX_RTP[3], ASTERISK_RTP[3])
    try:
        stop_server(pbx.voicebox)
        assert wait_for(lambda: contact_status(pbx.ast, "7000") == "", 10), pbx.ast.cli("pjsip show contacts")
        assert evidence(pbx.ast, r"Removed contact 'sip:7000@\S+' from AOR '7000' due to request")
        log = pbx.voicebox.log_text()
        print("[voicebox log]\n" + "\n".join(line for line in log.splitlines() if "regist" in line))
        assert "EBUSY" not in log and "Object is busy" not in log, log[-3000:]
    finally:
        stop_pbx(pbx)
