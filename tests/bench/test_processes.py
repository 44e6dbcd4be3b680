"""CPU and memory of a process tree: a live child's share is counted (the LLM worker's, in the bench)."""

from __future__ import annotations

import os
import subprocess
import sys

from voicebox.bench.processes import process_tree, tree_usage

BUSY_CHILD = """
import time
t = time.process_time()
while time.process_time() - t < 1.0:
    pass
print("done", flush=True)
time.sleep(60)
"""


def test_a_live_childs_cpu_and_memory_are_counted():
    before = tree_usage(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"  # a second of CPU spent, still alive
        assert child.pid in process_tree(os.getpid())
        after = tree_usage(os.getpid())
        assert after["cpu_s"] - before["cpu_s"] >= 0.9
        assert after["peak_rss_mb"] > before["peak_rss_mb"]
    finally:
        child.kill()
        child.wait()
    assert child.pid not in process_tree(os.getpid())


def test_a_process_without_children_is_its_own_tree():
    assert process_tree(os.getpid())[0] == os.getpid()
    assert process_tree(2**22 + 1) == [2**22 + 1]  # no such pid: no children either
    assert tree_usage(2**22 + 1) == {"cpu_s": 0.0, "peak_rss_mb": 0.0}
