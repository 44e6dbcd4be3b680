"""Scenario files (the format of ../shared/corpus/scenarios.json), validated on load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voicebox.config import ConfigError, format_validation_error


class Turn(BaseModel):
    model_config = ConfigDict(extra="allow")  # corpus files carry generation notes (voice, speed…)

    wav: str = Field(..., min_length=1)
    text: str = ""
    barge_after_ms: int | None = Field(None, ge=0)
    expect_intent: str | None = None
    expect_any: list[str] = Field(default_factory=list)
    expect: Literal[
        "transfer", "hangup", "reprompt", "reprompt_or_silence", "no_pii_in_logs", "no_reply_during_pause"
    ] | None = None


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1)
    turns: list[Turn] = Field(..., min_length=1)


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    about: str = ""
    scenarios: list[Scenario] = Field(..., min_length=1)


def load_scenarios(path: Path) -> tuple[list[Scenario], Path]:
    """The scenarios and the folder their WAV paths are relative to; ConfigError names the field."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: scenario file not found") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
    try:
        parsed = ScenarioFile.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path))) from None
    base = Path(path).parent
    missing = [t.wav for s in parsed.scenarios for t in s.turns if not (base / t.wav).exists()]
    if missing:
        raise ConfigError(f"{path}: WAV files not found: {', '.join(missing[:5])}")
    return parsed.scenarios, base
