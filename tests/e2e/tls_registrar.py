"""A TLS registrar for the tests, and a throw-away CA to sign its certificate.

Kamailio's TLS module is not installed on Debian's kamailio and sipp here has no TLS, so the
registrar is Python's own ``ssl`` server: it answers every REGISTER 200 (binding as asked) and
records what it received, so a test can tell "refused before a REGISTER was sent" from "sent".
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

HOST = "127.0.0.1"


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (Debian: apt-get install openssl)")
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(tmp: Path) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = tmp / "ca.pem", tmp / "ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", "/CN=voicebox test CA")
    return cert, key


def issue_cert(tmp: Path, ca: tuple[Path, Path], name: str, ip: str = HOST) -> tuple[Path, Path]:
    """A certificate for ``ip`` (CN and subjectAltName) signed by ``ca``: (certificate, key)."""
    cert, key, csr, ext = (tmp / f"{name}.pem", tmp / f"{name}.key", tmp / f"{name}.csr", tmp / f"{name}.ext")
    ext.write_text(f"subjectAltName=IP:{ip}\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={ip}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return cert, key


class TlsRegistrar:
    """Accepts TLS connections on ``port`` and answers REGISTERs 200 OK."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.registers: list[str] = []  # every REGISTER received, as text
        self.handshakes = 0  # TLS handshakes completed (the client may still hang up after)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                self.handshakes += 1
                buf = b""
                while not self._stop.is_set():
                    chunk = tls.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                    while b"\r\n\r\n" in buf:
                        head, _, buf = buf.partition(b"\r\n\r\n")
                        text = head.decode(errors="replace")
                        if text.startswith("REGISTER "):
                            self.registers.append(text)
                            tls.sendall(_ok(text))
        except (OSError, ssl.SSLError):
            return  # the client refused our certificate, or hung up


def _ok(request: str) -> bytes:
    lines = request.split("\r\n")[1:]
    keep = [line for line in lines if line.split(":", 1)[0].strip().lower() in ("via", "v", "from", "f", "call-id", "i", "cseq")]
    to = next(line for line in lines if line.split(":", 1)[0].strip().lower() in ("to", "t"))
    contact = [line for line in lines if line.split(":", 1)[0].strip().lower() in ("contact", "m")]
    expires = next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("expires:")), "60")
    head = ["SIP/2.0 200 OK", *keep, f"{to};tag=reg" if ";tag=" not in to else to]
    if contact and expires != "0":
        head.append(f"{contact[0]};expires={expires}")
    head += [f"Expires: {expires}", "Content-Length: 0"]
    return ("\r\n".join(head) + "\r\n\r\n").encode()
