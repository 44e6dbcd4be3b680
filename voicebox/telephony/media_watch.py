"""Whether a call's audio is on hold, and when silence on its RTP means the call is dead.

A caller's PBX holds a call with a re-INVITE whose SDP says ``a=sendonly`` (music on hold comes
our way, we may not send) or ``a=inactive`` (nothing either way). pjsua then reports the audio
as ``PJSUA_CALL_MEDIA_REMOTE_HOLD``, or without a sending direction: the agent cannot be heard,
and RTP may stop for as long as the hold lasts. Such a call gets ``sip.hold_timeout_s``, not
``sip.rtp_timeout_s`` (issue #17: held callers were hung up as dead media).

Everything here runs on the SIP thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

import pjsua2 as pj


class MediaInfo(Protocol):  # pj.CallMediaInfo, as far as hold is concerned
    type: int
    status: int
    dir: int


def is_held(media: Iterable[MediaInfo]) -> bool:
    """True when the call has audio but none of it may carry the agent's voice to the caller."""
    audio = [m for m in media if m.type == pj.PJMEDIA_TYPE_AUDIO]
    speakable = any(m.status == pj.PJSUA_CALL_MEDIA_ACTIVE and m.dir & pj.PJMEDIA_DIR_ENCODING for m in audio)
    return bool(audio) and not speakable


@dataclass
class RtpWatchdog:
    """Counts time since the received-packet count last moved, against the limit of the
    call's current state (held or not)."""

    rtp_timeout_s: float
    hold_timeout_s: float
    since: float  # when the packet count, or the hold state, last changed
    pkts: int = -1
    held: bool = False

    def check(self, now: float, pkts: int, held: bool) -> str | None:
        """The hang-up reason once the limit is past ('rtp_timeout' or 'hold_timeout'), else None."""
        if held != self.held:
            # A hold or an unhold starts the count afresh: RTP stops at the one, and after the
            # other the caller gets a whole rtp_timeout_s to send again.
            self.held = held
            self.since = now
        if pkts != self.pkts:
            self.pkts = pkts
            self.since = now
        limit = self.hold_timeout_s if held else self.rtp_timeout_s
        if now - self.since >= limit:
            return "hold_timeout" if held else "rtp_timeout"
        return None
