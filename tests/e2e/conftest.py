"""Real calls: a `voicebox serve` process on loopback, called by pjsua2 and sipp."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from voicebox.telephony import probe

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
SCENARIOS = ROOT / "sip" / "scenarios"
HOST = "127.0.0.1"


def free_port() -> int:
    return probe.free_port(HOST)


def sip_options(port: int, timeout: float = 1.0) -> str | None:
    return probe.sip_options(HOST, port, timeout)


@dataclass
class Server:
    port: int
    proc: subprocess.Popen
    log: Path
    data_dir: Path
    metrics_port: int
    frontdesk_port: int = 0  # where the agent transfers callers (a sipp UAS in the tests)

    @property
    def uri(self) -> str:
        return f"sip:agent@{HOST}:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(tmp: Path, config: str) -> Server:
    port, metrics_port = free_port(), free_port()
    cfg = tmp / "voicebox.toml"
    cfg.write_text(f"{config}\n[metrics]\nport = {metrics_port}\n")
    log = tmp / "serve.log"
    data = tmp / "data"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicebox", "serve", "--config", str(cfg), "--sip-host", HOST,
         "--sip-port", str(port), "--data-dir", str(data)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voicebox serve exited early:\n{log.read_text()[-3000:]}")
        status = sip_options(port, 0.5)
        if status and " 200 " in status + " ":
            return Server(port, proc, log, data, metrics_port)
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"voicebox serve not ready in time:\n{log.read_text()[-3000:]}")


def wait_for(predicate, timeout_s: float) -> bool:
    """Poll ``predicate`` every 200 ms until it holds or ``timeout_s`` passes; its last answer."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def stop_server(server: Server) -> None:
    """SIGTERM must end the server cleanly (exit 0): a pjsua2 assertion at exit fails here."""
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(15)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(5)
        raise AssertionError(f"voicebox serve ignored SIGTERM:\n{server.log_text()[-2000:]}")
    assert code == 0, f"voicebox serve exited with {code}:\n{server.log_text()[-2000:]}"


def agent_with_frontdesk(tmp: Path, port: int) -> Path:
    """The built-in agent, its transfer target moved to a port of the test's choosing."""
    text = (ROOT / "voicebox" / "agents" / "riverside_dental.toml").read_text()
    text = re.sub(r'transfer_uri = "[^"]*"', f'transfer_uri = "sip:frontdesk@{HOST}:{port}"', text)
    path = tmp / "agent.toml"
    path.write_text(text)
    return path


def agent_with_model_services(tmp: Path) -> Path:
    """The built-in agent with its templated "services" answer left to the language model."""
    text = (ROOT / "voicebox" / "agents" / "riverside_dental.toml").read_text()
    text = re.sub(r'(name = "services"\n)answer = "[^"]*"\n', r'\1action = "model"\n', text)
    assert 'name = "services"\naction = "model"' in text
    path = tmp / "agent.toml"
    path.write_text(text)
    return path


def metric(server: Server, name: str, **labels: str) -> float:
    """One sample scraped from the server's /metrics (0 when it has not been exported)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{HOST}:{server.metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def call_events(server: Server, sip_call_id: str, timeout_s: float = 10) -> list[dict]:
    """A finished call's records, found by its SIP Call-ID (a writer thread writes them)."""
    deadline = time.monotonic() + timeout_s
    while True:
        for path in (server.data_dir / "calls").glob("*/*.jsonl"):
            events = [json.loads(line) for line in path.read_text().splitlines()]
            if events and events[0].get("sip_call_id") == sip_call_id and events[-1]["event"] == "call_end":
                return events
        if time.monotonic() > deadline:
            return []
        time.sleep(0.2)


@pytest.fixture(scope="session")
def agent_server(tmp_path_factory):
    """The default agent, as `make serve` runs it, on a free loopback port."""
    tmp = tmp_path_factory.mktemp("agent")
    frontdesk = free_port()
    agent = agent_with_frontdesk(tmp, frontdesk)
    server = start_server(tmp, f'agent = "{agent}"\n[sip]\nrtp_port = 41000\n')
    server.frontdesk_port = frontdesk
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def strict_server(tmp_path_factory):
    """One call at most, a 3 s RTP timeout, 25 s calls, and a transcriber that always fails."""
    config = (
        "[sip]\nmax_calls = 1\nrtp_timeout_s = 3\nmax_call_s = 25\nrtp_port = 43000\n"
        "[testing]\nfail_stage = \"stt\"\n"
    )
    server = start_server(tmp_path_factory.mktemp("strict"), config)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def privacy_server(tmp_path_factory):
    """Transcripts kept with personal data redacted, and calls recorded."""
    config = '[sip]\nrtp_port = 44000\n[privacy]\ncontent = "redacted"\nrecording = true\n'
    server = start_server(tmp_path_factory.mktemp("privacy"), config)
    yield server
    stop_server(server)


_rtp_base = [47000]


def caller_cmd(uri: str, codec: str, wavs: list[Path], record: Path, result: Path, **opts) -> list[str]:
    _rtp_base[0] += 20  # each caller its own RTP ports: two endpoints must not share 4000
    cmd = [sys.executable, "-m", "benchmarks.harness.caller", uri, "--codec", codec,
           "--record", str(record), "--json", str(result), "--rtp-port", str(_rtp_base[0])]
    for w in wavs:
        cmd += ["--play", str(w)]
    for k, v in opts.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    return cmd


def call(uri: str, codec: str, wavs: list[Path], tmp_path: Path, timeout: float = 150, **opts) -> dict:
    """Place one scripted call with the pjsua2 caller; return its result (see caller.py)."""
    record, result = tmp_path / f"heard-{codec}.wav", tmp_path / f"call-{codec}.json"
    proc = subprocess.run(
        caller_cmd(uri, codec, wavs, record, result, **opts),
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(result.read_text())
    out["recording"] = str(record)
    return out


def _sipp_exe() -> str:
    exe = shutil.which("sipp")
    if exe is None:
        pytest.fail("sipp is not installed (apt-get install sip-tester; .ci/run does this)")
    return exe


def sipp(scenario: str, port: int, timeout_s: int = 20, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = [_sipp_exe(), f"{HOST}:{port}", "-sf", str(SCENARIOS / scenario), "-i", HOST, "-p", str(free_port()),
           "-m", "1", "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error", *(extra or [])]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 10, stdin=subprocess.DEVNULL)


def sipp_uas(port: int, timeout_s: int = 60, messages: Path | None = None) -> subprocess.Popen:
    """A real SIP peer answering one call on ``port`` (sipp's built-in UAS): the front desk.
    ``messages``: where sipp writes every SIP message it sends and receives."""
    cmd = [_sipp_exe(), "-sn", "uas", "-i", HOST, "-p", str(port), "-m", "1", "-nostdin",
           "-timeout", f"{timeout_s}s", "-timeout_error"]
    if messages is not None:
        cmd += ["-trace_msg", "-message_file", str(messages)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)


@pytest.fixture(scope="session")
def transcribe():
    """Whisper (the default tiny.en) as an independent ear on what the caller heard."""
    from faster_whisper import WhisperModel

    from voicebox.model_store import resolve

    model = WhisperModel(str(resolve("whisper-tiny-en", "stt", ROOT / "data")), device="cpu", compute_type="int8")

    def run(path: str | Path) -> str:
        segments, _ = model.transcribe(str(path), language="en", beam_size=5)
        return " ".join(s.text.strip() for s in segments).lower()

    return run


@pytest.fixture(scope="session")
def say(tmp_path_factory):
    """Caller turns the corpus lacks, spoken by the project's own Piper voice: say(text) -> a WAV."""
    from voicebox.audio.wavio import write_wav
    from voicebox.model_store import resolve
    from voicebox.speaking.synthesizer import Synthesizer

    tts = Synthesizer(resolve("piper-joe-medium", "tts", ROOT / "data"), 16000)
    out = tmp_path_factory.mktemp("said")

    def make(text: str) -> Path:
        path = out / (re.sub(r"\W+", "_", text.lower()).strip("_") + ".wav")
        if not path.exists():
            write_wav(path, tts.synthesize(text), 16000)
        return path

    return make
