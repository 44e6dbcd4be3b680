"""The models every call shares, loaded once at start-up."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from voicebox.agent import AgentConfig
from voicebox.config import Config
from voicebox.listening.transcriber import Transcriber
from voicebox.model_store import resolve
from voicebox.speaking.synthesizer import Synthesizer
from voicebox.thinking.dialog import system_prompt
from voicebox.thinking.language_model import LanguageModel

log = logging.getLogger("voicebox.engines")


@dataclass
class Engines:
    stt: Transcriber
    lm: LanguageModel
    tts: Synthesizer


def load_engines(cfg: Config, agent: AgentConfig) -> Engines:
    """Load (and warm) STT, LLM and TTS; pre-synthesize the agent's fixed phrases."""
    data_dir = cfg.data_dir
    t0 = time.perf_counter()
    stt = Transcriber(resolve(cfg.models.stt, "stt", data_dir), threads=cfg.models.stt_threads)
    t1 = time.perf_counter()
    lm = LanguageModel(resolve(cfg.models.llm, "llm", data_dir), cfg.models.llm_threads, cfg.models.llm_context_tokens)
    warm = lm.warm_up([{"role": "system", "content": system_prompt(agent)}, {"role": "user", "content": "Hi"}])
    t2 = time.perf_counter()
    tts = Synthesizer(resolve(cfg.models.tts, "tts", data_dir), cfg.media.clock_rate_hz)
    for phrase in (agent.greeting, agent.goodbye, agent.apology, agent.not_understood, agent.max_call_goodbye):
        tts.cached(phrase)
    t3 = time.perf_counter()
    log.info(
        "models loaded stt=%s (%.0f ms) llm=%s (%.0f ms, prompt warm-up %.0f ms) tts=%s (%.0f ms)",
        cfg.models.stt, (t1 - t0) * 1000, cfg.models.llm, (t2 - t1) * 1000, warm * 1000,
        cfg.models.tts, (t3 - t2) * 1000,
    )
    return Engines(stt, lm, tts)
