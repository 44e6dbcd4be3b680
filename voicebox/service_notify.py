"""Tell systemd how ``voicebox serve`` is doing (``Type=notify``): the sd_notify protocol.

The protocol is one unix datagram of ``KEY=VALUE`` lines to the socket named in ``$NOTIFY_SOCKET``
(a path, or an abstract name written with a leading ``@``). It is small enough to speak with the
standard library, so the service needs no libsystemd binding. Without ``$NOTIFY_SOCKET`` (run by
hand, in tests, under another supervisor) every call here is a no-op.

Nothing here may take the server down: a failed send is logged once and otherwise ignored, since
a service manager that cannot hear us is no reason to stop answering calls.

The watchdog (``WatchdogSec=`` in the unit) is pinged by whoever calls ``watchdog()`` regularly;
serve calls it from the SIP thread's loop only, so the pings stop when that loop stops turning.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("voicebox.service")

# Sends never wait for room in the manager's queue, except READY=1's: the SIP thread sends the
# pings and the drain's status, and with threadCnt=0 it also reads every call's RTP, so a wait
# there is a gap in calls' audio (a lost ping or status is harmless, the next one follows). READY
# is sent before that loop starts, and losing it would have systemd kill us at TimeoutStartSec.
READY_WAIT_S = 2.0


def socket_address(value: str) -> str | bytes | None:
    """``$NOTIFY_SOCKET`` as ``sendto`` takes it: a path, or bytes for an abstract name; None if unusable.

    systemd writes an abstract socket's name with ``@`` where the kernel wants a NUL byte.
    """
    if value.startswith("@") and len(value) > 1:
        return b"\0" + os.fsencode(value[1:])  # as the environment held it, odd bytes included
    if value.startswith("/"):
        return value
    return None  # empty, relative, or a kind we do not speak (vsock:...)


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between watchdog pings (half ``WATCHDOG_USEC``, as sd_watchdog_enabled advises), or None.

    ``WATCHDOG_PID`` names the process the watchdog is for; a child that inherited it must not ping.
    """
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if owner and owner != str(pid):
        return None
    return int(usec) / 2e6


class ServiceNotifier:
    """Messages to the service manager; every method is safe to call when there is none."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self._address = socket_address(raw)
        self._failed = False  # a failure is logged once: the next ones would only repeat it
        self._stopping = False
        self.watchdog_interval_s = watchdog_interval(env, os.getpid()) if self._address else None
        self._next_ping = 0.0
        if raw and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a socket voicebox can notify; no service notifications", raw)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str, wait_s: float = 0.0) -> bool:
        """Send ``fields`` (``KEY=VALUE`` each) as one message; True if it was sent.

        ``wait_s``: how long to wait for room in the manager's queue (0: not at all).
        """
        if self._address is None:
            return False
        message = "\n".join(fields).encode(errors="replace")  # a stray surrogate is no reason to fail
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.settimeout(wait_s)  # 0: non-blocking, a full queue is an error (EAGAIN)
                s.sendto(message, self._address)
            return True
        except OSError as e:
            if not self._failed:
                self._failed = True
                log.warning("service notification failed (%s); voicebox serves on without them", e)
            return False

    def status(self, text: str) -> None:
        """The one-line status ``systemctl status`` shows."""
        self.notify(f"STATUS={_one_line(text)}")

    def ready(self, text: str) -> None:
        """Start-up is done: systemd starts units ordered after this one, and the watchdog."""
        self.notify("READY=1", f"STATUS={_one_line(text)}", wait_s=READY_WAIT_S)

    def stopping(self, text: str) -> None:
        """Shutting down (said once; later calls only update the status)."""
        if self._stopping:
            self.status(text)
            return
        self._stopping = True
        self.notify("STOPPING=1", f"STATUS={_one_line(text)}")

    def watchdog(self, now: float | None = None) -> None:
        """Ping the watchdog if one is set and a ping is due; cheap enough to call every loop turn."""
        if self.watchdog_interval_s is None:
            return
        now = time.monotonic() if now is None else now
        if now < self._next_ping:
            return
        self._next_ping = now + self.watchdog_interval_s
        self.notify("WATCHDOG=1")


def _one_line(text: str) -> str:
    # A newline would start a new KEY=VALUE field of the message.
    return " ".join(text.split())
