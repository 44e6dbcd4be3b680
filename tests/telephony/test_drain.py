"""When a draining server may stop."""

from __future__ import annotations

from voicebox.telephony.drain import Drain


def test_not_finished_before_it_begins():
    d = Drain(timeout_s=60)
    assert not d.requested and not d.active
    assert not d.finished(0, now=1000)


def test_request_is_only_a_flag_until_the_sip_thread_begins_it():
    d = Drain(timeout_s=60)
    d.request()
    assert d.requested and not d.active
    d.begin(now=100)
    assert d.active


def test_waits_for_calls_in_progress_then_finishes():
    d = Drain(timeout_s=60)
    d.begin(now=100)
    assert not d.finished(2, now=130)
    assert d.finished(0, now=131)


def test_gives_up_on_calls_after_the_timeout():
    d = Drain(timeout_s=60)
    d.begin(now=100)
    assert not d.finished(1, now=159.9)
    assert d.finished(1, now=160)


def test_zero_timeout_stops_at_once():
    d = Drain(timeout_s=0)
    d.begin(now=5)
    assert d.finished(3, now=5)
