"""The models every call shares, loaded once at start-up.

A server answering as several agents (``[agents]``) loads whisper, the language model and the
voice once; each agent has its own intent router and bigger tier on top of them
(``Engines.for_agent``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from voicebox.agent import AgentConfig
from voicebox.config import Config
from voicebox.listening.transcriber import Transcriber
from voicebox.model_store import resolve
from voicebox.scheduling import DeadlineGate, StageTimings
from voicebox.speaking.fillers import FillerPolicy
from voicebox.speaking.synthesizer import Synthesizer
from voicebox.thinking import opening_hours
from voicebox.thinking.dialog import system_prompt
from voicebox.thinking.intent_router import IntentRouter
from voicebox.thinking.language_model import ChatModel, LanguageModel, RemoteModel
from voicebox.thinking.llm_worker import ModelStartFailed, WorkerModel

log = logging.getLogger("voicebox.engines")


@dataclass
class Engines:
    stt: Transcriber
    lm: ChatModel | None  # None: the model could not generate here (models.llm_on_failure)
    tts: Synthesizer
    router: IntentRouter
    large: ChatModel | None = None
    # Shared across calls: each model worker serves jobs in deadline order, and the stages'
    # recent durations predict when a reply's first audio will be ready.
    llm_gate: DeadlineGate = field(default_factory=lambda: DeadlineGate("llm"))
    tts_gate: DeadlineGate = field(default_factory=lambda: DeadlineGate("tts"))
    timings: StageTimings = field(default_factory=lambda: StageTimings(defaults_ms=DEFAULT_STAGE_MS))
    fillers: FillerPolicy = field(default_factory=FillerPolicy)
    phrase_cache: "_PhraseCache | None" = None
    # Agent id -> its router and bigger tier, when these models serve several agents.
    per_agent: dict[str, tuple[IntentRouter, ChatModel | None]] = field(default_factory=dict)

    def for_agent(self, agent_id: str) -> "Engines":
        """These models, gates and stage timings, with one agent's router and bigger tier.

        The view shares everything else with these engines (calls of every agent queue at the
        same model workers); close these engines, never a view.
        """
        router, large = self.per_agent[agent_id]
        return replace(self, router=router, large=large, phrase_cache=None, per_agent={})

    def workers(self) -> list[WorkerModel]:
        """The models that run in worker processes (each once, however many agents share it)."""
        models = [self.lm, self.large, *(large for _, large in self.per_agent.values())]
        return list({id(m): m for m in models if isinstance(m, WorkerModel)}.values())

    def close(self) -> None:
        """Stop the model worker processes (they also exit on their own if this process dies),
        and the background synthesis, so no thread is inside onnxruntime when Python exits
        (its thread pool then aborts the process: "terminate called without an active exception")."""
        if self.phrase_cache is not None:
            self.phrase_cache.stop()
        for worker in self.workers():
            worker.close()


# Until a stage has been timed on this machine (2 cores, the default models).
DEFAULT_STAGE_MS = {"final": 150.0, "partial": 120.0, "first_sentence": 600.0, "synth": 250.0}


def load_large(agent: AgentConfig, cfg: Config) -> ChatModel | None:
    """The agent's bigger tier, if it names one: an OpenAI-compatible URL or a GGUF."""
    large = agent.tiers.large
    if not large:
        return None
    if large.startswith(("http://", "https://")):
        return RemoteModel(large, agent.tiers.large_model, timeout_s=agent.tiers.large_timeout_ms / 1000)
    try:
        return local_model(resolve(large, "llm", cfg.data_dir), cfg, "large")[0]
    except ModelStartFailed as e:
        return _without_model(e, cfg)


def local_model(
    gguf: Path, cfg: Config, name: str, warm_messages: list[dict[str, str]] | None = None,
) -> tuple[LanguageModel | WorkerModel, float]:
    """A GGUF model in a supervised worker process (models.llm_process), else in this one.

    Returns it warmed up on ``warm_messages`` when given, and the warm-up's seconds. Test faults
    apply to the small model only. ``ModelStartFailed`` if it cannot generate here.
    """
    m = cfg.models
    worker = start_worker(gguf, cfg, name, warm_messages if m.llm_process else None)
    if m.llm_process:
        return worker, worker.warm_up_s
    # In this process a native crash would end the service: a worker proves the model first.
    worker.close()
    lm = LanguageModel(gguf, m.llm_threads, m.llm_context_tokens, name, cpu_exclude=m.llm_cpu_exclude,
                       cpu_variant=m.llm_cpu_variant, extra_buffers=m.llm_extra_buffers)
    return lm, lm.warm_up(warm_messages) if warm_messages else 0.0


def start_worker(
    gguf: Path, cfg: Config, name: str, warm_messages: list[dict[str, str]] | None = None,
) -> WorkerModel:
    """A worker process serving ``gguf``, started and warmed up (which proves it generates)."""
    m = cfg.models
    fault = cfg.testing.llm_worker_fault if name == "small" else ""
    return WorkerModel(
        gguf, m.llm_threads, m.llm_context_tokens, name, hang_timeout_ms=m.llm_hang_timeout_ms,
        warm_messages=warm_messages, fault=fault, fault_on_request=cfg.testing.llm_worker_fault_on_request,
        cpu_exclude=m.llm_cpu_exclude, cpu_variant=m.llm_cpu_variant, extra_buffers=m.llm_extra_buffers,
    )


def _without_model(e: ModelStartFailed, cfg: Config) -> None:
    """Log why a model cannot run; go on without it, or stop, as models.llm_on_failure says."""
    if cfg.models.llm_on_failure == "exit":
        raise e
    log.error("%s. Serving without this model (models.llm_on_failure = without_model): turns that need it "
              "get the no-information line and the offer of a person.", e)
    return None


def load_engines(cfg: Config, agent: AgentConfig) -> Engines:
    """Load (and warm) STT, LLM and TTS for one agent; pre-synthesize its fixed phrases."""
    return load_shared_engines(cfg, {"": agent})


def load_shared_engines(cfg: Config, agents: Mapping[str, AgentConfig]) -> Engines:
    """Load (and warm) STT, LLM and TTS once; train a router and find a bigger tier for every agent.

    ``agents``: agent id -> agent file, the first one's router and tier being the engines' own
    (``for_agent`` gives each agent's). Every agent's fixed phrases are synthesized at start.
    """
    first = next(iter(agents.values()))
    data_dir = cfg.data_dir
    t0 = time.perf_counter()
    stt = Transcriber(
        resolve(cfg.models.stt, "stt", data_dir), threads=cfg.models.stt_threads, final_beam=cfg.models.stt_final_beam,
    )
    for agent in agents.values():
        stt.prompt_for(agent)  # ConfigError now, naming the fix, if this model cannot hear an agent's language
    t1 = time.perf_counter()
    warm_messages = [{"role": "system", "content": system_prompt(first)}, {"role": "user", "content": "Hi"}]
    lm: ChatModel | None
    try:
        lm, warm = local_model(resolve(cfg.models.llm, "llm", data_dir), cfg, "small", warm_messages)
    except ModelStartFailed as e:
        lm, warm = _without_model(e, cfg), 0.0
    t2 = time.perf_counter()
    tts = Synthesizer(resolve(cfg.models.tts, "tts", data_dir), cfg.media.clock_rate_hz)
    fillers = FillerPolicy()
    for phrase in fillers.phrases:
        tts.cached(phrase)
    for agent in agents.values():
        for phrase in (agent.greeting, agent.goodbye, agent.apology, agent.model_failed, agent.max_call_goodbye):
            tts.cached(phrase)
    t3 = time.perf_counter()
    if any(agent.hours is not None for agent in agents.values()):
        opening_hours.warm_up()  # dateparser's language data: loaded now, not on a caller's turn
    per_agent: dict[str, tuple[IntentRouter, ChatModel | None]] = {}
    larges: dict[tuple[str, str, int], ChatModel | None] = {}  # agents naming the same tier share it
    fixed: list[str] = []
    for aid, agent in agents.items():
        t = time.perf_counter()
        router = IntentRouter.for_agent(agent)  # the file's own out-of-scope examples and confusions too
        tier = (agent.tiers.large, agent.tiers.large_model, agent.tiers.large_timeout_ms)
        if tier not in larges:
            larges[tier] = load_large(agent, cfg)
        per_agent[aid] = (router, larges[tier])
        # Every fixed answer is synthesized once, in the background: a templated reply then
        # costs no synthesis at all on the call.
        fixed += [agent.fill(i.answer) for i in agent.intents if i.answer] + list(agent.reprompts) + [
            agent.no_information, agent.actions.transfer_announcement, agent.actions.no_transfer,
        ]
        if len(agents) > 1:
            log.info("agent %s: router %d intents (%.0f ms), large=%s", aid, len(agent.intents),
                     (time.perf_counter() - t) * 1000, agent.tiers.large or "-")
    caching = _PhraseCache(tts, list(dict.fromkeys(fixed)))
    t4 = time.perf_counter()
    log.info(
        "models loaded stt=%s (%.0f ms) llm=%s (%.0f ms, prompt warm-up %.0f ms, %s) tts=%s (%.0f ms) "
        "router=%d intents (%.0f ms) large=%s",
        cfg.models.stt, (t1 - t0) * 1000, cfg.models.llm, (t2 - t1) * 1000, warm * 1000,
        _where(lm),
        cfg.models.tts, (t3 - t2) * 1000, sum(len(a.intents) for a in agents.values()), (t4 - t3) * 1000,
        first.tiers.large or "-",
    )
    router, large = next(iter(per_agent.values()))
    return Engines(stt, lm, tts, router, large, fillers=fillers, phrase_cache=caching, per_agent=per_agent)


def _where(lm: ChatModel | None) -> str:
    if isinstance(lm, WorkerModel):
        return f"worker pid {lm.pid}, CPU variant {lm.variant}"
    if isinstance(lm, LanguageModel):
        return f"in-process, CPU variant {lm.backend.variant}"
    return "NOT AVAILABLE"


class _PhraseCache:
    """Synthesizes the agent's fixed answers once, in the background; stoppable between phrases."""

    def __init__(self, tts: Synthesizer, phrases: list[str]) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(tts, phrases), name="tts-cache", daemon=True)
        self._thread.start()

    def _run(self, tts: Synthesizer, phrases: list[str]) -> None:
        for phrase in phrases:
            if self._stop.is_set():
                return
            tts.cached(phrase)

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
