"""OutcomeService: what `voicebox serve` runs. An agent's [outcomes] becomes channels, a recorded
outcome is delivered at once, and no field reaches the logs (issue #19, items 1, 2 and 4)."""

from __future__ import annotations

import datetime as dt
import logging
import stat
import threading
from zoneinfo import ZoneInfo

import pytest

from tests.outcomes.receiver import SECRET, Receiver
from voicebox.agent import AgentConfig
from voicebox.outcomes.draft import OutcomeDraft, SlotTaken
from voicebox.outcomes.outbox import real_wait
from voicebox.outcomes.service import OutcomeService, OutcomeSetupError
from voicebox.outcomes.store import outcomes_path

NAME, PHONE = "Dana Whitfield", "+12125550123"
NINE = dt.datetime(2026, 12, 8, 9, 0, tzinfo=ZoneInfo("Europe/London"))


def agent(outcomes: dict) -> AgentConfig:
    return AgentConfig(name="A clinic", persona="Brief.", greeting="Hello.", facts={"phone": "555"}, outcomes=outcomes)


def booking(at: dt.datetime = NINE) -> OutcomeDraft:
    return OutcomeDraft(kind="booking", agent="clinic", session_id="0badcafe", fields={"name": NAME, "phone": PHONE},
                        summary=f"Booking for {NAME}", start=at, end=at + dt.timedelta(minutes=30), form="visit")


def test_a_recorded_outcome_is_delivered_by_the_running_service(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CLINIC_WEBHOOK_SECRET", SECRET)
    with Receiver() as rx:
        cfg = {"webhook": {"url": rx.url, "secret": {"env": "CLINIC_WEBHOOK_SECRET"}}}
        svc = OutcomeService(tmp_path / "data", {"clinic": agent(cfg)}, retention_days=30)
        svc.start()
        try:
            oid = svc.record(booking())
            assert rx.wait_acted(1)  # woken by record, not by its next poll
            with pytest.raises(SlotTaken):
                svc.record(booking(NINE + dt.timedelta(minutes=10)))
            assert not svc.is_free("clinic", NINE, NINE + dt.timedelta(minutes=30))
            assert svc.is_free("clinic", NINE + dt.timedelta(hours=1), NINE + dt.timedelta(hours=2))
        finally:
            svc.stop()
    assert rx.order == [oid] and rx.acted[oid]["fields"] == {"name": NAME, "phone": PHONE}
    assert rx.acted[oid]["start"] == "2026-12-08T09:00:00+00:00"
    assert stat.S_IMODE(outcomes_path(tmp_path / "data").stat().st_mode) == 0o600
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert oid in logged  # the logs say what happened...
    assert NAME.split()[0] not in logged and "5550123" not in logged  # ...never to whom


def test_a_receivers_echo_of_the_data_is_kept_in_the_store_but_not_logged(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    with Receiver() as rx:
        rx.answer = lambda key: 400
        cfg = {"webhook": {"url": rx.url, "secret": {"value": SECRET}}}
        idle = threading.Condition()

        def wait(event: threading.Event, seconds: float) -> bool:
            # The outbox worker waits here after each look at the table, i.e. after it has
            # written down how a try went: the test looks again then, instead of polling.
            with idle:
                idle.notify_all()
            return real_wait(event, seconds)

        svc = OutcomeService(tmp_path / "data", {"clinic": agent(cfg)}, retention_days=30, wait=wait)
        svc.start()
        try:
            oid = svc.record(booking())
            with idle:
                idle.wait_for(lambda: svc.store.deliveries(oid)[0].state == "dead", 30)
            d = svc.store.deliveries(oid)[0]
        finally:
            svc.stop()
    assert d.state == "dead" and f"{PHONE!r} is not a number" in d.last_error
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP 400" in logged and "5550123" not in logged


def test_a_missing_webhook_secret_is_an_error_at_start_up(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_SECRET_VAR", raising=False)
    cfg = {"webhook": {"url": "http://127.0.0.1:9/x", "secret": {"env": "NO_SUCH_SECRET_VAR"}}}
    with pytest.raises(OutcomeSetupError, match="NO_SUCH_SECRET_VAR"):
        OutcomeService(tmp_path, {"clinic": agent(cfg)}, retention_days=30)


def test_without_channels_outcomes_are_still_stored(tmp_path):
    svc = OutcomeService(tmp_path / "data", {"clinic": agent({})}, retention_days=30)
    svc.start()
    try:
        oid = svc.record(booking())
        assert svc.store.get(oid) is not None and svc.store.deliveries(oid) == []
    finally:
        svc.stop()


class Calendar:
    """A channel that can tell busy times, as the CalDAV one can."""

    name = "calendar"

    def __init__(self, busy: bool | None) -> None:
        self.busy = busy  # None: unreachable

    def deliver(self, outcome) -> None:
        pass

    def is_free(self, start: dt.datetime, end: dt.datetime) -> bool:
        if self.busy is None:
            raise OSError("calendar unreachable")
        return not self.busy


def test_is_free_asks_a_channel_that_knows_busy_times_and_falls_back_to_the_table(tmp_path):
    from voicebox.outcomes.outbox import Route
    from voicebox.outcomes.settings import Retries

    svc = OutcomeService(tmp_path / "data", {"clinic": agent({})}, retention_days=30)
    slot = (NINE, NINE + dt.timedelta(minutes=30))
    try:
        svc.routes.append(Route("clinic", Calendar(busy=True), Retries()))
        assert not svc.is_free("clinic", *slot)
        assert svc.is_free("garage", *slot)  # another agent's calendar says nothing about this one
        svc.routes[-1] = Route("clinic", Calendar(busy=None), Retries())
        assert svc.is_free("clinic", *slot)  # unreachable: the local table decides
        svc.record(booking())
        assert not svc.is_free("clinic", *slot)
    finally:
        svc.stop()


def test_serve_gets_every_agent_under_its_id_in_the_data_dir(tmp_path):
    from voicebox.config import load_config
    from voicebox.outcomes.service import service_for_serve

    cfg = load_config(None, {"data_dir": str(tmp_path / "data"), "privacy.retention_days": 7})
    svc = service_for_serve(cfg, {"clinic": agent({}), "garage": agent({})})
    try:
        assert svc.store.path == tmp_path / "data" / "outcomes.sqlite3"
        assert svc.retention_s == 7 * 86400
        oid = svc.record(OutcomeDraft(kind="message", agent="garage", session_id="s", fields={}, summary="A message"))
        assert svc.store.get(oid).agent == "garage"
    finally:
        svc.stop()


def test_an_unusable_data_dir_is_a_setup_error(tmp_path):
    from voicebox.config import load_config
    from voicebox.outcomes.service import service_for_serve

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "outcomes.sqlite3").mkdir()  # something in the way of the database file
    cfg = load_config(None, {"data_dir": str(tmp_path / "data")})
    with pytest.raises(OutcomeSetupError, match="outcomes database"):
        service_for_serve(cfg, {"clinic": agent({})})
