"""Outcomes by email: one plain-text message per outcome to the business, over SMTP.

A booking carries its event as an ``.ics`` attachment. The Message-ID and Date come from the
outcome, so every retry sends the same message and a receiver can drop the duplicates a retry
after a lost reply produces.

TLS is verified against the system's trust store; a private CA is trusted the usual way, by
pointing ``SSL_CERT_FILE`` at it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime

from voicebox.outcomes.channel import DeliveryFailed, StoredOutcome
from voicebox.outcomes.ics import event_uid, field_lines, outcome_ics
from voicebox.outcomes.settings import EmailConfig

log = logging.getLogger(__name__)

_SUBJECT_MAX = 140


def message_id(outcome: StoredOutcome, sender: str) -> str:
    """``<outcome-ID@sender's domain>``: stable across retries, unique per outcome."""
    domain = sender.rpartition("@")[2].strip(" >") or "voicebox.invalid"
    local = re.sub(r"[^A-Za-z0-9._-]", "_", outcome.id)
    return f"<outcome-{local}@{domain}>"


def _day(when: dt.datetime) -> str:
    return f"{when:%A} {when.day} {when:%B %Y}"


def _when(outcome: StoredOutcome) -> str | None:
    start, end = outcome.start, outcome.end
    if start is None:
        return None
    text = f"{_day(start)}, {start:%H:%M}"
    if end is not None:
        text += f"-{end:%H:%M}" if end.date() == start.date() else f" - {_day(end)}, {end:%H:%M}"
    zone = getattr(start.tzinfo, "key", None) or start.strftime("UTC%z")
    return f"{text} ({zone})"


def body_text(outcome: StoredOutcome) -> str:
    """The summary first, then when (for a booking), the fields, and where it came from."""
    lines = [outcome.summary, ""]
    when = _when(outcome)
    if when:
        lines.append(f"When: {when}")
    lines += field_lines(outcome)
    lines += ["", f"Kind: {outcome.kind}", f"Agent: {outcome.agent}", f"Call: {outcome.session_id}",
              f"Outcome: {outcome.id}", f"Recorded: {outcome.created_at.isoformat(timespec='seconds')}"]
    return "\n".join(lines) + "\n"


def build_message(outcome: StoredOutcome, cfg: EmailConfig) -> EmailMessage:
    msg = EmailMessage()
    subject = " ".join(f"{outcome.kind.capitalize()}: {outcome.summary}".split())
    if len(subject) > _SUBJECT_MAX:
        subject = subject[: _SUBJECT_MAX - 3].rstrip() + "..."
    msg["Subject"] = subject
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(cfg.to)
    msg["Date"] = format_datetime(outcome.created_at)
    msg["Message-ID"] = message_id(outcome, cfg.sender)
    msg["X-Voicebox-Outcome"] = outcome.id
    is_event = outcome.kind == "booking" and outcome.start is not None and outcome.end is not None
    if is_event:
        msg["X-Voicebox-Event-UID"] = event_uid(outcome)
    msg.set_content(body_text(outcome))
    if is_event:
        ics = outcome_ics(outcome, method="PUBLISH")
        msg.add_attachment(ics, maintype="text", subtype="calendar",
                           params={"method": "PUBLISH", "charset": "utf-8"},
                           filename=f"{outcome.kind}.ics")
    return msg


def _by_code(code: int, what: str, detail: bytes | str) -> DeliveryFailed:
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    # 5xx is the server's final word (RFC 5321 4.2.1); 4xx and anything odd may pass.
    return DeliveryFailed(f"{what}: {code} {detail}".strip(), permanent=500 <= code < 600)


class EmailChannel:
    """Sends each outcome to ``cfg.to``; one SMTP session per try."""

    name = "email"

    def __init__(self, cfg: EmailConfig) -> None:
        self.cfg = cfg

    def _credentials(self) -> tuple[str, str] | None:
        user, secret = self.cfg.username, self.cfg.password
        if user is None and secret is None:
            return None
        if user is None or secret is None:
            raise DeliveryFailed("email: username and password must be given together", permanent=True)
        try:
            return user, secret.read()
        except ValueError as e:
            raise DeliveryFailed(f"email password: {e}", permanent=True) from None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.cfg
        if cfg.security == "tls":
            return smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s,
                                    context=ssl.create_default_context())
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        try:
            if cfg.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def deliver(self, outcome: StoredOutcome) -> None:
        credentials = self._credentials()
        try:
            msg = build_message(outcome, self.cfg)
        except ValueError as e:  # a booking whose times cannot make an event: no retry fixes it
            raise DeliveryFailed(f"email: {e}", permanent=True) from None
        try:
            smtp = self._connect()
            try:
                if credentials:
                    smtp.login(*credentials)
                refused = smtp.send_message(msg, from_addr=self.cfg.sender, to_addrs=self.cfg.to)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except smtplib.SMTPRecipientsRefused as e:
            raise _refused(e.recipients, accepted=False) from None
        except smtplib.SMTPNotSupportedError as e:
            # The server lacks STARTTLS or AUTH: the configuration must change first.
            raise DeliveryFailed(f"email: {e}", permanent=True) from None
        except smtplib.SMTPServerDisconnected as e:
            raise DeliveryFailed(f"email: server disconnected: {e}") from None
        except smtplib.SMTPSenderRefused as e:
            raise _by_code(e.smtp_code, f"email: sender {e.sender} refused", e.smtp_error) from None
        except smtplib.SMTPAuthenticationError as e:
            raise _by_code(e.smtp_code, "email: login failed", e.smtp_error) from None
        except smtplib.SMTPResponseException as e:
            raise _by_code(e.smtp_code, "email: server refused", e.smtp_error) from None
        except smtplib.SMTPException as e:
            raise DeliveryFailed(f"email: {e}") from None
        except (OSError, ssl.SSLError) as e:  # refused, unreachable, timed out, TLS handshake
            raise DeliveryFailed(f"email: cannot reach {self.cfg.host}:{self.cfg.port}: {e}") from None
        if refused:
            # Some addresses took it; the rest must be fixed or retried. A retry re-sends to all,
            # with the same Message-ID.
            raise _refused(refused, accepted=True)
        log.info("outcome %s emailed to %s", outcome.id, ", ".join(self.cfg.to))


def _refused(recipients: dict[str, tuple[int, bytes]], *, accepted: bool) -> DeliveryFailed:
    parts = [f"{addr} ({code} {err.decode('utf-8', 'replace') if isinstance(err, bytes) else err})"
             for addr, (code, err) in recipients.items()]
    permanent = all(500 <= code < 600 for code, _ in recipients.values())
    note = "; the other recipients accepted it" if accepted else ""
    return DeliveryFailed("email: recipients refused: " + ", ".join(parts) + note, permanent=permanent)
