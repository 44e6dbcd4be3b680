"""Prove a GGUF model generates on this machine, in a worker process, before a call needs it.

A llama.cpp build can load a model and still die on its first real prompt (a CPU kernel that
faults), so the check loads, prefills a prompt of several tokens and generates a few more, all in
a child: a native crash is reported in one line (``ModelStartFailed``), never felt by the caller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from voicebox.config import Config
from voicebox.thinking.llm_worker import PROBE_MESSAGES, WorkerModel


@dataclass(frozen=True)
class GenerationCheck:
    name: str
    gguf: Path
    variant: str | None
    start_ms: float  # spawn to ready: load and the warm-up prompt
    first_token_ms: float  # a fresh prompt's prefill and first token
    tokens: int
    tokens_per_s: float  # after the first token

    def line(self) -> str:
        return (f"{self.name} model {self.gguf.name} generates on CPU variant {self.variant}: started in "
                f"{self.start_ms:.0f} ms, first token {self.first_token_ms:.0f} ms, "
                f"{self.tokens_per_s:.0f} tokens/s over {self.tokens} tokens")


def check_generation(gguf: Path, cfg: Config, name: str = "small", tokens: int = 16) -> GenerationCheck:
    """Start a worker on ``gguf`` with ``cfg``'s llama.cpp settings, time one short reply.

    Raises ``ModelStartFailed`` (one line: the model, the signal, the fix) if it cannot.
    """
    from voicebox.engines import start_worker

    worker = start_worker(gguf, cfg, name)
    try:
        t0 = time.perf_counter()
        first = None
        # Not the warm-up's question: its prompt is cached, and a first token would cost nothing.
        question = [PROBE_MESSAGES[0], {"role": "user", "content": "What do I need to bring with me?"}]
        for _ in worker.stream(question, tokens, 0.0):
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        count = worker.tokens_so_far()
        first = first if first is not None else end
        rate = (count - 1) / (end - first) if count > 1 and end > first else 0.0
        return GenerationCheck(name, gguf, worker.variant, worker.start_s * 1000, (first - t0) * 1000, count, rate)
    finally:
        worker.close()


def configured_ggufs(cfg: Config) -> list[tuple[str, Path]]:
    """The GGUF files ``serve`` would load: the small model, and every configured agent's local large tier.

    Each file once, however many agents share it. With ``[agents]`` a large tier is named by the
    dialled users whose agent asks for it (``large (plumbing)``), so a failure says whose it is;
    ConfigError (a broken agent file) and ModelError (a tier that is not there) name them too.
    """
    from voicebox.agent import load_agent
    from voicebox.agent_directory import named_agents
    from voicebox.config import ConfigError
    from voicebox.model_store import ModelError, resolve

    found = [("small", resolve(cfg.models.llm, "llm", cfg.data_dir))]
    large: dict[Path, list[str]] = {}  # GGUF -> the users whose agents use it, in config order
    for named in named_agents(cfg):
        try:
            tier = load_agent(named.spec).tiers.large
        except ConfigError as e:
            raise ConfigError(f"[agents] {named.label()}: {e}" if named.users else str(e)) from None
        if not tier or tier.startswith(("http://", "https://")):
            continue  # a remote tier runs elsewhere: nothing to prove on this CPU
        try:
            gguf = resolve(tier, "llm", cfg.data_dir)
        except ModelError as e:
            raise ModelError(f"large tier of {named.label()} ({named.spec}): {e}" if named.users else str(e)) from None
        large.setdefault(gguf.resolve(), []).extend(named.users)
    for gguf, users in large.items():
        found.append((f"large ({', '.join(users)})" if cfg.agents is not None else "large", gguf))
    return found
