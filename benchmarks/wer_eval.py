"""Word error rate of the caller's turns through a telephone line, streaming vs offline.

For every corpus turn with words, its WAV goes through a simulated line (G.711 µ-law by default,
G.722 as well) and is recognized two ways by each whisper model:

- **streaming**: the way a call hears it. The turn detector (webrtcvad) runs over the line audio
  frame by frame; partial decodes (fitted window) run at the configured cadence and their words
  are committed by LocalAgreement; each pause gets a speculative decode whose verdict sets the
  hangover, and the turn's final transcript is the configured final decode (``auto``: fitted
  window, full window when the fitted one is unsure). Decodes are instantaneous in media time
  here: the live latency is measured over SIP by ``python -m benchmarks.harness``.
- **offline**: faster-whisper's own ``transcribe`` of the whole line audio with its defaults
  (beam 5, 30 s window, no temperature fallback): what a batch job would get.

Each model runs with each recognizer prompt of ``--prompts``: ``off`` (none) and ``vocabulary``
(the agent file's words, as a call to that agent gets them). Besides WER, it scores the agent's
own words: of the vocabulary terms said in the corpus turns, how many the transcript has. The
corpus never says a business name, so every shipped agent also gets sentences of its own,
written from its file ("Hi, is this <name>?", "I'd like to book a <choice>, please.", "Can you
tell me about <proper noun of its facts>?"), synthesized with the configured Piper voice and
heard through the same line, with and without its prompt. The prompt's decode cost is timed
apart, each turn's partial decoded with and without it in turn.

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

from benchmarks.harness.channel import round_trip  # noqa: E402
from voicebox.agent import BUILTIN_DIR, WEEKDAYS, AgentConfig, load_agent  # noqa: E402
from voicebox.config import load_config  # noqa: E402
from voicebox.listening.endpointing import hangover_ms  # noqa: E402
from voicebox.listening.local_agreement import LocalAgreement  # noqa: E402
from voicebox.listening.recognizer_prompt import MAX_PROMPT_TOKENS, prompt_words  # noqa: E402
from voicebox.listening.transcriber import DecodePrompt, Transcriber, usable_partial  # noqa: E402
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


def business_terms(agent: AgentConfig) -> list[str]:
    """The agent's vocabulary, normalized, longest first, so "teeth whitening" is found before "whitening"."""
    terms = {normalize(w) for w in agent.vocabulary()} - {""}
    return sorted(terms, key=lambda t: (-len(t.split()), t))


def terms_in(text: str, terms: list[str]) -> list[str]:
    """The terms a normalized text says, each occurrence once; a word counts for one term only."""
    words, found = text.split(), []
    used = [False] * len(words)
    for term in terms:
        tw = term.split()
        for i in range(len(words) - len(tw) + 1):
            if words[i : i + len(tw)] == tw and not any(used[i : i + len(tw)]):
                found.append(term)
                used[i : i + len(tw)] = [True] * len(tw)
    return found


def terms_missed(ref: str, hyp: str, terms: list[str]) -> list[str]:
    said, heard = terms_in(ref, terms), terms_in(hyp, terms)
    return sorted(t for t in set(said) if heard.count(t) < said.count(t))


def terms_heard(ref: str, hyp: str, terms: list[str]) -> tuple[int, int]:
    """(terms said, terms said that the transcript has as well)."""
    said, heard = terms_in(ref, terms), terms_in(hyp, terms)
    hits = sum(min(said.count(t), heard.count(t)) for t in set(said))
    return len(said), hits


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if w.getframerate() != RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def stream(stt: Transcriber, audio: np.ndarray, cfg, context: str, prompt: DecodePrompt) -> dict:
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
                t = stt._decode(ev.audio, RATE, "fit", 1, prompt)
                partial_ms.append(t.decode_ms)
                partials += 1
                if usable_partial(t):
                    last_partial = agreement.update(t.text)
            elif isinstance(ev, Paused):
                t = stt.transcribe(ev.audio, RATE, context, prompt=prompt)
                hint = (ev.last_voiced_ms, hangover_ms(t.text if t.reliable else None, vad)[0])
            elif isinstance(ev, TurnEnded):
                share = ev.voiced_ms / max(1.0, len(ev.audio) * 1000 / RATE)
                t = stt.transcribe(ev.audio, RATE, context, speech_share=share, prompt=prompt)
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


def offline(stt: Transcriber, audio: np.ndarray, prompt: DecodePrompt) -> tuple[str, float]:
    t0 = time.perf_counter()
    # Beam 5 and the full window, as faster-whisper does by default; no temperature fallback,
    # whose sampling would make the figure change from run to run.
    segments, _ = stt.model.transcribe(
        audio.astype(np.float32) / 32768.0, language=prompt.language, vad_filter=False, beam_size=5,
        temperature=0.0, initial_prompt=prompt.text or None,
    )
    text = " ".join(s.text.strip() for s in segments).strip()
    return text, (time.perf_counter() - t0) * 1000


def agent_sentences(agent: AgentConfig) -> list[dict]:
    """Sentences a caller of ``agent`` might say, each carrying one of its words, from its file alone."""
    said = [{"text": f"Hi, is this {agent.name}?", "term": agent.name, "kind": "business name"}]
    said += [{"text": f"I'd like to book a {c.name}, please.", "term": c.name, "kind": "choice"} for c in agent.choices()]
    nouns = [w for w in agent.vocabulary() if w[:1].isupper() and w != agent.name and w.lower() not in WEEKDAYS]
    said += [{"text": f"Can you tell me about {w}?", "term": w, "kind": "fact"} for w in nouns[:6]]
    return said


def with_prompt(agent: AgentConfig, mode: str) -> AgentConfig:
    return agent.model_copy(update={"recognizer": agent.recognizer.model_copy(update={"prompt": mode.split("@")[0]})})


def prompt_of(stt: Transcriber, agent: AgentConfig, mode: str) -> DecodePrompt:
    """The prompt a call to ``agent`` gets with ``mode`` (``vocabulary@N``: capped at N tokens)."""
    setting, _, cap = mode.partition("@")
    if cap and setting == "vocabulary":
        return stt.prompt(agent.language, prompt_words(agent), int(cap))
    return stt.prompt_for(with_prompt(agent, setting))


def synthetic_runs(stt: Transcriber, model: str, cfg, context: str, modes: list[str], codec: str) -> list[dict]:
    """Every shipped agent's own sentences, synthesized, through the line, with and without its prompt."""
    from voicebox.speaking.synthesizer import Synthesizer

    tts = Synthesizer(resolve(cfg.models.tts, "tts", cfg.data_dir), RATE)
    runs = []
    for name in sorted(p.stem for p in BUILTIN_DIR.glob("*.toml")):
        agent = load_agent(name)
        sentences = agent_sentences(agent)
        audio = [round_trip(tts.synthesize(x["text"]), codec) for x in sentences]
        for mode in modes:
            prompt = prompt_of(stt, agent, mode)
            rows = []
            for x, line in zip(sentences, audio):
                heard = " ".join(t["text"] for t in stream(stt, line, cfg, context, prompt)["turns"])
                rows.append({**x, "heard": heard, "term_heard": normalize(x["term"]) in normalize(heard)})
                print(f"{model} {codec} {mode} {name}: {x['text']!r} -> {heard!r}", flush=True)
            refs = [normalize(r["text"]) for r in rows]
            runs.append({"model": model, "codec": codec, "agent": name, "prompt": mode, "prompt_text": prompt.text,
                         "wer": wer(refs, [normalize(r["heard"]) for r in rows]), "rows": rows})
    return runs


def prompt_cost(stt: Transcriber, lines: list[np.ndarray], prompt: DecodePrompt, repeats: int = 3) -> dict:
    """Partial-decode time of each turn without and with ``prompt``, alternating so that a busy
    machine slows both alike: medians over turns of each turn's median."""
    plain, prompted = [], []
    for line in lines:
        a, b = [], []
        for _ in range(repeats):
            a.append(stt._decode(line, RATE, "fit", 1, stt.plain).decode_ms)
            b.append(stt._decode(line, RATE, "fit", 1, prompt).decode_ms)
        plain.append(statistics.median(a))
        prompted.append(statistics.median(b))
    return {"turns": len(lines), "tokens": len(prompt.tokens) - len(stt.plain.tokens),
            "plain_ms_p50": statistics.median(plain), "prompt_ms_p50": statistics.median(prompted),
            "extra_pct_p50": 100 * statistics.median([(b - a) / a for a, b in zip(plain, prompted)])}


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
    ap.add_argument("--prompts", nargs="+", default=["off", "vocabulary"],
                    help="recognizer prompts to compare: off, vocabulary ([recognizer] prompt of the agent file), "
                    "vocabulary@N (capped at N tokens instead of the default)")
    ap.add_argument("--agent", default="riverside_dental", help="the agent the corpus calls (its vocabulary)")
    ap.add_argument("--no-synthetic", action="store_true", help="skip the shipped agents' synthesized sentences")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--render", action="store_true", help="only rewrite wer.md from the wer.json in --out")
    args = ap.parse_args()
    cfg = load_config(None, {})
    if args.render:
        saved = json.loads((args.out / "wer.json").read_text())
        write(args.out, saved["runs"], cfg, saved["meta"], saved.get("synthetic", []), saved.get("cost", []))
        return
    scenarios = json.loads((CORPUS / "scenarios.json").read_text())["scenarios"]
    turns = [(s["id"], i, t) for s in scenarios for i, t in enumerate(s["turns"])]
    agent = load_agent(args.agent)
    terms = business_terms(agent)
    runs, synthetic, cost = [], [], []
    for spec in args.models:
        model, _, rest = spec.partition(":")
        context, _, beam_text = rest.partition(":")
        context = context or cfg.models.stt_final_context
        beam = int(beam_text) if beam_text else cfg.models.stt_final_beam
        stt = Transcriber(resolve(model, "stt", cfg.data_dir), threads=cfg.models.stt_threads, final_beam=beam)
        for codec, mode in [(c, m) for c in args.codecs for m in args.prompts]:
            prompt = prompt_of(stt, agent, mode)
            rows = []
            for sid, idx, turn in turns:
                line = round_trip(read_wav(CORPUS / turn["wav"]), codec)
                s = stream(stt, line, cfg, context, prompt)
                off_text, off_ms = offline(stt, line, prompt)
                heard = " ".join(t["text"] for t in s["turns"] if t["reliable"])
                rows.append({
                    "scenario": sid, "turn": idx, "ref": turn["text"], "expect": turn.get("expect"),
                    "streaming": " ".join(t["text"] for t in s["turns"]), "streaming_reliable": heard,
                    "offline": off_text, "turns_heard": len(s["turns"]),
                    "finals": s["turns"], "partials": s["partials"], "partial_ms": s["partial_ms"],
                    "final_ms": s["final_ms"], "offline_ms": off_ms, "committed_kept": s["committed_kept"],
                })
                print(f"{model} {codec} {mode} {sid}/{idx}: {rows[-1]['streaming']!r} | {off_text!r}", flush=True)
            # The corpus garbage turns are meant to be unintelligible; their "words" are not a
            # transcript to match, so they are scored apart (all turns) and by whether they were
            # acted on.
            spoken = [r for r in rows if r["ref"] and r["expect"] not in ("reprompt", "reprompt_or_silence")]
            refs = [normalize(r["ref"]) for r in spoken]
            every = [r for r in rows if r["ref"]]
            kept = [k for r in rows for k in r["committed_kept"]]
            said_heard = [terms_heard(normalize(r["ref"]), normalize(r[k]), terms) for k in ("streaming", "offline")
                          for r in spoken]
            half = len(spoken)
            runs.append({
                "model": model, "context": context, "final_beam": beam, "codec": codec, "turns": len(spoken),
                "prompt": mode, "prompt_text": prompt.text, "agent": args.agent,
                "terms_said": sum(s for s, _ in said_heard[:half]),
                "terms_heard_streaming": sum(h for _, h in said_heard[:half]),
                "terms_heard_offline": sum(h for _, h in said_heard[half:]),
                "terms_missed_streaming": [t for r in spoken for t in terms_missed(normalize(r["ref"]), normalize(r["streaming"]), terms)],
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
        spoken = [round_trip(read_wav(CORPUS / t["wav"]), args.codecs[0]) for _, _, t in turns if t["text"]]
        for mode in args.prompts:
            if mode != "off":
                cost.append({"model": model, "codec": args.codecs[0], "prompt": mode,
                             **prompt_cost(stt, spoken, prompt_of(stt, agent, mode))})
        if not args.no_synthetic:
            synthetic += synthetic_runs(stt, model, cfg, context, args.prompts, args.codecs[0])
        del stt
    write(args.out, runs, cfg, None, synthetic, cost)


def _synthetic_lines(synthetic: list[dict]) -> list[str]:
    if not synthetic:
        return []
    lines = [
        "", "## Each shipped agent's own words (synthesized sentences)", "",
        "Sentences written from each agent file (its name, each choice of its forms, proper nouns of its facts), "
        "synthesized with the configured Piper voice, through the same line; streaming finals. *Heard*: the "
        "sentence's agent word is in the transcript (normalized). One clear synthetic voice: an easier test than "
        "the corpus, but the only one here that says the business names.", "",
        "| model | line | agent | prompt | business name heard | choices heard | fact nouns heard | WER |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in synthetic:
        def heard(kind: str) -> str:
            rows = [x for x in r["rows"] if x["kind"] == kind]
            return f"{sum(x['term_heard'] for x in rows)}/{len(rows)}" if rows else "-"
        lines.append(f"| {r['model']} | {r['codec']} | {r['agent']} | {r['prompt']} | {heard('business name')} | "
                     f"{heard('choice')} | {heard('fact')} | {100 * r['wer']:.1f}% |")
    lines += ["", "Sentences whose transcript a prompt changed:", "", "| model | agent | prompt | said | prompt off | with the prompt |",
              "|---|---|---|---|---|---|"]
    by_key = {(r["model"], r["agent"], r["prompt"]): r for r in synthetic}
    for (model, agent, mode), r in by_key.items():
        if mode != "off":
            continue
        for (m2, a2, other_mode), other in by_key.items():
            if (m2, a2) != (model, agent) or other_mode == "off":
                continue
            for a, b in zip(r["rows"], other["rows"]):
                if normalize(a["heard"]) != normalize(b["heard"]):
                    lines.append(f"| {model} | {agent} | {other_mode} | {a['text']} | {a['heard']} | {b['heard']} |")
    return lines


def _cost_lines(cost: list[dict]) -> list[str]:
    if not cost:
        return []
    lines = ["", "## What the prompt costs", "",
             "Partial decode (fitted window, greedy) of every corpus speech turn without and with the corpus agent's "
             "prompt, alternating, median of 3 each; medians over turns. Partial decodes run every few hundred "
             "milliseconds of every call, so this is the prompt's price.", "",
             "| model | line | prompt | prompt tokens | decode p50 without / with | extra (p50 of per-turn ratio) |",
             "|---|---|---|---|---|---|"]
    for c in cost:
        lines.append(f"| {c['model']} | {c['codec']} | {c.get('prompt', 'vocabulary')} | {c['tokens']} | "
                     f"{c['plain_ms_p50']:.0f} / {c['prompt_ms_p50']:.0f} ms | "
                     f"{c['extra_pct_p50']:+.0f}% |")
    return lines


def _label(run: dict) -> str:
    return f"{run['model']} ({_final(run)}, {run['codec']}, prompt {run.get('prompt', 'off')})"


def _final(run: dict) -> str:
    """How the run's final decodes were made: encoder window, and beam width when not greedy."""
    beam = run.get("final_beam", 1)
    return run["context"] if beam == 1 else f"{run['context']}, beam {beam}"


def write(out: Path, runs: list[dict], cfg, meta: dict | None = None, synthetic: list[dict] | None = None,
          cost: list[dict] | None = None) -> None:
    synthetic, cost = synthetic or [], cost or []
    out.mkdir(parents=True, exist_ok=True)
    if meta is None:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        meta = {
            "command": "python benchmarks/wer_eval.py " + " ".join(sys.argv[1:]), "git_rev": rev,
            "cores": os.cpu_count(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "final_context": cfg.models.stt_final_context, "partial_every_ms": cfg.vad.partial_every_ms,
        }
    rev = meta["git_rev"]
    (out / "wer.json").write_text(
        json.dumps({"meta": meta, "runs": runs, "synthetic": synthetic, "cost": cost}, indent=1) + "\n"
    )
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
        "*Prompt*: `off` decodes with no prompt; `vocabulary` gives the decoder the agent file's words "
        "(`[recognizer] prompt`, the agent's `vocabulary()` capped by `voicebox/listening/recognizer_prompt.py`) "
        "as whisper's previous text, the block faster-whisper fills from `initial_prompt` and `hotwords`; "
        f"`vocabulary@N` caps it at N tokens (the default, `[recognizer] prompt = \"vocabulary\"`, is "
        f"{MAX_PROMPT_TOKENS}). "
        "*Business words heard*: of the agent's vocabulary terms said in the speech turns (normalized, "
        "each occurrence), how many the transcript has, streaming / offline.", "",
        "| model | final decode | line | prompt | speech turns | WER streaming | WER offline | business words heard (streaming / offline) | WER all turns (streaming / offline) | split turns | garbage acted on | partials/turn | "
        "partial decode p50/p95 ms | final decode p50/p95 ms | offline decode p50 ms | committed words kept |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        said = r.get("terms_said")
        heard = "-" if not said else f"{r['terms_heard_streaming']}/{said} / {r['terms_heard_offline']}/{said}"
        lines.append(
            f"| {r['model']} | {_final(r)} | {r['codec']} | {r.get('prompt', 'off')} | {r['turns']} | {100 * r['wer_streaming']:.1f}% | "
            f"{100 * r['wer_offline']:.1f}% | {heard} | {100 * r['wer_streaming_all']:.0f}% / {100 * r['wer_offline_all']:.0f}% | {r['split_turns']} | {len(r['garbage_acted_on'])} | "
            f"{r['partials_per_turn']:.1f} | {f(r['partial_ms_p50'])}/{f(r['partial_ms_p95'])} | "
            f"{f(r['final_ms_p50'])}/{f(r['final_ms_p95'])} | {f(r['offline_ms_p50'])} | "
            f"{'-' if r['committed_kept'] is None else format(100 * r['committed_kept'], '.0f') + '%'} |"
        )
    lines += ["", "Business words said in the corpus and missed by the streaming transcript:", ""]
    for r in runs:
        if "terms_missed_streaming" in r:
            lines.append(f"- {_label(r)}: {', '.join(r['terms_missed_streaming']) or 'none'}")
    lines += ["", "Without the turns that read out a long digit string (8 or more digits: a card number), where "
              "whisper loops on repeated digits and how far it loops decides the figure:", ""]
    for r in runs:
        plain = [row for row in r["rows"] if row["ref"] and row["expect"] not in ("reprompt", "reprompt_or_silence")
                 and sum(w.isdigit() for w in normalize(row["ref"]).split()) < 8]
        refs = [normalize(row["ref"]) for row in plain]
        lines.append(
            f"- {_label(r)}, {len(plain)} turns: streaming "
            f"{100 * wer(refs, [normalize(row['streaming']) for row in plain]):.1f}%, offline "
            f"{100 * wer(refs, [normalize(row['offline']) for row in plain]):.1f}%"
        )
    lines += [
        "", "## Where streaming and offline differ", "",
        "Word errors per turn (normalized), for every turn whose two transcripts differ. A corpus of 15 "
        "turns is small: one turn's errors move the WER by several points.", "",
        "| model | final decode | line | prompt | turn | errors streaming / offline | streaming final | offline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for row in r["rows"]:
            if not row["ref"] or row["expect"] in ("reprompt", "reprompt_or_silence"):
                continue
            ref, st, off = normalize(row["ref"]), normalize(row["streaming"]), normalize(row["offline"])
            if st != off:
                lines.append(
                    f"| {r['model']} | {_final(r)} | {r['codec']} | {r.get('prompt', 'off')} | {row['scenario']}/{row['turn']} | "
                    f"{word_errors(ref, st)} / {word_errors(ref, off)} | {row['streaming']} | {row['offline']} |"
                )
    lines += _synthetic_lines(synthetic) + _cost_lines(cost)
    prompted = [r for r in runs + synthetic if r.get("prompt_text")]
    if prompted:
        lines += ["", "## The prompts", ""]
        for key in dict.fromkeys((r["agent"], r["prompt"], r["prompt_text"]) for r in prompted):
            lines.append(f"- {key[0]}, {key[1]}: `{key[2]}`")
    lines += ["", "## Turns with and without the prompt", "",
              "Streaming finals of every run, turn by turn (the ones that differ between runs of one model and line "
              "are what the prompt changed).", ""]
    lines.append("| turn | said | " + " | ".join(_label(r) for r in runs) + " |")
    lines.append("|---|---|" + "---|" * len(runs))
    for i, row in enumerate(runs[0]["rows"]):
        lines.append(f"| {row['scenario']}/{row['turn']} | {row['ref']} | "
                     + " | ".join(r["rows"][i]["streaming"] for r in runs) + " |")
    (out / "wer.md").write_text("\n".join(lines) + "\n")
    print((out / "wer.md").read_text())


if __name__ == "__main__":
    main()
