"""Followers: addresses that asked for a request's updates, confirmed by a mailed link.

Asking writes a ``pending`` row and its confirmation message in one transaction;
nothing else is ever sent to a pending address, so typing someone else's address
costs them one message at most per request (and a few pending requests in all).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update

from geo311.errors import NotFound
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.outbox import address_hash, enqueue_follow, normal_address
from geo311.store.rows import now_utc

LOGGER = logging.getLogger(__name__)

#: Unconfirmed follows one address may have at once; more are not mailed (an address
#: typed by someone else must not receive a flood of confirmation requests).
MAX_PENDING = 5


@dataclass(frozen=True)
class Follower:
    """One address following one request (staff only: the address is personal data)."""

    id: int
    request_id: int
    email: str
    language: str
    status: str
    created: datetime
    confirmed: datetime | None


class Followers:
    """Who follows which request by email."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def ask(self, request_id: int, email: str, language: str) -> bool:
        """Record a wish to follow and queue its confirmation; True if a message was queued.

        Nothing is queued for an address that already follows or asked, that has
        ``MAX_PENDING`` unconfirmed follows, or that unsubscribed. The caller's answer
        should not tell these apart: it would say which addresses follow what.
        """
        address = normal_address(email)
        f = t.followers.c
        with self.db.begin() as conn:
            if conn.execute(select(t.service_requests.c.id).where(
                    t.service_requests.c.id == int(request_id))).first() is None:
                raise NotFound(f"service request {request_id} does not exist")
            if conn.execute(select(f.id).where(f.request_id == int(request_id),
                                               f.email == address)).first() is not None:
                return False
            pending = conn.execute(select(func.count()).select_from(t.followers).where(
                f.email == address, f.status == "pending")).scalar_one()
            if pending >= MAX_PENDING:
                LOGGER.info("follow of #%s not mailed: the address has %s pending",
                            request_id, pending)
                return False
            conn.execute(insert(t.followers).values(
                request_id=int(request_id), email=address, language=language or "en",
                status="pending", created=now_utc()))
            queued = enqueue_follow(conn, int(request_id), address, language)
            write_audit(conn, "follow_asked", "request", request_id,
                        {"address": address_hash(address)[:12]}, "resident")
        return queued > 0

    def confirm(self, request_id: int, email: str) -> Follower:
        """Confirm a pending follow (the address opened its link); audited once."""
        address = normal_address(email)
        f = t.followers.c
        with self.db.begin() as conn:
            changed = conn.execute(
                update(t.followers)
                .where(f.request_id == int(request_id), f.email == address,
                       f.status == "pending")
                .values(status="confirmed", confirmed=now_utc())).rowcount
            if changed:
                write_audit(conn, "follow_confirmed", "request", request_id,
                            {"address": address_hash(address)[:12]}, "resident")
        found = self.get(request_id, address)
        if found is None:
            raise NotFound("this follow request does not exist any more")
        return found

    def get(self, request_id: int, email: str) -> Follower | None:
        """One address's follow of one request, or None."""
        rows = self._select(t.followers.c.request_id == int(request_id),
                            t.followers.c.email == normal_address(email))
        return rows[0] if rows else None

    def of_request(self, request_id: int) -> list[Follower]:
        """The followers of a request, oldest first (for staff)."""
        return self._select(t.followers.c.request_id == int(request_id))

    def _select(self, *where: object) -> list[Follower]:
        f = t.followers.c
        stmt = (select(f.id, f.request_id, f.email, f.language, f.status, f.created,
                       f.confirmed).where(*where).order_by(f.id))  # type: ignore[arg-type]
        with self.db.connect() as conn:
            return [Follower(*row) for row in conn.execute(stmt).all()]
