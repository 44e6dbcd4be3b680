"""Agent configuration: who answers the phone and what they know.

One TOML file per agent. The built-in agents live in ``voicebox/agents/``; a path to any other
file works the same way.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voicebox.config import ConfigError, format_validation_error

BUILTIN_DIR = Path(__file__).parent / "agents"


class Topic(BaseModel):
    """A question the agent answers verbatim, recognized by keywords."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1)
    keywords: list[str] = Field(..., min_length=1, description="Words that point to this topic (stemmed).")
    answer: str = Field(..., min_length=1, description="Spoken exactly as written.")
    min_hits: int = Field(1, ge=1, description="Keywords the caller must use before this topic is picked.")


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, description="The business or agent's name.")
    persona: str = Field(..., min_length=1, description="One or two sentences on how the agent speaks.")
    greeting: str = Field(..., min_length=1, description="Spoken as soon as the call is answered.")
    facts: list[str] = Field(..., min_length=1, description="Everything the agent may state.")
    topics: list[Topic] = Field(default_factory=list, description="Questions answered verbatim.")
    goodbye: str = Field("Thanks for calling. Goodbye!", min_length=1)
    goodbye_phrases: list[str] = Field(
        default_factory=lambda: ["bye", "goodbye", "good bye", "that's all", "that is all"],
        description="Caller phrases that end the call (matched as whole words, case-insensitive).",
    )
    apology: str = Field(
        "I'm sorry, something went wrong on our side. Please call again in a moment. Goodbye.",
        min_length=1,
        description="Spoken before hanging up after an internal error.",
    )
    no_information: str = Field(
        "I'm sorry, I don't have that information. I can put you through to the front desk.",
        min_length=1,
        description="Said instead of anything the model cannot back with a fact.",
    )
    not_understood: str = Field("Sorry, I didn't catch that. Could you say it again?", min_length=1)
    max_call_goodbye: str = Field(
        "I'm sorry, we've reached the time limit for this call. Goodbye.", min_length=1
    )

    @field_validator("facts", "goodbye_phrases")
    @classmethod
    def _no_blank_items(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("items must not be blank")
        return v


def load_agent(name_or_path: str) -> AgentConfig:
    """Load a built-in agent by name, or an agent TOML by path; ConfigError names the field."""
    path = Path(name_or_path)
    if not path.suffix:
        path = BUILTIN_DIR / f"{name_or_path}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in BUILTIN_DIR.glob("*.toml")))
        raise ConfigError(f"agent {name_or_path!r}: no such file (built-in agents: {known})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path))) from None
