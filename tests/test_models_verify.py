"""`voicebox models --verify` (the last step of `make setup`) proves the language model generates
on this CPU, in a child process, and reports a model that cannot in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def verify(tmp_path: Path, config: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "voicebox.toml"
    cfg.write_text(config)
    return subprocess.run([sys.executable, "-m", "voicebox", "models", "--verify", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_verify_generates_with_the_configured_model(tmp_path):
    out = verify(tmp_path, "")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    line = [x for x in out.stdout.splitlines() if "generates on CPU variant" in x]
    assert len(line) == 1 and "small model SmolLM2-135M-Instruct.Q4_1.gguf" in line[0], out.stdout[-2000:]


def test_verify_reports_a_model_that_dies_in_one_line(tmp_path):
    out = verify(tmp_path, '[testing]\nllm_worker_fault = "segv"\nllm_worker_fault_on_request = 0\n')
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    errors = [x for x in out.stderr.splitlines() if x.startswith("voicebox: ")]
    assert len(errors) == 1, out.stderr[-2000:]
    assert "llm.cannot_generate: the small model SmolLM2-135M-Instruct.Q4_1.gguf died with SIGSEGV" in errors[0]
    assert "Fix: " in errors[0]
    assert "Traceback" not in out.stderr
