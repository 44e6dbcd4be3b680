"""A real HTTP receiver for webhook tests: checks each request's signature as the README tells a
business to, and acts on each idempotency key once (counting every arrival)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from voicebox.telephony.probe import free_port

SECRET = "test-secret-of-the-business"


class Receiver:
    """``answer(key)`` decides each request's status (200 unless told otherwise);
    ``on_request(key)`` runs before the answer is sent (to kill the sender mid-request)."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.answer: Callable[[str], int] = lambda key: 200
        self.on_request: Callable[[str], None] = lambda key: None
        self.arrivals: list[str] = []  # every request's key, in arrival order
        self.arrived_at: list[float] = []  # and when each came in (time.time(), for delivery delays)
        self.acted: dict[str, dict] = {}  # key → body, the first time it was answered 2xx
        self.order: list[str] = []  # keys in the order they were acted on
        self.bad_signatures = 0
        self.headers: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/outcomes"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def seen(self) -> Counter:
        with self._lock:
            return Counter(self.arrivals)

    def wait_acted(self, n: int, timeout_s: float = 30.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.acted) >= n, timeout_s)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers.get("Idempotency-Key", "")
                ts = self.headers.get("X-Voicebox-Timestamp", "")
                expected = "sha256=" + hmac.new(rx.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                good = hmac.compare_digest(expected, self.headers.get("X-Voicebox-Signature", ""))
                with rx._lock:
                    rx.arrivals.append(key)
                    rx.arrived_at.append(time.time())
                    rx.headers.append(dict(self.headers))
                    rx.bodies.append(body)
                    if not good:
                        rx.bad_signatures += 1
                rx.on_request(key)
                status = rx.answer(key) if good else 401
                if 200 <= status < 300:
                    with rx.changed:
                        if key not in rx.acted:  # the receiver's side of "acted on exactly once"
                            rx.acted[key] = json.loads(body)
                            rx.order.append(key)
                        rx.changed.notify_all()
                # An error that echoes the caller's data back, as real receivers' errors do.
                phone = json.loads(body).get("fields", {}).get("phone", "") if good else ""
                reply = b'{"ok": true}' if status < 300 else json.dumps(
                    {"error": f"field phone: {phone!r} is not a number"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                try:
                    self.wfile.write(reply)
                except OSError:
                    pass  # the sender was killed while we answered

        return Handler
