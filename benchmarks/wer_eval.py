"""Word error rate of the caller's turns through a telephone line, streaming vs offline.

For every corpus turn with words, its WAV goes through a simulated line (G.711 µ-law by default,
G.722 as well) and is recognized two ways by each whisper model:

- **streaming**: the way a call hears it. The turn detector (webrtcvad) runs over the line audio
  frame by frame; partial decodes (fitted window) run at the configured cadence and their words
  are committed by LocalAgreement; each pause gets a speculative decode whose verdict sets the
  hangover, and the turn's final transcript is the configured final decode (``auto``: fitted
  window, full window when the fitted one is unsure). Decodes are instantaneous in media time
  here: the live latency is measured over SIP by ``voicebox bench``.
- **offline**: faster-whisper's own ``transcribe`` of the whole line audio with its defaults
  (beam 5, 30 s window, no temperature fallback): what a batch job would get.

Run from the repository root (about 5 minutes on 2 cores):

    .venv/bin/python benchmarks/wer_eval.py

Writes benchmarks/results/wer.md and benchmarks/results/wer.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicebox.audio.channel import round_trip  # noqa: E402
from voicebox.config import load_config  # noqa: E402
from voicebox.listening.endpointing import hangover_ms  # noqa: E402
from voicebox.listening.local_agreement import LocalAgreement  # noqa: E402
from voicebox.listening.transcriber import Transcriber, usable_partial  # noqa: E402
from voicebox.listening.turns import Growing, Paused, TurnDetector, TurnEnded, webrtc_classifier  # noqa: E402
from voicebox.model_store import resolve  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
RESULTS = ROOT / "benchmarks" / "results"
RATE = 16000
FRAME_MS = 20

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9",
}


def normalize(text: str) -> str:
    """Case, punctuation and digit grouping out: "4,111" and "4111" and "four one one one" agree.

    Numbers are compared digit by digit (a card number read in groups or run together is the
    same number); spelled single digits become digits. Tens words ("twenty") stay words.
    """
    text = text.lower().replace("’", "'")
    text = re.sub(r"(?<=\d)[,.](?=\d)", "", text)  # 4,111 -> 4111
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    words = []
    for w in text.split():
        w = _DIGIT_WORDS.get(w, w)
        words.extend(list(w) if w.isdigit() else [w])
    return " ".join(words)


def wer(refs: list[str], hyps: list[str]) -> float:
    import jiwer

    pairs = [(r, h) for r, h in zip(refs, hyps) if r]
    if not pairs:
        return float("nan")
    return jiwer.wer([r for r, _ in pairs], [h if h else "<empty>" for _, h in pairs])


def word_errors(ref: str, hyp: str) -> int:
    """Substitutions + deletions + insertions of one normalized turn."""
    import jiwer

    if not ref:
        return len(hyp.split())
    o = jiwer.process_words(ref, hyp if hyp else "<empty>")
    return o.substitutions + o.deletions + o.insertions


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if w.getframerate() != RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def stream(stt: Transcriber, audio: np.ndarray, cfg, context: str) -> dict:
    """The turn(s) a call would hear in ``audio``, and their transcripts."""
    vad = cfg.vad
    detector = TurnDetector(vad, FRAME_MS, webrtc_classifier(RATE, vad.aggressiveness))
    agreement = LocalAgreement()
    hint: tuple[int, int] | None = None
    finals, partial_ms, final_ms, partials, committed_kept = [], [], [], 0, []
    n = RATE * FRAME_MS // 1000
    padded = np.concatenate([np.zeros(RATE // 2, np.int16), audio, np.zeros(RATE * 3, np.int16)])
    last_partial = None
    for i in range(0, len(padded) - n + 1, n):
        if hint is not None and detector.in_turn and hint[0] == detector.last_voiced_ms:
            detector.hangover_override_ms = hint[1]
        for ev in detector.process(padded[i : i + n]):
            if isinstance(ev, Growing):
                t = stt._decode(ev.audio, RATE, "fit")
                partial_ms.append(t.decode_ms)
                partials += 1
                if usable_partial(t):
                    last_partial = agreement.update(t.text)
            elif isinstance(ev, Paused):
                t = stt.transcribe(ev.audio, RATE, context)
                hint = (ev.last_voiced_ms, hangover_ms(t.text if t.reliable else None, vad)[0])
            elif isinstance(ev, TurnEnded):
                share = ev.voiced_ms / max(1.0, len(ev.audio) * 1000 / RATE)
                t = stt.transcribe(ev.audio, RATE, context, speech_share=share)
                final_ms.append(t.decode_ms)
                finals.append({"text": t.text, "reliable": t.reliable, "context": t.context,
                               "avg_logprob": round(t.avg_logprob, 3)})
                if last_partial is not None and last_partial.committed:
                    # Did the words LocalAgreement committed survive into the final transcript?
                    fin = normalize(t.text).split()
                    com = normalize(last_partial.committed_text).split()
                    committed_kept.append(fin[: len(com)] == com)
                agreement.reset()
                last_partial = None
    return {
        "turns": finals, "partials": partials, "partial_ms": partial_ms, "final_ms": final_ms,
        "committed_kept": committed_kept,
    }


def offline(stt: Transcriber, audio: np.ndarray) -> tuple[str, float]:
    t0 = time.perf_counter()
    # Beam 5 and the full window, as faster-whisper does by default; no temperature fallback,
    # whose sampling would make the figure change from run to run.
    segments, _ = stt.model.transcribe(
        audio.astype(np.float32) / 32768.0, language="en", vad_filter=False, beam_size=5, temperature=0.0
    )
    text = " ".join(s.text.strip() for s in segments).strip()
    return text, (time.perf_counter() - t0) * 1000


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(values, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--models", nargs="+", default=["whisper-tiny-en", "whisper-base", "whisper-base:full"],
        help="model[:final context[:final beam]]; they default to models.stt_final_context and stt_final_beam",
    )
    ap.add_argument("--codecs", nargs="+", default=["PCMU", "G722"])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--render", action="store_true", help="only rewrite wer.md from the wer.json in --out")
    args = ap.parse_args()
    cfg = load_config(None, {})
    if args.render:
        saved = json.loads((args.out / "wer.json").read_text())
        write(args.out, saved["runs"], cfg, saved["meta"])
        return
    scenarios = json.loads((CORPUS / "scenarios.json").read_text())["scenarios"]
    turns = [(s["id"], i, t) for s in scenarios for i, t in enumerate(s["turns"])]
    runs = []
    for spec in args.models:
        model, _, rest = spec.partition(":")
        context, _, beam_text = rest.partition(":")
        context = context or cfg.models.stt_final_context
        beam = int(beam_text) if beam_text else cfg.models.stt_final_beam
        stt = Transcriber(resolve(model, "stt", cfg.data_dir), threads=cfg.models.stt_threads, final_beam=beam)
        for codec in args.codecs:
            rows = []
            for sid, idx, turn in turns:
                line = round_trip(read_wav(CORPUS / turn["wav"]), codec)
                s = stream(stt, line, cfg, context)
                off_text, off_ms = offline(stt, line)
                heard = " ".join(t["text"] for t in s["turns"] if t["reliable"])
                rows.append({
                    "scenario": sid, "turn": idx, "ref": turn["text"], "expect": turn.get("expect"),
                    "streaming": " ".join(t["text"] for t in s["turns"]), "streaming_reliable": heard,
                    "offline": off_text, "turns_heard": len(s["turns"]),
                    "finals": s["turns"], "partials": s["partials"], "partial_ms": s["partial_ms"],
                    "final_ms": s["final_ms"], "offline_ms": off_ms, "committed_kept": s["committed_kept"],
                })
                print(f"{model} {codec} {sid}/{idx}: {rows[-1]['streaming']!r} | {off_text!r}", flush=True)
            # The corpus garbage turns are meant to be unintelligible; their "words" are not a
            # transcript to match, so they are scored apart (all turns) and by whether they were
            # acted on.
            spoken = [r for r in rows if r["ref"] and r["expect"] not in ("reprompt", "reprompt_or_silence")]
            refs = [normalize(r["ref"]) for r in spoken]
            every = [r for r in rows if r["ref"]]
            kept = [k for r in rows for k in r["committed_kept"]]
            runs.append({
                "model": model, "context": context, "final_beam": beam, "codec": codec, "turns": len(spoken),
                "wer_streaming": wer(refs, [normalize(r["streaming"]) for r in spoken]),
                "wer_offline": wer(refs, [normalize(r["offline"]) for r in spoken]),
                "wer_streaming_all": wer([normalize(r["ref"]) for r in every], [normalize(r["streaming"]) for r in every]),
                "wer_offline_all": wer([normalize(r["ref"]) for r in every], [normalize(r["offline"]) for r in every]),
                "split_turns": sum(1 for r in spoken if r["turns_heard"] != 1),
                "garbage_acted_on": [
                    r["scenario"] for r in rows if not r["ref"] or r["expect"] in ("reprompt", "reprompt_or_silence")
                    if r["streaming_reliable"]
                ],
                "partials_per_turn": statistics.mean(r["partials"] for r in rows),
                "partial_ms_p50": pct([m for r in rows for m in r["partial_ms"]], 50),
                "partial_ms_p95": pct([m for r in rows for m in r["partial_ms"]], 95),
                "final_ms_p50": pct([m for r in rows for m in r["final_ms"]], 50),
                "final_ms_p95": pct([m for r in rows for m in r["final_ms"]], 95),
                "offline_ms_p50": pct([r["offline_ms"] for r in rows], 50),
                "committed_kept": (sum(kept) / len(kept)) if kept else None,
                "rows": rows,
            })
        del stt
    write(args.out, runs, cfg)


def _final(run: dict) -> str:
    """How the run's final decodes were made: encoder window, and beam width when not greedy."""
    beam = run.get("final_beam", 1)
    return run["context"] if beam == 1 else f"{run['context']}, beam {beam}"


def write(out: Path, runs: list[dict], cfg, meta: dict | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if meta is None:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        meta = {
            "command": "python benchmarks/wer_eval.py " + " ".join(sys.argv[1:]), "git_rev": rev,
            "cores": os.cpu_count(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "final_context": cfg.models.stt_final_context, "partial_every_ms": cfg.vad.partial_every_ms,
        }
    rev = meta["git_rev"]
    (out / "wer.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")
    f = lambda v, d=0: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    lines = [
        "# Word error rate through a telephone line: streaming vs offline", "",
        f"`{meta['command']}` at `{rev}`, {meta['cores']} cores, {meta['date']}. Partials every "
        f"{meta['partial_every_ms']} ms. Final window: `auto` = fitted to the turn, re-decoded with "
        "whisper's full 30 s window when the fitted result fails the confidence gate or loops on a short "
        "digit group (`11 11 11 11 11`); `full` = always 30 s. `beam N`: final decodes with beam N "
        "(`models.stt_final_beam`; greedy otherwise).", "",
        "Normalized WER (case, punctuation and digit grouping removed) over the corpus turns that are speech; "
        "the garbage turns (mumble) count only in *all turns*, and *garbage acted on* counts those whose "
        "transcript passed the confidence gate (must be 0). "
        "*Streaming* is what a call acts on (turn detection, partials, speculative and final decodes); "
        "*offline* is a batch decode of the same line audio (faster-whisper, beam 5, 30 s window, temperature 0).", "",
        "| model | final decode | line | speech turns | WER streaming | WER offline | WER all turns (streaming / offline) | split turns | garbage acted on | partials/turn | "
        "partial decode p50/p95 ms | final decode p50/p95 ms | offline decode p50 ms | committed words kept |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['model']} | {_final(r)} | {r['codec']} | {r['turns']} | {100 * r['wer_streaming']:.1f}% | "
            f"{100 * r['wer_offline']:.1f}% | {100 * r['wer_streaming_all']:.0f}% / {100 * r['wer_offline_all']:.0f}% | {r['split_turns']} | {len(r['garbage_acted_on'])} | "
            f"{r['partials_per_turn']:.1f} | {f(r['partial_ms_p50'])}/{f(r['partial_ms_p95'])} | "
            f"{f(r['final_ms_p50'])}/{f(r['final_ms_p95'])} | {f(r['offline_ms_p50'])} | "
            f"{'-' if r['committed_kept'] is None else format(100 * r['committed_kept'], '.0f') + '%'} |"
        )
    lines += ["", "Without the turns that read out a long digit string (8 or more digits: a card number), where "
              "whisper loops on repeated digits and how far it loops decides the figure:", ""]
    for r in runs:
        plain = [row for row in r["rows"] if row["ref"] and row["expect"] not in ("reprompt", "reprompt_or_silence")
                 and sum(w.isdigit() for w in normalize(row["ref"]).split()) < 8]
        refs = [normalize(row["ref"]) for row in plain]
        lines.append(
            f"- {r['model']} ({_final(r)}, {r['codec']}, {len(plain)} turns): streaming "
            f"{100 * wer(refs, [normalize(row['streaming']) for row in plain]):.1f}%, offline "
            f"{100 * wer(refs, [normalize(row['offline']) for row in plain]):.1f}%"
        )
    lines += [
        "", "## Where streaming and offline differ", "",
        "Word errors per turn (normalized), for every turn whose two transcripts differ. A corpus of 15 "
        "turns is small: one turn's errors move the WER by several points.", "",
        "| model | final decode | line | turn | errors streaming / offline | streaming final | offline |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for row in r["rows"]:
            if not row["ref"] or row["expect"] in ("reprompt", "reprompt_or_silence"):
                continue
            ref, st, off = normalize(row["ref"]), normalize(row["streaming"]), normalize(row["offline"])
            if st != off:
                lines.append(
                    f"| {r['model']} | {_final(r)} | {r['codec']} | {row['scenario']}/{row['turn']} | "
                    f"{word_errors(ref, st)} / {word_errors(ref, off)} | {row['streaming']} | {row['offline']} |"
                )
    lines += ["", "## Turns (first model, first line)", "", "| scenario | said | streaming final | offline |", "|---|---|---|---|"]
    for row in runs[0]["rows"]:
        lines.append(f"| {row['scenario']}/{row['turn']} | {row['ref']} | {row['streaming']} | {row['offline']} |")
    (out / "wer.md").write_text("\n".join(lines) + "\n")
    print((out / "wer.md").read_text())


if __name__ == "__main__":
    main()
