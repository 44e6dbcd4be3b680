"""Several agents on one server: which agent a dialled user reaches, and what each one gets."""

from __future__ import annotations


import pytest

from voicebox.agent import BUILTIN_DIR
from voicebox.agent_directory import AgentDirectory, agent_id, load_directory
from voicebox.config import ConfigError, load_config
from voicebox.engines import Engines
from voicebox.thinking.intent_router import IntentRouter

TWO = {"agents.dental": "riverside_dental", "agents.plumbing": "harbor_plumbing"}


def test_one_agent_answers_every_user():
    d = load_directory(load_config())
    assert list(d.agents) == ["riverside_dental"]
    for user in ("agent", "dental", "anything", None):
        assert d.pick(user) == "riverside_dental"


def test_each_user_reaches_its_agent_and_unknown_users_nobody():
    d = load_directory(load_config(None, TWO))
    assert set(d.agents) == {"riverside_dental", "harbor_plumbing"}
    assert d.pick("dental") == "riverside_dental"
    assert d.pick("plumbing") == "harbor_plumbing"
    assert d.pick("agent") is None and d.pick(None) is None  # 404
    assert d.agents["harbor_plumbing"].name == "Harbor Plumbing"
    assert d.agents["riverside_dental"].greeting != d.agents["harbor_plumbing"].greeting


def test_default_answers_unknown_users():
    d = load_directory(load_config(None, {**TWO, "agents.default": "plumbing"}))
    assert d.pick("nobody") == "harbor_plumbing" and d.pick(None) == "harbor_plumbing"
    assert d.pick("dental") == "riverside_dental"


def test_users_sharing_an_agent_load_it_once():
    d = load_directory(load_config(None, {**TWO, "agents.teeth": str(BUILTIN_DIR / "riverside_dental.toml")}))
    assert set(d.agents) == {"riverside_dental", "harbor_plumbing"}
    assert d.pick("teeth") == d.pick("dental") == "riverside_dental"


def test_each_agent_keeps_its_own_transfer_target(tmp_path):
    # The transfer target is the agent file's [actions] transfer_uri: per agent by construction.
    text = (BUILTIN_DIR / "harbor_plumbing.toml").read_text()
    text = text.replace("[actions]\n", '[actions]\ntransfer_uri = "sip:office@10.0.0.9"\n', 1)
    own = tmp_path / "plumbing_office.toml"
    own.write_text(text)
    d = load_directory(load_config(None, {"agents.dental": "riverside_dental", "agents.plumbing": str(own)}))
    assert d.agents["plumbing_office"].actions.transfer_uri == "sip:office@10.0.0.9"
    assert d.agents["riverside_dental"].actions.transfer_uri == "sip:frontdesk@127.0.0.1:5062"


def test_a_broken_agent_file_stops_start_up_naming_the_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "X"\npersona = "p"\n')  # no greeting, no facts
    with pytest.raises(ConfigError) as ei:
        load_directory(load_config(None, {"agents.dental": "riverside_dental", "agents.plumbing": str(bad)}))
    msg = str(ei.value)
    assert "[agents] plumbing" in msg and str(bad) in msg and "greeting" in msg, msg


def test_a_missing_agent_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"\[agents\] dental = 'no_such_agent': agent 'no_such_agent': no such file"):
        load_directory(load_config(None, {"agents.dental": "no_such_agent"}))


def test_two_files_with_one_id_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    copy = tmp_path / "a" / "harbor_plumbing.toml"
    copy.write_text((BUILTIN_DIR / "harbor_plumbing.toml").read_text())
    with pytest.raises(ConfigError, match="would both be agent 'harbor_plumbing'"):
        load_directory(load_config(None, {**TWO, "agents.other": str(copy)}))


def test_agent_id_is_the_file_name():
    assert agent_id("riverside_dental") == "riverside_dental"
    assert agent_id("/etc/voicebox/acme_garage.toml") == "acme_garage"


def test_describe_says_who_reaches_what():
    d = AgentDirectory({}, {"dental": "riverside_dental"}, None)
    assert d.describe() == "dental -> riverside_dental, anyone else -> 404"


def test_an_agent_view_shares_the_models_and_has_its_own_router():
    d = load_directory(load_config(None, TWO))
    routers = {aid: IntentRouter.for_agent(a) for aid, a in d.agents.items()}
    # The shared models themselves are not under test here: plain objects stand in for their identity.
    stt, lm, tts = object(), object(), object()
    first = routers["riverside_dental"]
    engines = Engines(stt, lm, tts, first, None, per_agent={aid: (r, None) for aid, r in routers.items()})
    view = engines.for_agent("harbor_plumbing")
    assert view.router is routers["harbor_plumbing"]
    assert (view.stt, view.lm, view.tts) == (stt, lm, tts)
    assert view.llm_gate is engines.llm_gate and view.tts_gate is engines.tts_gate
    assert view.timings is engines.timings and view.fillers is engines.fillers
    assert view.phrase_cache is None and view.per_agent == {}  # closing stays with the engines
    # An intent only the plumbing file has: its router knows it, the dental one does not.
    dental_intents = {i.name for i in d.agents["riverside_dental"].intents}
    own = next(i for i in d.agents["harbor_plumbing"].intents if i.name not in dental_intents)
    assert view.router.route(own.examples[0]).intent == own.name
    assert engines.router.route(own.examples[0]).intent != own.name
