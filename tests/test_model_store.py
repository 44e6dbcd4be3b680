"""The model manifest: locating packaged model files, checking them, assembling split ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import voicebox
from voicebox.config import ConfigError, load_config
from voicebox.model_store import (
    DEFAULT_MANIFEST,
    FileEntry,
    Manifest,
    ModelEntry,
    ModelError,
    assemble,
    check_files,
    load_manifest,
    locate,
    resolve,
    sha256_of,
)

AGENT_REL = "voicebox/agents/riverside_dental.toml"
AGENT_FILE = Path(voicebox.__file__).parent / "agents" / "riverside_dental.toml"


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest()


def fake_entry(**kw) -> ModelEntry:
    data = dict(
        name="fake",
        kind="stt",
        packages=["fake-pkg"],
        entry=".",
        files=[FileEntry(path=AGENT_REL, size=AGENT_FILE.stat().st_size, sha256=sha256_of(AGENT_FILE))],
    )
    data.update(kw)
    return ModelEntry.model_validate(data)


# -- the real manifest ---------------------------------------------------------------------------


def test_manifest_has_every_default_model(manifest):
    models = load_config().models
    for name, kind in [(models.stt, "stt"), (models.llm, "llm"), (models.tts, "tts")]:
        entry = manifest.get(name)
        assert entry is not None, f"default {kind} model {name} not in {DEFAULT_MANIFEST}"
        assert entry.kind == kind
        assert entry.files
    assert manifest.get("whisper-base") is not None
    assert manifest.get("no-such-model") is None
    names = [m.name for m in manifest.model]
    assert len(names) == len(set(names))


def test_installed_models_pass_the_quick_check(manifest):
    for entry in manifest.model:
        statuses = check_files(entry, deep=False)
        assert len(statuses) == len(entry.files)
        bad = [(s.path, s.problem) for s in statuses if not s.ok]
        assert not bad, f"{entry.name}: {bad}"
        for s in statuses:
            assert s.found is not None and s.found.is_file()


def test_locate():
    assert locate(AGENT_REL) == AGENT_FILE
    assert locate("voicebox/agents/nope.toml") is None
    assert locate("no_such_package_xyz/file.bin") is None


def test_resolve_whisper_tiny_is_a_model_dir(manifest, tmp_path):
    p = resolve("whisper-tiny-en", "stt", tmp_path, manifest)
    assert p.is_dir()
    assert (p / "model.bin").is_file()
    assert (p / "config.json").is_file()
    assert not (tmp_path / "models").exists()  # not a split model: nothing is assembled


def test_resolve_llm_and_tts_are_files(manifest, tmp_path):
    llm = resolve("smollm2-135m", "llm", tmp_path, manifest)
    assert llm.is_file() and llm.suffix == ".gguf"
    tts = resolve("piper-joe-medium", "tts", tmp_path, manifest)
    assert tts.is_file() and tts.name == "en_US-joe-medium.onnx"


def test_resolve_existing_path_is_returned(manifest, tmp_path):
    own = tmp_path / "my-model.gguf"
    own.write_bytes(b"GGUF")
    assert resolve(str(own), "llm", tmp_path, manifest) == own
    assert resolve(str(tmp_path), "stt", tmp_path, manifest) == tmp_path


def test_resolve_unknown_name_lists_known_names(manifest, tmp_path):
    with pytest.raises(ModelError) as ei:
        resolve("whisper-huge", "stt", tmp_path, manifest)
    msg = str(ei.value)
    assert "whisper-huge" in msg
    assert "whisper-tiny-en" in msg and "whisper-base" in msg
    assert "smollm2-135m" not in msg  # only models of the asked kind


def test_resolve_wrong_kind(manifest, tmp_path):
    with pytest.raises(ModelError, match="whisper-tiny-en is a stt model, not llm"):
        resolve("whisper-tiny-en", "llm", tmp_path, manifest)


def test_resolve_reports_damaged_files(tmp_path):
    entry = fake_entry(
        name="broken",
        files=[FileEntry(path=AGENT_REL, size=AGENT_FILE.stat().st_size + 1, sha256="0" * 64)],
    )
    with pytest.raises(ModelError, match="broken") as ei:
        resolve("broken", "stt", tmp_path, Manifest(model=[entry]))
    assert AGENT_REL in str(ei.value)


# -- check_files on a fake entry -----------------------------------------------------------------


def test_check_files_wrong_size_is_not_ok():
    real = AGENT_FILE.stat().st_size
    entry = fake_entry(files=[FileEntry(path=AGENT_REL, size=real + 7, sha256=sha256_of(AGENT_FILE))])
    (status,) = check_files(entry, deep=False)
    assert not status.ok
    assert status.found == AGENT_FILE
    assert str(real) in status.problem and str(real + 7) in status.problem


def test_check_files_right_size_wrong_hash():
    entry = fake_entry(files=[FileEntry(path=AGENT_REL, size=AGENT_FILE.stat().st_size, sha256="0" * 64)])
    assert check_files(entry, deep=False)[0].ok  # the quick check only looks at the size
    (deep,) = check_files(entry, deep=True)
    assert not deep.ok
    assert "sha256" in deep.problem


def test_check_files_good_file_deep():
    (status,) = check_files(fake_entry(), deep=True)
    assert status.ok and status.problem == ""


def test_check_files_missing_file_says_what_to_install():
    entry = fake_entry(files=[FileEntry(path="voicebox/nope/model.bin", size=1, sha256="0" * 64)])
    (status,) = check_files(entry)
    assert not status.ok
    assert status.found is None
    assert "pip install --no-deps fake-pkg" in status.problem


def test_sha256_of_matches_hashlib(tmp_path):
    p = tmp_path / "blob"
    data = bytes(range(256)) * 5000
    p.write_bytes(data)
    assert sha256_of(p, chunk=1000) == hashlib.sha256(data).hexdigest()


# -- manifest validation -------------------------------------------------------------------------

GOOD_MANIFEST = """
[[model]]
name = "m"
kind = "stt"
packages = ["p"]
entry = "."
files = [{ path = "p/f.bin", size = 1, sha256 = "%s" }]
"""


def test_manifest_file_parses(tmp_path):
    p = tmp_path / "manifest.toml"
    p.write_text(GOOD_MANIFEST % ("a" * 64))
    assert load_manifest(p).get("m").files[0].size == 1


@pytest.mark.parametrize("sha", ["A" * 64, "a" * 63, "g" * 64, ""])
def test_manifest_bad_sha256(tmp_path, sha):
    p = tmp_path / "manifest.toml"
    p.write_text(GOOD_MANIFEST % sha)
    with pytest.raises(ConfigError, match=r"model\.0\.files\.0\.sha256"):
        load_manifest(p)


def test_manifest_bad_kind_and_missing_and_invalid(tmp_path):
    p = tmp_path / "manifest.toml"
    p.write_text((GOOD_MANIFEST % ("a" * 64)).replace('kind = "stt"', 'kind = "vad"'))
    with pytest.raises(ConfigError, match=r"model\.0\.kind"):
        load_manifest(p)
    p.write_text("[[model]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_manifest(p)
    with pytest.raises(ConfigError, match="not found"):
        load_manifest(tmp_path / "absent.toml")


# -- assembly ------------------------------------------------------------------------------------


def small_assembly_entry(sha: str, parts: list[str], copy: list[str] | None = None) -> ModelEntry:
    size = sum(locate(p).stat().st_size for p in parts if locate(p) is not None)
    return fake_entry(
        name="tiny-split",
        assemble={"target": "model.bin", "size": size, "sha256": sha, "parts": parts, "copy": copy or []},
    )


def test_assemble_small_split_model(tmp_path):
    data = AGENT_FILE.read_bytes()
    sha = hashlib.sha256(data + data).hexdigest()
    entry = small_assembly_entry(sha, [AGENT_REL, AGENT_REL], ["voicebox/__init__.py"])
    dest = assemble(entry, tmp_path)
    assert dest == tmp_path / "models" / "tiny-split"
    assert (dest / "model.bin").read_bytes() == data + data
    assert (dest / "__init__.py").is_file()
    assert not list(dest.glob("*.partial"))


def test_assemble_wrong_sha_leaves_nothing(tmp_path):
    entry = small_assembly_entry("0" * 64, [AGENT_REL])
    with pytest.raises(ModelError, match="sha256"):
        assemble(entry, tmp_path)
    dest = tmp_path / "models" / "tiny-split"
    assert not (dest / "model.bin").exists()
    assert not list(dest.glob("*.partial"))


def test_assemble_missing_part(tmp_path):
    entry = small_assembly_entry("0" * 64, [AGENT_REL, "voicebox/nope.part"])
    with pytest.raises(ModelError, match="voicebox/nope.part") as ei:
        assemble(entry, tmp_path)
    assert "pip install --no-deps fake-pkg" in str(ei.value)


@pytest.fixture(scope="module")
def whisper_base(tmp_path_factory, manifest):
    """Assemble whisper-base (~145 MB copy) once for the module."""
    data_dir = tmp_path_factory.mktemp("data")
    entry = manifest.get("whisper-base")
    dest = assemble(entry, data_dir)
    return entry, data_dir, dest


def test_assemble_whisper_base(whisper_base):
    entry, data_dir, dest = whisper_base
    assert dest == data_dir / "models" / "whisper-base"
    model = dest / "model.bin"
    assert model.stat().st_size == entry.assemble.size == 145217607
    for rel in entry.assemble.copy_:
        name = Path(rel).name
        assert (dest / name).stat().st_size == locate(rel).stat().st_size
    assert not list(dest.glob("*.partial"))


def test_resolve_whisper_base_reuses_the_assembly(whisper_base, manifest):
    entry, data_dir, dest = whisper_base
    before = (dest / "model.bin").stat()
    assert resolve("whisper-base", "stt", data_dir, manifest) == dest
    after = (dest / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
