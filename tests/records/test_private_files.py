"""What voicebox stores is readable only by its own user, whatever the umask (issue #17, item 5)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voicebox.records.private_files import DataDirError, make_private_dirs, open_private, prepare_data_dir
from voicebox.records.recording import CallRecording, recording_path
from voicebox.records.store import RecordStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def umask_022():
    """The usual umask, under which plain open() and mkdir() make world-readable files."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_data_dir_is_created_private(tmp_path):
    data = tmp_path / "srv" / "data"
    prepare_data_dir(data)
    assert _mode(data) == 0o700
    assert _mode(data.parent) == 0o700  # a parent it had to make holds nothing but the data dir


def test_an_existing_data_dir_readable_by_others_is_tightened(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    assert _mode(data) == 0o755  # what an older voicebox (or mkdir) left
    prepare_data_dir(data)
    assert _mode(data) == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o720, 0o702])
def test_a_data_dir_others_can_write_to_is_refused(tmp_path, mode):
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, mode)
    with pytest.raises(DataDirError, match="writable by others"):
        prepare_data_dir(data)
    assert _mode(data) == mode  # refused, not silently repaired: someone may have put files there


def test_a_data_dir_owned_by_someone_else_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    owner = os.stat(data).st_uid
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)  # as if another user ran voicebox
    with pytest.raises(DataDirError, match="owned by uid"):
        prepare_data_dir(data)


def test_a_data_dir_that_is_a_file_is_refused(tmp_path):
    data = tmp_path / "data"
    data.write_text("")
    with pytest.raises(DataDirError, match="not a directory"):
        prepare_data_dir(data)


def test_call_records_are_private(tmp_path):
    data = tmp_path / "data"
    store = RecordStore(data)
    path = store.open("abc123def456", 1_700_000_000.0)
    store.emit("abc123def456", "call_start", sip_call_id="x@y")
    store.flush()
    assert path.exists()
    assert _mode(path) == 0o600
    for d in (data, data / "calls", path.parent):
        assert _mode(d) == 0o700, d


def test_recordings_are_private_while_written_and_after(tmp_path):
    data = tmp_path / "data"
    path = recording_path(data, "abc123def456", 1_700_000_000.0)
    rec = CallRecording(path, 8000)
    rec.write(0, 0, np.ones(160, dtype=np.int16))
    rec.write(1, 0, np.ones(160, dtype=np.int16))
    scratch = sorted(path.parent.glob("*.raw"))
    assert len(scratch) == 2
    assert [_mode(p) for p in scratch] == [0o600, 0o600]  # raw caller audio, before it is assembled
    assert rec.close() == path
    assert _mode(path) == 0o600
    for d in (data, data / "recordings", path.parent):
        assert _mode(d) == 0o700, d


def test_open_private_tightens_a_file_that_already_existed(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text("{}\n")
    assert _mode(path) == 0o644
    with open_private(path, "a", encoding="utf-8") as f:
        f.write("{}\n")
    assert _mode(path) == 0o600
    assert path.read_text() == "{}\n{}\n"


def test_open_private_does_not_follow_a_planted_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("")
    link = tmp_path / "abc123def456.jsonl"
    link.symlink_to(target)
    with pytest.raises(OSError):
        open_private(link, "a")
    assert target.read_text() == ""


def test_make_private_dirs_leaves_existing_directories_alone(tmp_path):
    (tmp_path / "models").mkdir()  # assembled models: not personal data, left as they are
    make_private_dirs(tmp_path / "models" / "x" / "y")
    assert _mode(tmp_path / "models") == 0o755
    assert _mode(tmp_path / "models" / "x") == 0o700 and _mode(tmp_path / "models" / "x" / "y") == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_serve_refuses_an_unsafe_data_dir_with_one_line_and_status_2(tmp_path, mode):
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, mode)
    proc = subprocess.run(
        [sys.executable, "-m", "voicebox", "serve", "--data-dir", str(data), "--sip-port", "1",
         "--set", "metrics.enabled=false"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, umask=0o022, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[0].startswith("voicebox: data_dir ") and "writable by others" in lines[0]
    assert not any(data.iterdir())  # nothing was written into it
