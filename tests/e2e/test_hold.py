"""A caller's PBX holds the call (re-INVITE a=sendonly) and takes it back: issue #17, defect 3."""

from __future__ import annotations

import re
import wave

import numpy as np
import pytest

from tests.e2e.conftest import CORPUS, call, call_events, start_server, stop_server

pytestmark = pytest.mark.e2e
WAV = CORPUS / "wav"
HOLD_S = 20


@pytest.fixture(scope="module")
def hold_server(tmp_path_factory):
    """A 3 s RTP timeout: any hold longer than that was hung up as dead media."""
    server = start_server(tmp_path_factory.mktemp("hold"),
                          "[sip]\nrtp_timeout_s = 3\nrtp_port = 54500\nrtp_port_range = 400\n")
    yield server
    stop_server(server)


def _heard_after(stereo: str, ms: float, out) -> None:
    """The right channel (what the caller heard) from ``ms`` after the answer, as a mono WAV."""
    with wave.open(stereo) as w:
        rate = w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, 2)[:, 1]
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio[int(ms * rate / 1000):].tobytes())


def test_held_call_survives_and_answers_the_next_question(hold_server, tmp_path, transcribe):
    # Price question; 600 ms into the (long) answer the caller is put on hold for 20 s, then
    # taken off hold and asks about Saturday hours.
    stereo = tmp_path / "both.wav"
    res = call(hold_server.uri, "PCMU", [WAV / "price_cleaning_0.wav", WAV / "hours_saturday_0.wav"], tmp_path,
               timeout=240, hold_s=HOLD_S, hold_turn=1, hold_into_reply_ms=600, stereo_wav=stereo,
               rtp_port=54900)
    assert res["error"] == "", res
    assert res["turns"][0]["reply_onset_ms"] is not None, "the first question was never answered"
    assert res["hold_ms"] is not None and res["unhold_ms"] is not None, res
    assert res["disconnected_by"] == "caller", f"the agent hung up a held call: {res}"
    assert res["turns"][1]["reply_onset_ms"] is not None, "no answer to the question after the unhold"

    after = tmp_path / "after-unhold.wav"
    _heard_after(str(stereo), res["unhold_ms"], after)
    heard = transcribe(after)
    assert re.search(r"saturday[^.]*(?<!\d)(9|nine)(?!\d)", heard), heard
    # Nothing of the price answer the hold cut off is played after it.
    assert not re.search(r"whitening|filling|250|120|hundred", heard), heard

    events = call_events(hold_server, res["sip_call_id"])
    kinds = [e["event"] for e in events]
    assert "hold" in kinds and "unhold" in kinds and kinds.index("hold") < kinds.index("unhold"), kinds
    assert not any(e["event"] == "hangup" for e in events), "the agent hung up"
    log = hold_server.log_text()
    assert "error=sip.rtp_timeout" not in log and "call held" in log and "call resumed" in log
