"""When to cover a slow reply with a short filler ("One moment.") instead of dead air.

The decision is made from a prediction, not a timer: when the turn is decided, the work queued
ahead of the reply and the stages' recent timings say when its first audio will be ready. Only a
reply predicted to miss its first-audio deadline gets a filler, and never one that is about to
be ready anyway (the filler would only push the answer back), and never two fillers in a row
(a caller hearing "One moment. Let me check that." hears a machine stalling).

Pure logic: the phrases are synthesized once at start-up by whoever plays them. Times are
``time.perf_counter()`` seconds; durations and margins are milliseconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Sequence

from voicebox.config import BudgetConfig

if TYPE_CHECKING:
    from voicebox.scheduling import DeadlineGate, StageTimings

DEFAULT_PHRASES = ("One moment.", "Let me check that.")

Reason = Literal["late", "on_time", "about_ready", "after_filler"]


@dataclass(frozen=True)
class FillerDecision:
    play: bool
    phrase: str | None  # the filler to play; None when ``play`` is false
    reason: Reason  # late: play; on_time, about_ready, after_filler: why not
    wait_ms: float  # predicted first audio - now
    slack_ms: float  # deadline - predicted first audio; negative when predicted late


def first_audio_deadline(decided_at: float, budget: BudgetConfig) -> float:
    """When the reply's first audio is due: the turn's decision time plus the budget."""
    return decided_at + budget.first_audio_ms / 1000


def predict_first_audio(
    now: float, ahead_ms: float, first_token_ms: float, first_synth_ms: float, synth_queue_ms: float = 0.0,
) -> float:
    """When the first audio should be ready: the work queued ahead of this reply at the model
    (e.g. ``DeadlineGate.backlog_ms``), then the expected time to the first chunk of text, then
    the expected synthesis time of that chunk (e.g. ``StageTimings.expected_ms``).

    ``synth_queue_ms``: the synthesis queued ahead of that chunk (the synthesis gate's backlog).
    It drains while the model writes, so the chunk's synthesis starts when its text is ready or
    when that queue is done, whichever is later; adding the two would count the same time twice
    and play fillers nobody needs."""
    text_ms = max(0.0, ahead_ms) + max(0.0, first_token_ms)
    start_ms = max(text_ms, synth_queue_ms)
    return now + (start_ms + max(0.0, first_synth_ms)) / 1000


def predict_reply_first_audio(
    now: float, model_started: float, deadline: float, timings: "StageTimings", synth_gate: "DeadlineGate",
) -> float:
    """``predict_first_audio`` for a model reply still being written, from the pipeline's stages.

    ``model_started``: when the reply was handed to the model. Its queue at the model has no term
    of its own: "first_sentence" is timed from that moment, so its median holds a typical wait
    there. The synthesis queue is counted as it stands: the first chunk will queue with the
    reply's first-audio ``deadline``, behind any job due sooner and whatever is synthesizing now
    (another call's sentence, say); "synth" is timed inside the slot, so nothing counts twice.
    """
    spent_ms = (now - model_started) * 1000
    left_ms = max(0.0, timings.expected_ms("first_sentence") - spent_ms)
    return predict_first_audio(
        now, 0.0, left_ms, timings.expected_ms("synth"), synth_queue_ms=synth_gate.backlog_ms(deadline, timings, now),
    )


class FillerPolicy:
    """Decides per reply whether to play a filler, and which one (the phrases take turns)."""

    def __init__(self, phrases: Sequence[str] = DEFAULT_PHRASES, ready_margin_ms: float = 150.0) -> None:
        phrases = tuple(p for p in phrases if p.strip())
        if not phrases:
            raise ValueError("at least one filler phrase is needed")
        if ready_margin_ms < 0:
            raise ValueError("ready_margin_ms must not be negative")
        self.phrases = phrases
        self.ready_margin_ms = ready_margin_ms
        self._next = 0
        self._lock = threading.Lock()  # one policy may serve every call

    def decide(self, now: float, deadline: float, predicted_first_audio: float, last_was_filler: bool) -> FillerDecision:
        """Whether to play a filler now for a reply due at ``deadline`` and predicted ready at
        ``predicted_first_audio``, given whether the last thing played was a filler."""
        wait_ms = (predicted_first_audio - now) * 1000
        slack_ms = (deadline - predicted_first_audio) * 1000
        reason: Reason
        if last_was_filler:
            reason = "after_filler"
        elif wait_ms < self.ready_margin_ms:
            # Ready in a moment: a filler would delay the answer by its own length.
            reason = "about_ready"
        elif slack_ms >= 0:
            reason = "on_time"
        else:
            with self._lock:
                phrase = self.phrases[self._next % len(self.phrases)]
                self._next += 1
            return FillerDecision(True, phrase, "late", wait_ms, slack_ms)
        return FillerDecision(False, None, reason, wait_ms, slack_ms)
