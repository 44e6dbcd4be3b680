"""The runtime package holds what `voicebox serve` and the operator commands run, and nothing
else (issue #20 item 4, issue #21): the bench harness, the scripted pjsua2 caller and the
simulated phone line live in benchmarks/harness/, and their packages in the `bench` extra."""

from __future__ import annotations

import ast
import fnmatch
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "voicebox"
# Tooling the runtime must not import: the benchmarks and tests trees, and the bench extra.
TOOLING = {"benchmarks", "tests", "matplotlib", "tqdm", "jiwer"}
BENCH_EXTRA = {"matplotlib", "tqdm", "jiwer"}
MODULE_PATH = re.compile(r"^(benchmarks|tests)(\.\w+)+$")  # e.g. "-m", "benchmarks.harness.caller"


def _runtime_files() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50, "the runtime package was not found"
    return files


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in {"import_module", "__import__"}):
            found.append((node.lineno, node.args[0].value))
    return found


def test_no_runtime_module_imports_benchmark_or_test_tooling():
    bad = []
    for path in _runtime_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in _imports(tree):
            if module.split(".")[0] in TOOLING:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
        for node in ast.walk(tree):  # `python -m benchmarks.harness.caller` run as a child counts too
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.match(node.value):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} names the module {node.value}")
    assert not bad, "the runtime package uses tooling:\n" + "\n".join(bad)


def test_the_bench_harness_caller_and_line_simulator_are_not_in_the_runtime_package():
    for gone in ["voicebox/bench", "voicebox/telephony/caller.py", "voicebox/audio/channel.py",
                 "voicebox/audio/g711.py", "voicebox/audio/g722.py"]:
        assert not (ROOT / gone).exists(), f"{gone} belongs in benchmarks/harness/"
    for moved in ["run.py", "__main__.py", "caller.py", "channel.py", "g711.py", "g722.py"]:
        assert (ROOT / "benchmarks" / "harness" / moved).is_file()


def test_the_runtime_dependencies_leave_the_bench_packages_to_the_bench_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = lambda reqs: {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in reqs}  # noqa: E731
    assert not names(project["project"]["dependencies"]) & BENCH_EXTRA
    assert BENCH_EXTRA <= names(project["project"]["optional-dependencies"]["bench"])
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packaged = lambda name: any(fnmatch.fnmatchcase(name, pattern) for pattern in include)  # noqa: E731
    assert packaged("voicebox") and packaged("voicebox.telephony")
    assert not any(packaged(n) for n in ("benchmarks", "benchmarks.harness", "tests", "tests.e2e"))
