"""The prebuilt native engines pick their kernels for the CPU they run on, so a wheel installed
on one machine works on the next (the llama.cpp build's own check is tests/thinking/test_llama_backend.py).

- CTranslate2 (faster-whisper) chooses its instruction set when it loads: it must choose what
  this CPU has, and its generic path must transcribe like the chosen one.
- webrtcvad's wheel must hold baseline x86-64 code only: no AVX registers anywhere in it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WAV = ROOT.parent / "shared" / "corpus" / "wav" / "barge_in_0.wav"
x86_only = pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 instruction sets")


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def transcribe_in_child(env: dict[str, str]) -> tuple[str, str]:
    """The default whisper's transcript of a corpus question, and CTranslate2's log of its ISA."""
    code = (
        "import json; from pathlib import Path\n"
        "from faster_whisper import WhisperModel\n"
        "from voicebox.model_store import resolve\n"
        "m = WhisperModel(str(resolve('whisper-tiny-en', 'stt', Path('data'))), device='cpu', compute_type='int8')\n"
        f"segs, _ = m.transcribe({str(WAV)!r}, beam_size=1, language='en')\n"
        "print(json.dumps(' '.join(s.text.strip() for s in segs)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "CT2_VERBOSE": "1", **env})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stdout + out.stderr


@x86_only
def test_ctranslate2_chooses_this_cpus_instruction_set_and_its_generic_path_agrees():
    text, log = transcribe_in_child({})
    chosen = re.search(r"Selected ISA: (\w+)", log)
    assert chosen, log[-2000:]
    flags = cpu_flags()
    # CTranslate2 picks AVX2 at best by itself: AVX512 only when CT2_FORCE_CPU_ISA asks for it
    # (src/cpu/cpu_isa.cc). A machine with AVX-512 (this session's AMD EPYC) still gets AVX2.
    best = "AVX2" if "avx2" in flags else "AVX" if "avx" in flags else "GENERIC"
    assert chosen[1] == best, log[-2000:]
    generic_text, generic_log = transcribe_in_child({"CT2_FORCE_CPU_ISA": "GENERIC"})
    assert "Selected ISA: GENERIC" in generic_log, generic_log[-2000:]
    assert "services" in text.lower() and generic_text.lower().split() == text.lower().split()


@x86_only
def test_webrtcvad_is_built_for_baseline_x86_64():
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) is not installed")
    import _webrtcvad

    asm = subprocess.run([objdump, "-d", _webrtcvad.__file__], capture_output=True, text=True, check=True).stdout
    assert len(asm.splitlines()) > 1000  # the real library, disassembled
    assert not re.search(r"%[yz]mm\d", asm), "AVX/AVX-512 code in webrtcvad: it would crash on an older CPU"
