"""Referrals to neighbouring jurisdictions: the record of each, and the forwarding outbox.

A referral is written when a report outside the city falls in a known neighbour. One the
city forwards waits as ``pending``; the forwarding worker (``geo311.referral``) claims
due rows (pending -> sending) in a transaction of its own before it posts them, so two
workers never post one row. A row a stopped worker left in ``sending`` goes back to
``pending``: the post carries the referral's reference as ``client_request_id``, so a
neighbour that took it already answers with the same request.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update

from geo311.errors import InvalidRequest, NotFound
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.rows import now_utc

LOGGER = logging.getLogger(__name__)

#: Where a referral is: told only, waiting, being sent, passed on, or flagged for staff.
STATES = ("referred", "pending", "sending", "forwarded", "failed")
#: The prefix of a referral's reference: ``R-12``.
REFERENCE_PREFIX = "R-"


class Referrals:
    """Reports referred to neighbours, and those waiting to be forwarded."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, values: dict[str, Any], *, actor: str = "system") -> dict[str, Any]:
        """Write one referral (``status`` ``referred`` or ``pending``); audited.

        Returns the stored row with its ``reference``.
        """
        if values.get("status") not in ("referred", "pending"):
            raise InvalidRequest(f"a new referral's status was {values.get('status')!r} but "
                                 "is expected to be 'referred' or 'pending'")
        now = now_utc()
        row = {"created": now, "channel": "", "service_name": "", "jurisdiction_name": "",
               "agency_name": "", "address": "", "description": "", "media_url": "",
               "attempts": 0, "last_error": "", "remote_id": "", "actor": actor,
               **values, "attributes": json.dumps(values.get("attributes") or {}),
               "next_attempt_at": now if values["status"] == "pending" else None}
        r = t.referrals.c
        with self.db.begin() as conn:
            # A placeholder first: the reference is made from the id the row gets.
            referral_id = conn.execute(insert(t.referrals).values(
                reference=f"n{uuid.uuid4().hex[:19]}", **row)
                .returning(r.id)).scalar_one()
            reference = f"{REFERENCE_PREFIX}{referral_id}"
            conn.execute(update(t.referrals).where(r.id == referral_id)
                         .values(reference=reference))
            write_audit(conn, "referral_made", "referral", reference,
                        {"jurisdiction": row["jurisdiction_id"], "agency": row["agency_id"],
                         "service_code": row["service_code"], "status": row["status"]},
                        actor)
        LOGGER.info("referral %s: %s in %s to %s (%s)", reference, row["service_code"],
                    row["jurisdiction_name"], row["agency_id"], row["status"])
        return self.get(reference)

    def get(self, reference: str) -> dict[str, Any]:
        """One referral by its reference (``R-12``); ``NotFound`` when there is none."""
        with self.db.connect() as conn:
            row = conn.execute(select(t.referrals).where(
                t.referrals.c.reference == reference.strip().upper())).mappings().first()
        if row is None:
            raise NotFound(f"referral {reference[:40]!r} does not exist")
        return _decoded(row)

    def rows(self, *, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Referrals, newest first (of one status if given): for staff and tests."""
        if status is not None and status not in STATES:
            raise InvalidRequest(f"status was {status!r} but is expected to be in {STATES}")
        stmt = select(t.referrals).order_by(t.referrals.c.id.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(t.referrals.c.status == status)
        with self.db.connect() as conn:
            return [_decoded(r) for r in conn.execute(stmt).mappings()]

    def counts(self) -> dict[str, int]:
        """How many referrals are in each state."""
        r = t.referrals.c
        with self.db.connect() as conn:
            found = dict(conn.execute(select(r.status, func.count()).group_by(r.status)).all())
        return {s: int(found.get(s, 0)) for s in STATES}

    def claim(self, now: datetime, *, limit: int, stopped_after: timedelta
              ) -> list[dict[str, Any]]:
        """Take due rows for forwarding (pending -> sending), oldest due first.

        Rows in ``sending`` since before ``now - stopped_after`` belonged to a worker
        that stopped mid-post: they are claimed again (the neighbour dedupes them by
        ``client_request_id``).
        """
        r = t.referrals.c
        with self.db.begin() as conn:
            self.db.dialect.lock_key(conn, "geo311.referrals.claim")
            conn.execute(update(t.referrals)
                         .where(r.status == "sending", r.claimed_at < now - stopped_after)
                         .values(status="pending", next_attempt_at=now,
                                 last_error="worker stopped during the post; sent again"))
            due = conn.execute(self.db.dialect.claim_rows(
                select(t.referrals).where(r.status == "pending", r.next_attempt_at <= now)
                .order_by(r.next_attempt_at, r.id).limit(limit))).mappings().all()
            for row in due:
                conn.execute(update(t.referrals).where(r.id == row["id"])
                             .values(status="sending", claimed_at=now,
                                     attempts=r.attempts + 1))
        return [{**_decoded(row), "status": "sending", "claimed_at": now,
                 "attempts": row["attempts"] + 1} for row in due]

    def mark_forwarded(self, referral_id: int, remote_id: str, at: datetime) -> None:
        """The neighbour took the report as its request ``remote_id``; audited."""
        self._finish(referral_id, "referral_forwarded", {"remote_id": remote_id},
                     status="forwarded", remote_id=remote_id[:100], forwarded_at=at,
                     last_error="")

    def mark_retry(self, referral_id: int, error: str, next_attempt_at: datetime) -> None:
        """A failure worth trying again at ``next_attempt_at``."""
        self._finish(referral_id, None, {}, status="pending",
                     next_attempt_at=next_attempt_at, last_error=error[:2000])

    def mark_failed(self, referral_id: int, error: str) -> None:
        """Given up: flagged for staff, who pass it on by hand or send it again; audited."""
        self._finish(referral_id, "referral_failed", {"error": error[:500]},
                     status="failed", last_error=error[:2000])

    def retry(self, reference: str, *, actor: str) -> dict[str, Any]:
        """Send a flagged referral again (failed -> pending, attempts from zero); audited."""
        found = self.get(reference)
        if found["status"] != "failed":
            raise InvalidRequest(f"referral {found['reference']} is {found['status']}: only a "
                                 "failed one is sent again")
        r = t.referrals.c
        with self.db.begin() as conn:
            conn.execute(update(t.referrals).where(r.id == found["id"], r.status == "failed")
                         .values(status="pending", attempts=0, next_attempt_at=now_utc()))
            write_audit(conn, "referral_retried", "referral", found["reference"], {}, actor)
        return self.get(found["reference"])

    def _finish(self, referral_id: int, action: str | None, detail: dict[str, Any],
                **values: Any) -> None:
        r = t.referrals.c
        with self.db.begin() as conn:
            # Only the worker's own claim is finished.
            done = conn.execute(update(t.referrals)
                                .where(r.id == referral_id, r.status == "sending")
                                .values(**values)).rowcount
            if done and action:
                reference = conn.execute(select(r.reference).where(r.id == referral_id)
                                         ).scalar_one()
                write_audit(conn, action, "referral", reference, detail, "referrals")


def _decoded(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["attributes"] = json.loads(out.get("attributes") or "{}")
    return out
