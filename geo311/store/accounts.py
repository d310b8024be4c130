"""Staff accounts, logins and sessions; API keys, idempotent submissions, rate limits.

Only a SHA-256 of each key is stored. A key is 32 random bytes (256 bits), so a fast
hash is enough: nobody can guess a key from its hash by trying candidates.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from geo311.errors import InvalidRequest, NotFound, TooManyRequests
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.rows import now_utc

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiKey:
    """A named key as staff see it (never the key itself)."""

    id: int
    name: str
    created: datetime
    revoked: datetime | None
def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Accounts:
    """Who may do what: staff users and API clients."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_user(self, username: str, password_hash: str, role: str, *,
                 actor: str = "system") -> int:
        """Create a staff account; raise ``InvalidRequest`` if the name is taken."""
        u = t.users.c
        with self.db.begin() as conn:
            if conn.execute(select(u.id).where(u.username == username)).first():
                raise InvalidRequest(f"user {username!r} exists already")
            user_id = conn.execute(insert(t.users).values(
                username=username, password_hash=password_hash, role=role, active=True,
                created=now_utc()).returning(u.id)).scalar_one()
            write_audit(conn, "user_created", "user", username, {"role": role}, actor)
        return int(user_id)

    def user(self, username: str | None = None, *, user_id: int | None = None
             ) -> dict[str, Any] | None:
        """One account row (with its password hash) by name or id, or None."""
        u = t.users.c
        stmt = select(t.users).where(u.username == username if user_id is None
                                     else u.id == int(user_id))
        with self.db.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else dict(row)

    def users(self) -> list[dict[str, Any]]:
        """Every account (without password hashes), by name."""
        u = t.users.c
        with self.db.connect() as conn:
            rows = conn.execute(select(u.id, u.username, u.role, u.active, u.created,
                                       u.last_login).order_by(u.username)).mappings().all()
        return [dict(r) for r in rows]

    def set_user_active(self, username: str, active: bool, *, actor: str = "system") -> None:
        """Enable or disable an account; audited."""
        u = t.users.c
        with self.db.begin() as conn:
            done = conn.execute(update(t.users).where(u.username == username).values(
                active=active, session_generation=u.session_generation + 1)).rowcount
            if not done:
                raise NotFound(f"user {username!r} does not exist")
            write_audit(conn, "user_enabled" if active else "user_disabled", "user", username,
                        {}, actor)

    def set_user_password(self, username: str, password_hash: str, *,
                          actor: str = "system") -> None:
        """Replace an account's password hash; audited (without the hash)."""
        u = t.users.c
        with self.db.begin() as conn:
            if not conn.execute(update(t.users).where(u.username == username).values(
                    password_hash=password_hash,
                    session_generation=u.session_generation + 1)).rowcount:
                raise NotFound(f"user {username!r} does not exist")
            write_audit(conn, "password_set", "user", username, {}, actor)

    def set_user_role(self, username: str, role: str, *, actor: str = "system") -> None:
        """Change an account's role, ending its sessions; audited."""
        u = t.users.c
        with self.db.begin() as conn:
            before = conn.execute(select(u.role).where(u.username == username)).scalar()
            if before is None:
                raise NotFound(f"user {username!r} does not exist")
            conn.execute(update(t.users).where(u.username == username).values(
                role=role, session_generation=u.session_generation + 1))
            write_audit(conn, "role_set", "user", username, {"from": before, "to": role},
                        actor)

    def end_sessions(self, user_id: int, *, actor: str = "system") -> None:
        """Refuse every session of this account signed so far (logout everywhere)."""
        u = t.users.c
        with self.db.begin() as conn:
            name = conn.execute(update(t.users).where(u.id == int(user_id)).values(
                session_generation=u.session_generation + 1).returning(u.username)).scalar()
            if name is not None:
                write_audit(conn, "sessions_ended", "user", name, {}, actor)

    def claim_login_attempt(self, username: str, address: str, since: datetime,
                            limit: int) -> list[datetime]:
        """Count recent failures and reserve one attempt in one locked step.

        Returns the failure times since ``since`` when ``limit`` are reached (the
        attempt is refused, nothing is written); otherwise ``[]`` after writing a
        failure row for this attempt, which a successful login clears. Taking the
        per-name-and-address lock first means simultaneous attempts are counted one
        after another, so no more than ``limit`` passwords are ever checked.
        """
        lf = t.login_failures.c
        username, address = username[:100], address[:64]
        with self.db.begin() as conn:
            self.db.dialect.lock_key(conn, f"geo311.login.{username}.{address}")
            recent = list(conn.execute(
                select(lf.at).where(lf.username == username).where(lf.address == address)
                .where(lf.at >= since).order_by(lf.at)).scalars())
            if len(recent) >= limit:
                return recent
            conn.execute(insert(t.login_failures).values(username=username, address=address,
                                                         at=now_utc()))
        return []

    def record_login(self, username: str, address: str, ok: bool) -> None:
        """Remember a login: success clears the failures of this name and address."""
        u, lf = t.users.c, t.login_failures.c
        now = now_utc()
        with self.db.begin() as conn:
            if ok:
                conn.execute(update(t.users).where(u.username == username)
                             .values(last_login=now))
                conn.execute(delete(t.login_failures).where(lf.username == username)
                             .where(lf.address == address))
                write_audit(conn, "login", "user", username, {"address": address}, username)
            else:
                conn.execute(insert(t.login_failures).values(username=username[:100],
                                                             address=address[:64], at=now))

    def login_failures_since(self, username: str, address: str, since: datetime
                             ) -> list[datetime]:
        """Times of failed logins of this name from this address since ``since``."""
        lf = t.login_failures.c
        with self.db.connect() as conn:
            return list(conn.execute(
                select(lf.at).where(lf.username == username[:100]).where(
                    lf.address == address[:64]).where(lf.at >= since).order_by(lf.at)
            ).scalars())

    def create_api_key(self, name: str, *, actor: str = "system") -> str:
        """Make a new key named ``name`` and return it; only its hash is kept.

        Examples
        --------
        >>> key = store.accounts.create_api_key("seeclickfix")  # doctest: +SKIP
        """
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidRequest(f"key name {name!r} must have 1 to 100 characters")
        key = secrets.token_urlsafe(32)
        k = t.api_keys.c
        try:
            with self.db.begin() as conn:
                conn.execute(insert(t.api_keys).values(name=name, key_hash=hash_key(key),
                                                       created=now_utc()))
                write_audit(conn, "api_key_created", "api_key", name, {}, actor)
        except IntegrityError as exc:
            with self.db.connect() as conn:
                exists = conn.execute(select(k.id).where(k.name == name)).first()
            if exists:
                raise InvalidRequest(f"an API key named {name!r} exists already") from exc
            raise
        return key

    def revoke_api_key(self, name: str, *, actor: str = "system") -> None:
        """Refuse a key from now on; audited."""
        k = t.api_keys.c
        with self.db.begin() as conn:
            done = conn.execute(update(t.api_keys).where(k.name == name).where(k.revoked.is_(None))
                                .values(revoked=now_utc())).rowcount
            if not done:
                found = conn.execute(select(k.revoked).where(k.name == name)).first()
                if found is None:
                    raise NotFound(f"no API key is named {name!r}")
                raise InvalidRequest(f"the API key {name!r} was revoked on {found[0].isoformat()}")
            write_audit(conn, "api_key_revoked", "api_key", name, {}, actor)

    def api_keys(self) -> list[ApiKey]:
        """Every key, by name."""
        k = t.api_keys.c
        with self.db.connect() as conn:
            rows = conn.execute(select(k.id, k.name, k.created, k.revoked).order_by(k.name)).all()
        return [ApiKey(*r) for r in rows]

    def find_api_key(self, key: str) -> ApiKey | None:
        """The live (not revoked) key matching ``key``, or None."""
        if not key:
            return None
        k = t.api_keys.c
        with self.db.connect() as conn:
            row = conn.execute(select(k.id, k.name, k.created, k.revoked)
                               .where(k.key_hash == hash_key(key))).first()
        if row is None or row.revoked is not None:
            return None
        return ApiKey(*row)

    def claim_submission(self, api_key_id: int, client_request_id: str,
                         *, wait_s: float = 10.0) -> int | None:
        """Claim a client's idempotency key; return the request it already made, or None.

        None means this caller holds the claim and must store the request, then call
        ``settle_submission`` (or ``release_submission`` if it failed). When another
        caller holds an unsettled claim, wait for it (up to ``wait_s``).
        """
        cs = t.client_submissions.c
        try:
            with self.db.begin() as conn:
                conn.execute(insert(t.client_submissions).values(
                    api_key_id=api_key_id, client_request_id=client_request_id, created=now_utc()))
            return None
        except IntegrityError:
            pass
        deadline = time.monotonic() + wait_s
        while True:
            with self.db.connect() as conn:
                row = conn.execute(select(cs.request_id).where(cs.api_key_id == api_key_id)
                                   .where(cs.client_request_id == client_request_id)).first()
            if row is None:  # the other attempt failed and let go: try again
                return self.claim_submission(api_key_id, client_request_id,
                                        wait_s=max(0.0, deadline - time.monotonic()))
            if row.request_id is not None:
                return int(row.request_id)
            if time.monotonic() > deadline:
                raise InvalidRequest(
                    f"client_request_id {client_request_id!r} is still being processed; retry")
            time.sleep(0.05)

    def settle_submission(self, api_key_id: int, client_request_id: str,
                          request_id: int) -> None:
        """Record which request a claimed idempotency key produced."""
        cs = t.client_submissions.c
        with self.db.begin() as conn:
            conn.execute(update(t.client_submissions).where(cs.api_key_id == api_key_id)
                         .where(cs.client_request_id == client_request_id)
                         .values(request_id=request_id))

    def release_submission(self, api_key_id: int, client_request_id: str) -> None:
        """Give a claim up after the request could not be stored, so a retry can succeed."""
        cs = t.client_submissions.c
        with self.db.begin() as conn:
            conn.execute(delete(t.client_submissions).where(cs.api_key_id == api_key_id)
                         .where(cs.client_request_id == client_request_id)
                         .where(cs.request_id.is_(None)))

    def check_rate(self, api_key_id: int, limit: int, window_s: float,
                   now: datetime | None = None) -> None:
        """Count one POST of a key; raise ``TooManyRequests`` past ``limit`` per ``window_s``.

        Counted in the database, so every server process shares the limit. The window
        slides: the previous fixed window's count is weighted by how much of it still
        lies within ``window_s`` of now (the usual two-counter estimate).
        """
        if limit <= 0 or window_s <= 0:
            raise InvalidRequest(f"a rate limit of {limit} per {window_s:g} s is not positive")
        at = (now or now_utc()).timestamp()
        window = int(at // window_s)
        c = t.api_key_calls.c
        upsert = self.db.dialect.upsert(t.api_key_calls).values(
            api_key_id=api_key_id, window=window, calls=1
        ).on_conflict_do_update(
            index_elements=[c.api_key_id, c.window], set_={"calls": c.calls + 1}
        ).returning(c.calls)
        with self.db.begin() as conn:
            current = int(conn.execute(upsert).scalar_one())
            previous = int(conn.execute(select(c.calls).where(c.api_key_id == api_key_id)
                                        .where(c.window == window - 1)).scalar() or 0)
            if current == 1:  # a new window: forget the ones before the previous
                conn.execute(delete(t.api_key_calls).where(c.api_key_id == api_key_id)
                             .where(c.window < window - 1))
        elapsed = at / window_s - window  # share of the current fixed window gone by
        sent = previous * (1.0 - elapsed) + current
        if sent > limit:
            wait = _seconds_until_room(previous, current, elapsed, limit) * window_s
            raise TooManyRequests(
                f"this api_key sent {sent:.0f} requests in {window_s:g} s; the limit is "
                f"{limit}: retry in {math.ceil(wait)} s", retry_after_s=max(1, math.ceil(wait)))


def _seconds_until_room(previous: int, current: int, elapsed: float, limit: int) -> float:
    """Windows (fractions of one) until the estimate leaves room for one more call."""
    room = limit - 1
    if current <= room:
        needed = 1.0 - (room - current) / previous if previous else elapsed
        return max(needed - elapsed, 0.0)
    # Only the next window helps: there this window becomes the weighted previous one.
    return (1.0 - elapsed) + max(1.0 - room / current, 0.0)
