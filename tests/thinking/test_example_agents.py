"""The example agents shipped with their own voiced corpora: each file loads and validates,
`voicebox check` passes it, and none of its examples is a sentence of its own corpus (a router
trained on the test would score itself)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness.scenarios import load_scenarios
from voicebox.agent import load_agent

ROOT = Path(__file__).resolve().parents[2]
CORPORA = ROOT / "benchmarks" / "corpora"
# Each shipped example agent and the corpus written for it.
AGENT_CORPORA = {
    "birchwood_vet": CORPORA / "vet" / "scenarios.json",
    "saffron_table": CORPORA / "restaurant" / "scenarios.json",
}


def normalized(text: str) -> str:
    """Case, punctuation and spacing do not make a sentence new."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def copied_sentences(examples: list[str], scenario_texts: list[str]) -> list[str]:
    """Scenario texts (or any of their sentences of three words or more: "Bye!" is everyone's)
    that appear verbatim among the examples."""
    pool = {normalized(e) for e in examples}
    found = []
    for text in scenario_texts:
        sentences = [p for p in re.split(r"(?<=[.?!])\s+", text) if len(normalized(p).split()) >= 3]
        found += [p for p in [text, *sentences] if normalized(p) and normalized(p) in pool]
    return sorted(set(found))


@pytest.mark.parametrize("name", sorted(AGENT_CORPORA))
def test_agent_loads_and_validates(name: str) -> None:
    agent = load_agent(name)
    assert agent.intents and agent.facts and agent.hours is not None
    names = {i.name for i in agent.intents}
    assert {"booking", "human", "goodbye", "hours"} <= names
    # A request for a person goes somewhere: the bench's transfer scenarios need a target.
    assert agent.actions.transfer_uri


@pytest.mark.parametrize("name", sorted(AGENT_CORPORA))
def test_no_scenario_sentence_among_examples(name: str) -> None:
    agent = load_agent(name)
    scenarios, _ = load_scenarios(AGENT_CORPORA[name])  # also proves every WAV is there
    texts = [t.text for s in scenarios for t in s.turns if t.text]
    examples = [e for i in agent.intents for e in i.examples] + list(agent.out_of_scope)
    assert texts
    assert copied_sentences(examples, texts) == []


def test_copy_check_can_fail() -> None:
    assert copied_sentences(["do you see rabbits"], ["Do you see rabbits?"]) == ["Do you see rabbits?"]
    assert copied_sentences(["great, thanks a lot"], ["Great, thanks a lot. Goodbye."]) == ["Great, thanks a lot."]
    assert copied_sentences(["do you see cats"], ["Do you see rabbits?"]) == []
    assert copied_sentences(["bye"], ["Lovely, thanks. Bye!"]) == []


@pytest.mark.parametrize("name", sorted(AGENT_CORPORA))
def test_corpus_expectations_name_the_agents_intents(name: str) -> None:
    """An expected intent the agent lacks could never be met."""
    intents = {i.name for i in load_agent(name).intents}
    scenarios, _ = load_scenarios(AGENT_CORPORA[name])
    expected = {t.expect_intent for s in scenarios for t in s.turns if t.expect_intent}
    assert expected - intents == set()


@pytest.mark.parametrize("name", sorted(AGENT_CORPORA))
def test_voicebox_check_passes(name: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "voicebox", "check", name], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
