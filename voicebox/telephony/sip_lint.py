"""Checks on a received request that pjsip's parser lets through but RFC 3261/4475 want refused.

pjsip already drops what it cannot parse. These are the well-parsed-but-wrong cases that the
torture tests of RFC 4475 name (mismatch01, multi01, clerr, bext01, sdp01), plus the little a
caller of this module needs to know about a request (method, whether it claims a dialog).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

COMPACT = {"i": "call-id", "f": "from", "t": "to", "l": "content-length", "c": "content-type",
           "v": "via", "m": "contact", "k": "supported", "s": "subject", "e": "content-encoding"}
SINGLE_VALUED = ("call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type")
SUPPORTED_OPTIONS = frozenset({"timer", "100rel", "replaces", "norefersub"})  # what pjsua implements
_FOLD = re.compile(r"\r\n[ \t]+")
_TAG = re.compile(r";\s*tag\s*=", re.I)


@dataclass
class Request:
    method: str
    headers: list[tuple[str, str]]  # (lower-case full name, value), unfolded, in order
    body: bytes
    # It has a To tag, so it says it belongs to a dialog; only a lookup in pjsua's dialogs can
    # say whether it does (sip_guard). REGISTER is never in one, and pjsip matches a CANCEL by
    # the INVITE it cancels, tag or none.
    claims_dialog: bool
    uri: str = ""  # the Request-URI, as sent

    def get(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]


@dataclass
class Verdict:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)


def parse(raw: bytes) -> Request | None:
    """The request in ``raw`` (one SIP message), or None if it is not a request."""
    head, _, body = raw.partition(b"\r\n\r\n")
    text = _FOLD.sub(" ", head.decode("utf-8", errors="replace"))
    lines = text.split("\r\n")
    parts = lines[0].split()
    if len(parts) < 3 or parts[0].startswith("SIP/"):
        return None
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        headers.append((COMPACT.get(name, name), value.strip()))
    to = [v for k, v in headers if k == "to"]
    tagged = bool(to and _TAG.search(to[0])) and parts[0] not in ("REGISTER", "CANCEL")
    return Request(parts[0], headers, body, tagged, parts[1])


def check(req: Request, datagram: bool) -> Verdict | None:
    """Why ``req`` must be refused, or None. ACKs are never answered."""
    if req.method == "ACK":
        return None
    for name in SINGLE_VALUED:
        if len(req.get(name)) > 1:
            return Verdict(400, f"Multiple {name} headers")
    cseq = req.get("cseq")
    if cseq and cseq[0].split()[-1:] != [req.method]:
        return Verdict(400, "CSeq method does not match the request")
    length = req.get("content-length")
    if datagram and length and length[0].isdigit() and int(length[0]) > len(req.body):
        return Verdict(400, "Content-Length larger than the message")
    if req.method != "CANCEL":
        unknown = [o.strip() for v in req.get("require") + req.get("proxy-require") for o in v.split(",")
                   if o.strip() and o.strip().lower() not in SUPPORTED_OPTIONS]
        if unknown:
            return Verdict(420, "Bad Extension", [("Unsupported", ", ".join(unknown))])
    if req.method == "INVITE" and req.body.strip() and req.get("accept"):
        accepted = [a.split(";")[0].strip().lower() for v in req.get("accept") for a in v.split(",")]
        if not {"application/sdp", "application/*", "*/*"} & set(accepted):
            return Verdict(406, "Not Acceptable", [("Accept", "application/sdp")])
    return None
