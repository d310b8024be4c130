"""The outbox of mail to reporters: written with the change it reports, claimed to send.

``enqueue(conn, ...)`` runs inside the transaction of the change (next to its
``write_audit``), so a change that rolls back leaves no mail behind and a committed one
always has its rows. The delivery worker (``geo311.notifications``) claims due rows
(pending -> sending) in a transaction of its own before it sends, so two workers never
send one row; a row a stopped worker left in ``sending`` is failed, never resent.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    func,
    insert,
    select,
    update,
)

from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.rows import now_utc

LOGGER = logging.getLogger(__name__)

#: What a notification reports.
#: ``follow`` asks an address to confirm it wants to follow a request (double opt-in).
KINDS = ("received", "status", "closed", "merged", "follow")
#: Where a notification is: waiting, claimed by a worker, done, given up, or not wanted.
STATES = ("pending", "sending", "sent", "failed", "unsubscribed")
#: The language of a message when the request has none of its own (the city's default).
DEFAULT_LANGUAGE = "en"
#: Why a row left in ``sending`` is failed instead of being sent again.
STOPPED_NOTE = "worker stopped during delivery; not resent to avoid a duplicate"
#: Rows sent or being sent that count against an address's rate limit.
_COUNTED = ("sending", "sent")


def normal_address(email: str) -> str:
    """An address as the outbox keeps it: trimmed, lower case."""
    return email.strip().lower()


def address_hash(email: str) -> str:
    """SHA-256 of the normal address: how ``unsubscribed`` knows it without keeping it."""
    return hashlib.sha256(normal_address(email).encode()).hexdigest()


def enqueue(
    conn: Connection, kind: str, request_id: int, *, reporters_of: Sequence[int] | None = None,
    event: str = "", detail: dict[str, Any] | None = None,
    language: str = DEFAULT_LANGUAGE,
) -> int:
    """Write one pending row per reporter address, in the transaction of ``conn``.

    ``reporters_of`` names the requests whose reporters are told (default: the request
    itself); their confirmed followers are told too, except of a receipt. ``event``
    tells two events of one kind apart. An address that unsubscribed, or already has
    this event, gets nothing. Returns how many rows were written.
    """
    if kind not in KINDS:
        raise ValueError(f"kind was {kind!r} but is expected to be in {KINDS}")
    rp, f = t.reporters.c, t.followers.c
    ids = [int(i) for i in (reporters_of if reporters_of is not None else [request_id])]
    spoken: dict[str, str] = {}  # each address in its reporter's language, when known
    for email, tongue in conn.execute(select(rp.email, rp.language).where(
            rp.request_id.in_(ids)).where(rp.email != "").order_by(rp.id)):
        if "@" in email and not spoken.get(normal_address(email)):
            spoken[normal_address(email)] = tongue or ""
    followers: dict[str, str] = {}
    if kind != "received":
        for email, tongue in conn.execute(select(f.email, f.language).where(
                f.request_id.in_(ids), f.status == "confirmed").order_by(f.id)):
            if normal_address(email) not in spoken:
                followers.setdefault(normal_address(email), tongue or "")
    rows = [(a, spoken[a] or language, detail or {}) for a in spoken]
    rows += [(a, tongue or language, {**(detail or {}), "follower": True})
             for a, tongue in followers.items()]
    return _write(conn, kind, request_id, event, rows)


def enqueue_follow(conn: Connection, request_id: int, email: str, language: str) -> int:
    """Queue the message that asks ``email`` to confirm it wants to follow a request."""
    return _write(conn, "follow", request_id, "", [(normal_address(email), language, {})])


def _write(conn: Connection, kind: str, request_id: int, event: str,
           rows: list[tuple[str, str, dict[str, Any]]]) -> int:
    """Insert (address, language, detail) rows not unsubscribed and not already queued."""
    if not rows:
        return 0
    n = t.notifications.c
    hashes = {address_hash(a) for a, _, _ in rows}
    gone = set(conn.execute(select(t.unsubscribed.c.email_hash)
                            .where(t.unsubscribed.c.email_hash.in_(list(hashes)))).scalars())
    have = set(conn.execute(select(n.email).where(
        n.request_id == request_id, n.kind == kind, n.event == event,
        n.email.in_([a for a, _, _ in rows]))).scalars())
    wanted = sorted((r for r in rows if address_hash(r[0]) not in gone and r[0] not in have),
                    key=lambda r: r[0])
    if not wanted:
        return 0
    now = now_utc()
    conn.execute(insert(t.notifications), [
        {"request_id": request_id, "kind": kind, "event": event, "email": a,
         "language": tongue or DEFAULT_LANGUAGE, "detail": json.dumps(detail),
         "created": now, "status": "pending", "attempts": 0, "next_attempt_at": now,
         "last_error": "", "message_id": ""}
        for a, tongue, detail in wanted
    ])
    return len(wanted)


@dataclass(frozen=True)
class Claim:
    """What one claim took: rows to send now, rows held by the rate limit, stale rows."""

    rows: list[dict[str, Any]]
    deferred: int = 0
    stopped: int = 0


class Outbox:
    """Notifications waiting, being sent and sent."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(self, kind: str, request_id: int, **kw: Any) -> int:
        """``enqueue`` in a transaction of its own."""
        with self.db.begin() as conn:
            return enqueue(conn, kind, request_id, **kw)

    def rows(self, request_id: int | None = None) -> list[dict[str, Any]]:
        """Outbox rows (all, or of one request), oldest first: for staff and tests."""
        stmt = select(t.notifications).order_by(t.notifications.c.id)
        if request_id is not None:
            stmt = stmt.where(t.notifications.c.request_id == request_id)
        with self.db.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def get(self, notification_id: int) -> dict[str, Any] | None:
        """One row by id, or None."""
        with self.db.connect() as conn:
            row = conn.execute(select(t.notifications).where(
                t.notifications.c.id == notification_id)).mappings().first()
        return None if row is None else dict(row)

    def counts(self) -> dict[str, int]:
        """How many rows are in each state."""
        n = t.notifications.c
        with self.db.connect() as conn:
            found = dict(conn.execute(select(n.status, func.count()).group_by(n.status)).all())
        return {s: int(found.get(s, 0)) for s in STATES}

    def claim(
        self, now: datetime, *, limit: int, per_address: int, window: timedelta,
        stopped_after: timedelta,
    ) -> Claim:
        """Take due rows for sending (pending -> sending), at most ``per_address`` per window.

        Rows in ``sending`` since before ``now - stopped_after`` belonged to a worker
        that stopped mid-delivery: they become ``failed`` (the mail may have left).
        Rows over an address's limit wait until its window frees a place.
        """
        n = t.notifications.c
        with self.db.begin() as conn:
            # Claims queue one at a time, so the rate limit counts every worker's sends;
            # SKIP LOCKED (PostGIS) still passes over rows a writer holds elsewhere.
            self.db.dialect.lock_key(conn, "geo311.notifications.claim")
            stopped = conn.execute(
                update(t.notifications)
                .where(n.status == "sending", n.claimed_at < now - stopped_after)
                .values(status="failed", last_error=STOPPED_NOTE)).rowcount
            if stopped:
                LOGGER.warning("%s notifications left in sending by a stopped worker "
                               "marked failed", stopped)
            due = conn.execute(self.db.dialect.claim_rows(
                select(t.notifications).where(n.status == "pending", n.next_attempt_at <= now)
                .order_by(n.next_attempt_at, n.id).limit(limit))).mappings().all()
            if not due:
                return Claim([], 0, stopped)
            since = now - window
            stamp = func.coalesce(n.sent_at, n.claimed_at)
            recent = {e: (int(c), first) for e, c, first in conn.execute(
                select(n.email, func.count(), func.min(stamp))
                .where(n.email.in_(list({r["email"] for r in due})), n.status.in_(_COUNTED),
                       stamp >= since)
                .group_by(n.email)).all()}
            taken: list[dict[str, Any]] = []
            deferred = 0
            for row in due:
                count, first = recent.get(row["email"], (0, None))
                if count >= per_address:
                    wait_until = (first or now) + window
                    conn.execute(update(t.notifications).where(n.id == row["id"])
                                 .values(next_attempt_at=max(wait_until, now)))
                    deferred += 1
                    continue
                recent[row["email"]] = (count + 1, first or now)
                conn.execute(update(t.notifications).where(n.id == row["id"])
                             .values(status="sending", claimed_at=now,
                                     attempts=n.attempts + 1))
                taken.append({**row, "status": "sending", "claimed_at": now,
                              "attempts": row["attempts"] + 1})
        return Claim(taken, deferred, stopped)

    def mark_sent(self, notification_id: int, message_id: str, at: datetime) -> None:
        """The server took the message."""
        self._finish(notification_id, status="sent", sent_at=at, message_id=message_id,
                     last_error="")

    def mark_retry(self, notification_id: int, error: str, next_attempt_at: datetime) -> None:
        """A temporary failure: send again at ``next_attempt_at``."""
        self._finish(notification_id, status="pending", next_attempt_at=next_attempt_at,
                     last_error=error[:2000])

    def mark_failed(self, notification_id: int, error: str) -> None:
        """A permanent failure, or too many attempts: never sent."""
        self._finish(notification_id, status="failed", last_error=error[:2000])

    def _finish(self, notification_id: int, **values: Any) -> None:
        n = t.notifications.c
        with self.db.begin() as conn:
            # Only the worker's own claim is finished: a row failed meanwhile stays failed.
            conn.execute(update(t.notifications)
                         .where(n.id == notification_id, n.status == "sending").values(**values))

    def is_unsubscribed(self, email: str) -> bool:
        """Whether ``email`` asked for no more mail."""
        with self.db.connect() as conn:
            return conn.execute(select(t.unsubscribed.c.email_hash).where(
                t.unsubscribed.c.email_hash == address_hash(email))).first() is not None

    def unsubscribe(self, email: str) -> int:
        """Send ``email`` nothing more; return how many waiting rows were stopped. Audited."""
        digest = address_hash(email)
        n = t.notifications.c
        with self.db.begin() as conn:
            conn.execute(self.db.dialect.upsert(t.unsubscribed)
                         .values(email_hash=digest, created=now_utc())
                         .on_conflict_do_nothing())
            stopped = conn.execute(
                update(t.notifications)
                .where(n.email == normal_address(email), n.status == "pending")
                .values(status="unsubscribed")).rowcount
            write_audit(conn, "unsubscribed", "address", digest[:12], {"stopped": stopped},
                        "resident")
        return int(stopped)
