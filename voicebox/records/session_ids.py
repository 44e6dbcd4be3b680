"""What a session id looks like, so that user input can be checked before it touches a path.

A call's session id is the first 12 hex digits of a uuid4 (``AgentCall`` in
``voicebox/telephony/server.py``), and it names the call's record file. Anything a person types
to find a call (``voicebox calls 3f2a``) is checked against this format first, so it can never
carry glob characters or path parts into a file lookup.
"""

from __future__ import annotations

import re

SESSION_ID_LENGTH = 12
_HEX = re.compile(r"[0-9a-f]+")


def is_session_id(text: str) -> bool:
    """A whole session id: exactly 12 lowercase hex digits."""
    return len(text) == SESSION_ID_LENGTH and _HEX.fullmatch(text) is not None


def is_session_prefix(text: str) -> bool:
    """The start of a session id: 1 to 12 lowercase hex digits."""
    return 0 < len(text) <= SESSION_ID_LENGTH and _HEX.fullmatch(text) is not None
