"""A caller reads out a card number: nothing of it may be stored, logged or recorded."""

from __future__ import annotations

import json
import re
import time
import wave

import numpy as np
import pytest

from tests.e2e.conftest import CORPUS, call
from voicebox.audio.wavio import write_wav

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"
CARD_RUN = re.compile(r"\d(?:[ -]?\d){12,18}")  # one line, spaces or dashes between digits


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_card_number_is_redacted_everywhere_and_not_recorded(privacy_server, tmp_path, transcribe):
    res = call(privacy_server.uri, "PCMU", [WAV / "card_number_0.wav", WAV / "hours_saturday_0.wav"], tmp_path)
    assert len(res["turns"]) == 2 and all(t["reply_onset_ms"] is not None for t in res["turns"]), res
    recordings = lambda: list((privacy_server.data_dir / "recordings").glob("*/*.wav"))  # noqa: E731
    _wait_for(lambda: len(recordings()) == 1)
    records = list((privacy_server.data_dir / "calls").glob("*/*.jsonl"))
    assert len(records) == 1

    # Records and logs: the transcript is there, redacted; no card-like digit run anywhere.
    texts = [p.read_text() for p in records] + [privacy_server.log_text()]
    for text in texts:
        assert "4111" not in text
        assert not CARD_RUN.search(text), CARD_RUN.search(text)
    turns = [json.loads(line) for line in records[0].read_text().splitlines() if '"event":"turn"' in line]
    assert "[CARD]" in turns[0]["caller_text"], turns[0]
    assert "saturday" in turns[1]["caller_text"].lower(), turns[1]

    # The recording: the payment turn is silence on the caller's channel; the next turn is kept.
    with wave.open(str(recordings()[0])) as w:
        assert w.getnchannels() == 2
        rate = w.getframerate()
        stereo = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, 2)
    def caller_turn(turn: dict) -> str:
        """What the caller's channel holds over one turn (the record's times are recording offsets)."""
        start = max(0, (turn["speech_start_ms"] - 500) * rate // 1000)
        end = (turn["decided_ms"] + 200) * rate // 1000
        path = tmp_path / f"caller-turn{turn['turn']}.wav"
        write_wav(path, stereo[start:end, 0], rate)
        return transcribe(path)

    card_turn, hours_turn = caller_turn(turns[0]), caller_turn(turns[1])
    assert not np.any(stereo[turns[0]["speech_start_ms"] * rate // 1000 : turns[0]["decided_ms"] * rate // 1000, 0])
    assert "4111" not in card_turn and "card" not in card_turn, card_turn
    assert "saturday" in hours_turn, hours_turn
    write_wav(tmp_path / "agent.wav", stereo[:, 1], rate)
    assert "riverside" in transcribe(tmp_path / "agent.wav")
