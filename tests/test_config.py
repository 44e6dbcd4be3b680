"""Service configuration (load_config) and agent files (load_agent): errors name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebox.agent import BUILTIN_DIR, AgentConfig, agent_file, load_agent
from voicebox.config import Config, ConfigError, load_config


def write(tmp_path: Path, text: str, name: str = "voicebox.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# -- load_config ---------------------------------------------------------------------------------


def test_defaults_are_valid():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.sip.port == 5060
    assert cfg.sip.codecs == ["G722", "PCMU", "PCMA"]
    assert cfg.media.clock_rate_hz == 16000
    assert cfg.vad.min_turn_ms < cfg.vad.max_turn_ms
    assert cfg.agent == "riverside_dental"
    assert cfg.privacy.content == "metadata"


def test_empty_file_gives_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == load_config()


def test_file_values_are_read(tmp_path):
    path = write(
        tmp_path,
        """
agent = "my_agent.toml"
[sip]
port = 5070
codecs = ["PCMU"]
[vad]
hangover_ms = 900
""",
    )
    cfg = load_config(path)
    assert cfg.sip.port == 5070
    assert cfg.sip.codecs == ["PCMU"]
    assert cfg.vad.hangover_ms == 900
    assert cfg.agent == "my_agent.toml"
    assert cfg.sip.host == "127.0.0.1"  # untouched default


@pytest.mark.parametrize(
    "toml,field",
    [
        ("[sip]\nport = 70000\n", "sip.port"),
        ("[sip]\nport = 0\n", "sip.port"),
        ('[vad]\nhangover_ms = "x"\n', "vad.hangover_ms"),
        ("[vad]\nhangover_ms = 50\n", "vad.hangover_ms"),
        ("[sip]\nprot = 5060\n", "sip.prot"),
        ("[media]\nclock_rate_hz = 44100\n", "media.clock_rate_hz"),
        ('[log]\nlevel = "LOUD"\n', "log.level"),
        ("[sip]\nbusy_status = 404\n", "sip.busy_status"),
        ("[models]\nllm_temperature = 3.0\n", "models.llm_temperature"),
        ("[vad]\naggressiveness = 4\n", "vad.aggressiveness"),
        ("hangover_ms = 700\n", "hangover_ms"),
        ('[testing]\nfail_stage = "vad"\n', "testing.fail_stage"),
    ],
)
def test_bad_value_names_the_field(tmp_path, toml, field):
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    msg = str(ei.value)
    assert f"  {field}:" in msg, msg
    assert str(path) in msg


def test_every_bad_field_is_named(tmp_path):
    path = write(tmp_path, '[sip]\nport = 70000\n[vad]\nhangover_ms = "x"\n')
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert "sip.port" in str(ei.value)
    assert "vad.hangover_ms" in str(ei.value)


def test_invalid_toml(tmp_path):
    path = write(tmp_path, "[sip\nport = 5060\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as ei:
        load_config(path)
    assert str(path) in str(ei.value)


def test_overrides_with_dotted_keys(tmp_path):
    path = write(tmp_path, "[sip]\nport = 5070\nhost = '10.0.0.1'\n")
    cfg = load_config(path, {"sip.port": 5080, "data_dir": "/tmp/vb", "vad.hangover_ms": 500})
    assert cfg.sip.port == 5080  # override beats the file
    assert cfg.sip.host == "10.0.0.1"  # the rest of the file's table is kept
    assert cfg.data_dir == Path("/tmp/vb")
    assert cfg.vad.hangover_ms == 500
    assert cfg.vad.start_ms == 120


def test_overrides_without_file():
    cfg = load_config(None, {"sip.host": "0.0.0.0", "sip.port": 5090})
    assert (cfg.sip.host, cfg.sip.port) == ("0.0.0.0", 5090)


def test_bad_override_names_the_field():
    with pytest.raises(ConfigError) as ei:
        load_config(None, {"sip.port": 99999})
    assert "sip.port" in str(ei.value)
    assert "defaults" in str(ei.value)


@pytest.mark.parametrize("codecs", ["[]", '["PCMU", "PCMU"]', '["G729"]'])
def test_codecs_rejected(tmp_path, codecs):
    with pytest.raises(ConfigError, match=r"sip\.codecs"):
        load_config(write(tmp_path, f"[sip]\ncodecs = {codecs}\n"))


def test_vad_min_turn_must_be_below_max_turn(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, "[vad]\nmin_turn_ms = 3000\nmax_turn_ms = 3000\n"))
    assert "vad" in str(ei.value)
    assert "min_turn_ms must be below max_turn_ms" in str(ei.value)
    cfg = load_config(write(tmp_path, "[vad]\nmin_turn_ms = 2999\nmax_turn_ms = 3000\n"))
    assert cfg.vad.min_turn_ms == 2999


# -- load_agent ----------------------------------------------------------------------------------

GOOD_AGENT = """
name = "Test Shop"
persona = "You are a test."
greeting = "Hello."
[facts]
hours = "always"
[[intents]]
name = "hours"
examples = ["when are you open", "what are your hours", "are you open today"]
answer = "We are open {hours}."
"""


def test_builtin_agent_loads():
    agent = load_agent("riverside_dental")
    assert isinstance(agent, AgentConfig)
    assert agent.name == "Riverside Dental"
    assert agent.greeting
    assert agent.facts
    names = {i.name for i in agent.intents}
    # Every intent the corpus scenarios expect exists.
    assert {"hours", "location", "prices", "booking", "human", "services", "goodbye", "billing", "insurance"} <= names
    assert agent.intent("human").action == "transfer" and agent.intent("goodbye").action == "hangup"
    assert agent.intent("billing").sensitive
    assert "9 am to 1 pm" in agent.fill(agent.intent("hours").answer)


def test_agent_from_path(tmp_path):
    agent = load_agent(str(write(tmp_path, GOOD_AGENT, "shop.toml")))
    assert agent.name == "Test Shop"
    assert agent.fill(agent.intents[0].answer) == "We are open always."
    assert "bye" in agent.goodbye_phrases  # default


def test_the_bench_agents_load():
    bench_agents = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "agents").glob("*.toml"))
    assert bench_agents
    for path in bench_agents:
        agent = load_agent(str(path))
        assert all(i.action == "model" for i in agent.intents), path  # they exist to load the model


def test_the_bench_configs_load():
    configs = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "configs").glob("*.toml"))
    assert configs
    for path in configs:
        load_config(path)


def test_agent_file_by_name_or_path(tmp_path):
    assert agent_file("riverside_dental") == BUILTIN_DIR / "riverside_dental.toml"
    own = write(tmp_path, GOOD_AGENT, "shop.toml")
    assert agent_file(str(own)) == own
    with pytest.raises(ConfigError, match="built-in agents: .*riverside_dental"):
        agent_file("no_such_agent")


def test_agent_missing_greeting(tmp_path):
    text = GOOD_AGENT.replace('greeting = "Hello."\n', "")
    path = write(tmp_path, text, "shop.toml")
    with pytest.raises(ConfigError) as ei:
        load_agent(str(path))
    assert "greeting" in str(ei.value)
    assert str(path) in str(ei.value)


@pytest.mark.parametrize("facts", ['hours = "  "', ""])
def test_agent_blank_or_no_facts(tmp_path, facts):
    text = GOOD_AGENT.replace('hours = "always"', facts).replace("We are open {hours}.", "Open.")
    with pytest.raises(ConfigError, match="facts"):
        load_agent(str(write(tmp_path, text, "shop.toml")))


def test_agent_template_with_unknown_fact_names_the_intent(tmp_path):
    text = GOOD_AGENT.replace("{hours}", "{opening}")
    with pytest.raises(ConfigError, match=r"intents\.0\.answer \(hours\): unknown fact \{opening\}"):
        load_agent(str(write(tmp_path, text, "shop.toml")))


def test_agent_answer_intent_needs_an_answer(tmp_path):
    text = GOOD_AGENT.replace('answer = "We are open {hours}."\n', "")
    with pytest.raises(ConfigError, match=r"intents\.0"):
        load_agent(str(write(tmp_path, text, "shop.toml")))


def test_agent_bad_transfer_uri_and_dtmf_key(tmp_path):
    text = GOOD_AGENT + '[actions]\ntransfer_uri = "frontdesk"\ndtmf = { "x" = "transfer" }\n'
    with pytest.raises(ConfigError) as ei:
        load_agent(str(write(tmp_path, text, "shop.toml")))
    assert "actions.transfer_uri" in str(ei.value) and "actions.dtmf" in str(ei.value)


def test_agent_blank_goodbye_phrase(tmp_path):
    text = GOOD_AGENT.replace('greeting = "Hello."', 'greeting = "Hello."\ngoodbye_phrases = ["bye", " "]')
    with pytest.raises(ConfigError, match="goodbye_phrases"):
        load_agent(str(write(tmp_path, text, "shop.toml")))


def test_agent_unknown_key(tmp_path):
    text = GOOD_AGENT.replace('greeting = "Hello."', 'greeting = "Hello."\ngreting = "typo"')
    with pytest.raises(ConfigError, match="greting"):
        load_agent(str(write(tmp_path, text, "shop.toml")))


def test_agent_intent_with_too_few_examples(tmp_path):
    text = GOOD_AGENT.replace('examples = ["when are you open", "what are your hours", "are you open today"]', 'examples = ["open?"]')
    with pytest.raises(ConfigError, match=r"intents\.0\.examples"):
        load_agent(str(write(tmp_path, text, "shop.toml")))


def test_agent_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_agent(str(write(tmp_path, "name = ", "shop.toml")))


def test_unknown_builtin_agent_lists_builtins():
    with pytest.raises(ConfigError) as ei:
        load_agent("no_such_agent")
    msg = str(ei.value)
    assert "no_such_agent" in msg
    for p in BUILTIN_DIR.glob("*.toml"):
        assert p.stem in msg
    assert "riverside_dental" in msg


def test_missing_agent_path(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_agent(str(tmp_path / "absent.toml"))


# -- [agents]: several agents, chosen by the dialled user ------------------------------------


def test_agents_table_maps_dialled_users(tmp_path):
    path = write(tmp_path, '[agents]\ndental = "riverside_dental"\nPlumbing = "harbor_plumbing"\ndefault = "dental"\n')
    cfg = load_config(path)
    assert cfg.agents is not None
    assert cfg.agents.routes() == {"dental": "riverside_dental", "plumbing": "harbor_plumbing"}  # users: any case
    assert cfg.agents.default == "dental"


def test_no_agents_table_means_one_agent_for_everyone():
    cfg = load_config()
    assert cfg.agents is None and cfg.agent == "riverside_dental"


def test_agents_without_default_is_valid(tmp_path):
    cfg = load_config(write(tmp_path, '[agents]\ndental = "riverside_dental"\n'))
    assert cfg.agents is not None and cfg.agents.default == ""


def test_agents_set_from_the_command_line():
    cfg = load_config(None, {"agents.dental": "riverside_dental", "agents.default": "dental"})
    assert cfg.agents is not None and cfg.agents.routes() == {"dental": "riverside_dental"}


@pytest.mark.parametrize(
    "toml,problem",
    [
        ("[agents]\n", "at least one dialled user"),
        ('[agents]\ndefault = "dental"\n', "at least one dialled user"),
        ('[agents]\ndental = "riverside_dental"\ndefault = "plumbing"\n', "'plumbing' is not one of the users"),
        ('[agents]\n"den tal" = "riverside_dental"\n', "not a SIP user part"),
        ('[agents]\n"a@b" = "riverside_dental"\n', "not a SIP user part"),
        ('[agents]\ndental = ""\n', "agent name or path is empty"),
        ('[agents]\ndental = "riverside_dental"\nDental = "harbor_plumbing"\n', "the same user"),
        ("[agents]\ndental = 3\n", "agents.dental: Input should be a valid string"),
        ('agent = "harbor_plumbing"\n[agents]\ndental = "riverside_dental"\n', "either agent"),
    ],
)
def test_bad_agents_table_is_refused(tmp_path, toml, problem):
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert problem in str(ei.value) and str(path) in str(ei.value), str(ei.value)
