"""The answer to a request pjsip's parser refused, built from its raw bytes.

pjsip drops a message it cannot parse, or one without Call-ID, From or To, and says nothing:
the sender retransmits for 32 s and a PBX marks the trunk down. RFC 4475 wants most of these
refused with a status that names the problem (400, 505 for another SIP version, 416 for a
Request-URI scheme we do not know). The response is built here, without pjsip's parse: the
Via, From, To, Call-ID and CSeq lines are copied verbatim, as RFC 3261 8.2.6.2 asks, so the
sender's transaction can match it. No To tag is added: we cannot tell where a broken To's URI
ends, and a refused request makes no dialog.

Nothing is answered when no response can be matched to the request: to a response (RFC 3261
18.1.2: a UAS drops it), to a message without a Via or a CSeq, or without a request line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voicebox.telephony.sip_lint import COMPACT

COPIED = ("via", "from", "to", "call-id", "cseq")
KNOWN_SCHEMES = ("sip", "sips", "tel")
MAX_CSEQ = 2**31 - 1  # RFC 3261 8.1.1.5: less than 2**31
_FOLD = re.compile(rb"\r\n[ \t]+")
_VERSION = re.compile(r"^SIP/\d+\.\d+$", re.I)
_METHOD = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    method: str
    headers: list[tuple[str, str]]  # extra headers beyond the copied ones

    def render(self, copied: list[tuple[str, str]], server: str) -> bytes:
        lines = [f"SIP/2.0 {self.status} {self.reason}"]
        lines += [f"{name}: {value}" for name, value in copied]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines += [f"Server: {server}", "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", errors="replace")


def _headers(head: bytes) -> list[tuple[str, str, str]]:
    """(lower-case full name, name as sent, value) of every header line, folding undone."""
    text = _FOLD.sub(b" ", head).decode("utf-8", errors="replace")
    out = []
    for line in text.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip():
            key = name.strip().lower()
            out.append((COMPACT.get(key, key), name.strip(), value.strip()))
    return out


def _problem(method: str, uri: str, version: str, rest: list[str],
             headers: list[tuple[str, str, str]], allow: str) -> tuple[int, str, list[tuple[str, str]]]:
    if not _VERSION.match(version):
        return 400, "Bad Request-Line", []
    if version.upper() != "SIP/2.0":
        return 505, "Version Not Supported", []
    if rest or uri.startswith("<"):
        # lwsruri (a space inside it) and ltgtruri (<sip:...>): RFC 4475 3.1.2.7-8 want 400.
        return 400, "Malformed Request-URI", []
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme not in KNOWN_SCHEMES:
        return 416, "Unsupported URI Scheme", []
    missing = [name for name, key in (("Call-ID", "call-id"), ("From", "from"), ("To", "to"))
               if key not in {k for k, _, _ in headers}]
    if missing:
        return 400, f"Missing {', '.join(missing)}", []
    for key, _, value in headers:
        if key == "cseq":
            number = value.split()[0] if value.split() else ""
            if not number.isdigit() or int(number) > MAX_CSEQ:
                return 400, "Bad CSeq", []
        if value.count('"') % 2:
            return 400, f"Unterminated quoted string in {key}", []
    if method == "REGISTER":
        # Not a registrar: a REGISTER with nothing wrong that we can name gets the 405 every
        # REGISTER gets (regaut01's unknown Authorization scheme, regbadct's Contact).
        return 405, "Method Not Allowed", [("Allow", allow)]
    return 400, "Bad Request", []


def answer(raw: bytes, allow: str) -> tuple[Answer, list[tuple[str, str]]] | None:
    """What to answer to the unparsable message ``raw``, and the header lines to copy into the
    response; None when it must stay unanswered (see the module's docstring)."""
    head = raw.partition(b"\r\n\r\n")[0]
    first = head.split(b"\r\n", 1)[0].decode("utf-8", errors="replace")
    parts = first.split(" ")
    if first.upper().startswith("SIP/") or len(parts) < 3 or not _METHOD.match(parts[0]):
        return None
    method, uri, version, rest = parts[0], parts[1], parts[-1], parts[2:-1]
    headers = _headers(head)
    names = {key for key, _, _ in headers}
    if "via" not in names or "cseq" not in names:
        return None
    status, reason, extra = _problem(method, uri, version, rest, headers, allow)
    copied = [(name, value) for key, name, value in headers if key in COPIED]
    return Answer(status, reason, method, extra), copied
