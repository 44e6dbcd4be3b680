"""CPU time and memory of a process and its live children, from Linux /proc.

The language model runs in a worker process (models.llm_process): a process's own rusage no
longer holds the model's share, and a live child is not in RUSAGE_CHILDREN until it is reaped.
Admission (``telephony/admission.py``) and the benchmarks both measure the whole tree here.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int, proc: Path) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses):
    index 1 is the parent pid, 11-14 utime, stime, cutime, cstime in clock ticks."""
    return (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def _children(pid: int, proc: Path) -> list[int] | None:
    """Live children from each thread's ``children`` file; None where the kernel has none
    (CONFIG_PROC_CHILDREN off) and /proc must be scanned."""
    try:
        tasks = list((proc / str(pid) / "task").iterdir())
    except OSError:
        return []  # no such process: no children either
    found: list[int] = []
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            if not task.exists():
                continue  # the thread ended meanwhile
            return None
        except (OSError, ValueError):
            continue
    return found


def _children_by_scan(pid: int, proc: Path) -> list[int]:
    children = []
    for entry in os.listdir(proc):
        if entry.isdigit():
            try:
                ppid = int(_stat_fields(int(entry), proc)[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                children.append(int(entry))
    return children


def process_tree(pid: int, proc: Path = PROC) -> list[int]:
    """``pid`` and its live descendants, e.g. voicebox serve and its model workers."""
    tree, todo = [pid], [pid]
    while todo:
        parent = todo.pop()
        kids = _children(parent, proc)
        if kids is None:
            kids = _children_by_scan(parent, proc)
        kids = [k for k in kids if k not in tree]  # a recycled pid cannot make a loop
        tree += kids
        todo += kids
    return tree


def tree_cpu_s(pid: int, proc: Path = PROC) -> float:
    """CPU seconds so far of ``pid``, its live descendants and the children they have reaped.

    Each process counts its own time and its reaped children's (cutime, cstime), so a worker
    that exits moves its time from its own line to its parent's instead of losing it: the sum
    only grows, and a load measured as its difference never dips when a worker is restarted."""
    ticks = 0
    for p in process_tree(pid, proc):
        try:
            fields = _stat_fields(p, proc)
            ticks += sum(int(f) for f in fields[11:15])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_usage(pid: int, proc: Path = PROC) -> dict[str, float]:
    """CPU seconds so far, and peak resident memory (the sum of each process's peak: an upper
    bound), of ``pid`` and its live children."""
    cpu, hwm_kb = 0.0, 0
    for p in process_tree(pid, proc):
        try:
            fields = _stat_fields(p, proc)
            status = (proc / str(p) / "status").read_text().splitlines()
            hwm = next(line for line in status if line.startswith("VmHWM"))
        except (OSError, StopIteration, IndexError, ValueError):
            continue  # gone meanwhile (a worker being restarted)
        cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        hwm_kb += int(hwm.split()[1])
    return {"cpu_s": cpu, "peak_rss_mb": hwm_kb / 1024}
