"""Legal holds: requests kept from retention and deletion, and the search that finds them.

A hold keeps the ids its query matched when it was placed. A request is held while
any of its holds is not released; ``held()`` is the condition every deleting or
anonymising statement adds (``store.retention`` does).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, insert, or_, select, update

from geo311.errors import InvalidRequest, NotFound
from geo311.model import STATUSES, LegalHold, RecordQuery
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.contacts import reporter_matches
from geo311.store.database import Database
from geo311.store.rows import MAX_ID, now_utc, stored_ids

LOGGER = logging.getLogger(__name__)

#: The lock key a hold and a retention batch both take, so none applies to a request a
#: hold committed meanwhile.
RECORDS_LOCK = "geo311.records"
#: Ids written per statement when a hold is placed.
_INSERT_BATCH = 5000
#: Ids an audit entry lists in full; a larger hold's entry says how many (the rows keep them).
AUDIT_IDS_MAX = 10_000


def held(request_id: Any) -> Any:
    """SQL: the request ``request_id`` (a column or value) is under an active hold."""
    hr, lh = t.legal_hold_requests.c, t.legal_holds.c
    return exists(select(hr.request_id).select_from(
        t.legal_hold_requests.join(t.legal_holds, lh.id == hr.hold_id))
        .where(hr.request_id == request_id, lh.released.is_(None)))


def like_pattern(words: str) -> str:
    """A LIKE pattern finding ``words`` anywhere (``!`` escapes)."""
    escaped = words.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class Holds:
    """Legal holds, their requests, and the records search that chooses them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the records search ---------------------------------------------------------------

    def matching_ids(self, query: RecordQuery, *, start: datetime | None = None,
                     end: datetime | None = None) -> list[int]:
        """Ids of the requests ``query`` takes, requested in [start, end), ascending.

        ``start``/``end`` are the query's local days as UTC times (the caller knows the
        time zone). Personal data is matched here and never returned.

        Examples
        --------
        >>> store.holds.matching_ids(RecordQuery(services=("SCB",)))  # doctest: +SKIP
        [3, 17, 40]
        """
        with self.db.connect() as conn:
            stmt = self.statement(conn, query, start=start, end=end)
            return [int(i) for i in conn.execute(stmt).scalars()]

    def statement(self, conn: Connection, query: RecordQuery, *,
                  start: datetime | None = None, end: datetime | None = None) -> Any:
        """The ``SELECT id FROM service_requests`` of ``query``, in id order."""
        if query.is_empty() and start is None and end is None:
            raise InvalidRequest("the query names no service, district, date, text, reporter, "
                                 "status or id: it would take every request")
        sr = t.service_requests.c
        stmt = select(sr.id)
        if query.ids:
            stmt = stmt.where(self.db.dialect.one_of(sr.id, stored_ids(query.ids)))
        if query.services:
            stmt = stmt.where(sr.service_code.in_(list(query.services)))
        if query.status is not None:
            if query.status not in STATUSES:
                raise InvalidRequest(f"status was {query.status!r} but is expected to be in "
                                     f"{STATUSES}")
            stmt = stmt.where(sr.status == query.status)
        if start is not None:
            stmt = stmt.where(sr.requested_datetime >= start)
        if end is not None:
            stmt = stmt.where(sr.requested_datetime < end)
        for version, district_ids in self._district_versions(conn, query.districts):
            rd = t.request_districts.c
            stmt = stmt.where(sr.id.in_(select(rd.request_id).where(
                rd.layer_version_id == version, rd.district_id.in_(district_ids))))
        if query.text.strip():
            pattern = like_pattern(query.text.strip())
            n = t.request_notes.c
            stmt = stmt.where(or_(
                sr.description.ilike(pattern, escape="!"), sr.address.ilike(pattern, escape="!"),
                sr.status_notes.ilike(pattern, escape="!"),
                sr.id.in_(select(n.request_id).where(n.body.ilike(pattern, escape="!")))))
        rp = t.reporters.c
        if query.reporter_email.strip():
            stmt = stmt.where(sr.id.in_(select(rp.request_id).where(
                or_(*reporter_matches(email=query.reporter_email)))))
        if query.reporter_phone.strip():
            stmt = stmt.where(sr.id.in_(select(rp.request_id).where(
                or_(*reporter_matches(phone=query.reporter_phone)))))
        return stmt.order_by(sr.id)

    def _district_versions(self, conn: Connection, districts: Sequence[tuple[str, str]]
                           ) -> list[tuple[int, list[str]]]:
        """The active version of each layer named, with its district ids (any of them)."""
        by_layer: dict[str, list[str]] = defaultdict(list)
        for layer, district_id in districts:
            by_layer[layer].append(district_id)
        lv, ly = t.layer_versions.c, t.layers.c
        out = []
        for layer, ids in sorted(by_layer.items()):
            version = conn.execute(
                select(lv.id).select_from(t.layer_versions.join(t.layers, ly.id == lv.layer_id))
                .where(ly.name == layer, lv.status == "active")).scalar()
            if version is None:
                raise InvalidRequest(f"district was {layer}:{ids[0]} but {layer!r} is not an "
                                     "active layer")
            out.append((int(version), sorted(set(ids))))
        return out

    # -- holds ------------------------------------------------------------------------------

    def place(self, ids: Sequence[int], *, reason: str, owner: str, query: str = ""
              ) -> LegalHold:
        """Hold the requests ``ids`` (all must exist); audited with reason, owner and date.

        Examples
        --------
        >>> store.holds.place([7, 9], reason="Claim 2026-114", owner="rita")  # doctest: +SKIP
        LegalHold(id=1, reason='Claim 2026-114', owner='rita', ...)
        """
        wanted = sorted({int(i) for i in ids})
        if not reason.strip():
            raise InvalidRequest("a hold needs a reason (the matter, case or request it serves)")
        if not wanted:
            raise InvalidRequest("a hold needs at least one request")
        sr = t.service_requests.c
        now = now_utc()
        with self.db.begin() as conn:
            self.db.dialect.lock_key(conn, RECORDS_LOCK)
            found: set[int] = set()
            for i in range(0, len(wanted), _INSERT_BATCH):
                chunk = [x for x in wanted[i:i + _INSERT_BATCH] if 0 < x <= MAX_ID]
                found |= set(conn.execute(select(sr.id).where(
                    self.db.dialect.one_of(sr.id, chunk))).scalars()) if chunk else set()
            missing = [i for i in wanted if i not in found]
            if missing:
                raise NotFound(f"requests {missing[:20]} do not exist"
                               + (f" (and {len(missing) - 20} more)" if len(missing) > 20 else ""))
            hold_id = conn.execute(insert(t.legal_holds).values(
                reason=reason.strip(), owner=owner, created=now, query=query,
                request_count=len(wanted)).returning(t.legal_holds.c.id)).scalar_one()
            for i in range(0, len(wanted), _INSERT_BATCH):
                conn.execute(insert(t.legal_hold_requests), [
                    {"hold_id": hold_id, "request_id": r} for r in wanted[i:i + _INSERT_BATCH]])
            write_audit(conn, "hold_placed", "hold", hold_id, {
                "reason": reason.strip(), "owner": owner, "created": now.isoformat(),
                "requests": len(wanted), "query": query,
                "ids": wanted if len(wanted) <= AUDIT_IDS_MAX else "see legal_hold_requests",
            }, owner)
        LOGGER.info("hold #%s on %s requests by %s: %s", hold_id, len(wanted), owner, reason)
        return self.get(hold_id)

    def release(self, hold_id: int, *, by: str) -> LegalHold:
        """End a hold (its requests stay held by any other active hold); audited."""
        hold = self.get(hold_id)
        if not hold.active:
            raise InvalidRequest(f"hold {hold_id} was already released on "
                                 f"{hold.released:%Y-%m-%d %H:%M} UTC by {hold.released_by}")
        now = now_utc()
        lh = t.legal_holds.c
        with self.db.begin() as conn:
            changed = conn.execute(update(t.legal_holds).where(
                lh.id == hold.id, lh.released.is_(None)).values(released=now, released_by=by)
            ).rowcount
            if changed != 1:  # released meanwhile by someone else
                raise InvalidRequest(f"hold {hold_id} was already released")
            write_audit(conn, "hold_released", "hold", hold.id, {
                "reason": hold.reason, "owner": hold.owner, "created": hold.created.isoformat(),
                "released": now.isoformat(), "released_by": by,
                "requests": hold.request_count}, by)
        LOGGER.info("hold #%s released by %s", hold.id, by)
        return self.get(hold.id)

    def get(self, hold_id: int) -> LegalHold:
        """One hold; raise ``NotFound``."""
        if not 0 < int(hold_id) <= MAX_ID:
            raise NotFound(f"hold {hold_id} does not exist")
        with self.db.connect() as conn:
            row = conn.execute(select(t.legal_holds).where(t.legal_holds.c.id == int(hold_id))
                               ).mappings().first()
        if row is None:
            raise NotFound(f"hold {hold_id} does not exist")
        return _hold(row)

    def holds(self, *, active_only: bool = False) -> list[LegalHold]:
        """Holds, newest first (only those not released with ``active_only``)."""
        lh = t.legal_holds.c
        stmt = select(t.legal_holds).order_by(lh.id.desc())
        if active_only:
            stmt = stmt.where(lh.released.is_(None))
        with self.db.connect() as conn:
            return [_hold(r) for r in conn.execute(stmt).mappings()]

    def requests_of(self, hold_id: int) -> list[int]:
        """The ids a hold holds (held or not by now), ascending."""
        hr = t.legal_hold_requests.c
        with self.db.connect() as conn:
            return [int(i) for i in conn.execute(select(hr.request_id).where(
                hr.hold_id == int(hold_id)).order_by(hr.request_id)).scalars()]

    def held_among(self, ids: Sequence[int]) -> set[int]:
        """Which of ``ids`` are under an active hold now."""
        wanted = stored_ids(ids)
        if not wanted:
            return set()
        sr = t.service_requests.c
        with self.db.connect() as conn:
            return {int(i) for i in conn.execute(select(sr.id).where(
                self.db.dialect.one_of(sr.id, wanted), held(sr.id))).scalars()}

    def held_count(self) -> int:
        """How many distinct requests are under an active hold."""
        hr, lh = t.legal_hold_requests.c, t.legal_holds.c
        with self.db.connect() as conn:
            return int(conn.execute(select(func.count(func.distinct(hr.request_id)))
                                    .select_from(t.legal_hold_requests.join(
                                        t.legal_holds, lh.id == hr.hold_id))
                                    .where(lh.released.is_(None))).scalar_one())

    def refuse_if_held(self, conn: Connection, ids: Sequence[int], what: str) -> None:
        """Raise ``InvalidRequest`` when one of ``ids`` is held (inside ``conn``'s change)."""
        sr = t.service_requests.c
        wanted = stored_ids(ids)
        if not wanted:
            return
        found = sorted(int(i) for i in conn.execute(select(sr.id).where(
            and_(self.db.dialect.one_of(sr.id, wanted), held(sr.id)))).scalars())
        if found:
            raise InvalidRequest(f"requests {found[:20]} are under a legal hold: {what} is "
                                 "refused until the hold is released")


def _hold(r: Any) -> LegalHold:
    return LegalHold(id=int(r["id"]), reason=r["reason"], owner=r["owner"],
                     created=r["created"], query=r["query"],
                     request_count=int(r["request_count"]), released=r["released"],
                     released_by=r["released_by"])

