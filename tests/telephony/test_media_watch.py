"""Hold detection and the RTP watchdog's limits (issue #17: held calls were hung up as dead media)."""

from types import SimpleNamespace

import pjsua2 as pj

from voicebox.telephony.media_watch import RtpWatchdog, is_held


def _audio(status: int, direction: int) -> SimpleNamespace:
    return SimpleNamespace(type=pj.PJMEDIA_TYPE_AUDIO, status=status, dir=direction)


def test_hold_is_audio_the_agent_cannot_speak_on():
    assert not is_held([_audio(pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJMEDIA_DIR_ENCODING_DECODING)])
    assert is_held([_audio(pj.PJSUA_CALL_MEDIA_REMOTE_HOLD, pj.PJMEDIA_DIR_DECODING)]), "a=sendonly"
    assert is_held([_audio(pj.PJSUA_CALL_MEDIA_NONE, pj.PJMEDIA_DIR_NONE)]), "a=inactive"
    assert is_held([_audio(pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJMEDIA_DIR_NONE)]), "a=inactive, reported as active"
    assert not is_held([]), "no audio at all is not a hold (the RTP timeout deals with it)"
    video = SimpleNamespace(type=pj.PJMEDIA_TYPE_VIDEO, status=pj.PJSUA_CALL_MEDIA_NONE, dir=pj.PJMEDIA_DIR_NONE)
    assert not is_held([video, _audio(pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJMEDIA_DIR_ENCODING_DECODING)])


def test_silence_ends_an_active_call_after_rtp_timeout():
    dog = RtpWatchdog(rtp_timeout_s=3, hold_timeout_s=60, since=0.0)
    assert dog.check(1.0, 50, held=False) is None
    assert dog.check(3.5, 50, held=False) is None, "3 s counted from the last new packet, at 1.0"
    assert dog.check(4.0, 50, held=False) == "rtp_timeout"


def test_a_held_call_gets_the_hold_limit_and_a_fresh_start_at_unhold():
    dog = RtpWatchdog(rtp_timeout_s=3, hold_timeout_s=60, since=0.0)
    dog.check(1.0, 50, held=False)
    assert dog.check(2.0, 50, held=True) is None  # held: no RTP at all from here
    assert dog.check(20.0, 50, held=True) is None, "an active call would have been dead at 4.0"
    assert dog.check(61.9, 50, held=True) is None
    assert dog.check(62.0, 50, held=True) == "hold_timeout"


def test_music_on_hold_keeps_a_held_call_alive():
    dog = RtpWatchdog(rtp_timeout_s=3, hold_timeout_s=60, since=0.0)
    dog.check(0.0, 0, held=True)
    for t in range(1, 200):
        assert dog.check(float(t), t * 50, held=True) is None


def test_after_unhold_the_caller_has_rtp_timeout_to_send_again():
    dog = RtpWatchdog(rtp_timeout_s=3, hold_timeout_s=60, since=0.0)
    dog.check(0.0, 50, held=True)
    assert dog.check(50.0, 50, held=False) is None, "unhold at 50: the count starts again"
    assert dog.check(52.9, 50, held=False) is None
    assert dog.check(53.0, 50, held=False) == "rtp_timeout"


def _bridge_port():
    from voicebox.audio.ringbuffer import RingBuffer
    from voicebox.telephony.media_port import BridgePort

    return BridgePort(RingBuffer(1600), RingBuffer(16000), 320)


def test_the_frame_gap_across_a_hold_is_not_counted():
    """The bridge asks for no frames while a call is held; the server restarts the gap clock at the
    hold and the unhold, so max_frame_gap measures lateness, not the hold (no clock compared here:
    after a restart the next request has nothing to measure against)."""
    port, frame = _bridge_port(), pj.MediaFrame()
    port.onFrameRequested(frame)
    port.restart_gap_clock()  # held: the bridge stops asking
    port.onFrameRequested(frame)  # resumed
    assert port.max_request_gap_ms == 0.0 and port.late_requests == 0
    port.onFrameRequested(frame)
    assert port.max_request_gap_ms > 0.0, "without a hold, consecutive requests are measured"
