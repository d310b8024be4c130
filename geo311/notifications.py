"""Mail to reporters: compose each outbox row in its language and deliver it over SMTP.

A closing message links to a one-question satisfaction survey (``answer_survey``).

The rows are written by the store with the change they report (``store.outbox``); this
service claims due rows, sends each once, and records what happened: sent, retried later
with exponential backoff (SMTP 4xx, a server that cannot be reached), or failed (5xx,
too many attempts). A row a stopped worker left in ``sending`` is failed by the next
claim, never sent again: a resident may get one message too few, never two.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import Environment

from geo311.config import Settings
from geo311.errors import ConfigError, InvalidRequest, NotFound
from geo311.mail_words import DECLARED_TAGS, LANGUAGE_TAGS, PHRASES
from geo311.redaction import redact_text
from geo311.store.outbox import DEFAULT_LANGUAGE, Outbox
from geo311.store.requests import Requests
from geo311.store.rows import now_utc
from geo311.store.surveys import Surveys

LOGGER = logging.getLogger(__name__)

#: Signs unsubscribe links apart from any other use of the secret key.
UNSUBSCRIBE_SALT = "geo311.unsubscribe"
#: Signs the satisfaction survey links of closing notifications.
SURVEY_SALT = "geo311.survey"
#: Signs the link that confirms a wish to follow a request.
FOLLOW_SALT = "geo311.follow"

_TEXT = Environment(autoescape=False, keep_trailing_newline=True).from_string(
    "{{ lead }}\n"
    "{% if joined %}{{ joined }}\n{% endif %}"
    "{% if note %}\n{{ note_label }}\n{{ note }}\n{% endif %}"
    "\n{{ track_label }}\n{{ track_url }}\n"
    "{% if survey_url %}\n{{ survey_label }}\n{{ survey_url }}\n{% endif %}"
    "{% if confirm_url %}\n{{ confirm_label }}\n{{ confirm_url }}\n{% endif %}"
    "\n-- \n{{ unsubscribe_label }}\n{{ unsubscribe_url }}\n"
)
# Every value is escaped: service names and notes are text anyone may have typed.
_HTML = Environment(autoescape=True).from_string(
    '<!doctype html>\n<html lang="{{ lang }}"><head><meta charset="utf-8">'
    "<title>{{ subject }}</title></head><body>\n"
    "<p>{{ lead }}</p>\n"
    "{% if joined %}<p>{{ joined }}</p>\n{% endif %}"
    "{% if note %}<p>{{ note_label }}</p>\n<blockquote>{{ note }}</blockquote>\n{% endif %}"
    '<p>{{ track_label }} <a href="{{ track_url }}">{{ track_url }}</a></p>\n'
    '{% if survey_url %}<p>{{ survey_label }} <a href="{{ survey_url }}">{{ survey_url }}'
    "</a></p>\n{% endif %}"
    '{% if confirm_url %}<p>{{ confirm_label }} <a href="{{ confirm_url }}">{{ confirm_url }}'
    "</a></p>\n{% endif %}"
    '<hr><p><small>{{ unsubscribe_label }} <a href="{{ unsubscribe_url }}">'
    "{{ unsubscribe_url }}</a></small></p>\n</body></html>\n"
)


class SurveyStore(Protocol):
    """What the survey needs of the store: the outbox and the answers."""

    outbox: Outbox
    surveys: Surveys


class NotifyStore(Protocol):
    """What delivery needs of the store: the outbox and the requests it reports on."""

    outbox: Outbox
    requests: Requests


def language_of(tag: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The phrases' language for a language tag (``es``, ``zh-Hans``); else ``default``."""
    word = (tag or "").strip().lower().replace("_", "-")
    word = LANGUAGE_TAGS.get(word, word.split("-")[0])
    return word if word in PHRASES else (default if default in PHRASES else "en")


def mask_address(email: str) -> str:
    """An address as a page may show it to its owner: ``m***@example.org``."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


@dataclass(frozen=True)
class Mailer:
    """Where and as whom to send, and what links point at (``GEO311_SMTP_*`` and friends)."""

    host: str
    port: int
    mail_from: str
    public_url: str
    secret: str = field(repr=False)
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer:
        """The mailer the settings describe; raise ``ConfigError`` naming what is missing."""
        for var, value in (("GEO311_SMTP_HOST", settings.smtp_host),
                           ("GEO311_MAIL_FROM", settings.mail_from),
                           ("GEO311_PUBLIC_URL", settings.public_url)):
            if not value.strip():
                raise ConfigError(f"{var} is not set but is needed to send notifications")
        if "@" not in settings.mail_from:
            raise ConfigError(f"GEO311_MAIL_FROM was {settings.mail_from!r} but is expected "
                              "to be an address such as 'City 311 <311@city.example>'")
        if urlsplit(settings.public_url).scheme not in ("http", "https"):
            raise ConfigError(f"GEO311_PUBLIC_URL was {settings.public_url!r} but is expected "
                              "to be a URL such as 'https://311.city.example'")
        return cls(settings.smtp_host, settings.smtp_port, settings.mail_from,
                   settings.public_url.rstrip("/"), settings.session_secret(),
                   settings.smtp_user, settings.smtp_password, settings.smtp_starttls)

    @property
    def domain(self) -> str:
        """The sender's domain, for Message-IDs."""
        return self.mail_from.rsplit("@", 1)[-1].strip(" >") or "geo311.invalid"


def _signed(notification_id: int, secret: str, salt: str) -> str:
    return str(URLSafeSerializer(secret, salt=salt).dumps(int(notification_id)))


def _read_signed(token: str, secret: str, salt: str, link: str) -> int:
    try:
        found = URLSafeSerializer(secret, salt=salt).loads(token)
    except BadSignature as exc:
        raise InvalidRequest(f"this {link} link is not valid") from exc
    if not isinstance(found, int):
        raise InvalidRequest(f"this {link} link is not valid")
    return found


def unsubscribe_token(notification_id: int, secret: str) -> str:
    """A signed token naming one notification; its address is what it unsubscribes.

    The address itself never appears in the link (links end up in logs).
    """
    return _signed(notification_id, secret, UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str, secret: str) -> int:
    """The notification id a token names; raise ``InvalidRequest`` for a forged one."""
    return _read_signed(token, secret, UNSUBSCRIBE_SALT, "unsubscribe")


def unsubscribe_url(mailer: Mailer, notification_id: int) -> str:
    """The one-click unsubscribe link of a notification."""
    return f"{mailer.public_url}/unsubscribe/{unsubscribe_token(notification_id, mailer.secret)}"


def survey_token(notification_id: int, secret: str) -> str:
    """A signed token naming one closing notification, whose survey it opens."""
    return _signed(notification_id, secret, SURVEY_SALT)


def read_survey_token(token: str, secret: str) -> int:
    """The notification id a survey token names; raise ``InvalidRequest`` for a forged one."""
    return _read_signed(token, secret, SURVEY_SALT, "survey")


def survey_url(mailer: Mailer, notification_id: int) -> str:
    """The satisfaction survey link of a closing notification (good for one answer)."""
    return f"{mailer.public_url}/survey/{survey_token(notification_id, mailer.secret)}"


def follow_token(notification_id: int, secret: str) -> str:
    """A signed token naming the message that asked an address to confirm a follow."""
    return _signed(notification_id, secret, FOLLOW_SALT)


def read_follow_token(token: str, secret: str) -> int:
    """The notification id a follow token names; raise ``InvalidRequest`` for a forged one."""
    return _read_signed(token, secret, FOLLOW_SALT, "confirmation")


def follow_url(mailer: Mailer, notification_id: int) -> str:
    """The link that confirms a follow (double opt-in)."""
    return f"{mailer.public_url}/follow/{follow_token(notification_id, mailer.secret)}"


def survey_of(store: SurveyStore, token: str, secret: str) -> tuple[dict[str, Any], Any]:
    """The closing notification a survey link names and its answer (None before one).

    Raises ``InvalidRequest`` for a forged link, ``NotFound`` for a link to anything but
    a closing notification.
    """
    row = store.outbox.get(read_survey_token(token, secret))
    if (row is None or row["kind"] != "closed"
            or orjson.loads(row.get("detail") or "{}").get("follower")):
        raise NotFound("this survey does not exist")
    return row, store.surveys.of_notification(int(row["id"]))


def answer_survey(store: SurveyStore, token: str, secret: str, rating: str | int,
                  comment: str = "") -> Any:
    """Store a resident's answer to the survey a link names; the link is good once.

    ``rating`` may be the text a form sent. Raises ``InvalidRequest`` (bad link or
    rating), ``NotFound`` and ``Conflict`` (answered already).

    Examples
    --------
    >>> answer_survey(store, token, secret, "4", "Quick, thank you").rating  # doctest: +SKIP
    4
    """
    row, _ = survey_of(store, token, secret)
    text = str(rating).strip()
    if not text.isdigit():
        raise InvalidRequest(f"rating was {text[:20]!r} but is expected to be a whole "
                             "number from 1 to 5")
    return store.surveys.answer(int(row["id"]), int(text), comment)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def compose(row: dict[str, Any], request: Any, mailer: Mailer,
            now: datetime | None = None) -> EmailMessage:
    """The message of one outbox row about ``request`` (a ``ServiceRequest``).

    Plain text and HTML in the row's language; the status note is redacted as the public
    tracking page shows it; headers carry the Message-ID and RFC 8058 one-click unsubscribe.

    Examples
    --------
    >>> msg = compose(row, store.requests.get(row["request_id"]), mailer)  # doctest: +SKIP
    >>> msg["List-Unsubscribe-Post"]  # doctest: +SKIP
    'List-Unsubscribe=One-Click'
    """
    lang = language_of(row.get("language"))
    words = PHRASES[lang]
    detail = orjson.loads(row.get("detail") or "{}")
    kind = row["kind"]
    status = detail.get("status", request.status)
    values = {
        "number": f"#{request.id}", "service": _one_line(request.service_name or
                                                         request.service_code),
        "status": words["statuses"].get(status, status),
        "into": f"#{detail['into']}" if detail.get("into") else "",
    }
    subject = words["subject"][kind].format(**values)
    note = redact_text(detail.get("note", "")).strip() if kind in ("status", "closed") else ""
    link = unsubscribe_url(mailer, row["id"])
    tag = DECLARED_TAGS.get(lang, lang)
    parts = {
        "lang": tag, "subject": subject, "lead": words["lead"][kind].format(**values),
        "joined": words["joined"].format(**values) if kind == "received" and values["into"]
        else "",
        "note": note, "note_label": words["note"], "track_label": words["track"],
        "track_url": f"{mailer.public_url}/requests/{request.id}",
        "unsubscribe_label": words["unsubscribe"], "unsubscribe_url": link,
        "survey_label": words["survey"],
        "survey_url": survey_url(mailer, row["id"])
        if kind == "closed" and not detail.get("follower") else "",
        "confirm_label": words["confirm"],
        "confirm_url": follow_url(mailer, row["id"]) if kind == "follow" else "",
    }
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = mailer.mail_from
    msg["To"] = row["email"]
    msg["Date"] = format_datetime(now or now_utc())
    msg["Message-ID"] = message_id(row, mailer)
    msg["Auto-Submitted"] = "auto-generated"
    msg["List-Unsubscribe"] = f"<{link}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(_TEXT.render(parts))
    msg.add_alternative(_HTML.render(parts), subtype="html")
    msg["Content-Language"] = tag  # after the body: setting content clears Content-*
    return msg


def message_id(row: dict[str, Any], mailer: Mailer) -> str:
    """One Message-ID per notification, the same on every attempt."""
    return f"<geo311.{row['id']}.{int(row['created'].timestamp())}@{mailer.domain}>"


@dataclass(frozen=True)
class DeliveryPolicy:
    """How often to retry, when to give up, how much one address may receive."""

    max_attempts: int = 6
    first_retry: timedelta = timedelta(minutes=1)
    longest_retry: timedelta = timedelta(hours=6)
    per_address: int = 10
    window: timedelta = timedelta(hours=1)
    #: A row in ``sending`` longer than this belonged to a worker that stopped.
    stopped_after: timedelta = timedelta(minutes=15)
    batch: int = 100

    def retry_at(self, attempts: int, now: datetime) -> datetime:
        """When to try again after ``attempts`` tries: 1, 2, 4, 8 … minutes, capped."""
        return now + min(self.first_retry * 2 ** max(attempts - 1, 0), self.longest_retry)


@dataclass
class DeliverySummary:
    """What one pass did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    deferred: int = 0
    stopped: int = 0

    def line(self) -> str:
        """One line for the end of ``geo311 notify run --once``."""
        text = f"sent {self.sent}, retried {self.retried}, failed {self.failed}"
        if self.deferred:
            text += f", {self.deferred} held by the per-address limit"
        if self.stopped:
            text += f", {self.stopped} left by a stopped worker (not resent)"
        return text

    def add(self, other: DeliverySummary) -> None:
        """Count ``other`` in too."""
        for name in ("sent", "retried", "failed", "deferred", "stopped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _failure(exc: Exception) -> tuple[bool, str]:
    """(temporary?, what the server said) for an SMTP or network error."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [(code, msg) for code, msg in exc.recipients.values()]
        said = "; ".join(f"{c} {m.decode(errors='replace') if isinstance(m, bytes) else m}"
                         for c, m in codes)
        return all(400 <= c < 500 for c, _ in codes), said
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error
        said = f"{exc.smtp_code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
        # A refused login or greeting is the server's or our settings' problem, not the
        # recipient's: retried, then failed after the attempts run out.
        server_side = isinstance(exc, smtplib.SMTPAuthenticationError
                                 | smtplib.SMTPConnectError | smtplib.SMTPHeloError)
        return server_side or not 500 <= exc.smtp_code < 600, said
    return True, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Connection:
    """One SMTP session reused across a pass; reopened after an error."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self.smtp: smtplib.SMTP | None = None

    def send(self, msg: EmailMessage, to: str) -> None:
        if self.smtp is None:
            m = self.mailer
            smtp = smtplib.SMTP(m.host, m.port, timeout=m.timeout_s)
            try:
                if m.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if m.user:
                    smtp.login(m.user, m.password)
            except Exception:
                smtp.close()
                raise
            self.smtp = smtp
        try:
            self.smtp.send_message(msg, from_addr=_bare(self.mailer.mail_from), to_addrs=[to])
        except smtplib.SMTPRecipientsRefused:
            raise  # the session is still good
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None


def _bare(address: str) -> str:
    """The address part of ``Name <addr>``."""
    found = re.search(r"<([^>]+)>", address)
    return found.group(1) if found else address.strip()


def deliver_due(
    store: NotifyStore, mailer: Mailer, policy: DeliveryPolicy | None = None, *,
    now: datetime | None = None, progress: Callable[[int], object] | None = None,
) -> DeliverySummary:
    """Send every notification due at ``now`` (default: the clock); return what happened.

    Rows are claimed in batches before sending, so several workers may run at once;
    each row is sent at most once.

    Examples
    --------
    >>> deliver_due(store, Mailer.from_settings(settings)).line()  # doctest: +SKIP
    'sent 3, retried 0, failed 0'
    """
    policy = policy or DeliveryPolicy()
    summary = DeliverySummary()
    connection = _Connection(mailer)
    try:
        while True:
            at = now or now_utc()
            claim = store.outbox.claim(at, limit=policy.batch, per_address=policy.per_address,
                                       window=policy.window,
                                       stopped_after=policy.stopped_after)
            summary.add(DeliverySummary(deferred=claim.deferred, stopped=claim.stopped))
            if not claim.rows:
                return summary
            for row in claim.rows:
                _deliver_one(store, mailer, policy, connection, row, at, summary)
                if progress is not None:
                    progress(1)
    finally:
        connection.close()


def _deliver_one(store: NotifyStore, mailer: Mailer, policy: DeliveryPolicy,
                 connection: _Connection, row: dict[str, Any], at: datetime,
                 summary: DeliverySummary) -> None:
    try:
        msg = compose(row, store.requests.get(row["request_id"]), mailer, at)
    except (NotFound, KeyError, ValueError) as exc:
        store.outbox.mark_failed(row["id"], f"cannot compose: {exc}")
        summary.failed += 1
        return
    try:
        connection.send(msg, row["email"])
    except (smtplib.SMTPException, OSError) as exc:
        temporary, said = _failure(exc)
        if temporary and row["attempts"] < policy.max_attempts:
            store.outbox.mark_retry(row["id"], said, policy.retry_at(row["attempts"], at))
            summary.retried += 1
            LOGGER.info("notification #%s: temporary failure (%s), retrying", row["id"], said)
        else:
            why = said if not temporary else f"gave up after {row['attempts']} attempts: {said}"
            store.outbox.mark_failed(row["id"], why)
            summary.failed += 1
            LOGGER.warning("notification #%s failed: %s", row["id"], why)
        return
    store.outbox.mark_sent(row["id"], msg["Message-ID"], at)
    summary.sent += 1
    LOGGER.info("sent notification #%s (%s) of request #%s", row["id"], row["kind"],
                row["request_id"])


def run_worker(
    store: NotifyStore, mailer: Mailer, policy: DeliveryPolicy | None = None, *,
    poll_s: float = 30.0, stop: threading.Event | None = None,
    report: Callable[[DeliverySummary], object] | None = None,
) -> None:
    """Deliver what is due, then wait ``poll_s`` seconds, until ``stop`` is set."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            summary = deliver_due(store, mailer, policy)
        except Exception:  # noqa: BLE001 - a database restart must not end the worker
            LOGGER.exception("notification pass failed; trying again in %s s", poll_s)
        else:
            if report is not None and (summary.sent or summary.retried or summary.failed):
                report(summary)
        stop.wait(poll_s)
