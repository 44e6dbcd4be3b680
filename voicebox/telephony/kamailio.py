"""Running Debian's Kamailio in front of voicebox: its command line and dispatcher list.

Kamailio runs in the foreground (``-DD``), logs to stderr (``-E``) and keeps its pid file and
runtime files in a run directory of its own, so neither ``make cluster`` nor the tests need root,
``/etc/kamailio`` or ``/run``. The configs in ``sip/kamailio/`` take their addresses and paths as
pre-processor defines (``-A NAME=value``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "sip" / "kamailio"
DISPATCHER_CFG = CONFIG_DIR / "kamailio.cfg"
REGISTRAR_CFG = CONFIG_DIR / "registrar.cfg"


class KamailioMissing(RuntimeError):
    """No kamailio binary (Debian: apt-get install kamailio)."""


def kamailio_exe() -> str:
    exe = shutil.which("kamailio") or ("/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)
    if exe is None:
        raise KamailioMissing("kamailio is not installed (Debian: apt-get install kamailio; .ci/run does this)")
    return exe


@dataclass
class Box:
    """One voicebox instance behind the dispatcher."""

    host: str
    port: int
    max_calls: int = 4

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port}"


def dispatcher_list(boxes: list[Box], set_id: int = 1) -> str:
    """Dispatcher list file: set, URI, flags, priority, attributes (duid and maxload for alg 10)."""
    lines = ["# setid destination flags priority attrs  (written by voicebox.telephony.kamailio)"]
    for i, box in enumerate(boxes, 1):
        lines.append(f"{set_id} {box.uri} 0 0 duid=box{i};maxload={box.max_calls}")
    return "\n".join(lines) + "\n"


def command(cfg: Path, run_dir: Path, defines: dict[str, str | int]) -> list[str]:
    """The kamailio command line; string defines are quoted for the config's pre-processor."""
    cmd = [kamailio_exe(), "-f", str(cfg), "-DD", "-E", "-Y", str(run_dir), "-w", str(run_dir),
           "-P", str(run_dir / "kamailio.pid"), "-m", "32", "-M", "4"]
    for name, value in defines.items():
        cmd += ["-A", f"{name}={value}"]
    return cmd


def quoted(value: str | Path) -> str:
    """A define that the config uses as a string literal."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_dispatcher(run_dir: Path, host: str, port: int, boxes: list[Box], ping_interval_s: int = 2,
                     first_reply_timeout_ms: int = 3000) -> subprocess.Popen:
    """Kamailio with ``sip/kamailio/kamailio.cfg`` on ``host:port`` in front of ``boxes``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ds_list = run_dir / "dispatcher.list"
    ds_list.write_text(dispatcher_list(boxes))
    defines = {
        "LISTEN": f"udp:{host}:{port}",
        "DS_LIST": quoted(ds_list),
        "DS_PING_INTERVAL": ping_interval_s,
        "FR_TIMER_MS": first_reply_timeout_ms,
    }
    return _popen(command(DISPATCHER_CFG, run_dir, defines), run_dir)


def start_registrar(run_dir: Path, host: str, port: int, user: str, password: str) -> subprocess.Popen:
    """Kamailio with ``sip/kamailio/registrar.cfg``: the PBX stand-in of the registration tests."""
    run_dir.mkdir(parents=True, exist_ok=True)
    defines = {"LISTEN": f"udp:{host}:{port}", "REG_USER": quoted(user), "REG_PASSWORD": quoted(password)}
    return _popen(command(REGISTRAR_CFG, run_dir, defines), run_dir)


def _popen(cmd: list[str], run_dir: Path) -> subprocess.Popen:
    log = (run_dir / "kamailio.log").open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def log_text(run_dir: Path) -> str:
    path = run_dir / "kamailio.log"
    return path.read_text(errors="replace") if path.exists() else ""


def stop(proc: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGTERM ends kamailio's main process, which takes its children with it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
