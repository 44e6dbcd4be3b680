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


# -- the commands that look at agents without serving them: check, chat, models --verify ----------
@dataclass(frozen=True)
class NamedAgent:
    """An agent file the configuration names, and the dialled users that reach it."""

    spec: str  # as the config writes it: a built-in name or a path
    users: tuple[str, ...]  # dialled users as written in [agents]; empty: ``agent``, every user

    def label(self) -> str:
        """Who reaches it, for headings and messages: ``sales, orders`` (or ``agent`` without [agents])."""
        return ", ".join(self.users) if self.users else "agent"


def named_agents(cfg: Config) -> list[NamedAgent]:
    """Every agent the configuration names, once per file, in the order the config lists them.

    Nothing is loaded: ``voicebox check`` reports a broken (or missing) file among the others
    instead of stopping at it, as ``load_directory`` must for ``serve``.
    """
    if cfg.agents is None:
        return [NamedAgent(cfg.agent, ())]
    by_key: dict[str, tuple[str, list[str]]] = {}  # file (or, for a missing one, spec) -> spec, users
    for user, spec in cfg.agents.users().items():
        try:
            key = str(agent_file(spec).resolve())  # two users, one file written two ways: one agent
        except ConfigError:
            key = spec  # reported by whoever loads it, with the user's name
        by_key.setdefault(key, (spec, []))[1].append(user)
    return [NamedAgent(spec, tuple(users)) for spec, users in by_key.values()]


def choose_agent(cfg: Config, name: str | None, command: str = "chat") -> str:
    """The agent (built-in name or path) that ``voicebox <command> [name]`` means.

    ``name`` may be a dialled user from ``[agents]`` (matched ignoring case, as on a call), a
    built-in agent name or a path; a user wins, since the config is what the integrator wrote.
    Without ``name``: the single agent, ``[agents]``'s default, or the only agent listed; with
    several and no default, ConfigError listing the users to choose from.
    """
    if name:
        if cfg.agents is not None:
            spec = cfg.agents.routes().get(name.lower())
            if spec is not None:
                return spec
            try:
                agent_file(name)
            except ConfigError as e:
                users = ", ".join(cfg.agents.users())
                raise ConfigError(f"{e}; nor is it a dialled user in [agents] ({users})") from None
        return name
    if cfg.agents is None:
        return cfg.agent
    if cfg.agents.default:
        return cfg.agents.routes()[cfg.agents.default.lower()]
    named = named_agents(cfg)
    if len(named) == 1:
        return named[0].spec
    users = ", ".join(cfg.agents.users())
    first = next(iter(cfg.agents.users()))
    raise ConfigError(f"[agents] names {len(named)} agents and no default: say which, e.g. "
                      f"'voicebox {command} {first}' (dialled users: {users})")
