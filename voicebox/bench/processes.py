"""CPU time and memory of a process and its live children, from Linux /proc.

The language model runs in a worker process (models.llm_process): a process's own rusage no
longer holds the model's share, and a live child is not in RUSAGE_CHILDREN until it is reaped.
"""

from __future__ import annotations

import os
from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live child processes, e.g. voicebox serve and its model workers."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                children.append(int(entry))
    return [pid, *children]


def tree_usage(pid: int) -> dict[str, float]:
    """CPU seconds so far, and peak resident memory (the sum of each process's peak: an upper
    bound), of ``pid`` and its live children."""
    cpu, hwm_kb = 0.0, 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{p}/status").read_text().splitlines()
            hwm = next(line for line in status if line.startswith("VmHWM"))
        except (OSError, StopIteration, IndexError, ValueError):
            continue  # gone meanwhile (a worker being restarted)
        cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        hwm_kb += int(hwm.split()[1])
    return {"cpu_s": cpu, "peak_rss_mb": hwm_kb / 1024}
