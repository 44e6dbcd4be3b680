"""Who a caller dialled: the user part of an INVITE's Request-URI (``sip:sales@host`` → ``sales``).

The Request-URI, not the To header, says where a request is going: a proxy or PBX rewrites it
to the address it routes to and leaves To as the caller wrote it (RFC 3261 8.1.1.1, 16.5).
"""

from __future__ import annotations

from urllib.parse import unquote


def request_uri(message: str) -> str:
    """The Request-URI of a whole SIP request (its start line's second word); "" if none."""
    parts = message.split("\r\n", 1)[0].split()
    return parts[1] if len(parts) >= 3 else ""


def dialled_user(uri: str) -> str | None:
    """The user part of a sip:, sips: or tel: URI, unescaped and in lower case; None when it has none.

    A password (``user:pw@``) and telephone-subscriber parameters (``+1555;phone-context=x@``)
    are not part of who was dialled.
    """
    scheme, sep, rest = uri.strip().partition(":")
    if not sep:
        return None
    scheme = scheme.lower()
    if scheme == "tel":
        user = rest
    elif scheme in ("sip", "sips"):
        userinfo, at, _ = rest.partition("@")
        if not at:
            return None  # sip:host: no user part at all
        user = userinfo.split(":", 1)[0]
    else:
        return None
    user = unquote(user.split(";", 1)[0].split("?", 1)[0]).strip()
    return user.lower() or None
