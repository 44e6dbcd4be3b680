"""CPU and memory of a process tree: a live child's share is counted (the LLM worker's, in the bench)."""

from __future__ import annotations

import os

from tests.busy_child import busy_child
from voicebox.telemetry.processes import process_tree, tree_cpu_s, tree_usage

def test_a_live_childs_cpu_and_memory_are_counted():
    before = tree_usage(os.getpid())
    with busy_child(1.0) as child:  # a second of CPU spent, still alive
        assert child.pid in process_tree(os.getpid())
        after = tree_usage(os.getpid())
        assert after["cpu_s"] - before["cpu_s"] >= 0.9
        assert after["peak_rss_mb"] > before["peak_rss_mb"]
    assert child.pid not in process_tree(os.getpid())


def test_a_process_without_children_is_its_own_tree():
    assert process_tree(os.getpid())[0] == os.getpid()
    assert process_tree(2**22 + 1) == [2**22 + 1]  # no such pid: no children either
    assert tree_usage(2**22 + 1) == {"cpu_s": 0.0, "peak_rss_mb": 0.0}


TICK = os.sysconf("SC_CLK_TCK")


def _fake_process(proc, pid: int, ppid: int, ticks: tuple[int, int, int, int], children=None) -> None:
    """A /proc/<pid> with a stat line (a name with spaces and a parenthesis, as comm may have)
    and, unless ``children`` is None, a thread whose ``children`` file lists those pids."""
    d = proc / str(pid)
    (d / "task" / str(pid)).mkdir(parents=True)
    after_name = ["S", str(ppid)] + ["0"] * 9 + [str(t) for t in ticks] + ["0"] * 5
    (d / "stat").write_text(f"{pid} (llama worker) x) " + " ".join(after_name) + "\n")
    if children is not None:
        (d / "task" / str(pid) / "children").write_text("".join(f"{c} " for c in children))


def test_tree_cpu_counts_live_descendants_and_reaped_children(tmp_path):
    proc = tmp_path / "proc"
    # serve (own 1+1 s, a reaped worker's 2+0 s) -> worker (3+1 s) -> its helper (1+0 s)
    _fake_process(proc, 100, 1, (TICK, TICK, 2 * TICK, 0), children=[101])
    _fake_process(proc, 101, 100, (3 * TICK, TICK, 0, 0), children=[102])
    _fake_process(proc, 102, 101, (TICK, 0, 0, 0), children=[])
    _fake_process(proc, 200, 1, (50 * TICK, 0, 0, 0), children=[])  # not ours
    assert process_tree(100, proc) == [100, 101, 102]
    assert tree_cpu_s(100, proc) == 9.0
    assert tree_cpu_s(101, proc) == 5.0


def test_tree_without_children_files_is_found_by_scanning(tmp_path):
    proc = tmp_path / "proc"  # a kernel without CONFIG_PROC_CHILDREN
    _fake_process(proc, 100, 1, (TICK, 0, 0, 0))
    _fake_process(proc, 101, 100, (2 * TICK, 0, 0, 0))
    _fake_process(proc, 200, 1, (50 * TICK, 0, 0, 0))
    assert sorted(process_tree(100, proc)) == [100, 101]
    assert tree_cpu_s(100, proc) == 3.0


def test_a_pid_loop_cannot_hang_the_walk(tmp_path):
    proc = tmp_path / "proc"  # pids recycled between two reads: each looks like the other's child
    _fake_process(proc, 100, 101, (TICK, 0, 0, 0), children=[101])
    _fake_process(proc, 101, 100, (TICK, 0, 0, 0), children=[100])
    assert process_tree(100, proc) == [100, 101]
