"""The naive way, for comparison: the same models, one step after another.

Fixed 800 ms of silence ends a turn (webrtcvad, same aggressiveness); then the whole turn is
transcribed, the language model writes its whole reply, the whole reply is synthesized, and
only then does it play. No intent router, no templates, no speculative decoding, no streaming.
It has CallPipeline's constructor and lifecycle, so the benchmark drives it the same way and
its turns land in the same records.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import webrtcvad

from voicebox.agent import AgentConfig
from voicebox.audio.ringbuffer import RingBuffer
from voicebox.config import Config
from voicebox.engines import Engines
from voicebox.records.call_events import CallEvents, TurnTimeline
from voicebox.thinking.dialog import system_prompt

SILENCE_MS = 800
log = logging.getLogger("benchmarks.harness.baseline")


class SequentialPipeline:
    def __init__(
        self, session: str, engines: Engines, agent: AgentConfig, cfg: Config,
        inbound: RingBuffer, playout: RingBuffer, hang_up, events: CallEvents,
        recording=None, transfer=None,
    ) -> None:
        self.session = session
        self.engines = engines
        self.agent = agent
        self.cfg = cfg
        self.inbound = inbound
        self.playout = playout
        self.events = events
        self.rate = cfg.media.clock_rate_hz
        self.frame_ms = cfg.media.frame_ms
        self.frame = self.rate * self.frame_ms // 1000
        self.stopped = threading.Event()
        self.history: list[dict[str, str]] = []
        self.turn_count = 0
        self._thread = threading.Thread(target=self._run, name=f"{session}-sequential", daemon=True)

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def start(self) -> None:
        self.playout.write(self.engines.tts.cached(self.agent.greeting), stop=self.stopped)
        self._thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.playout.clear()

    def join(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        vad = webrtcvad.Vad(self.cfg.vad.aggressiveness)
        start_frames = max(1, self.cfg.vad.start_ms // self.frame_ms)
        end_frames = SILENCE_MS // self.frame_ms
        audio: list[np.ndarray] = []
        voiced_run = silent_run = 0
        in_turn = False
        start_ms = last_voiced_ms = 0
        while not self.stopped.is_set():
            frame = self.inbound.read_exact(self.frame, timeout=0.1)
            if frame is None:
                continue
            now_ms = (self.inbound.read // self.frame) * self.frame_ms
            speech = vad.is_speech(frame.tobytes(), self.rate)
            if not in_turn:
                audio = (audio + [frame])[-start_frames:]
                voiced_run = voiced_run + 1 if speech else 0
                if voiced_run >= start_frames:
                    in_turn, silent_run = True, 0
                    start_ms = now_ms - start_frames * self.frame_ms
                continue
            audio.append(frame)
            if speech:
                silent_run, last_voiced_ms = 0, now_ms
                continue
            silent_run += 1
            if silent_run >= end_frames:
                decided_at = time.perf_counter() - len(self.inbound) / self.rate
                self._answer(np.concatenate(audio), start_ms, last_voiced_ms, now_ms, decided_at)
                in_turn, audio, voiced_run = False, [], 0

    def _answer(self, audio: np.ndarray, start_ms: int, last_voiced_ms: int, decided_ms: int, decided_at: float) -> None:
        self.turn_count += 1
        tl = TurnTimeline(self.turn_count, start_ms, last_voiced_ms, decided_ms, decided_at, "silence")
        tl.endpoint_rule = f"fixed {SILENCE_MS} ms"
        tr = self.engines.stt.transcribe(audio, self.rate, prompt=self.engines.stt.prompt_for(self.agent))
        tl.transcript_at = time.perf_counter()
        tl.caller_text = tr.text
        tl.source = "sequential"
        if not tr.text:
            self.events.turn(tl)
            return
        messages = [{"role": "system", "content": system_prompt(self.agent)}, *self.history[-4:],
                    {"role": "user", "content": tr.text}]
        models = self.cfg.models
        lm = self.engines.lm
        reply = "".join(lm.stream(messages, models.llm_max_reply_tokens, models.llm_temperature,
                                  self.stopped)).strip() if lm is not None else ""
        tl.first_token_at = time.perf_counter()  # the reply exists only once it is whole
        reply = reply or self.agent.no_information
        tl.agent_text.append(reply)
        self.history += [{"role": "user", "content": tr.text}, {"role": "assistant", "content": reply}]
        clip = self.engines.tts.synthesize(reply)
        if self.stopped.is_set():
            return
        tl.first_audio_at = time.perf_counter() + len(self.playout) / self.rate
        self.playout.write(clip, stop=self.stopped)
        self.events.turn(tl)
