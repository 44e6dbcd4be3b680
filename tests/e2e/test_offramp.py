"""The off-ramp over SIP: grounded answers, booking, and honest handling of what isn't known."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import CORPUS, call

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"


def test_question_outside_the_facts_gets_no_invented_answer(agent_server, tmp_path, transcribe, say):
    res = call(agent_server.uri, "PCMU", [say("Do you do heart surgery?")], tmp_path)
    assert res["turns"][0]["reply_onset_ms"] is not None, res
    heard = transcribe(res["recording"]).split("help you today?", 1)[-1]  # the reply, after the greeting
    assert "don't have that information" in heard and "front desk" in heard, heard
    assert "surgery" not in heard and "yes" not in heard, heard


def test_booking_reads_back_name_service_and_day(agent_server, tmp_path, transcribe):
    res = call(agent_server.uri, "G722", [WAV / "booking_0.wav", WAV / "booking_1.wav"], tmp_path)
    assert all(t["reply_onset_ms"] is not None for t in res["turns"]), res
    heard = transcribe(res["recording"])
    assert "name" in heard  # the first reply asks for it
    # The ear (tiny.en through G.722) has heard "Sure, cleaning, Tuesday" as "sure, clean, tuesday".
    assert "dana" in heard and "tuesday" in heard and "clean" in heard, heard


def test_mumble_is_reprompted_not_answered(agent_server, tmp_path, transcribe):
    res = call(agent_server.uri, "PCMU", [WAV / "garbage_mumble_0.wav"], tmp_path)
    heard = transcribe(res["recording"]).split("help you today?", 1)[-1]
    assert "didn't catch that" in heard, heard


def test_pure_noise_gets_silence(agent_server, tmp_path):
    res = call(agent_server.uri, "PCMU", [WAV / "garbage_noise_0.wav"], tmp_path, reply_timeout_s=8)
    assert res["turns"][0]["reply_onset_ms"] is None, res  # nothing was said, so nothing is answered


def test_a_pause_mid_sentence_does_not_end_the_turn(agent_server, tmp_path, transcribe):
    """mid_pause: "I'm looking for… [900 ms] …an appointment on Friday afternoon." is one turn."""
    before = {p.name for p in (agent_server.data_dir / "calls").glob("*/*.jsonl")}
    res = call(agent_server.uri, "PCMU", [WAV / "mid_pause_0.wav"], tmp_path)
    turn = res["turns"][0]
    assert turn["reply_onset_ms"] is not None and turn["reply_onset_ms"] > turn["play_end_ms"] - 600, res
    new = [p for p in (agent_server.data_dir / "calls").glob("*/*.jsonl") if p.name not in before]
    assert len(new) == 1
    turns = [json.loads(line) for line in new[0].read_text().splitlines() if '"event":"turn"' in line]
    assert len(turns) == 1, turns  # no reply was made during the pause
    assert turns[0]["intent"] == "booking"
    assert "friday" in transcribe(res["recording"]).split("help you today?", 1)[-1]
