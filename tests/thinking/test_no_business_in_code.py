"""No business in the code: each shipped agent's words live in its own file and nowhere else.

An agent's words are what makes it one trade and one business: its name, what it books and the
other words for those, the words of its own recognizer confusions and vocabulary. None may be a
string in voicebox's code (where it would reach every agent), and none may turn up in another
agent's behaviour (what that agent's router learns, books or says by default) unless that
agent's own file says it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from voicebox.agent import BUILTIN_DIR, AgentConfig, load_agent
from voicebox.thinking.intent_router import agent_confusions, agent_out_of_scope

ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "voicebox"
# Generators that write sentences for the agents take their words from the agent files too.
AGENT_DRIVEN = [ROOT / "benchmarks" / "redaction" / "testset.py"]
AGENTS = sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))

# Files that still carry one agent's words, and why. Each is checked to still need its place,
# so the list shrinks as they are fixed and never hides a new file.
KNOWN: dict[str, str] = {}


def business_words(agent: AgentConfig) -> set[str]:
    words = {agent.name}
    for choice in agent.choices():  # what the forms offer: services to book, people to message
        words |= {choice.name, *choice.also}
    words |= {said for said, _ in agent.recognizer.confusions}
    words |= set(agent.recognizer.vocabulary)
    return {w.lower() for w in words if w.strip()}


def code_strings(path: Path) -> list[str]:
    """The string constants of a module that could be said or learned: not docstrings, not the
    keys of a subscript (``chunk["delta"]`` is a protocol's field, not a word of the agent)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        if isinstance(node, ast.Subscript):
            skip |= {id(n) for n in ast.walk(node.slice)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip]


def mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", text.lower()) is not None


@pytest.fixture(scope="module")
def agents() -> dict[str, AgentConfig]:
    return {name: load_agent(name) for name in AGENTS}


def test_there_are_agents_of_more_than_one_trade():
    assert len(AGENTS) >= 2, "the check below needs a second agent to mean anything"


def hits_in_code(agents: dict[str, AgentConfig]) -> dict[str, set[str]]:
    hits: dict[str, set[str]] = {}
    for path in sorted(CODE.rglob("*.py")) + AGENT_DRIVEN:
        strings = code_strings(path)
        for name, agent in agents.items():
            for word in business_words(agent):
                if any(mentions(s, word) for s in strings):
                    hits.setdefault(path.relative_to(ROOT).as_posix(), set()).add(f"{name}: {word}")
    return hits


def test_no_agent_words_in_the_code(agents):
    found = {path: sorted(words) for path, words in hits_in_code(agents).items() if path not in KNOWN}
    assert not found, f"business words in the code (move them to the agent file): {found}"


def test_the_scan_covers_the_privacy_code_and_the_agent_driven_generators():
    scanned = {p.relative_to(ROOT).as_posix() for p in sorted(CODE.rglob("*.py")) + AGENT_DRIVEN}
    assert {"voicebox/privacy/redact.py", "benchmarks/redaction/testset.py"} <= scanned
    assert all(p.exists() for p in AGENT_DRIVEN)


def test_known_exceptions_are_still_needed(agents):
    hits = hits_in_code(agents)
    assert not [path for path in KNOWN if path not in hits], "remove fixed files from KNOWN"


def behaviour(agent: AgentConfig) -> str:
    """Everything an agent learns, books or says by default, as one text."""
    parts = [*agent_out_of_scope(agent), *(f"{a} {b}" for a, b in agent_confusions(agent)), *agent.vocabulary()]
    parts += [w for cues in agent.service_cues().values() for w in cues]
    for form in agent.active_forms():  # a form's wording, its questions, its defaults
        parts += [str(v) for v in form.model_dump().values() if isinstance(v, str)]
        parts += [*form.cancel_phrases, *(f.ask for f in form.fields), *(f.ask_time for f in form.fields)]
        parts += [f.invalid_line() for f in form.fields] + [w for f in form.fields for w in f.called_words()]
    parts += list(agent.replies.model_dump().values())
    if agent.hours is not None:
        parts += list(agent.hours.say.model_dump().values())
    return "\n".join(parts)


@pytest.mark.parametrize("this, other", [(a, b) for a in AGENTS for b in AGENTS if a != b])
def test_no_agent_words_in_another_agents_behaviour(agents, this, other):
    own_file = (BUILTIN_DIR / f"{other}.toml").read_text(encoding="utf-8")
    leaked = sorted(w for w in business_words(agents[this])
                    if mentions(behaviour(agents[other]), w) and not mentions(own_file, w))
    assert not leaked, f"{this}'s words in {other}'s behaviour: {leaked}"


def test_the_check_catches_a_leak(agents, tmp_path):
    """The checks above can fail: a string naming another agent's service is found."""
    module = tmp_path / "leaky.py"
    word = sorted(business_words(agents[AGENTS[0]]))[0]
    module.write_text(f'"""Doc."""\nSERVICES = ["{word}"]\nx = chunk["{word}"]\n', encoding="utf-8")
    assert code_strings(module) == [word]
    assert any(mentions(s, word) for s in code_strings(module))
