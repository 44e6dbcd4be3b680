"""``voicebox check``: is an agent file valid, and what will go wrong on calls with it.

Errors (the file would not load) and warnings (it loads, but callers will notice) are printed as
``FILE:LINE: error|warning: what``, the way compilers do, so an editor can jump to them. Then the
intent router is cross-validated on the file's own examples: each example is routed by a router
trained without it, which is how a caller's new phrasing will fare, and the table shows which
intents it mixes up and how confidently.

Exit status: 0 when there are no errors (warnings are printed), 1 with ``--strict`` when there
are warnings, 2 when there are errors.
"""

from __future__ import annotations

import argparse
import re
import time
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from voicebox.agent import AgentConfig, agent_file
from voicebox.agent_directory import NamedAgent, choose_agent, named_agents
from voicebox.config import ConfigError, load_config
from voicebox.thinking.intent_router import IntentRouter, normalize
from voicebox.toml_lines import key_lines, line_of

# Below this many examples an intent is learned from too few phrasings: held-out examples of
# such intents are the ones the router gets wrong (the file's minimum is 3, to start with).
RECOMMENDED_EXAMPLES = 10
FOLDS = 5
# A mix-up worth a warning: this share of an intent's held-out examples routed to one other
# intent (a single stray example is noise; a fifth of them is two intents that overlap).
MIXUP_SHARE = 0.2
MIXUP_MIN_COUNT = 2
WORST_SHOWN = 10  # mis-routed examples listed under the table, most confident first

EXIT_OK, EXIT_WARNINGS, EXIT_ERRORS = 0, 1, 2


@dataclass
class Finding:
    level: Literal["error", "warning"]
    line: int | None  # None: the file as a whole
    message: str


@dataclass
class Routed:
    """One held-out example and where the router trained without it sent it."""

    text: str
    intent: str
    routed: str  # an intent name, "unclear" or "out of scope"
    confidence: float


UNCLEAR, OUT_OF_SCOPE = "unclear", "out of scope"


@dataclass
class CrossValidation:
    folds: int
    results: list[Routed]
    seconds: float

    def by_intent(self) -> dict[str, Counter]:
        table: dict[str, Counter] = defaultdict(Counter)
        for r in self.results:
            table[r.intent][r.routed] += 1
        return table

    def wrong(self) -> list[Routed]:
        """Examples routed to another intent (re-prompts and out-of-scope are not wrong answers)."""
        return [r for r in self.results if r.routed not in (r.intent, UNCLEAR, OUT_OF_SCOPE)]


@dataclass
class Report:
    path: Path
    agent: AgentConfig | None = None
    findings: list[Finding] = field(default_factory=list)
    cv: CrossValidation | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def exit_status(self, strict: bool = False) -> int:
        if self.errors:
            return EXIT_ERRORS
        return EXIT_WARNINGS if strict and self.warnings else EXIT_OK


# -- checking -----------------------------------------------------------------------------------
def check_agent(path: Path, folds: int = FOLDS, cross_validate_router: bool = True) -> Report:
    """Validate the agent file at ``path``; if it is valid, look for what will go wrong on calls."""
    report = Report(path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        report.findings.append(_syntax_error(e, text))
        return report
    lines = key_lines(text)
    try:
        agent = AgentConfig.model_validate(raw)
    except ValidationError as e:
        report.findings += [_validation_finding(err, raw, lines, text) for err in e.errors()]
        return report
    report.agent = agent
    report.findings += _call_warnings(agent, lines)
    if cross_validate_router:
        report.cv = cross_validate(agent, folds)
        report.findings += _mixup_warnings(report.cv, [i.name for i in agent.intents], lines)
    report.findings.sort(key=lambda f: (f.level != "error", f.line or 0))
    return report


def _syntax_error(e: tomllib.TOMLDecodeError, text: str) -> Finding:
    m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
    if m is None:  # "(at end of document)"
        return Finding("error", None, f"not valid TOML: {e}")
    line, column = int(m.group(1)), int(m.group(2))
    source = text.splitlines()[line - 1] if line <= len(text.splitlines()) else ""
    what = str(e)[: m.start()].strip()
    return Finding("error", line, f"not valid TOML: {what} (column {column})\n    {source}\n    {' ' * (column - 1)}^")


_MESSAGE_PATH = re.compile(r"^([a-z_]+(?:\.[a-z0-9_]+)*)\b")


def _validation_finding(err: dict, raw: dict, lines: dict, text: str) -> Finding:
    """A pydantic error as a line of the file and a message naming the key as it is written."""
    loc = tuple(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "too_short" and "min_length" in err.get("ctx", {}):
        msg = f"needs at least {err['ctx']['min_length']}, has {err['ctx']['actual_length']}"
    # Checks of the whole file (or of a table) name the key they are about in their message,
    # e.g. "intents.0.answer (hours): unknown fact {opening}": that is the more exact place.
    m = _MESSAGE_PATH.match(msg)
    if m:
        said = tuple(int(p) if p.isdigit() else p for p in m.group(1).split("."))
        if said[: len(loc)] == loc:
            loc, msg = said, msg[m.end() :].lstrip(" :")
            if msg.startswith("(") and "): " in msg:  # "(hours): ..." repeats the intent's name
                msg = msg.split("): ", 1)[1]
    line = line_of(lines, loc)
    dup = re.search(r"names used twice: \[(.*)\]", msg)
    if dup and loc == ("intents",):
        line = _second_intent_named(raw, lines, re.findall(r"'([^']+)'", dup.group(1))) or line
    unknown = re.search(r"unknown fact \{(\w+)\}", msg)
    if unknown and line is not None:
        line = _line_with(text, "{" + unknown.group(1) + "}", line) or line
    return Finding("error", line, f"{_where(loc, raw)}: {msg}" if loc else msg)


def _where(loc: tuple, raw: dict) -> str:
    """``intents[3] (booking).examples``: the index alone means little in a long file."""
    out = ""
    node: object = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                out += f" ({node['name']})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _second_intent_named(raw: dict, lines: dict, names: list[str]) -> int | None:
    seen: set[str] = set()
    for i, intent in enumerate(raw.get("intents", [])):
        name = intent.get("name") if isinstance(intent, dict) else None
        if name in names and name in seen:
            return line_of(lines, ("intents", i, "name"))
        seen.add(name)
    return None


def _line_with(text: str, needle: str, start: int) -> int | None:
    """The first line from ``start`` on that contains ``needle`` (a multi-line answer's line)."""
    for n, line in enumerate(text.splitlines()[start - 1 :], start):
        if needle in line:
            return n
    return None


def _call_warnings(agent: AgentConfig, lines: dict) -> list[Finding]:
    """What a valid file will still get wrong on calls."""
    found: list[Finding] = []
    seen: dict[str, str] = {}
    for i, intent in enumerate(agent.intents):
        if len(intent.examples) < RECOMMENDED_EXAMPLES:
            found.append(Finding(
                "warning", line_of(lines, ("intents", i, "examples")),
                f"intent {intent.name!r} has {len(intent.examples)} examples: callers' own phrasings will often "
                f"be re-prompted or mis-routed; give {RECOMMENDED_EXAMPLES} or more, in the words callers use",
            ))
        for j, example in enumerate(intent.examples):
            key = normalize(example)
            other = seen.setdefault(key, intent.name)
            if other != intent.name:
                found.append(Finding(
                    "warning", line_of(lines, ("intents", i, "examples", j)),
                    f"example {example!r} of intent {intent.name!r} is also an example of {other!r}: "
                    "the router cannot tell them apart on it",
                ))
    for i, form in enumerate(agent.forms):
        if not any(p.lower() in form.not_stored.lower() for p in agent.actions.offer_phrases):
            found.append(Finding(
                "warning", line_of(lines, ("forms", i, "not_stored")) or line_of(lines, ("forms", i)),
                f"form {form.name!r}: not_stored offers no person (it contains none of actions.offer_phrases "
                f"{agent.actions.offer_phrases}): a caller whose {form.kind} could not be saved cannot say yes "
                "to a transfer",
            ))
        if agent.phone_region is None and any(f.type == "phone" for f in form.fields):
            found.append(Finding(
                "warning", line_of(lines, ("forms", i)),
                f"form {form.name!r} asks for a phone number but phone_region is not set: only numbers "
                "with a country code (+44 ...) will be accepted",
            ))
    wants_transfer = [i.name for i in agent.intents if i.action == "transfer"]
    if agent.after_reprompts == "transfer":
        wants_transfer.append("after_reprompts")
    wants_transfer += [f"dtmf {k}" for k, v in agent.actions.dtmf.items() if v == "transfer"]
    if wants_transfer and not agent.actions.transfer_uri:
        found.append(Finding(
            "warning", line_of(lines, ("actions",)),
            f"{', '.join(wants_transfer)} transfer the caller, but actions.transfer_uri is not set: "
            f"they will hear {agent.actions.no_transfer!r} instead",
        ))
    return found


# -- the router on examples it has not seen -----------------------------------------------------------
def cross_validate(agent: AgentConfig, folds: int = FOLDS) -> CrossValidation:
    """K-fold over each intent's examples: every example is routed by a router trained on the
    file without it (the same router a call uses, ``IntentRouter.for_agent``).

    Folds are dealt round-robin within each intent, so each fold holds out a share of every
    intent and each training set keeps most of each intent's examples.
    """
    t0 = time.perf_counter()
    results: list[Routed] = []
    for fold in range(folds):
        held: list[tuple[str, str]] = []
        intents = []
        for intent in agent.intents:
            keep = [e for n, e in enumerate(intent.examples) if n % folds != fold]
            held += [(intent.name, e) for n, e in enumerate(intent.examples) if n % folds == fold]
            intents.append(intent.model_copy(update={"examples": keep or intent.examples}))
        if not held:
            continue
        router = IntentRouter.for_agent(agent.model_copy(update={"intents": intents}))
        for name, example in held:
            route = router.route(example)
            routed = UNCLEAR if route.unclear else (route.intent or OUT_OF_SCOPE)
            results.append(Routed(example, name, routed, route.confidence))
    return CrossValidation(folds, results, time.perf_counter() - t0)


def _mixup_warnings(cv: CrossValidation, names: list[str], lines: dict) -> list[Finding]:
    found = []
    for intent, routed in cv.by_intent().items():
        total = sum(routed.values())
        for other, n in routed.items():
            if other in (intent, UNCLEAR, OUT_OF_SCOPE) or n < MIXUP_MIN_COUNT or n / total < MIXUP_SHARE:
                continue
            found.append(Finding(
                "warning", line_of(lines, ("intents", names.index(intent))),
                f"intent {intent!r}: {n} of its {total} examples, held out, were routed to {other!r}: "
                "callers asking for one may get the other's answer (see the table below)",
            ))
    return found


# -- output -----------------------------------------------------------------------------------------
def format_report(report: Report) -> str:
    out: list[str] = []
    for f in report.findings:
        where = f"{report.path}:{f.line}" if f.line is not None else f"{report.path}"
        out.append(f"{where}: {f.level}: {f.message}")
    if report.cv is not None:
        out += ["", *format_cross_validation(report.cv)]
    if report.agent is not None:
        a = report.agent
        n_examples = sum(len(i.examples) for i in a.intents)
        forms = ", ".join(f"{f.name} ({f.kind}, started by {f.intent})" for f in a.active_forms()) or "none"
        out += ["", f"{report.path}: {a.name!r}: {len(a.intents)} intents, {n_examples} examples, {len(a.facts)} facts",
                f"  forms: {forms}"]
    n_err, n_warn = len(report.errors), len(report.warnings)
    out.append(f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}")
    return "\n".join(out)


def format_cross_validation(cv: CrossValidation) -> list[str]:
    table = cv.by_intent()
    total = len(cv.results)
    right = sum(1 for r in cv.results if r.routed == r.intent)
    unclear = sum(1 for r in cv.results if r.routed == UNCLEAR)
    oos = sum(1 for r in cv.results if r.routed == OUT_OF_SCOPE)
    out = [
        f"Router cross-validation ({cv.folds} folds: each example routed by a router trained without it, "
        f"{cv.seconds:.1f} s)",
        f"  {total} examples: {right} right, {len(cv.wrong())} to another intent, {unclear} unclear (re-prompted), "
        f"{oos} out of scope",
        "",
    ]
    mean_conf: dict[tuple[str, str], float] = {}
    for (intent, other), rs in _group(cv.results).items():
        mean_conf[(intent, other)] = sum(r.confidence for r in rs) / len(rs)
    width = max([len("intent"), *(len(n) for n in table)])
    out.append(f"  {'intent':<{width}}  right  wrong  unclear  out of scope  mixed up with (count, mean confidence)")
    for intent, routed in table.items():
        n = sum(routed.values())
        wrong = {o: c for o, c in routed.items() if o not in (intent, UNCLEAR, OUT_OF_SCOPE)}
        by_count = sorted(wrong.items(), key=lambda x: -x[1])
        mixed = ", ".join(f"{o} ({c}, {mean_conf[(intent, o)]:.2f})" for o, c in by_count)
        out.append(
            f"  {intent:<{width}}  {routed[intent]:>2}/{n:<2}  {sum(wrong.values()):>5}  {routed[UNCLEAR]:>7}  "
            f"{routed[OUT_OF_SCOPE]:>12}  {mixed or '-'}"
        )
    worst = sorted(cv.wrong(), key=lambda r: -r.confidence)[:WORST_SHOWN]
    if worst:
        out += ["", "  Routed to another intent, most confident first:"]
        out += [f"    {r.confidence:.2f}  {r.text!r} ({r.intent}) -> {r.routed}" for r in worst]
    return out


def _group(results: list[Routed]) -> dict[tuple[str, str], list[Routed]]:
    groups: dict[tuple[str, str], list[Routed]] = defaultdict(list)
    for r in results:
        groups[(r.intent, r.routed)].append(r)
    return groups


def run(args: argparse.Namespace) -> int:
    """The ``voicebox check`` command: the named agent, else every agent the config names."""
    if args.agent and args.config is None:
        path = agent_file(args.agent)  # no config: only a file or a built-in name can be meant
    elif args.agent:
        cfg = load_config(args.config)
        try:
            spec = choose_agent(cfg, args.agent, "check")  # a dialled user, if [agents] lists it
        except ConfigError as e:  # only with [agents]: say which config's users were meant
            raise ConfigError(f"{args.config}: {e}") from None
        path = agent_file(spec)  # without [agents], the same error as before
    else:
        cfg = load_config(args.config)
        if cfg.agents is not None:
            return _check_all(named_agents(cfg), args)
        path = agent_file(cfg.agent)
    report = check_agent(_for_editor(path), folds=args.folds, cross_validate_router=not args.no_router)
    print(format_report(report))
    return report.exit_status(args.strict)


def _check_all(agents: list[NamedAgent], args: argparse.Namespace) -> int:
    """Every agent of ``[agents]``, each report headed by who dials it; the worst exit status."""
    status = EXIT_OK
    failed: list[str] = []
    for n, named in enumerate(agents):
        try:
            path = _for_editor(agent_file(named.spec))
        except ConfigError as e:  # a missing file is this agent's error; the others are still checked
            path, report = Path(named.spec), Report(Path(named.spec), findings=[Finding("error", None, str(e))])
        else:
            report = check_agent(path, folds=args.folds, cross_validate_router=not args.no_router)
        print(("\n" if n else "") + f"== {named.label()}: {path} ==")
        print(format_report(report))
        status = max(status, report.exit_status(args.strict))
        if report.errors:
            failed.append(named.label())
    print(f"\n{len(agents)} agent{'s' * (len(agents) != 1)} checked"
          + (f"; errors in: {'; '.join(failed)}" if failed else ", no errors"))
    return status


def _for_editor(path: Path) -> Path:
    """Relative to the working directory when under it, as an editor's "file:line" wants it."""
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        return path.relative_to(Path.cwd())
    return path
