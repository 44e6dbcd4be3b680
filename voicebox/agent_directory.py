"""Which agent answers a call: one for every dialled user (``agent``), or one per user (``[agents]``).

Every agent file is loaded, and checked, at start-up: a broken one stops ``voicebox serve`` with
the error naming its file, never a caller's call. An agent's id (its file name without ``.toml``)
is what call records and metrics call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voicebox.agent import AgentConfig, agent_file, load_agent
from voicebox.config import Config, ConfigError


def agent_id(name_or_path: str) -> str:
    """The id records and metrics use for an agent: its file's name without ``.toml``."""
    return Path(name_or_path).stem


@dataclass
class AgentDirectory:
    """The loaded agents (id -> agent file) and who reaches which."""

    agents: dict[str, AgentConfig]
    routes: dict[str, str]  # dialled user (lower case) -> agent id
    fallback: str | None  # agent id for users not in routes; None: they get 404

    def pick(self, user: str | None) -> str | None:
        """The id of the agent that answers ``user`` (lower case, None: no user part); None: nobody."""
        if user is not None and user in self.routes:
            return self.routes[user]
        return self.fallback

    def describe(self) -> str:
        """One line for the start-up log: who reaches which agent."""
        if not self.routes:
            return f"every dialled user -> {self.fallback}"
        pairs = [f"{user} -> {aid}" for user, aid in self.routes.items()]
        return ", ".join(pairs) + (f", anyone else -> {self.fallback}" if self.fallback else ", anyone else -> 404")


def load_directory(cfg: Config) -> AgentDirectory:
    """Load every agent the configuration names; ConfigError naming the file (or the entry) if one is broken."""
    if cfg.agents is None:
        aid = agent_id(cfg.agent)
        return AgentDirectory({aid: load_agent(cfg.agent)}, {}, aid)
    by_file: dict[Path, str] = {}  # one load per file, however many users reach it
    agents: dict[str, AgentConfig] = {}
    routes: dict[str, str] = {}
    for user, spec in cfg.agents.routes().items():
        try:
            path = agent_file(spec).resolve()
            if path not in by_file:
                aid = agent_id(spec)
                if aid in agents:
                    other = next(p for p, i in by_file.items() if i == aid)
                    raise ConfigError(f"{path} and {other} would both be agent {aid!r} in records and metrics: "
                                      "rename one file")
                agents[aid] = load_agent(str(path))
                by_file[path] = aid
        except ConfigError as e:
            raise ConfigError(f"[agents] {user} = {spec!r}: {e}") from None
        routes[user] = by_file[path]
    fallback = routes[cfg.agents.default.lower()] if cfg.agents.default else None
    return AgentDirectory(agents, routes, fallback)
