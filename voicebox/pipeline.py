"""One call's pipeline: caller audio → turns → replies → agent audio.

Four threads, joined by bounded queues, each owning one step:

- listener: reads 20 ms frames from the inbound ring buffer and runs turn detection;
- speculator: while the caller speaks, re-decodes the growing turn (droppable partials, words
  committed by LocalAgreement); at each pause it decodes the turn so far speculatively, and judges
  whether it sounds finished (which sets how long the pause must last to end the turn);
- brain: decides what to do with each finished turn (dialog.py) and streams model replies
  sentence by sentence;
- voice: synthesizes each sentence and writes it into the playout ring buffer.

The media callbacks only touch the two ring buffers. No exception may leave the caller in
silence: a failing step queues an apology and asks the SIP side to hang up once it is played.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from voicebox.agent import AgentConfig
from voicebox.outcomes.draft import OutcomeDraft, OutcomeSink
from voicebox.telephony.transfer_context import TransferContext, refer_to, transfer_reason
from voicebox.audio.ringbuffer import RingBuffer
from voicebox.config import Config
from voicebox.engines import Engines
from voicebox.listening.echo_gate import EchoGate
from voicebox.listening.endpointing import hangover_ms
from voicebox.listening.local_agreement import LocalAgreement, Partial
from voicebox.listening.noise_floor import SpeechLevelGate
from voicebox.listening.partial_stats import PartialStatsBook
from voicebox.listening.transcriber import Transcript, reliability, usable_partial
from voicebox.listening.turns import Growing, Paused, SpeechStarted, TurnDetector, TurnEnded, webrtc_classifier
from voicebox.logs import context_log
from voicebox.records.call_events import CallEvents, TurnTimeline
from voicebox.records.recording import CallerTrack, CallRecording
from voicebox.speaking.fillers import first_audio_deadline, predict_reply_first_audio
from voicebox.speaking.heard import PlayoutLog
from voicebox.thinking.dialog import Decision, Dialog
from voicebox.thinking.llm_worker import WorkerFailed

HangUp = Callable[[str, "str | None"], None]  # (reason, error code or None)
Transfer = Callable[[str], None]  # target URI


def preload_call_modules(echo_cancellation: bool = True) -> None:
    """Import what a call's threads import lazily, before the first call.

    An import holds the GIL from start to end: livekit's took 160 ms, and on a server's first
    call it ran while the conference bridge waited to call ``onFrameRequested`` (a 67 ms frame
    gap, measured). Loaded at start-up it costs the caller nothing.
    """
    from voicebox.privacy.redact import redact

    webrtc_classifier(16000, 0)
    redact("warm up 4111 1111 1111 1111")  # compiles its patterns now, not mid-call
    if echo_cancellation:
        from voicebox.listening.echo import EchoCanceller

        EchoCanceller(16000)


@dataclass
class Say:
    """Something for the voice to say. ``audio`` is set for pre-synthesized phrases."""

    text: str
    audio: np.ndarray | None = None
    hang_up_after: str | None = None  # reason to end the call once this has been heard
    error_code: str | None = None  # what went wrong, when hanging up after an apology
    timeline: TurnTimeline | None = None  # the turn this answers; its first audio is timed
    transfer_to: str | None = None  # blind-transfer the caller here once this has been heard
    transfer_context: TransferContext | None = None  # why, for the person who picks up
    epoch: int = 0  # replies from before the latest barge-in are stale: the voice drops them


@dataclass(frozen=True)
class KeyPress:
    """A DTMF key from the caller (RFC 4733). The key itself is never logged or recorded."""

    key: str


@dataclass
class BargeIn:
    """The caller talked over the agent; the reply is held until their turn says whether it
    was words (abandon the reply) or a cough (resume it)."""

    start_ms: int  # the caller turn that interrupted (its media start time)
    onset_ms: int  # media time of the caller's speech onset
    stopped_ms: int  # media time of the frame at which playout was held
    played: int  # playout samples the caller had heard at that moment
    at: float  # perf_counter of the hold


@dataclass
class TurnDone:
    """Queued after a turn's last sentence: the voice reports the turn once all of it is queued."""

    timeline: TurnTimeline


class SynthesisFailed(Exception):
    """Piper raised on a reply: the voice stage says a phrase made at start instead."""


_STOP = object()
TTS_FAILURES_TO_GIVE_UP = 2  # replies in a row the voice could not say: it is broken, not one odd text
FALSE_BARGE_SILENCE_MS = 600  # quiet this long after too little speech: resume the held reply ("Sorry, [pause] just…" must not)
PARTIAL_FRESH_MS = 200  # a partial this close to the last voiced frame has heard the whole turn
BACKCHANNEL = frozenset("mm mhm mm-hm mm-hmm uh-huh uh huh hmm okay ok yeah yes right sure".split())


class CallPipeline:
    def __init__(
        self,
        session: str,
        engines: Engines,
        agent: AgentConfig,
        cfg: Config,
        inbound: RingBuffer,
        playout: RingBuffer,
        hang_up: HangUp,
        events: CallEvents,
        recording: CallRecording | None = None,
        transfer: Transfer | None = None,
        *,
        outcomes: OutcomeSink | None = None,
        agent_id: str = "",
    ) -> None:
        self.session = session
        self.agent_id = agent_id
        self.engines = engines
        self.agent = agent
        self.cfg = cfg
        self.inbound = inbound
        self.playout = playout
        self._hang_up = hang_up
        self.events = events
        self._transfer = transfer
        self.log = context_log("voicebox.call", session=session, agent=agent_id)
        self.rate = cfg.media.clock_rate_hz
        self.frame_samples = self.rate * cfg.media.frame_ms // 1000
        self.recording = recording
        self._track: CallerTrack | None = None
        if recording is not None:
            vad = cfg.vad
            hold = (vad.preroll_ms + vad.start_ms) // cfg.media.frame_ms + 1
            self._track = CallerTrack(recording, self.frame_samples, hold)
        self.stopped = threading.Event()
        # What the caller hears, frame by frame, for the echo canceller: the playout ring copies
        # every frame it hands to the bridge into this one.
        self.reference = RingBuffer(self.rate * 2)
        playout.tap = self.reference
        self._epoch = 0
        self._ref_lag: int | None = None  # reference.written - inbound.written, in whole frames
        self._reply_cancel = threading.Event()  # set: the reply in progress stops between tokens
        self._barge: BargeIn | None = None
        self._heard = PlayoutLog()  # the current reply's clips, for "what was heard"
        # Fillers: the reply whose first audio is awaited, its deadline, and when its model began.
        self._awaiting: tuple[TurnTimeline, float, float] | None = None
        self._last_was_filler = False
        self.barge_ins = 0
        self.false_barge_ins = 0
        self.echo_frames = 0  # voiced caller frames the echo gate recognised as the agent's own voice
        self._voiced_turn: TurnTimeline | None = None  # the turn whose reply the voice is playing
        self._failed = threading.Event()
        # Set by the SIP thread while the caller holds the call (re-INVITE sendonly/inactive):
        # each thread reads it and keeps quiet (see ``set_held``).
        self._on_hold = threading.Event()
        self._tts_failures = 0  # replies in a row whose synthesis failed (voice thread only)
        self._unsayable: TurnTimeline | None = None  # the reply that failed: its later sentences are dropped
        self._turns: queue.Queue = queue.Queue(maxsize=2)
        self._speech: queue.Queue = queue.Queue(maxsize=16)
        self.outcomes = outcomes
        # The agent's language and vocabulary for whisper (cached per agent: costs nothing here).
        self.stt_prompt = engines.stt.prompt_for(agent)
        self.dialog = Dialog(
            agent, engines.router, engines.lm, cfg.models, engines.large,
            outcomes=outcomes, session_id=session, agent_id=agent_id,
        )
        # Speculative decoding: the latest pause's audio waits here (newest wins), and its
        # transcript is kept with the last voiced frame it covers.
        self._spec_job: queue.Queue = queue.Queue(maxsize=1)
        self._spec_lock = threading.Condition()
        self._spec_busy_for: int | None = None  # last_voiced_ms of the decode in progress
        self._spec_done: tuple[int, Transcript] | None = None
        # The speculator's verdict on the pause in progress: (last_voiced_ms, hangover_ms, rule).
        self._hangover_hint: tuple[int, int, str] | None = None
        # The latest partial of the turn in progress, and the provisional hangover it suggests
        # until the pause's own transcript is judged: (turn start_ms, last_voiced_ms it covers,
        # hangover_ms, rule).
        self._agreement = LocalAgreement()
        self._partial: tuple[int, int, Partial, float] | None = None  # (start_ms, covers, partial, at)
        self._partial_hint: tuple[int, int, int, str] | None = None
        # Counted by the speculator, taken by the brain: a locked book (see partial_stats.py).
        self._partial_stats = PartialStatsBook()
        self.speculative_hits = 0
        self._threads = [
            threading.Thread(target=self._guarded, args=(self._listen, "vad.failed"), name=f"{session}-listen", daemon=True),
            threading.Thread(target=self._guarded, args=(self._think, "brain.failed"), name=f"{session}-brain", daemon=True),
            threading.Thread(target=self._guarded, args=(self._speak, "tts.failed"), name=f"{session}-voice", daemon=True),
            threading.Thread(target=self._guarded, args=(self._speculate, "stt.decode_failed"), name=f"{session}-spec", daemon=True),
        ]
        self.turn_count = 0

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._threads[0].ident is not None

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> None:
        if self.started:
            return
        self._say(Say(self.agent.greeting, self.engines.tts.cached(self.agent.greeting)))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Idempotent; safe from any thread. Workers notice within about 100 ms."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        self._reply_cancel.set()
        self.playout.held = False
        if self.recording is not None:
            # Assembling the WAV is file work: never on the SIP thread.
            threading.Thread(target=self._close_recording, name=f"{self.session}-rec", daemon=True).start()
        self.playout.clear()
        for q in (self._turns, self._speech, self._spec_job):
            try:
                q.put_nowait(_STOP)
            except queue.Full:
                pass

    def _close_recording(self) -> None:
        self.join(5.0)
        try:
            self.recording.close()
        except OSError:
            self.events.error("records.recording_failed")

    def join(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            if t.is_alive() and t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))

    def on_dtmf(self, key: str) -> None:
        """From the media thread: O(1), never blocks; the brain acts on it in order with turns."""
        try:
            self._turns.put_nowait(KeyPress(key))
        except queue.Full:
            pass  # the brain is two turns behind; a key press now would act on a stale prompt

    def set_held(self, held: bool) -> None:
        """From the SIP thread: the caller put the call on hold, or took it off. O(1), never blocks.

        While held the agent says nothing: the model's reply stops between tokens, what is
        queued for the line is dropped (no one hears it; played at unhold it would answer a
        question from before the hold), the voice drops what comes, and the listener ignores the
        line (music on hold is not a caller's turn). At unhold it listens afresh."""
        if held == self._on_hold.is_set():
            return
        if held:
            self._on_hold.set()
            self._reply_cancel.set()
            self.playout.clear()
        else:
            self._on_hold.clear()
        self.events.event("hold" if held else "unhold")

    @property
    def held(self) -> bool:
        return self._on_hold.is_set()

    def transfer_failed(self, status: int) -> None:
        """The SIP side could not transfer: tell the caller instead of leaving them hanging."""
        self.events.event("transfer_failed", status=status)
        self._say_from_outside(Say(self.agent.actions.no_transfer, self.engines.tts.cached(self.agent.actions.no_transfer)))

    def say_and_hang_up(self, text: str, reason: str) -> None:
        """From outside the pipeline (e.g. the call reached its maximum length)."""
        self._drain(self._speech)
        self.playout.clear()
        self._say_from_outside(Say(text, self.engines.tts.cached(text), hang_up_after=reason))

    def _say_from_outside(self, item: Say) -> None:
        """For the SIP thread, which must never wait on the pipeline."""
        try:
            self._speech.put_nowait(item)
        except queue.Full:
            self.events.error("pipeline.speech_queue_full")

    # -- helpers -----------------------------------------------------------------------------
    def _guarded(self, body: Callable[[], None], code: str) -> None:
        try:
            body()
        except Exception:
            if self.stopped.is_set():
                return
            self.log.exception("unexpected exception")
            self.events.error(code)
            self._fail(code)

    def _fail(self, code: str) -> None:
        """Apologize and end the call; if even the voice is broken, just end it."""
        if self._failed.is_set():
            return
        self._failed.set()
        self._drain(self._speech)
        self.playout.clear()
        voice_alive = self._threads[2].is_alive() and threading.current_thread() is not self._threads[2]
        if voice_alive:
            try:
                apology = self.engines.tts.cached(self.agent.apology)
                self._say(Say(self.agent.apology, apology, hang_up_after="internal_error", error_code=code))
                return
            except Exception:
                self.log.exception("unexpected exception")
                self.events.error("tts.apology_failed")
        self._hang_up("internal_error", code)

    @staticmethod
    def _drain(q: queue.Queue) -> None:
        while True:
            try:
                q.get_nowait()
            except queue.Empty:
                return

    def _items(self, q: queue.Queue, on_idle: Callable[[], None] | None = None, poll_s: float = 0.2) -> Iterator:
        """What arrives on ``q`` until the call stops; polled so a stop is seen within 200 ms."""
        while not self.stopped.is_set():
            try:
                item = q.get(timeout=poll_s)
            except queue.Empty:
                if on_idle is not None:
                    on_idle()
                continue
            if item is _STOP:
                return
            yield item

    def _say(self, item: Say) -> None:
        while not self.stopped.is_set():
            try:
                self._speech.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # -- listener ----------------------------------------------------------------------------
    def _listen(self) -> None:
        vad, bi = self.cfg.vad, self.cfg.barge_in
        voiced = webrtc_classifier(self.rate, vad.aggressiveness)
        level = SpeechLevelGate(bi.energy_floor_dbfs, vad.noise_margin_db, vad.noise_window_ms, self.cfg.media.frame_ms)

        last_voiced = [False]
        gate = None
        if bi.echo_cancellation and bi.echo_correlation_max < 1.0:
            gate = EchoGate(self.rate, max_delay_ms=bi.echo_delay_max_ms, threshold=bi.echo_correlation_max)

        def is_speech(frame: np.ndarray) -> bool:
            # webrtcvad barely looks at level: the echo canceller's near-silent residue of the
            # agent's voice still reads as "speech" to it. What the canceller leaks while it
            # re-converges after a jitter buffer moved the echo is caught by the echo gate.
            # The level gate sees every frame: its noise floor is tracked through speech too.
            loud = level.loud(frame) and voiced(frame)
            echo = loud and gate is not None and gate.is_echo()
            if echo:
                self.echo_frames += 1
            last_voiced[0] = loud and not echo
            return last_voiced[0]

        detector = TurnDetector(vad, self.cfg.media.frame_ms, is_speech)
        canceller = None
        if bi.echo_cancellation:
            from voicebox.listening.echo import EchoCanceller

            canceller = EchoCanceller(self.rate)
        silence = np.zeros(self.frame_samples, np.int16)
        rule = "default"
        over_agent_ms = 0  # caller speech heard over the agent in the current turn
        started_over_agent = False
        handed_to_brain = -1  # start of the last turn given to the brain
        was_held = False
        while not self.stopped.is_set():
            frame = self.inbound.read_exact(self.frame_samples, timeout=0.1)
            if self._on_hold.is_set():
                was_held = True  # music on hold, or nothing: no turn of the caller's
                continue
            if was_held:
                # Off hold: a turn half heard before the hold is not finished by what follows it.
                was_held = False
                detector = TurnDetector(vad, self.cfg.media.frame_ms, is_speech)
                over_agent_ms, started_over_agent = 0, False
                if self._barge is not None:
                    self._barge = None  # its reply was dropped at the hold
                    self.playout.held = False
            if frame is None:
                continue
            index = self.inbound.read // self.frame_samples - 1  # media time, in frames
            if canceller is not None:
                reference = self._reference_for(self.inbound.read - self.frame_samples, silence)
                if gate is not None:
                    gate.push(frame, reference)
                frame = canceller.process(frame, reference)
            rule = self._choose_hangover(detector, rule)
            events = detector.process(frame)
            ended = any(isinstance(ev, TurnEnded) for ev in events)
            if self._track is not None:
                # A frame that ends a turn belongs to it: held back with the rest of the turn.
                self._track.add(index, frame, detector.in_turn or ended)
            barge = self._barge
            too_short = detector.in_turn and detector.silence_ms >= FALSE_BARGE_SILENCE_MS and (
                detector.voiced_ms < self.cfg.vad.min_turn_ms
            )
            if barge is not None and (too_short or (not detector.in_turn and not ended)) and (
                detector.start_ms == barge.start_ms != handed_to_brain
            ):
                # Too short to be a turn at all (under min_turn_ms), and the caller has gone
                # quiet: a click or a cough. The reply resumes now, not after a full hangover.
                self._barge = None
                over_agent_ms = 0  # only new speech may stop it again
                self.false_barge_ins += 1
                self.playout.held = False
                self.events.barge_in(resumed=True, onset_ms=barge.onset_ms, held_ms=barge.stopped_ms,
                                  stop_ms=barge.stopped_ms - barge.onset_ms, too_short=True)
            agent_talking = len(self.playout) > 0 and not self.playout.held
            if detector.in_turn and agent_talking and last_voiced[0]:
                # Voiced after echo cancellation, while the agent talks. (A level-based
                # double-talk test was tried and dropped: a caller's quiet "Sorry," under a loud
                # agent went unheard.)
                over_agent_ms += self.cfg.media.frame_ms
            if bi.enabled and detector.in_turn and self._barge is None and agent_talking and over_agent_ms >= bi.min_speech_ms:
                self._hold_for_barge_in(detector, (index + 1) * self.cfg.media.frame_ms)
            for ev in events:
                if isinstance(ev, SpeechStarted):
                    self.log.debug("speech started at %d ms", ev.at_ms)
                    started_over_agent = agent_talking
                    # The onset's own voiced frames count: they are why the turn opened.
                    over_agent_ms = detector.voiced_ms if agent_talking else 0
                elif isinstance(ev, Growing):
                    self._offer_spec_job(ev)
                elif isinstance(ev, Paused):
                    self._offer_spec_job(ev)
                elif isinstance(ev, TurnEnded) and started_over_agent and agent_talking and (
                    self._barge is None or self._barge.start_ms != ev.start_ms
                ):
                    # Began and ended while the agent talked, and never sounded like more than
                    # its echo: answering it would be the agent answering itself. (A caller who
                    # starts before the agent has finished is heard once it has.)
                    self.events.event("echo_turn_ignored", voiced_ms=ev.voiced_ms)
                elif isinstance(ev, TurnEnded):
                    # The decision frame arrived before the audio still queued behind it.
                    decided_at = time.perf_counter() - len(self.inbound) / self.rate
                    first_index = index - len(ev.audio) // self.frame_samples + 1
                    if self._track is not None:
                        self._track.turn_ended(first_index)
                    # Its barge-in, if any, is now the brain's to resolve once the turn is
                    # transcribed; a slow transcript must not look like a turn that fizzled out.
                    handed_to_brain = ev.start_ms
                    item = (ev, decided_at, first_index, rule, level.floor_dbfs)
                    try:
                        self._turns.put_nowait(item)
                    except queue.Full:
                        # The brain is two turns behind: the newest turn matters most.
                        self._drain(self._turns)
                        self._turns.put_nowait(item)
                        self.events.error("pipeline.turn_dropped")

    def _reference_for(self, position: int, silence: np.ndarray) -> np.ndarray:
        """What the agent played in the bridge tick that delivered caller sample ``position``.

        Both callbacks run once per tick, so the tapped and the received streams differ by a
        constant number of samples; the reference must never run late (the echo canceller
        cannot remove an echo that arrives before its reference), nor far ahead.
        """
        n = self.frame_samples
        lag = self.reference.written - self.inbound.written
        lag = round(lag / n) * n
        if self._ref_lag is None or abs(lag - self._ref_lag) >= 2 * n:
            self._ref_lag = lag  # a callback stalled once: re-align rather than drift
        want = position + self._ref_lag
        behind = want - self.reference.read
        if behind > 0:
            self.reference.skip(behind)
        elif behind < 0:
            return silence  # the tap has not reached this tick yet
        frame = self.reference.read_exact(n, timeout=0)
        return silence if frame is None else frame

    def _hold_for_barge_in(self, detector: TurnDetector, now_ms: int) -> None:
        """Stop what the caller hears at the next frame and the model between tokens; whether the
        reply is dropped or resumed waits for this turn's transcript."""
        self.playout.held = True
        self._reply_cancel.set()
        self._barge = BargeIn(detector.start_ms, detector.start_ms, now_ms, self.playout.played, time.perf_counter())
        self.barge_ins += 1
        self.log.info("barge-in: caller spoke over the agent; playout held")

    def _resolve_barge_in(self, tl: TurnTimeline, tr: Transcript | None) -> bool:
        """After the interrupting turn is transcribed: resume the held reply if it held no words,
        else drop it and keep only what was heard. Returns True if the turn is done with."""
        barge, self._barge = self._barge, None
        assert barge is not None
        said = (tr.text if tr is not None else "").lower().strip(" .,!?")
        noise = tr is None or not tr.text or reliability(tr) in ("empty", "hallucination", "no_speech")
        backchannel = bool(said) and all(w.strip(".,!?-") in BACKCHANNEL for w in said.split())
        fields = {
            "turn": tl.turn, "onset_ms": barge.onset_ms, "held_ms": barge.stopped_ms,
            "stop_ms": barge.stopped_ms - barge.onset_ms,
        }
        if (noise or backchannel) and self.cfg.barge_in.resume_after_noise:
            self.false_barge_ins += 1
            self.playout.held = False
            self.events.barge_in(resumed=True, **fields)
            tl.source = "noise"
            return True
        self._epoch += 1
        self.playout.clear()
        self.playout.held = False
        heard, cut = self._heard.heard(barge.played)
        queued_words = sum(len(c.text.split()) for c in self._heard.clips())
        self._heard.clear()
        self.dialog.cut_last_reply(heard)
        self.events.barge_in(resumed=False, heard_words=len(heard.split()), reply_words=queued_words,
                          cut=cut, **fields)
        return False

    def _offer_spec_job(self, job: Growing | Paused) -> None:
        """The newest audio wins: an older partial or pause is stale once the caller goes on."""
        self._drain(self._spec_job)
        try:
            self._spec_job.put_nowait(job)
        except queue.Full:
            pass

    def _choose_hangover(self, detector: TurnDetector, rule: str) -> str:
        """How long the pause in progress must last: the pause's own verdict if it has one, else
        the latest partial's. Returns the rule that will have ended the turn."""
        if not detector.in_turn:
            return "default"
        hint = self._hangover_hint
        if hint is not None and hint[0] == detector.last_voiced_ms:
            detector.hangover_override_ms = hint[1]
            return hint[2]
        partial = self._partial_hint
        if partial is not None and partial[0] == detector.start_ms:
            start_ms, covers_ms, hangover, verdict = partial
            # "Unfinished" only ever waits longer, so a stale one is safe; "complete" must cover
            # (nearly) all that was said, or the words after it could be a sentence still going.
            fresh = detector.last_voiced_ms - covers_ms <= PARTIAL_FRESH_MS
            if verdict == "unfinished" or fresh:
                detector.hangover_override_ms = hangover
                return f"partial_{verdict}"
        return "default"

    # -- brain -------------------------------------------------------------------------------
    def _think(self) -> None:
        for item in self._items(self._turns):
            if self._failed.is_set():
                continue
            if isinstance(item, KeyPress):
                if not self._on_hold.is_set():
                    self._handle_key(item.key)
                continue
            turn, decided_at, first_index, rule, noise_floor = item
            if self._on_hold.is_set():
                # Ended just as the hold came: its answer would be played into the hold.
                self.events.event("turn_ignored_on_hold", voiced_ms=turn.voiced_ms)
                continue
            self.turn_count += 1
            tl = TurnTimeline(
                self.turn_count, turn.start_ms, turn.last_voiced_ms, turn.decided_ms, decided_at, turn.reason
            )
            tl.endpoint_rule = rule
            tl.noise_floor_dbfs = noise_floor
            self._take_partial_stats(tl, turn.start_ms)
            kept = False
            try:
                kept = self._handle_turn(tl, turn)
            finally:
                if self._track is not None:
                    self._track.write_turn(first_index, turn.audio, keep=kept)

    def _take_partial_stats(self, tl: TurnTimeline, start_ms: int) -> None:
        stats = self._partial_stats.take(start_ms)
        if stats is None:
            return
        tl.partials, tl.partials_skipped = stats.partials, stats.skipped
        tl.partial_intent = stats.intent
        if stats.intent_at_ms is not None:
            tl.partial_intent_lead_ms = tl.last_voiced_ms - stats.intent_at_ms

    def _canned(self, text: str, tl: TurnTimeline, cache: bool = True, **kw) -> None:
        """Say a whole, known reply. Fixed phrases come from the synthesis cache."""
        tl.agent_text.append(text)
        audio = self.engines.tts.cached(text) if cache else None
        self._say(Say(text, audio, timeline=tl, epoch=self._epoch, **kw))
        if not kw.get("hang_up_after"):
            self._say(TurnDone(tl))

    def _handle_key(self, key: str) -> None:
        action = self.agent.actions.dtmf.get(key)
        self.events.event("dtmf", action=action or "none")  # "a key was pressed", never which
        if action == "transfer":
            self._start_transfer(None, self.agent.actions.transfer_announcement, "caller pressed a key for a person")
        elif action == "hangup":
            self._say(Say(self.agent.goodbye, self.engines.tts.cached(self.agent.goodbye), hang_up_after="goodbye"))
        elif action == "repeat" and self.dialog.history:
            self._say(Say(self.dialog.history[-1]["content"]))

    def _start_transfer(self, tl: TurnTimeline | None, announcement: str, reason: str) -> None:
        actions = self.agent.actions
        ctx = None
        if actions.transfer_uri and self._transfer is not None:
            text, target = announcement, actions.transfer_uri
            ctx = TransferContext(self.session, reason, self.agent.name)
            self._record_transfer(target, reason)
        else:
            text, target = actions.no_transfer, None
        if tl is not None:
            tl.agent_text.append(text)
        # From the cache when there (the background phrase cache makes it at start); else the
        # voice synthesizes it, which never fails the transfer itself (``_synthesis_failed``).
        self._say(Say(text, self.engines.tts.peek(text), timeline=tl, transfer_to=target, transfer_context=ctx))
        if tl is not None:
            self._say(TurnDone(tl))

    def _record_transfer(self, target: str, reason: str) -> None:
        """A transfer is an outcome too: the business sees who was put through and why, even
        when nobody picks up. It never holds the transfer up: a store that fails is logged."""
        if self.outcomes is None:
            return
        draft = OutcomeDraft(
            kind="transfer", agent=self.agent_id, session_id=self.session,
            fields={"reason": reason, "target": target}, summary=f"Caller put through to {target}: {reason}.",
        )
        try:
            oid = self.outcomes.record(draft)
        except Exception as e:  # noqa: BLE001 -- OutcomeNotStored or a bug: the caller still gets a person
            self.events.error("outcome.not_stored", kind="transfer", why=type(e).__name__)
            return
        self.events.event("outcome", kind="transfer", outcome_id=oid)

    def _is_payment(self, text: str, decision: Decision) -> bool:
        """Payment talk is never recorded: a sensitive intent, or anything that redacts as card data."""
        if decision.sensitive:
            return True
        from voicebox.privacy.redact import redact

        return any(tag in redact(text) for tag in ("[CARD]", "[CVV]", "[EXPIRY]"))

    # -- speculative decoding -------------------------------------------------------------------
    def _speculate(self) -> None:
        for job in self._items(self._spec_job):
            if self.cfg.testing.fail_stage == "stt":
                continue  # the brain's own decode fails and reports it
            if isinstance(job, Growing):
                self._partial_decode(job)
                continue
            with self._spec_lock:
                self._spec_busy_for = job.last_voiced_ms
            try:
                # Wanted by the time the shortest hangover could end the turn.
                tr = self._final_decode(job.audio, job.voiced_ms, time.perf_counter() + self.cfg.vad.short_hangover_ms / 1000)
            finally:
                with self._spec_lock:
                    self._spec_busy_for = None
                    self._spec_lock.notify_all()
            with self._spec_lock:
                self._spec_done = (job.last_voiced_ms, tr)
                self._spec_lock.notify_all()
            # An unreliable transcript gets the plain hangover, whatever a partial suggested.
            hangover, verdict = hangover_ms(tr.text if tr.reliable else None, self.cfg.vad)
            self._hangover_hint = (job.last_voiced_ms, hangover, verdict if tr.reliable else "unreliable")

    def _final_decode(self, audio: np.ndarray, voiced_ms: int, deadline: float) -> Transcript:
        heard_ms = max(1.0, len(audio) * 1000 / self.rate)
        tr = self.engines.stt.transcribe(
            audio, self.rate, self.cfg.models.stt_final_context, speech_share=min(1.0, voiced_ms / heard_ms),
            deadline=deadline, prompt=self.stt_prompt,
        )
        self.engines.timings.record("final", tr.decode_ms)
        return tr

    def _partial_decode(self, job: Growing) -> None:
        """Re-decode the turn so far, if the recognizer has time to spare; never waits for it."""
        if self._partial is None or self._partial[0] != job.start_ms:
            self._agreement.reset()
            self._partial = None
        tr = self.engines.stt.try_transcribe(job.audio, self.rate, prompt=self.stt_prompt)
        if tr is None:
            self._partial_stats.skipped(job.start_ms)
            return
        self._partial_stats.decoded(job.start_ms)
        self.engines.timings.record("partial", tr.decode_ms)
        if not usable_partial(tr):
            return  # noise is not a partial: nothing to commit, nothing to judge
        partial = self._agreement.update(tr.text)
        self._partial = (job.start_ms, job.last_voiced_ms, partial, time.perf_counter())
        hangover, verdict = hangover_ms(partial.text, self.cfg.vad)
        if verdict in ("complete", "unfinished"):
            self._partial_hint = (job.start_ms, job.last_voiced_ms, hangover, verdict)
        if self._partial_stats.wants_intent(job.start_ms):
            route = self.dialog.router.route_partial(partial.text)
            if route.intent is not None:
                self._partial_stats.intent_found(job.start_ms, route.intent, job.last_voiced_ms)

    def _speculative_transcript(self, turn: TurnEnded) -> Transcript | None:
        """The pause's transcript, if it covers this turn's speech (waiting for it if still running)."""
        with self._spec_lock:
            self._spec_lock.wait_for(lambda: self._spec_busy_for != turn.last_voiced_ms, timeout=5.0)
            done = self._spec_done
            self._spec_done = None
        if done is not None and done[0] == turn.last_voiced_ms:
            self.speculative_hits += 1
            return done[1]
        return None

    def _handle_turn(self, tl: TurnTimeline, turn: TurnEnded) -> bool:
        """Answer one turn; returns whether its audio may be kept in a call recording."""
        try:
            if self.cfg.testing.fail_stage == "stt":
                raise RuntimeError("injected failure (testing.fail_stage = stt)")
            tr = self._speculative_transcript(turn) or self._final_decode(
                turn.audio, turn.voiced_ms, tl.decided_at + self.cfg.budget.transcript_ms / 1000
            )
        except Exception:
            self.log.exception("transcription failed")
            self.events.error("stt.decode_failed", turn=tl.turn)
            self._fail("stt.decode_failed")
            return False  # unknown content: not kept
        tl.transcript_at = time.perf_counter()
        if self._barge is not None and self._barge.start_ms == turn.start_ms and self._resolve_barge_in(tl, tr):
            self.events.turn(tl)
            return True
        if self._on_hold.is_set():
            # Put on hold while this turn was transcribed: the model is not started for it.
            self.events.event("turn_ignored_on_hold", voiced_ms=turn.voiced_ms)
            return True
        if not self.stopped.is_set():
            self._reply_cancel = threading.Event()
        tl.avg_logprob, tl.no_speech_prob, tl.caller_text = tr.avg_logprob, tr.no_speech_prob, tr.text
        tl.compression_ratio, tl.speech_share, tl.stt_context = tr.compression_ratio, tr.speech_share, tr.context
        tl.reliability, tl.decode_ms = reliability(tr), tr.decode_ms
        if not tr.text:
            tl.source = "noise"  # a cough or line noise: nothing was said, so nothing is answered
            self.events.turn(tl)
            return True
        d = self.dialog.decide(tr.text, tr.avg_logprob) if tr.reliable else self.dialog.not_understood()
        tl.source, tl.intent, tl.confidence, tl.reason = d.tier, d.intent, d.confidence, d.reason
        if d.outcome_id and d.outcome is not None:  # stored before the confirmation below is said
            self.events.event("outcome", kind=d.outcome.kind, form=d.outcome.form, outcome_id=d.outcome_id)
        keep = self.recording is None or not self._is_payment(tr.text, d)
        if d.kind != "model":
            self.dialog.remember(tr.text, d.text)
        if d.kind == "transfer" or (d.kind == "give_up" and self.agent.after_reprompts == "transfer"):
            self._start_transfer(tl, d.text, transfer_reason(d))
        elif d.kind in ("hangup", "give_up"):
            self._canned(d.text, tl, hang_up_after="goodbye" if d.kind == "hangup" else "reprompts_exhausted")
        elif d.kind in ("say", "reprompt"):
            # Booking prompts and read-backs carry names: not cached.
            self._canned(d.text, tl, cache=d.tier not in ("booking", "confirm"))
        else:
            self._model_reply(tl, tr.text, d.tier)
        return keep

    def _model_reply(self, tl: TurnTimeline, text: str, tier: str) -> None:
        try:
            if self.cfg.testing.fail_stage == "llm":
                raise RuntimeError("injected failure (testing.fail_stage = llm)")
            cancel = self._reply_cancel
            if self._on_hold.is_set():
                cancel.set()  # the hold came between the check in _handle_turn and this reply's event
            budget = self.cfg.budget
            started = time.perf_counter()
            self._awaiting = (tl, first_audio_deadline(tl.decided_at, budget), started)
            with self.engines.llm_gate.job(tl.decided_at + budget.first_token_ms / 1000, "first_sentence"):
                if self.cfg.testing.slow_llm_ms:
                    cancel.wait(self.cfg.testing.slow_llm_ms / 1000)  # test-only: a slow first token
                for sentence in self.dialog.model_reply(text, tier, cancel):
                    if tl.first_token_at is None:
                        tl.first_token_at = time.perf_counter()
                        self.engines.timings.record("first_sentence", (tl.first_token_at - started) * 1000)
                    tl.agent_text.append(sentence)
                    self._say(Say(sentence, timeline=tl, epoch=self._epoch))
        except WorkerFailed as e:
            # The model's worker process died or hung and is being restarted: this turn gets a
            # short apology, and the call goes on (the next turn waits for the new worker).
            self.log.warning("reply failed, the call goes on: %s", e)
            self.events.error(e.code, turn=tl.turn)
            self._awaiting = None  # no filler after the apology
            tl.source, tl.reason = "apology", e.code
            self.dialog.remember(text, self.agent.model_failed)
            self._canned(self.agent.model_failed, tl)
            return
        except Exception:
            self.log.exception("reply failed")
            self.events.error("llm.failed", turn=tl.turn)
            self._fail("llm.failed")
            return
        tl.source, tl.reason = self.dialog.last_tier, self.dialog.last_reason
        self._say(TurnDone(tl))

    # -- voice -------------------------------------------------------------------------------
    def _synthesize(self, item: Say) -> Iterator[np.ndarray]:
        """Piper, clip by clip, through the shared synthesis slot: a reply's first audio has the
        turn's first-audio deadline, later clips a looser one, so other calls' first audio goes
        ahead of this call's second sentence."""
        budget = self.cfg.budget
        tl = item.timeline
        first = tl is not None and tl.first_audio_at is None
        deadline = (tl.decided_at + budget.first_audio_ms / 1000) if first else time.perf_counter() + 1.0
        if self.cfg.testing.fail_stage == "tts":
            raise SynthesisFailed("injected failure (testing.fail_stage = tts)")
        clips = self.engines.tts.stream(item.text)
        while True:
            with self.engines.tts_gate.job(deadline, "synth"):
                # Timed inside the slot: the fillers' prediction adds the queue ahead itself
                # (the gate's backlog, in units of this timing), so a wait here is not synthesis.
                t0 = time.perf_counter()
                try:
                    clip = next(clips, None)
                except Exception as e:  # Piper, onnxruntime, the text normalizer: any of them
                    raise SynthesisFailed(f"{type(e).__name__}: {e}") from e
            if clip is None:
                return
            self.engines.timings.record("synth", (time.perf_counter() - t0) * 1000)
            yield clip
            deadline = time.perf_counter() + 1.0

    def _maybe_filler(self) -> None:
        """Between items: if the awaited reply's first audio is predicted to miss its deadline,
        play a short filler now (once; never two in a row; never when the reply is nearly ready)."""
        awaiting = self._awaiting
        if awaiting is None or len(self.playout) or self.stopped.is_set() or self._on_hold.is_set():
            return
        tl, deadline, model_started = awaiting
        if tl.first_audio_at is not None or tl.first_token_at is not None:
            self._awaiting = None  # text is here: synthesis follows at once
            return
        now = time.perf_counter()
        predicted = predict_reply_first_audio(now, model_started, deadline, self.engines.timings, self.engines.tts_gate)
        decision = self.engines.fillers.decide(now, deadline, predicted, self._last_was_filler)
        if not decision.play or decision.phrase is None:
            return
        self._awaiting = None
        self._last_was_filler = True
        tl.fillers += 1
        self.events.filler(turn=tl.turn, late_by_ms=round(-decision.slack_ms))
        self.playout.write(self.engines.tts.cached(decision.phrase), stop=self.stopped)

    def _play(self, clip: np.ndarray, ahead: int) -> None:
        if self.recording is not None:
            # The bridge clock is the count of caller samples received: the agent's clip plays
            # on that clock once what is queued ahead of it has played.
            self.recording.write(1, self.inbound.written + ahead, clip)
        self.playout.write(clip, stop=self.stopped, more_follows=True)

    def _synthesis_failed(self, item: Say, error: SynthesisFailed) -> None:
        """A reply the voice could not say. The caller is never left in silence wondering: once,
        they hear the line made at start asking them to say it again (the call goes on); when
        the voice fails again on the next reply it is broken, and the caller is put through to a
        person, or told so and the call ended. An item that leads somewhere (a transfer, a
        hang-up) still gets there: the code after this carries it out."""
        tl = item.timeline
        self.log.error("synthesis failed: %s", error)
        self.events.error("tts.failed", turn=tl.turn if tl is not None else None)
        if item.transfer_to or item.hang_up_after:
            return
        if tl is not None:
            self._unsayable = tl  # its other sentences would fail too, or follow "say that again"
        self._tts_failures += 1
        if self._tts_failures < TTS_FAILURES_TO_GIVE_UP:
            line = self.engines.tts.peek(self.agent.model_failed)
            if line is not None:
                self._play(line, len(self.playout))
            return
        self._drain(self._speech)
        self.playout.clear()
        if self.agent.actions.transfer_uri and self._transfer is not None:
            self._start_transfer(None, self.agent.actions.transfer_announcement, "the agent's voice failed")
        else:
            self._say_from_outside(Say(self.agent.apology, self.engines.tts.peek(self.agent.apology),
                                       hang_up_after="internal_error", error_code="tts.failed"))

    def _speak(self) -> None:
        for item in self._items(self._speech, on_idle=self._maybe_filler, poll_s=0.05):
            if isinstance(item, TurnDone):
                self.events.turn(item.timeline)
                continue
            if item.epoch < self._epoch:
                continue  # a reply the caller talked over
            if item.timeline is not None and item.timeline is self._unsayable \
                    and not (item.transfer_to or item.hang_up_after):
                continue  # the rest of a reply the voice could not say
            if item.timeline is not None and item.timeline is not self._voiced_turn:
                # A new reply: "what was heard" starts over.
                self._voiced_turn = item.timeline
                self._heard.clear()
            # On hold no one hears it: not synthesized, not queued. What it leads to (a
            # transfer, a hang-up) still happens, so a call is never left waiting on it.
            clips = [] if self._on_hold.is_set() else [item.audio] if item.audio is not None else self._synthesize(item)
            first_start, total = None, 0
            self._last_was_filler = False
            try:
                for clip in clips:
                    if item.epoch < self._epoch or self._on_hold.is_set():
                        break
                    if self.stopped.is_set():
                        return
                    tl = item.timeline
                    ahead = len(self.playout)
                    if tl is not None and tl.first_audio_at is None:
                        # The clip starts playing once everything queued ahead of it has played.
                        tl.first_audio_at = time.perf_counter() + ahead / self.rate
                    if first_start is None:  # before the write: where this clip starts
                        first_start = self.playout.played + len(self.playout)
                    total += len(clip)
                    self._play(clip, ahead)
                else:
                    if item.audio is None and item.text:
                        self._tts_failures = 0
            except SynthesisFailed as e:
                self._synthesis_failed(item, e)
            self.playout.end_utterance()
            if self._on_hold.is_set():
                self.playout.clear()  # a clip written as the hold came: not for after it
            if first_start is not None:
                self._heard.add(item.text, total, first_start)
            if item.transfer_to and self._transfer is not None:
                while not self.stopped.is_set() and not self.playout.wait_empty(0.1):
                    pass
                self.events.event("transfer", target=item.transfer_to)
                ctx = item.transfer_context
                self._transfer(refer_to(item.transfer_to, ctx) if ctx is not None else item.transfer_to)
            if item.hang_up_after:
                if item.timeline is not None:
                    self.events.turn(item.timeline)
                # Hang up only once the caller has heard the last word.
                while not self.stopped.is_set() and not self.playout.wait_empty(0.1):
                    pass
                time.sleep(0.2)  # the jitter of the far end's playout
                self._hang_up(item.hang_up_after, item.error_code)
                return
