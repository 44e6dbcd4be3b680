"""Agent configuration: who answers the phone and what they know.

One TOML file per agent. The built-in agents live in ``voicebox/agents/``; a path to any other
file works the same way.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

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
    action: Literal["answer", "transfer", "hangup"] = Field(
        "answer", description="answer: say `answer`; transfer: announce and REFER; hangup: say goodbye and end."
    )


class Actions(BaseModel):
    """What the agent can do to the call besides talking."""

    model_config = ConfigDict(extra="forbid")

    transfer_uri: str | None = Field(
        None, pattern=r"^sips?:", description="Where a caller who asks for a person is sent (SIP REFER)."
    )
    transfer_announcement: str = Field("Let me put you through to the front desk.", min_length=1)
    no_transfer: str = Field(
        "I'm sorry, there's nobody I can put you through to right now. Please call back during opening hours.",
        min_length=1,
        description="Said when a transfer is asked for but none is configured or it failed.",
    )
    dtmf_prompt: str = Field("", description="Offered with re-prompts, e.g. 'press 0 for the front desk'.")
    dtmf: dict[str, Literal["transfer", "hangup", "repeat"]] = Field(
        default_factory=lambda: {"0": "transfer"}, description="Key → action (RFC 4733 events or SIP INFO)."
    )

    @field_validator("dtmf")
    @classmethod
    def _keys_are_dtmf(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if k not in "0123456789*#ABCD" or len(k) != 1]
        if bad:
            raise ValueError(f"not DTMF keys: {bad}")
        return v


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, description="The business or agent's name.")
    persona: str = Field(..., min_length=1, description="One or two sentences on how the agent speaks.")
    greeting: str = Field(..., min_length=1, description="Spoken as soon as the call is answered.")
    facts: list[str] = Field(..., min_length=1, description="Everything the agent may state.")
    topics: list[Topic] = Field(default_factory=list, description="Questions answered verbatim.")
    actions: Actions = Field(default_factory=Actions)
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
