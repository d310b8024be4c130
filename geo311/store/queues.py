"""Work queues: the staff list of requests, filtered and paged by keys; saved views; bulk changes.

A queue page must answer in milliseconds over a million requests, so every filter is a
condition an index serves (see the indexes of ``service_requests`` in ``tables``) and
pages are found by key (the last row's request time and id), never by ``OFFSET``. The
SLA state is judged in SQL from the due time (``expected_datetime``) against now, on the
wall clock: the SLA board's business-clock share is too slow to compute for every row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)

from geo311.errors import InvalidRequest, NotFound
from geo311.model import OPEN, STATUSES
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.request_rows import district_names
from geo311.store.requests import Requests
from geo311.store.rows import MAX_ID, now_utc, stored_ids

LOGGER = logging.getLogger(__name__)

#: The SLA states a queue filters by (``sla=``).
SLA_STATES = ("breached", "at_risk", "on_time", "none")
#: Less than this share of the time between request and due time left: at risk
#: (the SLA board's ``geo311.sla.AT_RISK_SHARE``, here on the wall clock).
AT_RISK_SHARE = 0.25
PAGE_SIZE = 50
#: A district with at most this many requests is filtered by its ids (see ``_in_district``).
DISTRICT_IDS_MAX = 10_000
MAX_VIEW_NAME = 100
MAX_VIEW_QUERY = 4000


@dataclass(frozen=True)
class QueueFilter:
    """What a work queue shows; every field left empty does not filter.

    ``district`` is ``layer:district`` of an active layer; ``start``/``end`` bound the
    request time (end excluded); ``q`` is found in the description or the address.
    """

    services: tuple[str, ...] = ()
    agency: str | None = None
    status: str | None = None
    district: str | None = None
    sla: str | None = None
    channel: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    q: str | None = None
    assignee: str | None = None


@dataclass(frozen=True)
class QueueRow:
    """One request as the queue lists it: no reporter's data."""

    id: int
    requested_datetime: datetime
    service_code: str
    service_name: str
    agency: str
    status: str
    status_notes: str
    description: str
    address: str
    channel: str
    assignee: str | None
    expected_datetime: datetime | None
    sla: str
    districts: dict[str, str]


@dataclass(frozen=True)
class QueuePage:
    """A page of rows and the keys of the pages on either side (None: no such page)."""

    rows: list[QueueRow]
    next_after: int | None
    previous_before: int | None


@dataclass(frozen=True)
class SavedView:
    """A staff user's named filter set, as the page's query string."""

    id: int
    owner: str
    name: str
    query: str
    created: datetime


def sla_state(status: str, requested: datetime, expected: datetime | None,
              now: datetime) -> str:
    """The queue's SLA state of one request, as the SQL of ``Queues`` judges it.

    Examples
    --------
    >>> from datetime import UTC
    >>> day = lambda d: datetime(2026, 1, d, tzinfo=UTC)
    >>> sla_state("open", day(1), day(5), day(2)), sla_state("open", day(1), day(5), day(6))
    ('on_time', 'breached')
    """
    if status != OPEN or expected is None:
        return "none"
    if expected <= now:
        return "breached"
    if (expected - now) < (expected - requested) * AT_RISK_SHARE:
        return "at_risk"
    return "on_time"


def _like_pattern(words: str) -> str:
    escaped = words.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class Queues:
    """The work queue's reads, saved views and bulk changes."""

    def __init__(self, db: Database, requests: Requests) -> None:
        self.db = db
        self.requests = requests

    # -- the filtered query ------------------------------------------------------------

    def _sla_condition(self, state: str, now: datetime) -> Any:
        sr = t.service_requests.c
        epoch = self.db.dialect.epoch_s
        now_s = now.timestamp()
        is_open = sr.status == OPEN  # a NULL due time is neither before nor after now
        # on time: expected - now >= share * (expected - requested), in seconds
        in_time = (epoch(sr.expected_datetime) * (1 - AT_RISK_SHARE)
                   + epoch(sr.requested_datetime) * AT_RISK_SHARE) >= now_s
        if state == "breached":
            return and_(is_open, sr.expected_datetime <= now)
        if state == "at_risk":
            return and_(is_open, sr.expected_datetime > now, not_(in_time))
        if state == "on_time":
            return and_(is_open, sr.expected_datetime > now, in_time)
        if state == "none":
            return or_(sr.status != OPEN, sr.expected_datetime.is_(None))
        raise InvalidRequest(f"sla was {state!r} but is expected to be in {SLA_STATES}")

    def _district_version(self, conn: Connection, district: str) -> tuple[int, str]:
        layer, sep, district_id = district.partition(":")
        if not sep or not layer or not district_id:
            raise InvalidRequest(f"district was {district!r} but is expected as layer:district")
        lv, ly = t.layer_versions.c, t.layers.c
        version = conn.execute(
            select(lv.id).select_from(t.layer_versions.join(t.layers, ly.id == lv.layer_id))
            .where(ly.name == layer).where(lv.status == "active")).scalar()
        if version is None:
            raise InvalidRequest(f"district was {district!r} but {layer!r} is not an active layer")
        return int(version), district_id

    def _in_district(self, conn: Connection, district: str) -> tuple[Any, bool]:
        """Requests in a district: its ids when few, else a semi-join walked in time order.

        Few ids are read by primary key and sorted (the flag says so: left to itself,
        PostgreSQL may still walk the time index); a large district is dense enough for
        a walk newest first to fill a page soon. Walking through a district of 900 of
        1M requests probed most of the table (1.2 s); its 900 ids by key take milliseconds.
        """
        version, district_id = self._district_version(conn, district)
        rd = t.request_districts.c
        inside = and_(rd.layer_version_id == version, rd.district_id == district_id)
        found = int(conn.execute(select(func.count()).select_from(t.request_districts)
                                 .where(inside)).scalar_one())
        sr = t.service_requests.c
        if found <= DISTRICT_IDS_MAX:
            ids = [int(i) for i in conn.execute(select(rd.request_id).where(inside)).scalars()]
            return (self.db.dialect.one_of(sr.id, ids) if ids else false()), True
        return sr.id.in_(select(rd.request_id).where(inside)), False

    def where(self, conn: Connection, stmt: Any, f: QueueFilter, now: datetime
              ) -> tuple[Any, bool]:
        """``stmt`` (over ``service_requests``) narrowed by ``f``; True: few rows by id."""
        sr, sv = t.service_requests.c, t.services.c
        by_ids = False
        if f.services:
            stmt = stmt.where(sr.service_code.in_(list(f.services)))
        if f.agency:
            codes = list(conn.execute(select(sv.code).where(sv.agency == f.agency)).scalars())
            stmt = stmt.where(sr.service_code.in_(codes) if codes else false())
        if f.status:
            if f.status not in STATUSES:
                raise InvalidRequest(
                    f"status was {f.status!r} but is expected to be in {STATUSES}")
            stmt = stmt.where(sr.status == f.status)
        if f.district:
            inside, by_ids = self._in_district(conn, f.district)
            stmt = stmt.where(inside)
        if f.sla:
            stmt = stmt.where(self._sla_condition(f.sla, now))
        if f.channel:
            stmt = stmt.where(sr.source == f.channel)
        if f.start is not None:
            stmt = stmt.where(sr.requested_datetime >= f.start)
        if f.end is not None:
            stmt = stmt.where(sr.requested_datetime < f.end)
        if f.q and f.q.strip():
            pattern = _like_pattern(f.q.strip())
            stmt = stmt.where(or_(sr.description.ilike(pattern, escape="!"),
                                  sr.address.ilike(pattern, escape="!")))
        if f.assignee:
            stmt = stmt.where(sr.assignee == f.assignee)
        return stmt, by_ids

    def _select(self) -> Any:
        sr, sv = t.service_requests.c, t.services.c
        return select(
            sr.id, sr.requested_datetime, sr.service_code, sv.name, sv.agency, sr.status,
            sr.status_notes, sr.description, sr.address, sr.source, sr.assignee,
            sr.expected_datetime,
        ).select_from(t.service_requests.join(t.services, sv.code == sr.service_code))

    def _beyond(self, conn: Connection, key_id: int, smaller: bool) -> Any:
        """Rows before (``smaller``) or after the row ``key_id`` in (request time, id)."""
        sr = t.service_requests.c
        if not 0 < int(key_id) <= MAX_ID:
            raise InvalidRequest(f"page key was {key_id} but is expected to be a request id")
        at = conn.execute(select(sr.requested_datetime).where(sr.id == int(key_id))).scalar()
        if at is None:
            raise InvalidRequest(f"page key was {key_id} but no such request is stored")
        if smaller:
            return and_(sr.requested_datetime <= at,
                        or_(sr.requested_datetime < at, sr.id < int(key_id)))
        return and_(sr.requested_datetime >= at,
                    or_(sr.requested_datetime > at, sr.id > int(key_id)))

    def statement(self, conn: Connection, f: QueueFilter, now: datetime, *,
                  after: int | None = None, before: int | None = None,
                  oldest_first: bool = False, limit: int = PAGE_SIZE) -> Any:
        """The page query: ``limit`` rows after ``after`` (or before ``before``) in order.

        Rows before ``before`` come in reverse order (nearest the key first).
        """
        sr = t.service_requests.c
        stmt, by_ids = self.where(conn, self._select(), f, now)
        backwards = before is not None
        if after is not None:
            stmt = stmt.where(self._beyond(conn, after, smaller=not oldest_first))
        if before is not None:
            stmt = stmt.where(self._beyond(conn, before, smaller=oldest_first))
        descending = oldest_first == backwards
        if by_ids:  # a subquery with OFFSET 0 is read whole, then sorted: never a time walk
            stmt = stmt.offset(0).subquery()
            sr = stmt.c
            stmt = select(stmt)
        order = ((sr.requested_datetime.desc(), sr.id.desc()) if descending
                 else (sr.requested_datetime.asc(), sr.id.asc()))
        return stmt.order_by(*order).limit(limit)

    def page(self, f: QueueFilter, *, now: datetime | None = None, after: int | None = None,
             before: int | None = None, oldest_first: bool = False,
             size: int = PAGE_SIZE) -> QueuePage:
        """One page of the queue, newest first (or oldest), with its neighbours' keys.

        Examples
        --------
        >>> first = store.queues.page(QueueFilter(status="open"))  # doctest: +SKIP
        >>> store.queues.page(QueueFilter(status="open"), after=first.next_after)  # doctest: +SKIP
        """
        if after is not None and before is not None:
            raise InvalidRequest("give after or before, not both")
        now = now or now_utc()
        with self.db.connect() as conn:
            rows = conn.execute(self.statement(conn, f, now, after=after, before=before,
                                               oldest_first=oldest_first,
                                               limit=size + 1)).all()
            more = len(rows) > size
            rows = rows[:size]
            if before is not None:
                rows.reverse()
            found = self._rows(conn, rows, now)
        if not found:
            return QueuePage([], None, None)
        if before is not None:
            return QueuePage(found, found[-1].id, found[0].id if more else None)
        return QueuePage(found, found[-1].id if more else None,
                         found[0].id if after is not None else None)

    def _rows(self, conn: Connection, rows: Sequence[Any], now: datetime) -> list[QueueRow]:
        names = district_names(self.db.dialect, conn, [int(r[0]) for r in rows]) if rows else {}
        return [QueueRow(int(r[0]), r[1], r[2], r[3], r[4] or "", r[5], r[6], r[7], r[8], r[9],
                         r[10], r[11], sla_state(r[5], r[1], r[11], now),
                         {k: v for k, v in names.get(int(r[0]), {}).items() if v})
                for r in rows]

    def all_rows(self, f: QueueFilter, *, now: datetime | None = None,
                 oldest_first: bool = False, chunk: int = 1000) -> Iterator[QueueRow]:
        """Every row of the queue, in order, read a chunk at a time (for an export)."""
        now = now or now_utc()
        after: int | None = None
        while True:
            with self.db.connect() as conn:
                rows = conn.execute(self.statement(conn, f, now, after=after,
                                                   oldest_first=oldest_first,
                                                   limit=chunk)).all()
                found = self._rows(conn, rows, now)
            yield from found
            if len(found) < chunk:
                return
            after = found[-1].id

    # -- bulk changes ------------------------------------------------------------------

    def set_status_many(self, ids: Sequence[int], status: str, *, note: str = "",
                        actor: str = "system") -> int:
        """Set the status of each request (audited each, as a single change is)."""
        if status not in STATUSES:
            raise InvalidRequest(f"status was {status!r} but is expected to be in {STATUSES}")
        wanted = self._existing(ids)
        for request_id in wanted:
            self.requests.set_status(request_id, status, note=note, actor=actor)
        LOGGER.info("%s set %s requests to %s", actor, len(wanted), status)
        return len(wanted)

    def assign(self, ids: Sequence[int], assignee: str | None, *,
               actor: str = "system") -> int:
        """Assign requests to an active staff user by name (None: unassign); audited each."""
        sr, u = t.service_requests.c, t.users.c
        wanted = self._existing(ids)
        with self.db.begin() as conn:
            if assignee is not None and conn.execute(
                    select(u.id).where(u.username == assignee).where(u.active)).first() is None:
                raise InvalidRequest(
                    f"assignee was {assignee!r} but is expected to be an active staff user")
            before = dict(conn.execute(select(sr.id, sr.assignee).where(sr.id.in_(wanted))).all())
            for request_id in wanted:
                conn.execute(update(t.service_requests).where(sr.id == request_id)
                             .values(assignee=assignee))
                write_audit(conn, "assigned" if assignee else "unassigned", "request",
                            request_id, {"from": before.get(request_id), "to": assignee}, actor)
        LOGGER.info("%s assigned %s requests to %s", actor, len(wanted), assignee or "nobody")
        return len(wanted)

    def _existing(self, ids: Sequence[int]) -> list[int]:
        wanted = sorted(set(stored_ids([int(i) for i in ids])))
        if not wanted:
            raise InvalidRequest("no requests were chosen")
        sr = t.service_requests.c
        with self.db.connect() as conn:
            found = set(conn.execute(select(sr.id).where(sr.id.in_(wanted))).scalars())
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFound(f"service requests {missing} do not exist")
        return wanted

    # -- saved views -------------------------------------------------------------------

    def save_view(self, owner: str, name: str, query: str) -> SavedView:
        """Keep ``query`` under ``name`` for ``owner``; the same name is overwritten."""
        name = name.strip()
        if not 0 < len(name) <= MAX_VIEW_NAME:
            raise InvalidRequest(f"view name was {name!r} but is expected to have 1 to "
                                 f"{MAX_VIEW_NAME} characters")
        if len(query) > MAX_VIEW_QUERY:
            raise InvalidRequest(f"the view's filters are {len(query)} characters long but "
                                 f"at most {MAX_VIEW_QUERY} are kept")
        v = t.saved_views.c
        with self.db.begin() as conn:
            found = conn.execute(select(v.id).where(v.owner == owner)
                                 .where(v.name == name)).scalar()
            if found is None:
                found = conn.execute(insert(t.saved_views).values(
                    owner=owner, name=name, query=query, created=now_utc()
                ).returning(v.id)).scalar_one()
            else:
                conn.execute(update(t.saved_views).where(v.id == found).values(query=query))
            write_audit(conn, "view_saved", "saved_view", found, {"name": name, "query": query},
                        owner)
        return self.view(owner, int(found))

    def views(self, owner: str) -> list[SavedView]:
        """``owner``'s saved views, by name."""
        v = t.saved_views.c
        with self.db.connect() as conn:
            rows = conn.execute(select(v.id, v.owner, v.name, v.query, v.created)
                                .where(v.owner == owner).order_by(v.name, v.id)).all()
        return [SavedView(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    def view(self, owner: str, view_id: int) -> SavedView:
        """One of ``owner``'s views; another user's is not found."""
        for found in self.views(owner):
            if found.id == int(view_id):
                return found
        raise NotFound(f"saved view {view_id} does not exist")

    def delete_view(self, owner: str, view_id: int) -> None:
        """Delete one of ``owner``'s views."""
        gone = self.view(owner, view_id)
        with self.db.begin() as conn:
            conn.execute(delete(t.saved_views).where(t.saved_views.c.id == gone.id))
            write_audit(conn, "view_deleted", "saved_view", gone.id, {"name": gone.name}, owner)
