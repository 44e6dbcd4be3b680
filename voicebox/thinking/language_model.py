"""The chat model: llama.cpp through llama-cpp-python, streamed token by token."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator


class LanguageModel:
    """One GGUF model shared by all calls. llama.cpp contexts are not thread-safe: one lock."""

    def __init__(self, gguf: Path, threads: int, context_tokens: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(gguf), n_ctx=context_tokens, n_threads=threads, verbose=False)
        self.lock = threading.Lock()

    def stream(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        temperature: float,
        cancelled: threading.Event | None = None,
    ) -> Iterator[str]:
        """Yield reply text piece by piece; stops between tokens once ``cancelled`` is set."""
        with self.lock:
            chunks = self.llm.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature, stream=True
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

    def warm_up(self, messages: list[dict[str, str]]) -> float:
        """Evaluate the shared prompt prefix once so the first caller's first token is fast."""
        t0 = time.perf_counter()
        for _ in self.stream(messages, max_tokens=1, temperature=0.0):
            pass
        return time.perf_counter() - t0
