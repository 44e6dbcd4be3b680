"""The echo gate: the agent's own voice coming back at any (even jumping) delay is recognised;
the caller's voice over it is not mistaken for it."""

from __future__ import annotations

import numpy as np
import pytest

from voicebox.listening.echo_gate import EchoGate

RATE = 8000
FRAME = 160


def _voice(seconds: float, seed: int) -> np.ndarray:
    """Speech-like: noise shaped by a syllable-rate envelope (uncorrelated between seeds)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + seed)
    return (rng.normal(0, 1, n) * env * 3000).astype(np.float32)


def _scores(mic: np.ndarray, ref: np.ndarray, gate: EchoGate) -> np.ndarray:
    out = []
    for i in range(0, len(mic) - FRAME + 1, FRAME):
        gate.push(mic[i : i + FRAME].astype(np.int16), ref[i : i + FRAME].astype(np.int16))
        out.append(gate.score())
    return np.array(out)


@pytest.mark.parametrize("delays_ms", [(60,), (150, 330), (330, 120)])
def test_echo_alone_scores_high_even_when_its_delay_jumps(delays_ms):
    agent = _voice(4.0, 1)
    # At -10 dB; the delay jumps (a jitter buffer adapting) with a splice, not a gap.
    t = np.arange(len(agent))
    part = len(agent) // len(delays_ms)
    lag = np.array([d * RATE // 1000 for d in delays_ms])[np.minimum(t // part, len(delays_ms) - 1)]
    mic = np.where(t >= lag, 0.316 * agent[np.maximum(t - lag, 0)], 0.0).astype(np.float32)
    scores = _scores(mic, agent, EchoGate(RATE))
    settled = scores[len(scores) // 8 :]  # once the 100 ms window holds echo
    assert np.mean(settled >= 0.6) > 0.95, np.round(settled, 2)


def test_caller_speech_over_the_echo_does_not_score_as_echo():
    agent, caller = _voice(4.0, 1), _voice(1.5, 2)
    lag = 200 * RATE // 1000
    mic = np.zeros_like(agent)
    mic[lag:] = 0.316 * agent[:-lag]
    start = 2 * RATE
    mic[start : start + len(caller)] += 0.6 * caller  # 4 dB under the agent, 6 dB over its echo
    scores = _scores(mic, agent, EchoGate(RATE))
    during = scores[start // FRAME + 5 : (start + len(caller)) // FRAME]
    assert np.all(during < 0.6), np.round(during, 2)


def test_nothing_played_means_no_echo():
    gate = EchoGate(RATE)
    caller = _voice(1.0, 3)
    scores = _scores(caller, np.zeros_like(caller), gate)
    assert not gate.agent_audible() and np.all(scores == 0.0)


def test_echo_tail_is_still_recognised_after_the_agent_stops():
    agent = np.concatenate([_voice(1.0, 1), np.zeros(RATE, np.float32)])
    lag = 300 * RATE // 1000
    mic = np.zeros_like(agent)
    mic[lag:] = 0.316 * agent[:-lag]
    scores = _scores(mic, agent, EchoGate(RATE))
    # The last 300 ms of the agent's speech come back after it stopped playing.
    tail = scores[(RATE + lag // 2) // FRAME : (RATE + lag) // FRAME]
    assert np.all(tail >= 0.6), np.round(tail, 2)
