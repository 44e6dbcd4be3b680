"""Which llama.cpp CPU variant runs: the best this CPU supports, never an excluded one, and the
choice made in the process that loads the model (a child here, as in serve)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voicebox.thinking.llama_backend import BUILT_IN, CpuBackendError, choose, variant_dirs, variant_files

# Scores as a Xeon with AVX-512, VNNI, BF16 and AMX would give them (each feature a variant needs adds
# to its score; alderlake needs AVX-VNNI, which that Xeon lacks). Illustrative, not measured.
XEON_AMX = {"x64": 1, "sse42": 5, "haswell": 81, "skylakex": 171, "icelake": 259, "zen4": 387, "sapphirerapids": 899,
            "alderlake": 0}


def test_the_best_scoring_variant_wins():
    assert choose(XEON_AMX) == "sapphirerapids"


def test_an_excluded_variant_gives_way_to_the_next_best():
    assert choose(XEON_AMX, exclude=["sapphirerapids"]) == "zen4"
    assert choose(XEON_AMX, exclude=["sapphirerapids", "zen4"]) == "icelake"


def test_a_variant_this_cpu_cannot_run_is_never_chosen():
    assert choose({"x64": 1, "alderlake": 0}) == "x64"
    with pytest.raises(CpuBackendError, match="cannot run it"):
        choose(XEON_AMX, prefer="alderlake")


def test_a_named_variant_is_used_when_it_runs_here():
    assert choose(XEON_AMX, prefer="haswell") == "haswell"
    with pytest.raises(CpuBackendError, match="models.llm_cpu_variant = 'tigerlake'"):
        choose(XEON_AMX, prefer="tigerlake")


def test_excluding_everything_says_what_this_cpu_supports():
    with pytest.raises(CpuBackendError, match="this CPU supports haswell, x64"):
        choose({"x64": 1, "haswell": 81, "zen4": 0}, exclude=["x64", "haswell"])


def test_variant_files_reads_only_cpu_variant_libraries(tmp_path: Path):
    for name in ("libggml-cpu-haswell.so", "libggml-cpu-zen4.so", "libggml-base.so", "libggml-cpu.so",
                 "libggml-cpu-haswell.so.bak"):
        (tmp_path / name).write_bytes(b"")
    assert sorted(variant_files(tmp_path)) == ["haswell", "zen4"]


def _choose_in_child(exclude: list[str]) -> dict:
    code = (
        "import json, sys; from voicebox.thinking.llama_backend import load_cpu_backend; "
        f"b = load_cpu_backend({exclude!r}); print(json.dumps({{'variant': b.variant, 'scores': b.scores}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_installed_build_loads_the_best_variant_for_this_cpu():
    if not variant_files(*variant_dirs()):
        pytest.skip("llama-cpp-python here is a one-CPU build (LLAMA_BUILD=native): no variants to choose")
    got = _choose_in_child(["sapphirerapids"])
    scores = got["scores"]
    assert "x64" in scores and scores["x64"] > 0  # plain x86-64 runs anywhere
    best = max(s for name, s in scores.items() if name != "sapphirerapids")
    assert scores[got["variant"]] == best and got["variant"] != "sapphirerapids"
    # Excluding the one chosen moves to the next best, still one this CPU runs.
    second = _choose_in_child(["sapphirerapids", got["variant"]])
    assert second["variant"] not in ("sapphirerapids", got["variant"])
    assert 0 < scores[second["variant"]] <= best


def test_built_in_is_reported_for_a_build_without_variants(tmp_path: Path):
    code = (
        "from pathlib import Path; from voicebox.thinking.llama_backend import load_cpu_backend; "
        f"print(load_cpu_backend(folder=Path({str(tmp_path)!r})).variant)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == BUILT_IN
