"""The SIP bench's per-run RTP port range and how it plays barge-in turns."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.harness.scenarios import Scenario
from benchmarks.harness.sip_bench import caller_rtp_port, parse_rtp_ports, play_args, split_rtp_ports
from voicebox.config import ConfigError


def test_rtp_range_parses_and_splits() -> None:
    assert parse_rtp_ports("") is None
    ports = parse_rtp_ports("58000-58999")
    assert ports == (58000, 58999)
    server, callers = split_rtp_ports(ports)
    assert server == (58000, 58499) and callers == (58500, 58999)


@pytest.mark.parametrize("bad", ["58000", "59000-58000", "58000-58010", "80-2000", "a-b"])
def test_bad_rtp_range_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_rtp_ports(bad)


def test_caller_ports_stay_in_range_and_apart() -> None:
    ports = (58500, 58999)
    chosen = [caller_rtp_port(n, ports) for n in range(1, 200)]
    assert all(58500 <= p <= 58998 for p in chosen)
    # Calls placed together (consecutive n) never share an RTP/RTCP pair.
    assert all(abs(a - b) >= 2 for a, b in zip(chosen, chosen[1:]))
    assert caller_rtp_port(1, None) == 30200  # without a range: the old spacing


def test_barge_turns_are_played_over_the_reply() -> None:
    sc = Scenario.model_validate({"id": "b", "turns": [{"wav": "a.wav"}, {"wav": "b.wav", "barge_after_ms": 900}]})
    assert play_args(sc, Path("/c")) == ["--play", "/c/a.wav", "--play", "/c/b.wav@900"]


def test_barge_stop_is_taken_from_the_callers_clock() -> None:
    from benchmarks.harness.sip_bench import sip_results

    sc = Scenario.model_validate({"id": "b", "turns": [{"wav": "a.wav"}, {"wav": "b.wav", "barge_after_ms": 900}]})
    call = {"sip_call_id": "x", "answered": True, "turns": [
        {"speech_onset_ms": 1000.0},
        {"speech_onset_ms": 5000.0, "agent_stopped_ms": 5320.0, "barge_after_ms": 900},
    ]}
    turns, _ = sip_results([(sc, Path("/c"), call)], {})
    assert [t.barge for t in turns] == [False, True]
    assert turns[1].barge_stop_ms == 320.0 and turns[0].barge_stop_ms is None


def test_heard_is_kept_without_card_numbers() -> None:
    from benchmarks.harness.results import TurnResult, apply_record
    from benchmarks.harness.scenarios import Turn

    tr = TurnResult("s", 0, "PCMU", None)
    said = "My card number is 4111 1111 1111 1111."
    apply_record(tr, {"caller_text": said, "agent_text": "ok"}, Turn(wav="a.wav", text=said))
    assert "4111" not in tr.heard and tr.heard.startswith("My card number is")
    assert tr.wer == 0.0  # scored on the real transcript, before redaction
