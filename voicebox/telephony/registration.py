"""Registering with a PBX as an extension (``[sip.register]``), with back-off after failures.

pjsua refreshes a live registration by itself before it expires. Its own retry after a failure
is a fixed interval; ours doubles from ``retry_min_s`` up to ``retry_max_s`` (with a little
jitter, so a rack of boxes does not hammer a PBX that just came back all in the same second).
Everything here runs on the SIP thread: ``onRegState`` only records the outcome, ``tick`` acts.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Callable

import pjsua2 as pj

from voicebox.config import ConfigError, SipConfig, SipRegisterConfig
from voicebox.telephony.transports import PJSUA_INVALID_ID, configure_account_media, is_tls, tls_transport_id

log = logging.getLogger("voicebox.sip.register")


class Backoff:
    """When to try again: ``min_s``, then doubling up to ``max_s``, reset by a success."""

    def __init__(self, min_s: float, max_s: float, jitter: float = 0.1, rng: random.Random | None = None) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.wait_s = min_s
        self.due_at: float | None = None

    def failed(self, now: float) -> float:
        """Schedule the next attempt; the wait chosen, in seconds."""
        wait = self.wait_s * (1 + self.rng.uniform(-self.jitter, self.jitter))
        self.due_at = now + wait
        self.wait_s = min(self.wait_s * 2, self.max_s)
        return wait

    def succeeded(self) -> None:
        self.wait_s = self.min_s
        self.due_at = None

    def due(self, now: float) -> bool:
        if self.due_at is not None and now >= self.due_at:
            self.due_at = None
            return True
        return False


def account_config(reg: SipRegisterConfig, sip: SipConfig) -> pj.AccountConfig:
    ac = pj.AccountConfig()
    domain = reg.domain or _host_of(reg.registrar)
    ac.idUri = f"sip:{reg.user}@{domain}"
    rc = ac.regConfig
    rc.registrarUri = reg.registrar
    rc.timeoutSec = reg.expiry_s
    rc.retryIntervalSec = 0  # retries are ours (Backoff); pjsua still refreshes before expiry
    rc.firstRetryIntervalSec = 0
    rc.dropCallsOnFail = False  # a registrar outage must not cut calls already up
    rc.registerOnAdd = True
    rc.unregWaitMsec = 1000
    if reg.password:
        cred = pj.AuthCredInfo("digest", reg.realm, reg.auth_user or reg.user, 0, reg.password)
        ac.sipConfig.authCreds.append(cred)
    # A registrar reached over TLS sends its calls down that connection: the account is bound
    # to the TLS transport and may use SRTP (transports.py). Over UDP/TCP it is a plain account.
    tid = tls_transport_id(pj.Endpoint.instance()) if is_tls(reg.registrar) else None
    if is_tls(reg.registrar) and tid is None:
        raise ConfigError(f"sip.register.registrar: {reg.registrar} is reached over TLS, which needs [sip.tls]")
    configure_account_media(ac, sip, secure=tid is not None)
    ac.sipConfig.transportId = PJSUA_INVALID_ID if tid is None else tid
    return ac


def _host_of(uri: str) -> str:
    """'sip:pbx.example.com:5060;transport=tcp' -> 'pbx.example.com' ('[::1]' kept whole)."""
    rest = uri.split(":", 1)[1].split(";", 1)[0]
    rest = rest.rsplit("@", 1)[-1]
    if rest.startswith("["):
        return rest[: rest.index("]") + 1]
    return rest.split(":", 1)[0]


class RegisteredAccount(pj.Account):
    """The account on the PBX: its calls go to the same handler as calls sent to us directly."""

    def __init__(self, registration: "Registration") -> None:
        super().__init__()
        self.registration = registration

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        try:
            self.registration.on_incoming(self, prm)
        except Exception:
            log.exception("error sip.callback_failed", extra={"code": "sip.callback_failed"})

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802
        try:
            self.registration.on_reg_state(prm.code, prm.reason, prm.expiration)
        except Exception:
            log.exception("error sip.callback_failed", extra={"code": "sip.callback_failed"})


class Registration:
    """One registration binding, kept alive across registrar failures."""

    def __init__(
        self, reg: SipRegisterConfig, sip: SipConfig,
        on_incoming: Callable[[pj.Account, pj.OnIncomingCallParam], None],
    ) -> None:
        self.reg = reg
        self.sip = sip
        self.on_incoming = on_incoming
        self.backoff = Backoff(reg.retry_min_s, reg.retry_max_s)
        self.account: RegisteredAccount | None = None
        self.registered = False
        self.registrations = 0  # successful REGISTERs, refreshes included
        self.waits_s: list[float] = []  # the back-off chosen after each failure, in order
        self._leaving = False
        self._unregister_pending = False  # an un-REGISTER sent, its final answer not yet in

    def start(self) -> None:
        self.account = RegisteredAccount(self)
        self.account.create(account_config(self.reg, self.sip), False)
        log.info("registering sip:%s@%s with %s every %d s",
                 self.reg.user, self.reg.domain or _host_of(self.reg.registrar), self.reg.registrar, self.reg.expiry_s)

    def on_reg_state(self, code: int, reason: str, expiration: int) -> None:
        if self._leaving:
            self.registered = False
            self._unregister_pending = False
            log.info("unregistered status=%d", code)
            return
        if 200 <= code < 300 and expiration > 0:
            self.registrations += 1
            if not self.registered:
                log.info("registered status=%d expires=%d", code, expiration)
            self.registered = True
            self.backoff.succeeded()
            return
        self.registered = False
        wait = self.backoff.failed(time.monotonic())
        self.waits_s.append(wait)
        log.warning("error sip.register_failed status=%d reason=%s retry_in=%.0f s", code, reason, wait,
                    extra={"code": "sip.register_failed"})

    def tick(self, now: float) -> None:
        """From the SIP thread's housekeeping: re-register when the back-off says so."""
        if self.account is not None and not self._leaving and self.backoff.due(now):
            try:
                self.account.setRegistration(True)
            except pj.Error as e:
                wait = self.backoff.failed(now)
                self.waits_s.append(wait)
                log.warning("error sip.register_failed %s retry_in=%.0f s", e.info(), wait,
                            extra={"code": "sip.register_failed"})

    def unregister(self) -> None:
        """Drain: tell the PBX to stop sending calls here (calls in progress go on)."""
        if self.account is None or self._leaving:
            return
        self._leaving = True
        try:
            self.account.setRegistration(False)
            self._unregister_pending = True
        except pj.Error as e:
            log.warning("error sip.unregister_failed %s", e.info(), extra={"code": "sip.unregister_failed"})

    @property
    def unregister_pending(self) -> bool:
        """True until the registrar has answered the un-REGISTER (a digest challenge takes one
        more round trip). Dropping the account before that makes pjsua send a second
        un-REGISTER into the open transaction, which fails with PJSIP_EBUSY."""
        return self._unregister_pending

    def close(self) -> None:
        """Drop the pjsua account (before libDestroy, which asserts on a live one)."""
        self.account = None
