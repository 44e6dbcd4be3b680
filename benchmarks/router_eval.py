"""Intent-router accuracy on the recorded scenario turns, heard through a telephone line.

For every scenario turn with an ``expect_intent``: its WAV is passed through a G.711 µ-law
channel (16 kHz -> 8 kHz -> µ-law bytes -> linear -> 16 kHz), transcribed by the default whisper
model the way the live pipeline does, and routed. The clean WAV is transcribed and routed too,
so a loss can be blamed on the line or on the router. A held-out study (cross-validation over
the agent's own examples) compares the classifiers' calibration and backs the default
threshold/margin.

Run from the repository root:

    .venv/bin/python benchmarks/router_eval.py

Writes benchmarks/results/router.md and benchmarks/results/router.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
import tomllib
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness.channel import round_trip  # noqa: E402
from benchmarks.harness.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from voicebox.thinking.intent_router import (  # noqa: E402
    DEFAULT_C,
    DEFAULT_MARGIN,
    DEFAULT_PARTIAL_MARGIN,
    DEFAULT_PARTIAL_THRESHOLD,
    DEFAULT_THRESHOLD,
    OUT_OF_SCOPE,
    IntentRouter,
    _char_noise,
    agent_confusions,
    agent_out_of_scope,
    normalize,
    too_early,
    training_set,
)
from voicebox.agent import load_agent  # noqa: E402

CORPUS = Path("/work/shared/corpus")
INTENTS_FILE = ROOT / "voicebox" / "agents" / "riverside_dental.toml"
# The agent file's own out-of-scope examples and ASR confusions, each after the code's neutral base,
# exactly as IntentRouter.for_agent trains the live router.
AGENT = load_agent(str(INTENTS_FILE))
OUT_OF_SCOPE_EXAMPLES = agent_out_of_scope(AGENT)
CONFUSIONS = agent_confusions(AGENT)
RESULTS = ROOT / "benchmarks" / "results"
WHISPER_RATE = 16000
LINE_RATE = 8000
FOLDS = 5

def telephone_channel(samples: np.ndarray) -> np.ndarray:
    """16 kHz int16 -> what a G.711 µ-law phone call delivers, back at 16 kHz int16."""
    return round_trip(samples, "PCMU")


def check_against_audioop() -> str:
    """Our µ-law against the standard library's, where it still exists (removed in 3.13)."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop
    except ImportError:
        return "audioop not available; not cross-checked"
    ramp = np.arange(-32768, 32768, dtype=np.int16)
    ours = ulaw_encode(ramp)
    theirs = np.frombuffer(audioop.lin2ulaw(ramp.tobytes(), 2), dtype=np.uint8)
    codes = np.arange(256, dtype=np.uint8)
    dec_ours = ulaw_decode(codes)
    dec_theirs = np.frombuffer(audioop.ulaw2lin(codes.tobytes(), 2), dtype=np.int16)
    differ = ours != theirs
    # G.711 quantizes 14-bit samples; how the 2 bits below that round for negative 16-bit input
    # is the implementation's choice (audioop shifts arithmetically, i.e. rounds towards -inf).
    exact = (ramp % 4 == 0) & (ramp > -32764)
    dec_diff = int(np.max(np.abs(dec_ours.astype(int) - dec_theirs.astype(int))))
    return (
        f"cross-checked against audioop.lin2ulaw over all 65536 16-bit inputs: {int(differ.sum())} codes "
        f"differ, all negative inputs below G.711's 14-bit resolution; {int(differ[exact].sum())} differ "
        f"on 14-bit-exact inputs; decoding (ulaw2lin) differs by at most {dec_diff} on all 256 codes"
    )


# --- corpus, speech to text -----------------------------------------------------------------


@dataclass
class Turn:
    scenario: str
    index: int
    expected: str
    wav: Path
    reference: str  # what the caller said (never used for routing, only shown)


def load_turns(corpus: Path) -> list[Turn]:
    data = json.loads((corpus / "scenarios.json").read_text(encoding="utf-8"))
    turns = []
    for sc in data["scenarios"]:
        for i, t in enumerate(sc["turns"]):
            if t.get("expect_intent"):
                turns.append(Turn(sc["id"], i, t["expect_intent"], corpus / t["wav"], t.get("text", "")))
    return turns


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != WHISPER_RATE:
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def load_whisper(threads: int):
    from faster_whisper import WhisperModel

    from voicebox.model_store import resolve

    model_dir = resolve("whisper-tiny-en", "stt", Path("data"))
    return WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)


def transcribe(model, samples: np.ndarray) -> str:
    """Decoded as voicebox.listening.transcriber does it: greedy, English, no timestamps."""
    segments, _ = model.transcribe(
        samples.astype(np.float32) / 32768.0,
        language="en",
        beam_size=1,
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,
    )
    return " ".join(s.text.strip() for s in segments if s.text.strip()).strip()


# --- router -------------------------------------------------------------------------------


def load_intents(path: Path = INTENTS_FILE) -> list[tuple[str, list[str]]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [(t["name"], list(t["examples"])) for t in data["intents"]]


@dataclass
class Row:
    scenario: str
    turn: int
    expected: str
    reference: str
    clean_transcript: str
    clean_got: str | None
    clean_confidence: float
    channel_transcript: str
    channel_got: str | None
    channel_confidence: float
    channel_unclear: bool


def evaluate(turns: Sequence[Turn], router: IntentRouter, model) -> list[Row]:
    rows = []
    for t in turns:
        audio = read_wav(t.wav)
        clean = transcribe(model, audio)
        line = transcribe(model, telephone_channel(audio))
        rc, rl = router.route(clean), router.route(line)
        rows.append(
            Row(t.scenario, t.index, t.expected, t.reference, clean, rc.intent, round(rc.confidence, 3),
                line, rl.intent, round(rl.confidence, 3), rl.unclear)
        )
        print(f"{t.scenario:22s} {t.expected:10s} clean={rc.intent!s:10s} line={rl.intent!s:10s} | {line}")
    return rows


def accuracy(rows: Sequence[Row], channel: bool) -> float:
    hits = sum((r.channel_got if channel else r.clean_got) == r.expected for r in rows)
    return hits / len(rows) if rows else 0.0


def latency_ms(router: IntentRouter, texts: Sequence[str], repeats: int = 50) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        for text in texts:
            t0 = time.perf_counter()
            router.route(text)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"mean": statistics.fmean(times), "p50": times[len(times) // 2], "p95": times[int(len(times) * 0.95)]}


def train_seconds(intents, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        IntentRouter(intents, out_of_scope=OUT_OF_SCOPE_EXAMPLES, confusions=CONFUSIONS)
        best = min(best, time.perf_counter() - t0)
    return best


# --- held-out study: calibration and thresholds ------------------------------------------------


def folds(intents, k: int = FOLDS, seed: int = 7):
    """k (train intents, train out-of-scope, held-out [(label, text)]) splits, by original example.

    Splitting original examples (not augmented copies) keeps a sentence's noisy twins out of the
    fold that tests it.
    """
    items = [(name, ex) for name, exs in intents for ex in exs] + [(OUT_OF_SCOPE, ex) for ex in OUT_OF_SCOPE_EXAMPLES]
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    for f in range(k):
        held = {i for n, i in enumerate(order) if n % k == f}
        train = [items[i] for i in range(len(items)) if i not in held]
        train_intents = [(name, [ex for n, ex in train if n == name]) for name, _ in intents]
        train_oos = [ex for n, ex in train if n == OUT_OF_SCOPE]
        yield train_intents, train_oos, [items[i] for i in sorted(held)]


def held_out_probabilities(intents, classifier: str = "logreg", C: float | None = None,
                           augmented: bool = True, noisy: bool = False):
    """(labels, probability matrix, true labels, held-out texts) over all folds.

    ``noisy``: each held-out sentence gets one dropped and one swapped character (seeded) first.
    """
    probs, truth, texts, labels = [], [], [], []
    rng = random.Random(11)
    for train_intents, train_oos, held in folds(intents):
        router = IntentRouter(train_intents, classifier=classifier, C=C, out_of_scope=train_oos, augmented=augmented,
                              confusions=CONFUSIONS)
        labels = router.labels
        for label, text in held:
            if noisy:
                text = _char_noise(_char_noise(normalize(text), rng, swap=False) or text, rng, swap=True) or text
            probs.append(router.predict(text))
            truth.append(label)
            texts.append(text)
    return labels, np.array(probs), truth, texts


def calibration(labels, probs, truth, bins: int = 10) -> dict[str, float]:
    """Top-1 accuracy, expected calibration error of the top probability, log loss, Brier."""
    top = probs.max(axis=1)
    pred = [labels[i] for i in probs.argmax(axis=1)]
    correct = np.array([p == t for p, t in zip(pred, truth, strict=True)], dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (top > lo) & (top <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - top[sel].mean())
    idx = np.array([labels.index(t) for t in truth])
    onehot = np.eye(len(labels))[idx]
    p_true = np.clip(probs[np.arange(len(idx)), idx], 1e-12, 1)
    return {
        "accuracy": float(correct.mean()),
        "ece": float(ece),
        "log_loss": float(-np.log(p_true).mean()),
        "brier": float(((probs - onehot) ** 2).sum(axis=1).mean()),
        "mean_top_prob": float(top.mean()),
    }


def decide(labels, p: np.ndarray, threshold: float, margin: float) -> tuple[str | None, bool]:
    """The router's decision rule on one probability row: (label or None, unclear)."""
    order = np.argsort(-p, kind="stable")
    unclear = p[order[0]] < threshold or p[order[0]] - p[order[1]] < margin
    return (None if unclear else labels[order[0]]), unclear


def sweep(labels, probs, truth, thresholds, margins) -> list[dict]:
    """For each (threshold, margin): right, wrong (acted on the wrong label), unclear rates.

    Cost = 2 x wrong + 1 x unclear. An unclear turn costs the caller one turn (a re-prompt and
    saying it again); a wrong one costs that turn plus correcting the agent, and now and then a
    wrongful transfer or hang-up. ``cost3`` (3 x wrong) is kept to show how the choice moves.
    """
    out = []
    for t in thresholds:
        for m in margins:
            right = wrong = unclear = 0
            for p, truth_label in zip(probs, truth, strict=True):
                got, unsure = decide(labels, p, t, m)
                if unsure:
                    unclear += 1
                elif got == truth_label:
                    right += 1
                else:
                    wrong += 1
            n = len(truth)
            out.append({"threshold": t, "margin": m, "right": right / n, "wrong": wrong / n,
                        "unclear": unclear / n, "cost": (2 * wrong + unclear) / n,
                        "cost3": (3 * wrong + unclear) / n})
    return out


def partial_sweep(intents, thresholds, margins) -> list[dict]:
    """Word prefixes (shorter than the sentence) of held-out sentences, as route_partial sees them.

    ``acted``: prefixes routed to an intent (how often a partial could save time);
    ``early_wrong``: prefixes routed to an intent other than the sentence's true label;
    ``changed``: prefixes routed to an intent other than what ``route`` gives the whole sentence
    (acting early on them would have to be undone).
    """
    rows = []
    for train_intents, train_oos, held in folds(intents):
        router = IntentRouter(train_intents, out_of_scope=train_oos, confusions=CONFUSIONS)
        for label, text in held:
            final = router.route(text).intent
            words = normalize(text).split()
            for n in range(1, len(words)):
                prefix = " ".join(words[:n])
                probs = None if too_early(prefix) else router.predict(prefix)
                rows.append((probs, label, final))
    labels = router.labels
    out = []
    for t in thresholds:
        for m in margins:
            acted = wrong = changed = 0
            for p, label, final in rows:
                got = None if p is None else decide(labels, p, t, m)[0]
                if got is not None and got != OUT_OF_SCOPE:
                    acted += 1
                    wrong += got != label
                    changed += got != final
            n = len(rows)
            out.append({"threshold": t, "margin": m, "acted": acted / n, "early_wrong": wrong / n,
                        "changed": changed / n})
    return out


SKIPPED_STUDY: dict = {"classifiers": {}, "sweep": [], "partial_sweep": [], "held_out_examples": 0, "augmentation": {}}


def held_out_study(intents) -> dict:
    study: dict = {"classifiers": {}}
    for name, kind, C in [("logreg C=1", "logreg", 1.0), ("logreg C=5", "logreg", 5.0),
                          (f"logreg C={DEFAULT_C:g} (default)", "logreg", None), ("LinearSVC + sigmoid", "svc", None)]:
        labels, probs, truth, _ = held_out_probabilities(intents, kind, C)
        study["classifiers"][name] = calibration(labels, probs, truth)
        if name.endswith("(default)"):
            chosen = (labels, probs, truth)
    thresholds = [0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9]
    margins = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]
    study["sweep"] = sweep(*chosen, thresholds, margins)
    study["partial_sweep"] = partial_sweep(intents, [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95], [0.1, 0.3, 0.5])
    study["held_out_examples"] = len(chosen[2])
    study["augmentation"] = {}
    for augmented in (True, False):
        for noisy in (False, True):
            labels, probs, truth, _ = held_out_probabilities(intents, augmented=augmented, noisy=noisy)
            key = f"{'augmented' if augmented else 'plain'} training, {'noisy' if noisy else 'clean'} held-out"
            study["augmentation"][key] = calibration(labels, probs, truth)["accuracy"]
    return study


# --- report -------------------------------------------------------------------------------


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def write_report(result: dict, path_md: Path, path_json: Path) -> None:
    rows = result["turns"]
    lines = [
        "# Intent router on the scenario recordings",
        "",
        f"- Date: {result['date']}",
        f"- Command: `{result['command']}`",
        f"- Machine: `nproc` = {result['nproc']}, {result['platform']}",
        f"- Speech to text: {result['stt']}",
        f"- Channel: {result['channel']}",
        f"- Router: thresholds final {result['router']['threshold']}/{result['router']['margin']}, "
        f"partial {result['router']['partial_threshold']}/{result['router']['partial_margin']} (probability/margin)",
        "",
        "## Overall",
        "",
        f"- **Telephone channel (G.711 µ-law): {result['channel_accuracy']:.1%}** "
        f"({sum(r['channel_got'] == r['expected'] for r in rows)}/{len(rows)} turns)",
        f"- Clean recordings: {result['clean_accuracy']:.1%} "
        f"({sum(r['clean_got'] == r['expected'] for r in rows)}/{len(rows)} turns)",
        f"- The same router trained without ASR-noise augmentation: channel "
        f"{result['without_augmentation']['channel']:.1%}, clean {result['without_augmentation']['clean']:.1%}",
        f"- Training time (best of 3, {result['train']['examples']} examples incl. augmentation): "
        f"{result['train']['seconds']:.2f} s",
        f"- Route latency over the transcripts: mean {result['latency_ms']['mean']:.2f} ms, "
        f"p50 {result['latency_ms']['p50']:.2f} ms, p95 {result['latency_ms']['p95']:.2f} ms",
        "",
        "## Per turn",
        "",
    ]
    lines += md_table(
        ["scenario", "expected", "channel: got", "conf", "channel transcript",
         "clean: got", "conf", "clean transcript"],
        [[f"{r['scenario']}#{r['turn']}", r["expected"], _mark(r["channel_got"], r["expected"]),
          f"{r['channel_confidence']:.2f}", r["channel_transcript"], _mark(r["clean_got"], r["expected"]),
          f"{r['clean_confidence']:.2f}", r["clean_transcript"]] for r in rows],
    )
    study = result["held_out"]
    lines += ["", "## Held-out calibration",
              "",
              f"{FOLDS}-fold cross-validation over the agent's examples and the built-in out-of-scope list "
              f"({study['held_out_examples']} sentences, split by original sentence so no noisy twin leaks).",
              ""]
    lines += md_table(["classifier", "accuracy", "ECE", "log loss", "Brier", "mean top p"],
                      [[k, f"{v['accuracy']:.3f}", f"{v['ece']:.3f}", f"{v['log_loss']:.3f}", f"{v['brier']:.3f}",
                        f"{v['mean_top_prob']:.3f}"] for k, v in study["classifiers"].items()])
    lines += ["", "Threshold/margin sweep (default classifier; cost = 2 x wrong + unclear, lowest first; "
              "wrong includes acting on an intent for an out-of-scope sentence and vice versa):", ""]
    best = sorted(study["sweep"], key=lambda r: (round(r["cost"], 6), -r["threshold"], -r["margin"]))[:15]
    lines += md_table(["threshold", "margin", "right", "wrong", "unclear", "cost", "cost (3 x wrong)"],
                      [[r["threshold"], r["margin"], f"{r['right']:.3f}", f"{r['wrong']:.3f}", f"{r['unclear']:.3f}",
                        f"{r['cost']:.3f}", f"{r['cost3']:.3f}"] for r in best])
    lines += ["", "Partial transcripts (word prefixes of held-out sentences): how often the router acts early, "
              "and how often on the wrong intent:", ""]
    lines += md_table(["threshold", "margin", "acted", "early wrong", "changed by the final"],
                      [[r["threshold"], r["margin"], f"{r['acted']:.3f}", f"{r['early_wrong']:.3f}",
                        f"{r['changed']:.3f}"] for r in study["partial_sweep"]])
    lines += ["", "Augmentation, held out (top-1 accuracy; noisy = one dropped and one swapped character "
              "per held-out sentence):", ""]
    lines += md_table(["training / held-out", "accuracy"],
                      [[k, f"{v:.3f}"] for k, v in study.get("augmentation", {}).items()])
    lines += ["", f"µ-law: {result['ulaw_check']}", ""]
    path_md.write_text("\n".join(lines), encoding="utf-8")
    path_json.write_text(json.dumps(result, indent=2), encoding="utf-8")


def _mark(got: str | None, expected: str) -> str:
    return f"{got}" if got == expected else f"**{got}** ✗"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="whisper CPU threads")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--skip-study", action="store_true", help="skip the (slower) held-out study")
    args = ap.parse_args(argv)

    intents = load_intents()
    seconds = train_seconds(intents)
    router = IntentRouter(intents, out_of_scope=OUT_OF_SCOPE_EXAMPLES, confusions=CONFUSIONS)
    model = load_whisper(args.threads)
    rows = evaluate(load_turns(args.corpus), router, model)
    texts = [r.channel_transcript for r in rows] + [r.clean_transcript for r in rows]
    plain = IntentRouter(intents, out_of_scope=OUT_OF_SCOPE_EXAMPLES, augmented=False)  # ablation: the same router without ASR noise
    plain_hits = {
        "channel": sum(plain.route(r.channel_transcript).intent == r.expected for r in rows) / len(rows),
        "clean": sum(plain.route(r.clean_transcript).intent == r.expected for r in rows) / len(rows),
    }
    result = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "benchmarks/router_eval.py", *(argv or sys.argv[1:])]),
        "nproc": os.cpu_count(),
        "platform": f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
        "stt": "faster-whisper whisper-tiny-en, cpu int8, beam_size=1, language=en",
        "channel": "soxr HQ 16k->8k, G.711 µ-law encode/decode (numpy, ITU-T G.711), soxr HQ 8k->16k",
        "router": {"threshold": DEFAULT_THRESHOLD, "margin": DEFAULT_MARGIN,
                   "partial_threshold": DEFAULT_PARTIAL_THRESHOLD, "partial_margin": DEFAULT_PARTIAL_MARGIN},
        "channel_accuracy": accuracy(rows, channel=True),
        "clean_accuracy": accuracy(rows, channel=False),
        "without_augmentation": plain_hits,
        "train": {"seconds": seconds, "examples": len(training_set(intents, OUT_OF_SCOPE_EXAMPLES, confusions=CONFUSIONS)[0])},
        "latency_ms": latency_ms(router, texts),
        "turns": [asdict(r) for r in rows],
        "ulaw_check": check_against_audioop(),
        "held_out": SKIPPED_STUDY if args.skip_study else held_out_study(intents),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(result, args.out / "router.md", args.out / "router.json")
    print(f"channel {result['channel_accuracy']:.1%}  clean {result['clean_accuracy']:.1%}  "
          f"train {seconds:.2f}s  route p50 {result['latency_ms']['p50']:.2f}ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
