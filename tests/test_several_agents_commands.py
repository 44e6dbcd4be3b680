"""``voicebox check`` and ``models --verify`` with ``[agents]``: every agent the config names, each
named by the dialled users that reach it (``voicebox chat`` is in test_chat.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from voicebox.agent import BUILTIN_DIR
from voicebox.agent_check import EXIT_ERRORS, EXIT_OK, EXIT_WARNINGS
from voicebox.agent_directory import NamedAgent, choose_agent, named_agents
from voicebox.cli import _check_generation, main
from voicebox.config import ConfigError, load_config
from voicebox.model_store import ModelError
from voicebox.thinking import llm_check
from voicebox.thinking.llm_check import configured_ggufs

ROOT = Path(__file__).resolve().parents[1]
TWO = {"agents.dental": "riverside_dental", "agents.Plumbing": "harbor_plumbing"}


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "voicebox.toml"
    path.write_text(text)
    return path


# -- which agents, which one ------------------------------------------------------------------------
def test_named_agents_one_per_file_with_the_users_as_written():
    dental_by_path = str(BUILTIN_DIR / "riverside_dental.toml")
    cfg = load_config(None, {**TWO, "agents.teeth": dental_by_path})
    assert named_agents(cfg) == [NamedAgent("riverside_dental", ("dental", "teeth")),
                                 NamedAgent("harbor_plumbing", ("Plumbing",))]
    assert named_agents(load_config()) == [NamedAgent("riverside_dental", ())]


def test_named_agents_keeps_a_missing_file_for_its_caller_to_report():
    cfg = load_config(None, {"agents.dental": "riverside_dental", "agents.gone": "/nowhere/gone.toml"})
    assert [n.spec for n in named_agents(cfg)] == ["riverside_dental", "/nowhere/gone.toml"]


def test_choose_agent_by_dialled_user_name_or_default():
    cfg = load_config(None, {**TWO, "agents.default": "plumbing"})
    assert choose_agent(cfg, "PLUMBING") == "harbor_plumbing"  # matched ignoring case, as on a call
    assert choose_agent(cfg, "dental") == "riverside_dental"
    assert choose_agent(cfg, "birchwood_vet") == "birchwood_vet"  # not a user: a built-in name still works
    assert choose_agent(cfg, None) == "harbor_plumbing"
    assert choose_agent(load_config(), None) == "riverside_dental"  # single agent: as before
    assert choose_agent(load_config(None, {"agents.only": "harbor_plumbing"}), None) == "harbor_plumbing"


def test_choose_agent_without_default_lists_the_users():
    with pytest.raises(ConfigError) as ei:
        choose_agent(load_config(None, TWO), None, "chat")
    msg = str(ei.value)
    assert "no default" in msg and "dialled users: dental, Plumbing" in msg and "voicebox chat dental" in msg


def test_choose_agent_names_the_users_when_nothing_matches():
    with pytest.raises(ConfigError, match=r"agent 'nobody': no such file .*dialled user in \[agents\] "
                                          r"\(dental, Plumbing\)"):
        choose_agent(load_config(None, TWO), "nobody")


# -- voicebox check -----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    """Reports name files relative to the working directory: run where the subprocess tests run."""
    monkeypatch.chdir(ROOT)


def check(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["check", "--no-router", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_check_without_an_argument_checks_every_agent(tmp_path, capsys):
    cfg = write_config(tmp_path, '[agents]\ndental = "riverside_dental"\nteeth = "riverside_dental"\n'
                                 'Plumbing = "harbor_plumbing"\n')
    rc, out, _ = check(capsys, "--config", str(cfg))
    assert rc == EXIT_OK, out
    lines = out.splitlines()
    assert "== dental, teeth: voicebox/agents/riverside_dental.toml ==" in lines
    assert "== Plumbing: voicebox/agents/harbor_plumbing.toml ==" in lines
    assert "'Riverside Dental'" in out and "'Harbor Plumbing'" in out
    assert lines[-1] == "2 agents checked, no errors"
    # harbor_plumbing has warnings (few examples, no transfer target): --strict fails on them.
    assert check(capsys, "--config", str(cfg), "--strict")[0] == EXIT_WARNINGS


def test_check_exits_2_when_any_agent_has_errors_and_checks_the_rest(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "X"\npersona = "p"\n')  # no greeting, no facts
    cfg = write_config(tmp_path, f'[agents]\nvet = "{broken}"\ngone = "{tmp_path}/gone.toml"\n'
                                 'dental = "riverside_dental"\n')
    rc, out, _ = check(capsys, "--config", str(cfg))
    assert rc == EXIT_ERRORS
    assert f"== vet: {broken} ==" in out and f"{broken}: error: greeting: Field required" in out
    assert f"== gone: {tmp_path}/gone.toml ==" in out and "no such file" in out
    assert "'Riverside Dental'" in out  # checked although the ones before it are broken
    assert out.splitlines()[-1] == "3 agents checked; errors in: vet; gone"


def test_check_accepts_a_dialled_user(tmp_path, capsys):
    cfg = write_config(tmp_path, '[agents]\ndental = "riverside_dental"\nplumbing = "harbor_plumbing"\n')
    rc, out, _ = check(capsys, "Plumbing", "--config", str(cfg))
    assert rc == EXIT_OK
    assert "'Harbor Plumbing'" in out and "Riverside" not in out and "==" not in out
    assert check(capsys, "riverside_dental", "--config", str(cfg))[0] == EXIT_OK  # a built-in name still works
    rc, _, err = check(capsys, "nobody", "--config", str(cfg))
    assert rc == 2 and f"voicebox: {cfg}: agent 'nobody': no such file" in err and "(dental, plumbing)" in err


def test_check_of_a_single_agent_config_is_as_before(tmp_path, capsys):
    cfg = write_config(tmp_path, 'agent = "harbor_plumbing"\n')
    rc, out, _ = check(capsys, "--config", str(cfg))
    assert rc == EXIT_OK
    assert out.startswith("voicebox/agents/harbor_plumbing.toml:") and "==" not in out
    assert out.splitlines()[-1].endswith("warnings")
    rc, _, err = check(capsys, "nope", "--config", str(cfg))  # the error is the one it always was
    assert rc == 2 and err.startswith("voicebox: agent 'nope': no such file (built-in agents: ")


# -- voicebox models --verify ----------------------------------------------------------------------------
@pytest.fixture
def ggufs(tmp_path: Path) -> dict[str, Path]:
    """Stand-in GGUF files: resolve() takes any existing path; nothing here loads them."""
    out = {}
    for name in ("small", "big", "bigger"):
        out[name] = tmp_path / f"{name}.gguf"
        out[name].write_bytes(b"GGUF")
    return out


def agent_with_tier(tmp_path: Path, name: str, large: str) -> Path:
    text = (BUILTIN_DIR / "riverside_dental.toml").read_text()
    assert '\nlarge = ""\n' in text
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace('\nlarge = ""\n', f'\nlarge = "{large}"\n', 1))
    return path


def test_verify_covers_every_agents_bigger_tier_once(tmp_path, ggufs):
    a = agent_with_tier(tmp_path, "a", str(ggufs["big"]))
    b = agent_with_tier(tmp_path, "b", str(ggufs["bigger"]))
    c = agent_with_tier(tmp_path, "c", str(ggufs["big"]))  # shares a's: proved once
    remote = agent_with_tier(tmp_path, "remote", "http://10.0.0.5:8080/v1")  # runs elsewhere
    cfg = load_config(None, {"models.llm": str(ggufs["small"]), "agents.one": str(a), "agents.two": str(b),
                             "agents.three": str(c), "agents.far": str(remote),
                             "agents.plain": "harbor_plumbing"})
    assert configured_ggufs(cfg) == [("small", ggufs["small"]), ("large (one, three)", ggufs["big"].resolve()),
                                     ("large (two)", ggufs["bigger"].resolve())]


def test_verify_of_a_single_agent_is_as_before(tmp_path, ggufs):
    a = agent_with_tier(tmp_path, "a", str(ggufs["big"]))
    cfg = load_config(None, {"models.llm": str(ggufs["small"]), "agent": str(a)})
    assert configured_ggufs(cfg) == [("small", ggufs["small"]), ("large", ggufs["big"].resolve())]
    assert configured_ggufs(load_config(None, {"models.llm": str(ggufs["small"])})) == [("small", ggufs["small"])]


def test_verify_names_the_user_whose_tier_or_file_is_wrong(tmp_path, ggufs):
    missing = agent_with_tier(tmp_path, "missing", str(tmp_path / "nowhere.gguf"))
    cfg = load_config(None, {"models.llm": str(ggufs["small"]), "agents.dental": "riverside_dental",
                             "agents.vet": str(missing)})
    with pytest.raises(ModelError, match=r"^large tier of vet \(.*missing\.toml\): llm model .*nowhere\.gguf"):
        configured_ggufs(cfg)
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "X"\n')
    cfg = load_config(None, {"models.llm": str(ggufs["small"]), "agents.vet": str(broken)})
    with pytest.raises(ConfigError, match=r"^\[agents\] vet: .*broken\.toml"):
        configured_ggufs(cfg)


def test_verify_generates_with_each_agents_tier(tmp_path, ggufs, monkeypatch, capsys):
    a = agent_with_tier(tmp_path, "a", str(ggufs["big"]))
    cfg = write_config(tmp_path, f'[models]\nllm = "{ggufs["small"]}"\n[agents]\none = "{a}"\n'
                                 'two = "harbor_plumbing"\n')
    checked = []

    class Done:
        def __init__(self, name: str) -> None:
            self.name = name

        def line(self) -> str:
            return f"{self.name} generates"

    def fake_check(gguf: Path, cfg: object, name: str) -> Done:  # the real one is test_models_verify's
        checked.append((name, gguf))
        return Done(name)

    monkeypatch.setattr(llm_check, "check_generation", fake_check)
    failed = _check_generation(argparse.Namespace(config=cfg, data_dir=None))
    assert failed == 0
    assert checked == [("small", ggufs["small"]), ("large (one)", ggufs["big"].resolve())]
    assert capsys.readouterr().out.splitlines() == ["  small generates", "  large (one) generates"]

    missing = agent_with_tier(tmp_path, "missing", str(tmp_path / "nowhere.gguf"))
    cfg.write_text(f'[models]\nllm = "{ggufs["small"]}"\n[agents]\nvet = "{missing}"\n')
    assert _check_generation(argparse.Namespace(config=cfg, data_dir=None)) == 1
    err = capsys.readouterr().err
    assert err.startswith("voicebox: large tier of vet (") and "Traceback" not in err
