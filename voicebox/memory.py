"""Process memory policy: cap glibc's malloc arenas.

Every call starts pipeline threads, and glibc gives threads their own malloc arenas (up to 8 per
core) that it rarely returns to the system: RSS then creeps up call after call. The soak
(benchmarks/results/soak.md, 10 min, 150 calls) measured RSS +58 MB with the default and
-6 MB (flat) with two arenas. Must run before the first threads start; a MALLOC_ARENA_MAX in
the environment wins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger("voicebox.memory")
M_ARENA_MAX = -8  # from glibc's malloc.h


def cap_malloc_arenas(arenas: int = 2) -> bool:
    """True if the cap was set here (False: not glibc, or the environment already chose)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
