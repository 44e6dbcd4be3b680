"""FillerPolicy: a filler only for a reply predicted late, never one about to be ready, never twice."""

from __future__ import annotations

import threading
import time

import pytest

from voicebox.config import BudgetConfig
from voicebox.scheduling import DeadlineGate, StageTimings
from voicebox.speaking.fillers import (
    DEFAULT_PHRASES,
    FillerPolicy,
    first_audio_deadline,
    predict_first_audio,
    predict_reply_first_audio,
)

NOW = 1000.0  # perf_counter seconds; any origin will do


@pytest.mark.parametrize(
    "deadline_in_ms,predicted_in_ms,last_was_filler,play,reason",
    [
        (1200, 800, False, False, "on_time"),
        (1200, 1200, False, False, "on_time"),  # exactly on the deadline is on time
        (1200, 1500, False, True, "late"),
        (1200, 5000, False, True, "late"),
        (1200, 5000, True, False, "after_filler"),  # never two in a row
        (100, 140, False, False, "about_ready"),  # late, but ready within the margin
        (-300, 100, False, False, "about_ready"),  # already past the deadline, ready in 100 ms
        (-300, 400, False, True, "late"),  # past the deadline and still 400 ms away
        (0, 149, False, False, "about_ready"),
        (0, 151, False, True, "late"),
    ],
)
def test_decide(deadline_in_ms: float, predicted_in_ms: float, last_was_filler: bool, play: bool, reason: str) -> None:
    policy = FillerPolicy()
    d = policy.decide(NOW, NOW + deadline_in_ms / 1000, NOW + predicted_in_ms / 1000, last_was_filler)
    assert (d.play, d.reason) == (play, reason)
    assert (d.phrase is not None) == play
    assert d.wait_ms == pytest.approx(predicted_in_ms)
    assert d.slack_ms == pytest.approx(deadline_in_ms - predicted_in_ms)


def test_ready_margin_is_configurable() -> None:
    late_by_a_bit = dict(now=NOW, deadline=NOW, predicted_first_audio=NOW + 0.3, last_was_filler=False)
    assert FillerPolicy(ready_margin_ms=150).decide(**late_by_a_bit).play
    assert FillerPolicy(ready_margin_ms=400).decide(**late_by_a_bit).reason == "about_ready"
    with pytest.raises(ValueError):
        FillerPolicy(ready_margin_ms=-1)


def test_phrases_take_turns_and_only_when_played() -> None:
    policy = FillerPolicy(["One moment.", "Let me check that.", "Bear with me."])
    late = lambda: policy.decide(NOW, NOW, NOW + 2, False)  # noqa: E731
    on_time = lambda: policy.decide(NOW, NOW + 2, NOW + 1, False)  # noqa: E731
    assert late().phrase == "One moment."
    assert not on_time().play  # a decision not to play does not use up a phrase
    assert late().phrase == "Let me check that."
    assert late().phrase == "Bear with me."
    assert late().phrase == "One moment."


def test_default_phrases_and_bad_phrases() -> None:
    assert FillerPolicy().phrases == DEFAULT_PHRASES
    with pytest.raises(ValueError):
        FillerPolicy([])
    with pytest.raises(ValueError):
        FillerPolicy(["  "])


def test_one_policy_for_many_calls() -> None:
    policy = FillerPolicy(["a", "b"])
    got: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        for _ in range(100):
            d = policy.decide(NOW, NOW, NOW + 1, False)
            with lock:
                got.append(d.phrase or "")

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got.count("a") == got.count("b") == 200


def test_deadline_from_the_budget() -> None:
    budget = BudgetConfig(first_audio_ms=1200)
    assert first_audio_deadline(50.0, budget) == pytest.approx(51.2)


def test_prediction_adds_the_queue_and_the_stages() -> None:
    assert predict_first_audio(NOW, 300, 500, 200) == pytest.approx(NOW + 1.0)
    assert predict_first_audio(NOW, -5, 0, 0) == NOW  # an overrun job leaves nothing to wait for


def test_the_synthesis_queue_drains_while_the_model_writes() -> None:
    # Text in 500 ms; synthesis 200 ms. A synthesis queue shorter than the text's wait costs
    # nothing; a longer one decides when the chunk's synthesis starts.
    assert predict_first_audio(NOW, 0, 500, 200, synth_queue_ms=300) == pytest.approx(NOW + 0.7)
    assert predict_first_audio(NOW, 0, 500, 200, synth_queue_ms=900) == pytest.approx(NOW + 1.1)
    assert predict_first_audio(NOW, 100, 500, 200, synth_queue_ms=900) == pytest.approx(NOW + 1.1)
    assert predict_first_audio(NOW, 0, 500, 200, synth_queue_ms=-50) == pytest.approx(NOW + 0.7)


def _queue_synth(gate: DeadlineGate, deadlines: list[float]) -> list[threading.Thread]:
    """Other calls' synthesis jobs, queued behind the job this thread holds (each thread stays
    blocked in the gate until that job ends, then runs an empty job)."""
    def run(deadline: float) -> None:
        with gate.job(deadline, "synth"):
            pass

    threads = [threading.Thread(target=run, args=(d,), daemon=True) for d in deadlines]
    for t in threads:
        t.start()
    give_up = time.monotonic() + 30  # a bound for a broken gate, not a timing assertion
    while gate.waiting() < len(deadlines):
        assert time.monotonic() < give_up, "the jobs never queued"
    return threads


def test_a_busy_synthesizer_makes_a_reply_late_and_earns_a_filler() -> None:
    # The reply's text is 300 ms away and synthesizing it takes 250 ms: on time for a 1200 ms
    # budget, were the synthesizer free. Other calls' sentences are in the way.
    gate = DeadlineGate("tts")
    timings = StageTimings(defaults_ms={"first_sentence": 600.0, "synth": 250.0})
    policy = FillerPolicy()
    budget = BudgetConfig(first_audio_ms=1200)

    with gate.job(0.0, "synth"):  # another call's sentence, synthesizing now
        running = gate.running()
        assert running is not None
        now = running.started_at  # explicit times from here on: the gate's own clock values
        decided_at = model_started = now - 0.3  # the model has written for 300 ms of its 600
        deadline = first_audio_deadline(decided_at, budget)  # now + 900 ms

        def decide():
            predicted = predict_reply_first_audio(now, model_started, deadline, timings, gate)
            return policy.decide(now, deadline, predicted, False)

        # Only the running sentence (250 ms left): it is done before the text is.
        d = decide()
        assert d.reason == "on_time" and d.wait_ms == pytest.approx(550)
        # Two more sentences due before this reply's first audio queue ahead of it, one due
        # after it does not: 750 ms of synthesis first, then this reply's 250 ms.
        threads = _queue_synth(gate, [deadline - 0.5, deadline - 0.1, deadline + 1.0])
        d = decide()
        assert d.play and d.reason == "late"
        assert d.wait_ms == pytest.approx(1000) and d.slack_ms == pytest.approx(-100)
    for t in threads:
        t.join(30)
    assert gate.running() is None and gate.waiting() == 0


def test_a_busy_model_makes_a_reply_late_and_earns_a_filler() -> None:
    # The scheduler's backlog and the recent timings together predict a miss: another call's
    # long generation is holding the language model.
    gate = DeadlineGate("llm")
    timings = StageTimings(defaults_ms={"llm": 1500.0})
    timings.record("first_token", 400)
    timings.record("first_synth", 150)
    policy = FillerPolicy()
    budget = BudgetConfig(first_audio_ms=1200)

    def decide(decided_at: float, last_was_filler: bool = False):
        deadline = first_audio_deadline(decided_at, budget)
        predicted = predict_first_audio(
            decided_at, gate.backlog_ms(deadline, timings, now=decided_at),
            timings.expected_ms("first_token"), timings.expected_ms("first_synth"),
        )
        return policy.decide(decided_at, deadline, predicted, last_was_filler)

    # Idle model: 550 ms to first audio, well within 1200 ms.
    assert decide(NOW).reason == "on_time"
    with gate.job(0.0, "llm"):
        running = gate.running()
        assert running is not None
        # 200 ms into another call's 1500 ms generation: 1300 + 550 ms > 1200 ms.
        d = decide(running.started_at + 0.2)
        assert d.play and d.phrase == "One moment."
        assert d.wait_ms == pytest.approx(1850)
        # Same situation right after a filler: stay quiet rather than stall twice.
        assert not decide(running.started_at + 0.2, last_was_filler=True).play
        # Near the end of that generation the reply fits its budget again.
        assert decide(running.started_at + 1.4).reason == "on_time"
