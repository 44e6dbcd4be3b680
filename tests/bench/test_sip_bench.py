"""Real calls to a real `voicebox serve` (pjsua2 caller, loopback): the caller's stereo
recording holds what it sent where its JSON says, and the recording's v2v agrees with the live one."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness.recording_v2v import read_stereo_wav
from benchmarks.harness.scenarios import load_scenarios
from benchmarks.harness.sip_bench import Server, run_sip, sip_results
from voicebox.audio.wavio import read_wav

SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpus"
AGREE_MS = 60  # the bench reports the tight figure; a test on a noisy box allows the criterion itself


def test_recorded_and_live_voice_to_voice_agree_on_real_calls():
    scenarios, base = load_scenarios(SHARED / "scenarios.json")
    # Two turns in one call, and the noisy recording whose reply starts inside the WAV's tail.
    work = [(s, base) for s in scenarios if s.id in ("booking", "noisy_hours")]
    with tempfile.TemporaryDirectory(prefix="vb-sip-bench-") as tmp:
        with Server(Path(tmp)) as server:
            calls = run_sip(server, work, "PCMU", Path(tmp))
            time.sleep(1.0)  # the server's writer thread files the last record
            records = server.records()
        turns, results = sip_results(calls, records)
        assert [r.error for r in results] == ["", ""], results
        # The bridge clock asks every 20 ms; the figure is the server's own, read from call_end.
        assert all(r.max_frame_gap_ms is not None and r.max_frame_gap_ms >= 15 for r in results), results
        assert all(r.late_frame_requests is not None for r in results), results
        for sc, _, call in calls:
            sent, heard, rate = read_stereo_wav(call["stereo_wav"])
            assert rate == 16000 and len(sent) == len(heard) and np.abs(heard).max() > 0
            for spec, played in zip(sc.turns, call["turns"]):
                # What the caller sent sits on the left exactly where its JSON says it began.
                wav, _ = read_wav(base / spec.wav, 16000)
                start = int(played["play_start_ms"]) * 16
                assert np.array_equal(sent[start : start + len(wav)], wav), (sc.id, played)
    assert len(turns) == 3
    for t in turns:
        assert t.caller_v2v_ms is not None and t.recording_v2v_ms is not None, t
        assert abs(t.caller_v2v_ms - t.recording_v2v_ms) <= AGREE_MS, json.dumps(vars(t))
