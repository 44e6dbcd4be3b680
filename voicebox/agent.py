"""Agent configuration: who answers the phone and what they know.

One TOML file per agent. The built-in agents live in ``voicebox/agents/``; a path to any other
file works the same way.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voicebox.config import ConfigError, format_validation_error, read_toml

BUILTIN_DIR = Path(__file__).parent / "agents"


class Intent(BaseModel):
    """Something callers ask for, learned from example phrasings, and how the agent answers it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$")
    examples: list[str] = Field(..., min_length=3, description="Ways callers say it; the router learns from these.")
    answer: str | None = Field(
        None, description="Reply template; {fact} placeholders are filled from [facts]. Omit to ask the model."
    )
    action: Literal["answer", "model", "transfer", "hangup"] = Field(
        "answer",
        description="answer: say the template; model: the language model replies; "
        "transfer: say it, then REFER to the front desk; hangup: say it, then end the call.",
    )
    complex: bool = Field(False, description="Needs the bigger model tier when one is configured.")
    sensitive: bool = Field(False, description="Payment talk: never recorded.")

    @model_validator(mode="after")
    def _answer_needed(self) -> "Intent":
        if self.action == "answer" and not self.answer:
            raise ValueError("an intent with action 'answer' needs an answer")
        return self


class Tiers(BaseModel):
    """Escalation past the small model: a bigger one, then a person."""

    model_config = ConfigDict(extra="forbid")

    large: str = Field("", description="GGUF path or manifest name, or http(s) URL of an OpenAI-compatible server.")
    large_model: str = Field("default", description="Model name sent to an OpenAI-compatible server.")
    large_timeout_ms: int = Field(
        3000, ge=100, le=60000,
        description="An OpenAI-compatible server silent this long is treated as down: the caller gets a person.",
    )
    min_mean_logprob: float = Field(
        -1.0, le=0, description="A small-model sentence below this mean token log-probability is not trusted."
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
    facts: dict[str, str] = Field(..., min_length=1, description="Named facts: all the agent may state.")
    intents: list[Intent] = Field(default_factory=list, description="What callers ask for, and the answers.")
    reprompts: list[str] = Field(
        default_factory=lambda: ["Sorry, I didn't catch that. Could you say it again?"],
        min_length=1,
        description="The ladder for unclear turns, one step per consecutive unclear turn.",
    )
    after_reprompts: Literal["transfer", "goodbye"] = Field(
        "transfer", description="What happens after the last re-prompt step."
    )
    actions: Actions = Field(default_factory=Actions)
    tiers: Tiers = Field(default_factory=Tiers)
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
    model_failed: str = Field(
        "Sorry, I lost my train of thought there. Could you say that again?",
        min_length=1,
        description="Said when the model's worker process fails mid-reply; the call goes on.",
    )
    no_information: str = Field(
        "I'm sorry, I don't have that information. I can put you through to the front desk.",
        min_length=1,
        description="Said instead of anything the model cannot back with a fact.",
    )
    max_call_goodbye: str = Field(
        "I'm sorry, we've reached the time limit for this call. Goodbye.", min_length=1
    )
    confirm_below_logprob: float = Field(
        -0.5, ge=-5.0, le=0.0,
        description="A transcript this unsure (mean token log-probability) that carries a day, time, "
        "name or number is read back for a yes before it is acted on.",
    )

    @field_validator("goodbye_phrases", "reprompts")
    @classmethod
    def _no_blank_items(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("items must not be blank")
        return v

    @field_validator("facts")
    @classmethod
    def _no_blank_facts(cls, v: dict[str, str]) -> dict[str, str]:
        blank = [k for k, text in v.items() if not text.strip()]
        if blank:
            raise ValueError(f"blank facts: {blank}")
        return v

    @model_validator(mode="after")
    def _templates_use_known_facts(self) -> "AgentConfig":
        names = [i.name for i in self.intents]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"intents: names used twice: {dupes}")
        for i, intent in enumerate(self.intents):
            for field in template_fields(intent.answer or ""):
                if field not in self.facts:
                    raise ValueError(
                        f"intents.{i}.answer ({intent.name}): unknown fact {{{field}}}; "
                        f"known: {', '.join(sorted(self.facts))}"
                    )
        return self

    def intent(self, name: str) -> Intent | None:
        return next((i for i in self.intents if i.name == name), None)

    def fill(self, template: str) -> str:
        return template.format_map(self.facts)


def template_fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def agent_file(name_or_path: str) -> Path:
    """The TOML of a built-in agent (by name) or the user's own (by path)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = BUILTIN_DIR / f"{name_or_path}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in BUILTIN_DIR.glob("*.toml")))
        raise ConfigError(f"agent {name_or_path!r}: no such file (built-in agents: {known})")
    return path


def load_agent(name_or_path: str) -> AgentConfig:
    """Load a built-in agent by name, or an agent TOML by path; ConfigError names the field."""
    path = agent_file(name_or_path)
    raw = read_toml(path, "agent file")
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path))) from None
