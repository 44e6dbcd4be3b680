"""What the person a caller is transferred to learns before they say hello.

A blind REFER tells the receptionist nothing. The Refer-To URI can carry headers that the
transferee (the caller's phone or the PBX acting for it) copies onto its INVITE to the target
(RFC 3261 section 19.1.1; pjsip's dialog does exactly that): so the target's phone or PBX sees

- ``User-to-User`` (RFC 7433): the reason as hex-encoded UTF-8, the form PBXs and ISDN gateways
  pass along and show to agents;
- ``X-Voicebox-Session`` and ``X-Voicebox-Reason``: the call's session id (to find its record)
  and the reason in plain text, for PBXs and softphones that show or log X- headers;

and the Refer-To name-addr's display name holds a short "Voicebox: <reason>" for phones that
show the To name. The REFER itself carries Referred-By (added by pjsua), which the transferee
copies too. Nothing from the caller's words goes here: only why the agent transferred.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

# RFC 7433's purpose for application data that is not ISDN user-to-user.
UUI_PURPOSE = "voicebox"
MAX_REASON_CHARS = 120  # UUI travels in ISDN-sized fields (~128 octets) through many gateways
_SAFE = "-_.!~*'()[]/:+$"  # hnv-unreserved and unreserved characters that need no escaping (RFC 3261)


@dataclass(frozen=True)
class TransferContext:
    session_id: str
    reason: str  # why the agent transfers, e.g. "asked for a person", "could not understand"
    agent_name: str = ""


def _escape(value: str) -> str:
    """Escape a header value for the headers part of a SIP URI (RFC 3261 hvalue)."""
    return quote(value, safe=_SAFE)


def _clean(text: str, limit: int) -> str:
    text = re.sub(r"[\x00-\x1f\x7f\"\\<>]+", " ", text).strip()
    return text[:limit].rstrip()


def refer_to(target: str, ctx: TransferContext) -> str:
    """The Refer-To value for ``target`` (a sip:/sips: URI without headers) carrying ``ctx``.

    >>> refer_to("sip:desk@pbx", TransferContext("s-1", "asked for a person"))
    '"Voicebox: asked for a person" <sip:desk@pbx?User-to-User=...>'  # doctest: +SKIP
    """
    if "?" in target or "<" in target:
        raise ValueError(f"transfer target must be a plain SIP URI, got {target!r}")
    reason = _clean(ctx.reason, MAX_REASON_CHARS) or "transfer"
    uui = reason.encode("utf-8").hex()
    headers = [
        ("User-to-User", f"{uui};encoding=hex;purpose={UUI_PURPOSE}"),
        ("X-Voicebox-Session", _clean(ctx.session_id, 64)),
        ("X-Voicebox-Reason", reason),
    ]
    query = "&".join(f"{name}={_escape(value)}" for name, value in headers if value)
    who = _clean(ctx.agent_name, 40) or "Voicebox"
    display = _clean(f"{who}: {reason}", 80)
    return f'"{display}" <{target}?{query}>'


def decode_uui(header_value: str) -> str:
    """The text of a ``User-to-User`` value written by ``refer_to`` (for tests and receivers)."""
    data, _, params = header_value.partition(";")
    if "encoding=hex" not in params.replace(" ", "").lower():
        return data
    return bytes.fromhex(data.strip()).decode("utf-8", errors="replace")


def transfer_reason(decision: object) -> str:
    """Why the dialog hands the caller to a person, in words a receptionist reads at a glance.

    Takes the dialog's ``Decision`` (its ``kind``, ``intent`` and ``reason``); only the agent's
    own classification goes in, never the caller's words.
    """
    kind = getattr(decision, "kind", "")
    reason = getattr(decision, "reason", "") or ""
    intent = getattr(decision, "intent", None)
    if kind == "give_up":
        return "the agent could not understand the caller"
    if reason == "accepted offer":
        return "caller accepted the offer of a person"
    return f"caller asked for a person ({intent})" if intent else "caller asked for a person"


def split_refer_to(value: str) -> tuple[str, dict[str, str]]:
    """The target URI and the context headers of a Refer-To value written by ``refer_to``.

    A warm transfer places the call to the target itself: its INVITE carries the same headers
    the caller's phone would have copied from the blind REFER.
    """
    m = re.search(r"<([^>]*)>", value)
    uri = m.group(1) if m else value.strip()
    target, _, query = uri.partition("?")
    headers: dict[str, str] = {}
    for part in query.split("&") if query else []:
        name, _, raw = part.partition("=")
        if name:
            headers[unquote(name)] = unquote(raw)
    return target, headers
