"""Where an agent's outcomes go: the [outcomes] section of its agent file.

Secrets are never required in the file itself: each one can be named as an environment
variable or a file instead (a file readable by the service user alone).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voicebox.config import read_secret_file


class Secret(BaseModel):
    """A secret given inline, by environment variable, or by file; exactly one of them."""

    model_config = ConfigDict(extra="forbid")

    value: str | None = Field(None, min_length=1, repr=False)
    env: str | None = Field(None, min_length=1, description="Name of an environment variable holding it.")
    file: Path | None = Field(None, description="A file holding it (its first line).")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Secret":
        given = [k for k in ("value", "env", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of value, env, file")
        return self

    def read(self) -> str:
        """The secret; ValueError (naming where it was looked for) when it is missing."""
        if self.value is not None:
            return self.value
        if self.env is not None:
            found = os.environ.get(self.env)
            if not found:
                raise ValueError(f"environment variable {self.env} is not set")
            return found
        assert self.file is not None
        return read_secret_file(self.file)


class Retries(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tries: int = Field(12, ge=1, le=1000, description="Tries before a delivery is dead-lettered.")
    first_delay_s: float = Field(5.0, gt=0, description="Back-off before the second try; doubles each time.")
    max_delay_s: float = Field(1800.0, gt=0, description="The back-off never grows beyond this.")
    jitter: float = Field(0.2, ge=0, le=1, description="Each delay varies by up to this fraction.")


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., pattern=r"^https?://", description="Where each outcome is POSTed as JSON.")
    secret: Secret = Field(..., description="Key of the HMAC-SHA256 signature header.")
    timeout_s: float = Field(10.0, gt=0, le=120)
    retries: Retries = Field(default_factory=Retries)


class EmailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: list[str] = Field(..., min_length=1, description="The business's addresses.")
    sender: str = Field(..., min_length=3, description="The From address.")
    host: str = Field(..., min_length=1)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="'none' only for a relay on the same machine or LAN."
    )
    username: str | None = None
    password: Secret | None = None
    timeout_s: float = Field(20.0, gt=0, le=120)
    retries: Retries = Field(default_factory=Retries)


class CalendarConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., pattern=r"^https?://", description="The CalDAV calendar's URL (a collection).")
    username: str | None = None
    password: Secret | None = None
    busy_check: bool = Field(True, description="Offer only slots the calendar's free/busy shows free.")
    timeout_s: float = Field(15.0, gt=0, le=120)
    retries: Retries = Field(default_factory=Retries)


class OutcomesConfig(BaseModel):
    """An agent's [outcomes]. With nothing configured, outcomes are still stored and listed by
    `voicebox outcomes`; they are just not sent anywhere."""

    model_config = ConfigDict(extra="forbid")

    webhook: WebhookConfig | None = None
    email: EmailConfig | None = None
    calendar: CalendarConfig | None = None
