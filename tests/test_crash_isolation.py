"""A native crash in one test (a segfault in a model's kernel, or in pjsua2) fails that test,
and the run goes on and reports: the project's pytest settings run tests in a worker process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = '''
import os, signal

def test_before():
    assert True

def test_dies_in_native_code():
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGSEGV)

def test_after():
    assert True
'''


def test_a_segfault_fails_one_test_and_the_run_goes_on(tmp_path: Path):
    (tmp_path / "test_native.py").write_text(TESTS)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
         "-p", "no:cacheprovider", str(tmp_path / "test_native.py")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 1, text[-3000:]
    assert "crashed while running 'test_native.py::test_dies_in_native_code'" in text, text[-3000:]
    assert "1 failed, 2 passed" in text, text[-3000:]
