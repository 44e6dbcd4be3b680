"""A real child process that spends a given amount of CPU, then idles until it is killed: what a
busy model worker looks like to anything that measures a process tree."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

_SPIN = """
import sys, time
t = time.process_time()
while time.process_time() - t < float(sys.argv[1]):
    pass
print("done", flush=True)
time.sleep(60)
"""


@contextmanager
def busy_child(cpu_s: float) -> Iterator[subprocess.Popen]:
    """Yields once the child has spent ``cpu_s`` of CPU and is still alive; kills it after."""
    child = subprocess.Popen([sys.executable, "-c", _SPIN, str(cpu_s)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "done"  # blocks meanwhile
        yield child
    finally:
        child.kill()
        child.wait()
