"""API clients: hashed keys, idempotent submissions, and the answers stored with requests.

Only a SHA-256 of each key is stored. A key is 32 random bytes (256 bits), so a fast
hash is enough: nobody can guess a key from its hash by trying candidates.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from geo311.errors import InvalidRequest, NotFound, TooManyRequests
from geo311.model import ServiceRequest
from geo311.store import tables as t
from geo311.store.records import (
    find_statement,
    public_filters,
    request_page,
    rows_within,
    stored_ids,
)
from geo311.store.sql import SQLStore, now_utc


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


def create_api_key(store: SQLStore, name: str, *, actor: str = "system") -> str:
    """Make a new key named ``name`` and return it; only its hash is kept.

    Examples
    --------
    >>> key = create_api_key(store, "seeclickfix")  # doctest: +SKIP
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidRequest(f"key name {name!r} must have 1 to 100 characters")
    key = secrets.token_urlsafe(32)
    k = t.api_keys.c
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(t.api_keys).values(name=name, key_hash=hash_key(key),
                                                   created=now_utc()))
            store._audit(conn, "api_key_created", "api_key", name, {}, actor)
    except IntegrityError as exc:
        with store.engine.connect() as conn:
            exists = conn.execute(select(k.id).where(k.name == name)).first()
        if exists:
            raise InvalidRequest(f"an API key named {name!r} exists already") from exc
        raise
    return key


def revoke_api_key(store: SQLStore, name: str, *, actor: str = "system") -> None:
    """Refuse a key from now on; audited."""
    k = t.api_keys.c
    with store.engine.begin() as conn:
        done = conn.execute(update(t.api_keys).where(k.name == name).where(k.revoked.is_(None))
                            .values(revoked=now_utc())).rowcount
        if not done:
            found = conn.execute(select(k.revoked).where(k.name == name)).first()
            if found is None:
                raise NotFound(f"no API key is named {name!r}")
            raise InvalidRequest(f"the API key {name!r} was revoked on {found[0].isoformat()}")
        store._audit(conn, "api_key_revoked", "api_key", name, {}, actor)


def api_keys(store: SQLStore) -> list[ApiKey]:
    """Every key, by name."""
    k = t.api_keys.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(k.id, k.name, k.created, k.revoked).order_by(k.name)).all()
    return [ApiKey(*r) for r in rows]


def find_api_key(store: SQLStore, key: str) -> ApiKey | None:
    """The live (not revoked) key matching ``key``, or None."""
    if not key:
        return None
    k = t.api_keys.c
    with store.engine.connect() as conn:
        row = conn.execute(select(k.id, k.name, k.created, k.revoked)
                           .where(k.key_hash == hash_key(key))).first()
    if row is None or row.revoked is not None:
        return None
    return ApiKey(*row)


def claim_submission(store: SQLStore, api_key_id: int, client_request_id: str,
                     *, wait_s: float = 10.0) -> int | None:
    """Claim a client's idempotency key; return the request it already made, or None.

    None means this caller holds the claim and must store the request, then call
    ``settle_submission`` (or ``release_submission`` if it failed). When another
    caller holds an unsettled claim, wait for it (up to ``wait_s``).
    """
    cs = t.client_submissions.c
    try:
        with store.engine.begin() as conn:
            conn.execute(insert(t.client_submissions).values(
                api_key_id=api_key_id, client_request_id=client_request_id, created=now_utc()))
        return None
    except IntegrityError:
        pass
    deadline = time.monotonic() + wait_s
    while True:
        with store.engine.connect() as conn:
            row = conn.execute(select(cs.request_id).where(cs.api_key_id == api_key_id)
                               .where(cs.client_request_id == client_request_id)).first()
        if row is None:  # the other attempt failed and let go: try again
            return claim_submission(store, api_key_id, client_request_id,
                                    wait_s=max(0.0, deadline - time.monotonic()))
        if row.request_id is not None:
            return int(row.request_id)
        if time.monotonic() > deadline:
            raise InvalidRequest(
                f"client_request_id {client_request_id!r} is still being processed; retry")
        time.sleep(0.05)


def settle_submission(store: SQLStore, api_key_id: int, client_request_id: str,
                      request_id: int) -> None:
    """Record which request a claimed idempotency key produced."""
    cs = t.client_submissions.c
    with store.engine.begin() as conn:
        conn.execute(update(t.client_submissions).where(cs.api_key_id == api_key_id)
                     .where(cs.client_request_id == client_request_id)
                     .values(request_id=request_id))


def release_submission(store: SQLStore, api_key_id: int, client_request_id: str) -> None:
    """Give a claim up after the request could not be stored, so a retry can succeed."""
    cs = t.client_submissions.c
    with store.engine.begin() as conn:
        conn.execute(delete(t.client_submissions).where(cs.api_key_id == api_key_id)
                     .where(cs.client_request_id == client_request_id)
                     .where(cs.request_id.is_(None)))


def check_rate(store: SQLStore, api_key_id: int, limit: int, window_s: float,
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
    dialect_insert = pg_insert if store.engine.dialect.name == "postgresql" else sqlite_insert
    upsert = dialect_insert(t.api_key_calls).values(
        api_key_id=api_key_id, window=window, calls=1
    ).on_conflict_do_update(
        index_elements=[c.api_key_id, c.window], set_={"calls": c.calls + 1}
    ).returning(c.calls)
    with store.engine.begin() as conn:
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


def request_answers(store: SQLStore, request_id: int) -> dict[str, list[str]]:
    """The answers given to the service's questions when the request was made (staff)."""
    sr = t.service_requests.c
    if not stored_ids([request_id]):
        raise NotFound(f"service request {request_id} does not exist")
    with store.engine.connect() as conn:
        row = conn.execute(select(sr.attributes).where(sr.id == int(request_id))).first()
    if row is None:
        raise NotFound(f"service request {request_id} does not exist")
    return dict(json.loads(row[0])) if row[0] else {}


def catalogue_changed(store: SQLStore) -> datetime | None:
    """When the service catalogue was last loaded, from the audit log."""
    a = t.audit_log.c
    with store.engine.connect() as conn:
        return conn.execute(  # type: ignore[no-any-return]
            select(func.max(a.at)).where(a.entity == "service")).scalar()


def find_requests(
    store: SQLStore, *, limit: int = 1000, offset: int = 0, **filters: Any
) -> list[ServiceRequest]:
    """Public requests matching every filter given, newest first (ids alone override all).

    Filters: ``ids``, ``service_codes``, ``statuses``, ``start``, ``end``, ``bbox``,
    ``near``, ``updated_after``, ``updated_before``. ``near`` is ``(lon, lat,
    radius_m)``, decided in metres after the index narrows to a box, so both backends
    agree.
    """
    near = filters.get("near")
    with store.engine.connect() as conn:
        filters = public_filters(store, conn, filters)
        stmt = find_statement(store, **filters)
        if near is None or filters.get("ids") is not None:
            rows = conn.execute(stmt.limit(limit).offset(offset)).all()
        else:
            rows = rows_within(conn, stmt, near, limit=limit, offset=offset,
                               sensitive=filters.get("sensitive", ()))
        return store._to_requests(conn, rows)


def count_requests(store: SQLStore, **filters: Any) -> int:
    """How many public requests ``find_requests`` would find (``near`` aside), masked alike."""
    sr = t.service_requests.c
    with store.engine.connect() as conn:
        filters = public_filters(store, conn, {**filters, "near": None})
        stmt = find_statement(store, base=select(sr.id).select_from(t.service_requests),
                              **filters).order_by(None)
        return int(conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())


def request_documents(
    store: SQLStore, zone: tzinfo, *, extensions: bool, limit: int = 1000, offset: int = 0,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Open311 records of the requests ``find_requests`` finds, newest first.

    Public fields only, sensitive services masked; read from the stored records
    (``records.request_page``), which the web layer also writes out as JSON directly.
    """
    return request_page(store, zone, limit=limit, offset=offset,
                        **filters).documents(extensions=extensions)
