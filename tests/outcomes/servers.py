"""Real servers the business side runs, started by the tests: a CalDAV server (Radicale, as a
child process with its own storage and password file) and an SMTP inbox (aiosmtpd)."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from voicebox.telephony.probe import free_port

HOST = "127.0.0.1"


class Inbox:
    """An aiosmtpd handler that keeps what it receives and refuses the recipients it is told to."""

    def __init__(self, refuse: dict[str, str] | None = None) -> None:
        self.refuse = refuse or {}
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.logins: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted"


def wait_for_port(port: int, proc: subprocess.Popen, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"radicale exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("radicale did not start listening")


@contextlib.contextmanager
def radicale(root: Path, user: str, password: str) -> Iterator[str]:
    """A Radicale server with one user, storing under ``root``; yields its base URL."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "users").write_text(f"{user}:{password}\n")
    port = free_port()
    (root / "config").write_text(f"""
[server]
hosts = {HOST}:{port}
[auth]
type = htpasswd
htpasswd_filename = {root / "users"}
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = {root / "collections"}
[web]
type = none
[logging]
level = warning
""")
    log = open(root / "log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "radicale", "--config", str(root / "config")],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        yield f"http://{HOST}:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
