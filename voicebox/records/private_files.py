"""Files only voicebox's own user can read: the data directory, call records and recordings.

Call records, transcripts and recordings are personal data. Created with the process umask they
would be readable by every local user (0644 under the usual umask 022), so everything here is
created with explicit modes (directories 0700, files 0600) that do not depend on the umask, and
the data directory itself is checked before anything is written into it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("voicebox.records")

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

class DataDirError(Exception):
    """The data directory cannot be kept private; the message says why and what to do."""


def prepare_data_dir(path: Path) -> None:
    """Create ``path`` 0700, or check an existing one: ours, and writable by no one else.

    A directory someone else owns, or one others can write to, may already hold files (or
    symlinks) planted there, so it is refused rather than repaired. One of ours that others can
    only read (made by an older voicebox, or by hand) is tightened to 0700.
    """
    try:
        make_private_dirs(path)
        st = os.stat(path)
    except OSError as e:
        raise DataDirError(f"data_dir {path}: {e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise DataDirError(f"data_dir {path}: not a directory")
    if st.st_uid != os.geteuid():
        raise DataDirError(
            f"data_dir {path} is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()}): "
            "call records must be private; use a directory of your own"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise DataDirError(
            f"data_dir {path} is writable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"check what is in it, then: chmod 700 {path}"
        )
    if stat.S_IMODE(st.st_mode) != PRIVATE_DIR_MODE:
        try:
            os.chmod(path, PRIVATE_DIR_MODE)
        except OSError as e:
            raise DataDirError(f"data_dir {path}: cannot make it private: {e.strerror or e}") from None
        log.warning("data_dir %s was mode %04o; now 0700", path, stat.S_IMODE(st.st_mode))


def make_private_dirs(path: Path) -> None:
    """``mkdir -p`` whose new directories are 0700 whatever the umask; existing ones are left as they are."""
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # made by another thread in the meantime
        os.chmod(d, PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask; chmod's is not


def open_private(path: Path, mode: str, **kwargs: Any) -> IO[Any]:
    """``open(path, mode, **kwargs)``, a file it creates or opens being 0600 whatever the umask.

    A symlink planted where the file goes is refused (O_NOFOLLOW) instead of followed.
    """
    return open(path, mode, opener=_private_opener, **kwargs)


def _private_opener(path: str, flags: int) -> int:
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # a file that already existed would keep its mode otherwise
    except BaseException:
        os.close(fd)
        raise
    return fd
