"""Where a setting comes from: defaults < TOML < VOICEBOX_* environment < command line; secrets from files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voicebox.config import ConfigError, load_config, masked

ROOT = Path(__file__).resolve().parents[1]


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "voicebox.toml"
    path.write_text(text)
    return path


def test_each_layer_wins_over_the_ones_before(tmp_path):
    path = _toml(tmp_path, "[sip]\nport = 5070\nrtp_port = 41000\nmax_calls = 2\n")
    env = {"VOICEBOX_SIP__PORT": "5080", "VOICEBOX_SIP__RTP_PORT": "42000"}
    cfg = load_config(path, {"sip.port": 5090}, env)
    assert cfg.sip.port == 5090  # command line over environment
    assert cfg.sip.rtp_port == 42000  # environment over the file
    assert cfg.sip.max_calls == 2  # the file over the default
    assert cfg.sip.tcp is True  # the default, untouched by a layer that set its neighbours


def test_no_environment_leaves_the_file_alone(tmp_path):
    path = _toml(tmp_path, "[sip]\nport = 5070\n")
    assert load_config(path, None, {}).sip.port == 5070


def test_names_are_case_insensitive_and_sections_nest():
    cfg = load_config(None, None, {"voicebox_metrics__port": "0", "VOICEBOX_SIP__REGISTER__REGISTRAR": "sip:pbx.lan",
                                   "VOICEBOX_SIP__REGISTER__USER": "201", "VOICEBOX_DATA_DIR": "/srv/voicebox"})
    assert cfg.metrics.port == 0
    assert cfg.sip.registration is not None and cfg.sip.registration.user == "201"  # [sip.register]
    assert cfg.data_dir == Path("/srv/voicebox")


def test_a_list_is_given_as_json():
    assert load_config(None, None, {"VOICEBOX_SIP__CODECS": '["PCMA", "PCMU"]'}).sip.codecs == ["PCMA", "PCMU"]


def test_a_misspelt_key_in_a_section_is_refused_naming_where_it_came_from():
    with pytest.raises(ConfigError) as e:
        load_config(None, None, {"VOICEBOX_SIP__PROT": "5070"})
    assert "VOICEBOX_* environment" in str(e.value) and "sip.prot" in str(e.value)


def test_a_bad_value_from_the_environment_names_the_field():
    with pytest.raises(ConfigError, match=r"sip\.port: Input should be less than or equal to 65535"):
        load_config(None, None, {"VOICEBOX_SIP__PORT": "70000"})


def test_other_voicebox_variables_are_not_settings():
    # The tests' own VOICEBOX_ASTERISK, for one: not a setting, and not an error.
    assert load_config(None, None, {"VOICEBOX_ASTERISK": "/usr/sbin/asterisk"}).sip.port == 5060


def test_secrets_come_from_files(tmp_path):
    (tmp_path / "digest").write_text("correct horse\n")
    (tmp_path / "pbx").write_text("battery staple\nsecond line is ignored\n")
    cfg = load_config(None, {"sip.register.registrar": "sip:pbx.lan", "sip.register.user": "201",
                             "sip.register.password_file": str(tmp_path / "pbx")},
                      {"VOICEBOX_SIP__AUTH_USER": "carrier",
                       "VOICEBOX_SIP__AUTH_PASSWORD_FILE": str(tmp_path / "digest")})
    assert cfg.sip.auth_password == "correct horse"
    assert cfg.sip.registration.password == "battery staple"


@pytest.mark.parametrize("setup, says", [
    (lambda d: None, "auth_password_file: cannot read"),
    (lambda d: (d / "secret").write_text(""), "is empty"),
])
def test_an_unusable_secret_file_is_a_config_error(tmp_path, setup, says):
    setup(tmp_path)
    with pytest.raises(ConfigError, match=says):
        load_config(None, {"sip.auth_user": "carrier", "sip.auth_password_file": str(tmp_path / "secret")}, {})


def test_a_secret_and_its_file_together_are_refused(tmp_path):
    (tmp_path / "secret").write_text("x\n")
    with pytest.raises(ConfigError, match="give auth_password or auth_password_file, not both"):
        load_config(None, {"sip.auth_user": "carrier", "sip.auth_password": "y",
                           "sip.auth_password_file": str(tmp_path / "secret")}, {})


def test_masked_hides_set_secrets_only():
    dumped = {"sip": {"auth_password": "hunter2", "register": {"password": ""}, "port": 5060}}
    assert masked(dumped) == {"sip": {"auth_password": "********", "register": {"password": ""}, "port": 5060}}


def test_voicebox_config_prints_the_layers_with_secrets_masked(tmp_path):
    (tmp_path / "secret").write_text("hunter2\n")
    path = _toml(tmp_path, "[sip]\nport = 5070\nauth_user = \"carrier\"\n")
    env = dict(os.environ, VOICEBOX_SIP__RTP_PORT="42000", VOICEBOX_SIP__AUTH_PASSWORD_FILE=str(tmp_path / "secret"))
    out = subprocess.run([sys.executable, "-m", "voicebox", "config", "--config", str(path), "--sip-port", "5090"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "hunter2" not in out.stdout
    shown = json.loads(out.stdout)
    assert (shown["sip"]["port"], shown["sip"]["rtp_port"], shown["sip"]["auth_password"]) == (5090, 42000, "********")


def test_voicebox_config_refuses_a_bad_environment_with_status_2(tmp_path):
    env = dict(os.environ, VOICEBOX_SIP__PORT="not a port")
    out = subprocess.run([sys.executable, "-m", "voicebox", "config"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 2 and "sip.port" in out.stderr and "Traceback" not in out.stderr
