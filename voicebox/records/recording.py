"""Optional call recording: a stereo WAV per call (left: caller, right: agent).

Off by default. Caller audio reaches the file only after its turn has been classified, so a
turn about payment (a card number read out) is written as silence and never touches the disk.
Each channel is written at its media-time offset, in any order, into a raw scratch file; the
WAV is assembled when the call ends.
"""

from __future__ import annotations

import os
import threading
import wave
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from voicebox.records.private_files import make_private_dirs, open_private

RECORDINGS_DIR = "recordings"


def recording_path(data_dir: Path, session: str, started: float) -> Path:
    day = datetime.fromtimestamp(started, tz=timezone.utc).strftime("%Y-%m-%d")
    return data_dir / RECORDINGS_DIR / day / f"{session}.wav"


class CallRecording:
    def __init__(self, path: Path, rate_hz: int) -> None:
        self.path = path
        self.rate_hz = rate_hz
        make_private_dirs(path.parent)
        self._raw = [open_private(path.with_suffix(f".{ch}.raw"), "w+b") for ch in ("caller", "agent")]
        self._lock = threading.Lock()
        self.closed = False

    def write(self, channel: int, offset_samples: int, samples: np.ndarray) -> None:
        """Put ``samples`` on ``channel`` (0 caller, 1 agent) at ``offset_samples`` from call start."""
        data = np.asarray(samples, dtype=np.int16).tobytes()
        with self._lock:
            if self.closed or offset_samples < 0:
                return
            f = self._raw[channel]
            f.seek(offset_samples * 2)
            f.write(data)

    def close(self) -> Path:
        with self._lock:
            if self.closed:
                return self.path
            self.closed = True
            chans = []
            for f in self._raw:
                f.seek(0)
                chans.append(np.frombuffer(f.read(), dtype=np.int16))
                f.close()
                os.unlink(f.name)
        n = max(len(c) for c in chans)
        stereo = np.zeros((n, 2), dtype=np.int16)
        for i, c in enumerate(chans):
            stereo[: len(c), i] = c
        with open_private(self.path, "wb") as f, wave.open(f, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(self.rate_hz)
            w.writeframes(stereo.tobytes())
        return self.path


class CallerTrack:
    """Holds the caller's frames back until it is known whether a turn may be kept.

    A frame older than ``hold_frames`` (pre-roll plus onset window) can no longer become part
    of a turn, so it is written at once; frames of a turn are written (or blanked) by the brain.
    """

    def __init__(self, recording: CallRecording, frame_samples: int, hold_frames: int) -> None:
        self.recording = recording
        self.frame_samples = frame_samples
        self.hold_frames = hold_frames
        self._pending: list[tuple[int, np.ndarray]] = []  # (frame index, samples)

    def add(self, index: int, frame: np.ndarray, in_turn: bool) -> None:
        self._pending.append((index, frame))
        if not in_turn:
            keep_from = index - self.hold_frames
            while self._pending and self._pending[0][0] < keep_from:
                i, f = self._pending.pop(0)
                self.recording.write(0, i * self.frame_samples, f)

    def turn_ended(self, first_index: int) -> None:
        """Frames from ``first_index`` on belong to the turn: its owner decides what is kept."""
        while self._pending and self._pending[0][0] < first_index:
            i, f = self._pending.pop(0)
            self.recording.write(0, i * self.frame_samples, f)
        self._pending = []  # the rest is the turn itself, which ends with the current frame

    def write_turn(self, first_index: int, audio: np.ndarray, keep: bool) -> None:
        self.recording.write(0, first_index * self.frame_samples, audio if keep else np.zeros_like(audio))
