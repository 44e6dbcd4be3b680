"""Outcomes for ``voicebox serve``: the store in the data directory, each agent's channels built
from its [outcomes] section, the outbox delivering over them, and retention purging old ones.

The dialog is handed the service as its ``OutcomeSink``: ``record`` stores (and wakes the
outbox), ``is_free`` checks the local table of booked slots and, where a channel can tell (a
calendar's free/busy), that channel too.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from voicebox.agent import AgentConfig
from voicebox.outcomes.channel import Channel
from voicebox.outcomes.draft import OutcomeDraft, OutcomeNotStored
from voicebox.outcomes.outbox import Outbox, Route, Wait, real_wait
from voicebox.outcomes.store import OutcomeStore, outcomes_path
from voicebox.outcomes.webhook import WebhookChannel

if TYPE_CHECKING:
    from voicebox.config import Config

log = logging.getLogger("voicebox.outcomes")

DAY_S = 86400.0


class OutcomeSetupError(Exception):
    """An agent's [outcomes] cannot be used (a missing secret, a channel this build lacks)."""


def build_routes(agents: Mapping[str, AgentConfig], clock: Callable[[], float] = time.time) -> list[Route]:
    """One route per configured channel of each agent (agent id → its file's config)."""
    routes: list[Route] = []
    for agent_id, agent in agents.items():
        cfg = agent.outcomes
        try:
            if cfg.webhook is not None:
                routes.append(Route(agent_id, WebhookChannel(cfg.webhook, clock), cfg.webhook.retries))
            if cfg.email is not None:
                routes.append(Route(agent_id, _email_channel(cfg.email), cfg.email.retries))
            if cfg.calendar is not None:
                zone = agent.hours.zone if agent.hours is not None else dt.timezone.utc
                routes.append(Route(agent_id, _calendar_channel(cfg.calendar, zone), cfg.calendar.retries))
        except ValueError as e:  # Secret.read: the env variable or file it names is missing
            raise OutcomeSetupError(f"agent {agent_id}: outcomes: {e}") from None
    return routes


def _email_channel(cfg: object) -> Channel:
    try:
        from voicebox.outcomes.email_channel import EmailChannel
    except ImportError as e:
        raise OutcomeSetupError(f"outcomes.email is configured but email delivery is unavailable: {e}") from None
    return EmailChannel(cfg)  # type: ignore[arg-type]


def _calendar_channel(cfg: object, zone: dt.tzinfo) -> Channel:
    try:
        from voicebox.outcomes.calendar_channel import CalendarChannel
    except ImportError as e:
        raise OutcomeSetupError(f"outcomes.calendar is configured but calendar delivery is unavailable: {e}") from None
    return CalendarChannel(cfg, zone)  # type: ignore[arg-type]


class OutcomeService:
    """Implements ``OutcomeSink``. ``agents`` maps each agent id (its file's stem, as in
    ``OutcomeDraft.agent``) to its config; ``retention_days`` is the call records' retention."""

    def __init__(
        self,
        data_dir: Path,
        agents: Mapping[str, AgentConfig],
        retention_days: float,
        clock: Callable[[], float] = time.time,
        wait: Wait = real_wait,
    ) -> None:
        self.routes = build_routes(agents, clock)
        names: dict[str, list[str]] = {}
        for r in self.routes:
            names.setdefault(r.agent, []).append(r.channel.name)
        self.store = OutcomeStore(outcomes_path(data_dir), names, clock)
        self.outbox = Outbox(self.store, self.routes, clock, wait)
        self.retention_s = retention_days * DAY_S
        self.clock = clock
        self._stop = threading.Event()
        self._retention = threading.Thread(target=self._purge_daily, name="outcomes-retention", daemon=True)

    def start(self) -> None:
        """Purges expired outcomes, then resumes every delivery an earlier run left pending."""
        self.purge()
        self.outbox.start()
        self._retention.start()
        log.info("outcomes: %s; channels: %s", self.store.path,
                 ", ".join(f"{r.agent}/{r.channel.name}" for r in self.routes) or "none")

    def stop(self) -> None:
        self._stop.set()
        self.outbox.stop()
        if self._retention.is_alive():
            self._retention.join(5)
        self.store.close()

    def purge(self) -> int:
        return self.store.purge(self.retention_s, self.clock())

    def _purge_daily(self) -> None:
        while not self._stop.wait(DAY_S):
            try:
                self.purge()
            except Exception as e:  # noqa: BLE001 -- retention retries tomorrow; the outbox goes on
                log.error("error outcomes.purge_failed %s", e, extra={"code": "outcomes.purge_failed"})

    # --- OutcomeSink ---------------------------------------------------------------------------

    def is_free(self, agent: str, start: dt.datetime, end: dt.datetime) -> bool:
        if not self.store.is_free(agent, start, end):
            return False
        for r in self.routes:
            check = getattr(r.channel, "is_free", None)
            if r.agent != agent or check is None:
                continue
            try:
                if not check(start, end):
                    return False
            except Exception as e:  # noqa: BLE001 -- an unreachable calendar leaves the local table to decide
                log.warning("outcomes.busy_check_failed agent=%s channel=%s: %s", agent, r.channel.name, e)
        return True

    def record(self, draft: OutcomeDraft) -> str:
        oid = self.store.record(draft)
        self.outbox.wake(draft.agent)
        return oid


def service_for_serve(cfg: "Config", agents: Mapping[str, AgentConfig]) -> OutcomeService:
    """What ``voicebox serve`` runs: every agent's outcomes (``AgentDirectory.agents``: id →
    agent file) in ``cfg.data_dir``, kept as long as call records. Raises ``OutcomeSetupError``
    (one line for the operator) when it cannot be set up."""
    try:
        return OutcomeService(cfg.data_dir, agents, cfg.privacy.retention_days)
    except (OutcomeNotStored, OSError) as e:
        raise OutcomeSetupError(f"outcomes database: {e}") from None
