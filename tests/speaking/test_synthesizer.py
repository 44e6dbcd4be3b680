"""Piper through the synthesizer: normalized text, the bridge rate, no dead air before speech."""

from __future__ import annotations

import numpy as np
import pytest

from voicebox.speaking.synthesizer import _trim_lead_in


def test_lead_in_silence_is_trimmed_to_a_few_ms():
    clip = np.concatenate([np.zeros(800, np.int16), np.full(1600, 3000, np.int16)])
    out = _trim_lead_in(clip, 16000)
    assert len(out) == 1600 + 80 and out[80] == 3000


def test_silent_clip_is_left_alone():
    clip = np.zeros(320, np.int16)
    assert _trim_lead_in(clip, 16000) is clip


@pytest.fixture(scope="module")
def tts():
    from voicebox.config import load_config
    from voicebox.model_store import resolve
    from voicebox.speaking.synthesizer import Synthesizer

    cfg = load_config(None, {})
    return Synthesizer(resolve(cfg.models.tts, "tts", cfg.data_dir), 16000)


def test_real_voice_starts_speaking_within_10_ms(tts):
    clip = tts.synthesize("We're open at 9 am.")
    first_loud = int(np.flatnonzero(np.abs(clip.astype(np.int32)) >= 64)[0])
    assert first_loud <= 160
    assert len(clip) > 16000 * 0.5  # "nine A M" was spoken, not dropped
