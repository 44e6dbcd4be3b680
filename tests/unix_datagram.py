"""A unix datagram socket bound in a short temporary directory: where a test plays systemd's
notify socket (a unix socket path must fit in 108 bytes; pytest's tmp_path may not)."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def bound_datagram_socket(timeout_s: float) -> Iterator[tuple[socket.socket, str]]:
    with tempfile.TemporaryDirectory(prefix="vb-") as d:
        path = str(Path(d) / "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(timeout_s)
        try:
            yield s, path
        finally:
            s.close()
