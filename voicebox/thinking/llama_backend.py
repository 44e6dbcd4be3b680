"""Which of llama.cpp's CPU kernels this process runs.

The default build of llama-cpp-python here is portable (see models/install_llama_cpp.sh): ggml's
CPU code is compiled once per x86-64 generation (``libggml-cpu-haswell.so``,
``libggml-cpu-icelake.so``, ...) and each of those libraries scores itself against the CPU it
finds. llama.cpp would pick the best by itself, but only from the executable's or the working
directory's folder, which for Python is neither; and it would pick a variant whose kernels may
fault on the machine at hand (AMX on some Xeons: ``ldtilecfg`` raised a general protection fault
in every prompt of two or more tokens). So voicebox picks: the highest-scoring variant that
the operator has not excluded (``models.llm_cpu_exclude``), or the one they named
(``models.llm_cpu_variant``), and registers it before llama.cpp initialises.

A build with one fixed CPU library (a native build, ``LLAMA_BUILD=native``) has no variants to
choose from; it is reported as ``built-in``.
"""

from __future__ import annotations

import ctypes
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

BUILT_IN = "built-in"
_VARIANT_FILE = re.compile(r"^libggml-cpu-(?P<name>[A-Za-z0-9_.]+)\.so$")


class CpuBackendError(RuntimeError):
    """No CPU variant can be loaded as configured; the message names the setting to change."""


@dataclass(frozen=True)
class CpuBackend:
    variant: str  # the CPU library in use ("haswell", "zen4", ...) or BUILT_IN
    scores: dict[str, int] = field(default_factory=dict)  # every variant's score on this CPU (0: unsupported)


def lib_dir() -> Path:
    """llama-cpp-python's folder of shared libraries (found without importing llama_cpp), or
    the one ``LLAMA_CPP_LIB_PATH`` names, which llama-cpp-python itself then loads from."""
    import importlib.util
    import os

    if os.environ.get("LLAMA_CPP_LIB_PATH"):
        return Path(os.environ["LLAMA_CPP_LIB_PATH"])
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise CpuBackendError("llama-cpp-python is not installed (make setup installs it)")
    return Path(list(spec.submodule_search_locations)[0]) / "lib"


def variant_dirs() -> list[Path]:
    """Where the variants are: beside libllama, or where the wheel's install put them (ggml's
    CMake installs backend modules to ``bin/``, which a wheel lands in site-packages/bin)."""
    lib = lib_dir()
    return [lib, lib.parent.parent / "bin"]


def variant_files(*folders: Path) -> dict[str, Path]:
    """The CPU variants a dynamic-backend build ships, by name (the first folder wins)."""
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.glob("libggml-cpu-*.so")):
            m = _VARIANT_FILE.match(path.name)
            if m:
                found.setdefault(m["name"], path)
    return found


def choose(scores: dict[str, int], exclude: Iterable[str] = (), prefer: str = "auto") -> str:
    """The variant to load: ``prefer`` if named (it must run here), else the best-scoring one
    not excluded. Ties go to the name that sorts first, so the choice is stable."""
    excluded = set(exclude)
    if prefer != "auto":
        if prefer not in scores:
            raise CpuBackendError(
                f"models.llm_cpu_variant = {prefer!r}: this build has {', '.join(sorted(scores)) or 'no variants'}"
            )
        if scores[prefer] <= 0:
            raise CpuBackendError(f"models.llm_cpu_variant = {prefer!r}: this CPU cannot run it")
        return prefer
    usable = {name: s for name, s in scores.items() if s > 0 and name not in excluded}
    if not usable:
        supported = sorted(name for name, s in scores.items() if s > 0)
        raise CpuBackendError(
            "no llama.cpp CPU variant left to run: this CPU supports "
            f"{', '.join(supported) or 'none'} and models.llm_cpu_exclude removes {', '.join(sorted(excluded))}"
        )
    return max(sorted(usable), key=lambda name: usable[name])


def score(path: Path) -> int:
    """What a variant library says of this CPU (0: it cannot run here). Opening it runs no
    kernel: ggml's own loader opens every variant the same way to ask."""
    import _ctypes

    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return 0
    try:
        fn = lib.ggml_backend_score
        fn.restype = ctypes.c_int
        fn.argtypes = []
        return int(fn())
    except AttributeError:
        return 0
    finally:
        _ctypes.dlclose(lib._handle)  # the chosen one is opened again by ggml itself


_lock = threading.Lock()
_loaded: CpuBackend | None = None


def load_cpu_backend(exclude: Iterable[str] = (), prefer: str = "auto", folder: Path | None = None) -> CpuBackend:
    """Register the chosen CPU variant with ggml, once per process (later calls return it)."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        import llama_cpp  # noqa: F401 - loads libggml-base, which the variants link against

        folders = [folder] if folder is not None else variant_dirs()
        files = variant_files(*folders)
        if not files:
            _loaded = CpuBackend(BUILT_IN)
            return _loaded
        scores = {name: score(path) for name, path in files.items()}
        name = choose(scores, exclude, prefer)
        # By its soname: the copy libllama already linked. The wheel holds libggml.so and
        # libggml.so.0 as two files, and opening the other would load a second, empty registry.
        ggml = ctypes.CDLL("libggml.so.0")
        ggml.ggml_backend_load.restype = ctypes.c_void_p
        ggml.ggml_backend_load.argtypes = [ctypes.c_char_p]
        if not ggml.ggml_backend_load(str(files[name]).encode()):
            raise CpuBackendError(f"llama.cpp refused to load its CPU variant {name!r} from {files[name]}")
        _loaded = CpuBackend(name, scores)
        return _loaded


def main(argv: list[str] | None = None) -> int:
    """``python -m voicebox.thinking.llama_backend [MODULE ARGS...]``: print the CPU variant this
    machine gets, or run a llama-cpp-python program (``llama_cpp.server``) with it loaded, since
    the portable build's variants are not where llama.cpp itself looks for them."""
    import runpy
    import sys

    args = sys.argv[1:] if argv is None else argv
    backend = load_cpu_backend(exclude=("sapphirerapids",))
    if not args:
        print(backend.variant)
        for name, value in sorted(backend.scores.items(), key=lambda kv: -kv[1]):
            print(f"  {name:15} {value}")
        return 0
    sys.argv = args
    runpy.run_module(args[0], run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
