"""Render a scenario corpus's caller turns to WAV: 16 kHz mono 16-bit, written next to the scenarios.

    python benchmarks/corpora/voice.py benchmarks/corpora/vet/scenarios.json [--force]

Each turn names its voice:
  - ``piper:joe`` (the neural joe voice from models/manifest.toml), ``length_scale`` for its pace
    (above 1 is slower);
  - ``espeak:<voice>+<variant>`` (robotic espeak-ng voices with accents), ``speed`` in words a minute;
  - ``noise``: no speech at all, only line noise (the agent must not invent a reply to it);
  - ``snr_db`` on any turn mixes in that much background noise.
The same file always gives the same audio: Piper's sampling noise is switched off and the
background noise is seeded from the scenario's id, so re-running only rewrites missing WAVs
(``--force`` rewrites all of them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from voicebox.audio.resample import resample  # noqa: E402
from voicebox.model_store import load_manifest, locate  # noqa: E402

RATE = 16000
LEAD_MS = 200  # silence before the words, as a caller draws breath
TAIL_MS = 450  # and after, so the turn's end is in the file
PEAK = 0.7  # speech is levelled to this fraction of full scale
NOISE_ONLY_S = 1.8
NOISE_ONLY_RMS = 450


class Voices:
    """Piper is loaded once, and only if some turn asks for it."""

    def __init__(self) -> None:
        self._piper = None

    def speak(self, turn: dict) -> np.ndarray:
        voice = turn.get("voice", "piper:joe")
        if voice.startswith("piper:"):
            return self._piper_say(turn["text"], float(turn.get("length_scale", 1.0)))
        if voice.startswith("espeak:"):
            return _espeak_say(turn["text"], voice.split(":", 1)[1], int(turn.get("speed", 160)))
        raise ValueError(f"unknown voice {voice!r}")

    def _piper_say(self, text: str, length_scale: float) -> np.ndarray:
        from piper import PiperVoice, SynthesisConfig

        if self._piper is None:
            entry = load_manifest().get("piper-joe-medium")
            root = locate(entry.root)
            self._piper = PiperVoice.load(root / entry.entry, config_path=root / (entry.entry + ".json"))
        # Zero sampling noise: Piper's only source of randomness, so the audio is reproducible.
        cfg = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
        chunks = [c.audio_int16_array for c in self._piper.synthesize(text, syn_config=cfg)]
        return _float(resample(np.concatenate(chunks), self._piper.config.sample_rate, RATE))


def _espeak_say(text: str, voice: str, speed: int) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", tmp.name, text], check=True)
        with wave.open(tmp.name) as w:
            rate = w.getframerate()
            audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return _float(resample(audio, rate, RATE))


def _float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768


def _trim(audio: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio


def _noise(n: int, seed: str) -> np.ndarray:
    """Band-limited hiss, like a line or a street: white noise through a short moving average."""
    rng = np.random.default_rng(int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16))
    white = rng.standard_normal(n + 7).astype(np.float32)
    return np.convolve(white, np.ones(8, dtype=np.float32) / 8, mode="valid")[:n]


def render(turn: dict, seed: str, voices: Voices) -> np.ndarray:
    if turn.get("voice") == "noise":
        hiss = _noise(int(NOISE_ONLY_S * RATE), seed)
        return (hiss / np.sqrt(np.mean(hiss**2)) * NOISE_ONLY_RMS / 32768).astype(np.float32)
    speech = _trim(voices.speak(turn))
    speech = speech / max(1e-6, float(np.max(np.abs(speech)))) * PEAK
    audio = np.concatenate([np.zeros(RATE * LEAD_MS // 1000), speech, np.zeros(RATE * TAIL_MS // 1000)])
    if "snr_db" in turn:
        hiss = _noise(len(audio), seed)
        speech_rms = float(np.sqrt(np.mean(speech**2)))
        hiss *= speech_rms / float(np.sqrt(np.mean(hiss**2))) / 10 ** (float(turn["snr_db"]) / 20)
        audio = audio + hiss
    return np.clip(audio, -1, 1).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((audio * 32767).astype("<i2").tobytes())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenarios", type=Path, nargs="+")
    p.add_argument("--force", action="store_true", help="rewrite WAVs that exist already")
    args = p.parse_args(argv)
    voices = Voices()
    for path in args.scenarios:
        base = path.parent
        for sc in json.loads(path.read_text())["scenarios"]:
            for i, turn in enumerate(sc["turns"]):
                out = base / turn["wav"]
                if out.exists() and not args.force:
                    continue
                write_wav(out, render(turn, f"{sc['id']}/{i}", voices))
                print(out.relative_to(ROOT) if out.is_relative_to(ROOT) else out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
