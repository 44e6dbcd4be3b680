"""A real Asterisk for interop tests, running the repository's own sip/asterisk/*.conf files.

The binary comes from ``VOICEBOX_ASTERISK``, else PATH, else the cache that
``../shared/asterisk/build.sh`` fills (building it there once when the sources are present);
with none of these the tests skip, saying why. The reference files are rendered with their
addresses and ports changed and nothing else (``render``), so a passing test proves the very
files an operator copies. Everything else Asterisk needs (its directories, modules, logger and
RTP range) is test-only and lives in a temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "sip" / "asterisk"
SOURCES = ROOT.parent / "shared" / "asterisk"
VERSION = "22.10.1"
CACHE = Path.home() / ".cache" / "voicebox" / f"asterisk-{VERSION}"
HOST = "127.0.0.1"

# The reference files' example addresses (see sip/asterisk/pjsip.conf's header).
ASTERISK_ADDR = "10.0.0.5"
VOICEBOX_ADDR = "10.0.0.20"

# Modules autoload would start that a test needs not and that open sockets or want config files
# the test does not write.
NOLOAD = (
    "chan_iax2.so", "pbx_dundi.so", "chan_unistim.so", "chan_mgcp.so", "chan_skinny.so", "chan_motif.so",
    "res_xmpp.so", "res_hep.so", "res_hep_pjsip.so", "res_hep_rtcp.so", "res_pjsip_transport_websocket.so",
    "res_http_websocket.so", "res_ari.so", "res_phoneprov.so", "res_pjsip_phoneprov_provider.so",
    "chan_rtp.so", "res_stun_monitor.so", "res_config_ldap.so", "res_config_pgsql.so", "cdr_pgsql.so",
    "cel_pgsql.so", "res_calendar.so", "chan_console.so", "chan_alsa.so", "chan_oss.so",
    "res_pjsip_stir_shaken.so", "res_stir_shaken.so", "res_smdi.so", "app_voicemail.so",
    "res_prometheus.so", "res_statsd.so", "res_snmp.so", "res_corosync.so", "res_fax.so",
)


def find_binary() -> Path:
    """The asterisk binary to test against; builds the cached one once, or skips with the reason."""
    env = os.environ.get("VOICEBOX_ASTERISK")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"VOICEBOX_ASTERISK={env} is not an executable file")
        return path
    on_path = shutil.which("asterisk")
    if on_path:
        return Path(on_path)
    cached = CACHE / "sbin" / "asterisk"
    if _runs(cached):
        return cached
    build = SOURCES / "build.sh"
    if not build.is_file():
        pytest.skip(f"no asterisk: set VOICEBOX_ASTERISK, put asterisk on PATH, or provide {build} "
                    f"(Asterisk {VERSION} sources) to build it into {CACHE}")
    # Once per machine: build.sh returns at once when the cache already runs.
    proc = subprocess.run(["nice", "-n", "10", "bash", str(build), str(CACHE)], capture_output=True, text=True)
    if proc.returncode != 0 or not _runs(cached):
        pytest.fail(f"building Asterisk with {build} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return cached


def _runs(binary: Path) -> bool:
    try:
        return subprocess.run([str(binary), "-V"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class Ports:
    """Where each party listens on loopback for one Asterisk instance."""

    asterisk_sip: int
    voicebox_sip: int
    rtp_start: int  # Asterisk's RTP range, inside the test's own
    rtp_end: int
    asterisk_tls: int = 0
    voicebox_tls: int = 0
    tls_cert: Path | None = None
    tls_key: Path | None = None


def render(name: str, ports: Ports) -> str:
    """One reference file with its example addresses and ports replaced, and nothing else."""
    text = (REFERENCE / name).read_text()
    swaps = [
        ("bind=0.0.0.0:5060", f"bind={HOST}:{ports.asterisk_sip}"),
        ("bind=0.0.0.0:5061", f"bind={HOST}:{ports.asterisk_tls}"),
        (f"{VOICEBOX_ADDR}:5060", f"{HOST}:{ports.voicebox_sip}"),
        (f"{VOICEBOX_ADDR}:5061", f"{HOST}:{ports.voicebox_tls}"),
        (VOICEBOX_ADDR, HOST),
        (ASTERISK_ADDR, HOST),
    ]
    if ports.tls_cert is not None and ports.tls_key is not None:
        swaps += [("/etc/asterisk/keys/asterisk.crt", str(ports.tls_cert)),
                  ("/etc/asterisk/keys/asterisk.key", str(ports.tls_key))]
    for old, new in swaps:
        text = text.replace(old, new)
    return text


def enable_marked(text: str, marker: str = "(TLS)") -> str:
    """Follow the file's own instruction for an optional feature: remove the leading ';' of
    every line marked ``marker``; such a line replaces the line of the same option above it in
    its section."""
    out: list[str] = []
    section_start = 0
    for line in text.splitlines():
        if re.match(r";[^\s;]", line) and marker in line:  # a setting commented out, not prose
            line = line[1:]
            key = line.split("=", 1)[0].strip() if "=" in line.split(";", 1)[0] else None
            if key:
                for i in range(section_start, len(out)):
                    if re.match(rf"{re.escape(key)}\s*=", out[i]):
                        out[i] = ";" + out[i] + "   ; replaced by the next (TLS) line"
        if line.startswith("["):
            section_start = len(out)
        out.append(line)
    return "\n".join(out) + "\n"


@dataclass
class Asterisk:
    binary: Path
    root: Path  # every directory of this instance
    ports: Ports
    proc: subprocess.Popen | None = None
    console: Path = field(default_factory=Path)

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "asterisk.conf"

    def cli(self, command: str, timeout: float = 20) -> str:
        """One CLI command through the running Asterisk's control socket (``asterisk -rx``)."""
        proc = subprocess.run([str(self.binary), "-C", str(self.conf), "-rx", command],
                              capture_output=True, text=True, timeout=timeout)
        return proc.stdout + proc.stderr

    def log_text(self) -> str:
        path = self.root / "log" / "full"
        return path.read_text(errors="replace") if path.exists() else ""

    def uri(self, user: str) -> str:
        return f"sip:{user}@{HOST}:{self.ports.asterisk_sip}"


def write_config(root: Path, binary: Path, ports: Ports, pjsip: str, extensions: str, extra_pjsip: str) -> None:
    """The test-only files around the rendered reference ones."""
    prefix = binary.resolve().parent.parent
    etc = root / "etc"
    for d in ("etc", "lib", "keys", "spool", "run", "log", "agi"):
        (root / d).mkdir(parents=True, exist_ok=True)
    datadir = prefix / "var" / "lib" / "asterisk"  # read only: documentation XML, no sounds built
    (etc / "asterisk.conf").write_text(
        "[directories]\n"  # not "(!)": that would make it a template, which Asterisk ignores
        f"astetcdir => {etc}\nastmoddir => {prefix / 'lib' / 'asterisk' / 'modules'}\n"
        f"astvarlibdir => {root / 'lib'}\nastdbdir => {root / 'lib'}\nastkeydir => {root}\n"
        f"astdatadir => {datadir if datadir.is_dir() else root / 'lib'}\nastagidir => {root / 'agi'}\n"
        f"astspooldir => {root / 'spool'}\nastrundir => {root / 'run'}\nastlogdir => {root / 'log'}\n"
        f"astsbindir => {binary.resolve().parent}\n"
        "[options]\nverbose = 3\ndebug = 0\nnocolor = yes\ncache_media_frames = no\n"
    )
    (etc / "modules.conf").write_text(
        "[modules]\nautoload = yes\n" + "".join(f"noload => {m}\n" for m in NOLOAD)
    )
    (etc / "logger.conf").write_text(
        "[general]\ndateformat = %F %T.%3q\n[logfiles]\nfull => notice,warning,error,verbose\n"
        "console => notice,warning,error\n"
    )
    (etc / "rtp.conf").write_text(f"[general]\nrtpstart = {ports.rtp_start}\nrtpend = {ports.rtp_end}\n")
    (etc / "pjsip.conf").write_text(pjsip + "\n; ---- test-only endpoints (phones) ----\n#include pjsip_test.conf\n")
    (etc / "pjsip_test.conf").write_text(extra_pjsip)
    (etc / "extensions.conf").write_text(extensions)


def start(binary: Path, ports: Ports, pjsip: str, extensions: str, extra_pjsip: str,
          timeout_s: float = 60) -> Asterisk:
    """Asterisk in the foreground with its own directories; returns once fully booted."""
    # Short path: the control socket's path must fit a sockaddr_un (108 bytes).
    root = Path(tempfile.mkdtemp(prefix="vb-ast-", dir="/tmp"))
    write_config(root, binary, ports, pjsip, extensions, extra_pjsip)
    ast = Asterisk(binary, root, ports)
    ast.console = root / "console.log"
    ast.proc = subprocess.Popen(
        [str(binary), "-f", "-n", "-C", str(ast.conf)],
        stdout=ast.console.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ast.proc.poll() is not None:
            tail = _tail(ast)
            stop(ast)
            raise RuntimeError(f"asterisk exited early ({ast.proc.returncode}):\n{tail}")
        try:
            done = subprocess.run([str(binary), "-C", str(ast.conf), "-rx", "core waitfullybooted"],
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            break
        if done.returncode == 0 and "fully booted" in done.stdout.lower():
            return ast
        time.sleep(0.3)
    tail = _tail(ast)
    stop(ast)
    raise RuntimeError(f"asterisk not booted in {timeout_s:.0f} s:\n{tail}")


def stop(ast: Asterisk) -> None:
    """A clean ``core stop now``; SIGTERM, then SIGKILL, only if that hangs."""
    if ast.proc is not None and ast.proc.poll() is None:
        try:
            ast.cli("core stop now", timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            ast.proc.wait(10)
        except subprocess.TimeoutExpired:
            ast.proc.send_signal(signal.SIGTERM)
            try:
                ast.proc.wait(5)
            except subprocess.TimeoutExpired:
                ast.proc.kill()
                ast.proc.wait(5)
    shutil.rmtree(ast.root, ignore_errors=True)  # the tests have printed what they needed from it


def _tail(ast: Asterisk) -> str:
    console = ast.console.read_text(errors="replace") if ast.console.exists() else ""
    return (console + ast.log_text())[-3000:]


def show(ast: Asterisk, command: str) -> str:
    """Run a CLI command and print its output: the evidence a closing note quotes."""
    out = ast.cli(command)
    print(f"\n*CLI> {command}\n{out.rstrip()}", flush=True)
    return out
