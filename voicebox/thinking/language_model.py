"""Chat models for the reply tiers: llama.cpp in-process, or an OpenAI-compatible server.

Both stream text piece by piece and can be stopped between tokens. The local model also keeps
each generated token's log-probability, the signal that decides whether a small model's answer
is trusted or escalated.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np


class ChatModel(Protocol):
    name: str

    def stream(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
        cancelled: threading.Event | None = None,
    ) -> Iterator[str]: ...

    def mean_logprob(self, since: int = 0) -> float | None:
        """Mean log-probability of the tokens generated since token ``since`` (None: unknown)."""
        ...

    def tokens_so_far(self) -> int: ...


class _TokenLogprobs:
    """A llama.cpp logits processor that records the log-probability of each sampled token.

    It sees the scores before each sampling step; the token chosen from them shows up as the
    last input id at the next step, so each log-probability is recorded one step late.
    """

    def __init__(self) -> None:
        self.values: list[float] = []
        self._prev: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._prev is not None:
            self.values.append(float(self._prev[int(input_ids[-1])]))
        top = float(scores.max())
        self._prev = scores - top - np.log(np.exp(scores - top).sum())
        return scores


@contextmanager
def _extra_buffers(enabled: bool) -> Iterator[None]:
    """Load a model with or without llama.cpp's extra weight buffers (repacked or AMX tiles).

    ``Llama()`` does not take the flag, and it builds its model parameters from the library's
    defaults while it loads: so, for the load alone, the defaults it reads say so. Turning them
    off is the escape hatch for a CPU whose repacking kernels fault (models.llm_extra_buffers).
    """
    if enabled:
        yield
        return
    import llama_cpp.llama_cpp as lib

    default = lib.llama_model_default_params

    def without():
        params = default()
        params.use_extra_bufts = False
        return params

    lib.llama_model_default_params = without
    try:
        yield
    finally:
        lib.llama_model_default_params = default


class LanguageModel:
    """One GGUF model shared by all calls. llama.cpp contexts are not thread-safe: one lock."""

    def __init__(
        self, gguf: Path, threads: int, context_tokens: int, name: str = "small", *,
        cpu_exclude: Sequence[str] = (), cpu_variant: str = "auto", extra_buffers: bool = True,
    ) -> None:
        from voicebox.thinking.llama_backend import load_cpu_backend

        # The CPU kernels first: llama.cpp would otherwise pick its own when the model loads.
        self.backend = load_cpu_backend(cpu_exclude, cpu_variant)
        self.name = name
        with _extra_buffers(extra_buffers):
            from llama_cpp import Llama

            self.llm = Llama(model_path=str(gguf), n_ctx=context_tokens, n_threads=threads, verbose=False)
        self.lock = threading.Lock()
        self._logprobs = _TokenLogprobs()

    def stream(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        cancelled: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield reply text piece by piece; stops between tokens once ``cancelled`` is set."""
        from llama_cpp import LogitsProcessorList

        with self.lock:
            self._logprobs = _TokenLogprobs()
            chunks = self.llm.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature, stream=True,
                logits_processor=LogitsProcessorList([self._logprobs]),
            )
            try:
                for chunk in chunks:
                    if cancelled is not None and cancelled.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            finally:
                chunks.close()

    def tokens_so_far(self) -> int:
        return len(self._logprobs.values)

    def mean_logprob(self, since: int = 0) -> float | None:
        values = self._logprobs.values[since:]
        return float(np.mean(values)) if values else None

    def warm_up(self, messages: list[dict[str, str]]) -> float:
        """Evaluate the shared prompt prefix once so the first caller's first token is fast."""
        t0 = time.perf_counter()
        for _ in self.stream(messages, max_tokens=1, temperature=0.0):
            pass
        return time.perf_counter() - t0


class RemoteModel:
    """An OpenAI-compatible chat endpoint on the LAN (llama.cpp server, vLLM, …), streamed."""

    def __init__(self, base_url: str, model: str = "default", timeout_s: float = 20.0, name: str = "large") -> None:
        self.name = name
        self.url = base_url.rstrip("/")
        if not self.url.endswith("/chat/completions"):
            self.url += "/v1/chat/completions" if not self.url.endswith("/v1") else "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s

    def stream(
        self, messages: list[dict[str, str]], max_tokens: int, temperature: float,
        cancelled: threading.Event | None = None,
    ) -> Iterator[str]:
        body = json.dumps({
            "model": self.model, "messages": messages, "max_tokens": max_tokens,
            "temperature": temperature, "stream": True,
        }).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            for raw in resp:
                if cancelled is not None and cancelled.is_set():
                    return
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    piece = json.loads(data)["choices"][0]["delta"].get("content")
                except (ValueError, KeyError, IndexError):
                    continue  # a malformed event is skipped, not fatal
                if piece:
                    yield piece

    def tokens_so_far(self) -> int:
        return 0

    def mean_logprob(self, since: int = 0) -> float | None:
        return None  # not asked for: a server's log-probabilities are optional in the API
