"""Stored public records: each request's Open311 record as JSON text, with its stamps.

A record is written with the request's ``revision`` and a stamp, "records
generation|time zone|record format". Triggers (``Dialect.record_triggers``) raise the
revision whenever the request's shown columns are written, and the generation
whenever services, layers, layer versions or a recorded request's districts change.
A reader therefore knows a stale record when it meets one, whichever code path made
it stale. What a record says is Open311's business (``geo311.open311_records``);
this module only keeps the texts and tells current ones from stale ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.exc import OperationalError

from geo311.store import tables as t
from geo311.store.database import Database
from geo311.store.request_rows import district_names
from geo311.store.search import Search, rows_within

LOGGER = logging.getLogger(__name__)

#: Records read, built or stored per batch.
REFRESH_BATCH = 5000

#: A built record: id -> (revision, stamp, JSON text).
Built = dict[int, tuple[int, str, str]]


def _generation() -> Any:
    si = t.schema_info.c
    return select(si.value).where(si.key == t.RECORDS_GENERATION).scalar_subquery()


class PublicRecords:
    """The stored record texts and the rows they are built from."""

    def __init__(self, db: Database, search: Search) -> None:
        self.db = db
        self.search = search

    def page(self, stamp_tail: str, *, limit: int = 1000, offset: int = 0,
             **filters: Any) -> list[tuple[int, str | None]]:
        """``(id, record)`` of a page of what ``search.find`` finds, newest first.

        ``record`` is the stored text while current (its revision and its stamp,
        generation then ``stamp_tail``), None when missing or stale.
        """
        sr, pr = t.service_requests.c, t.public_records.c
        near = filters.get("near") if filters.get("ids") is None else None
        columns: list[Any] = [sr.id, sr.revision, sr.requested_datetime]
        if near is not None:
            columns += [func.ST_X(sr.geom).label("lon"), func.ST_Y(sr.geom).label("lat"),
                        sr.service_code]
        with self.db.connect() as conn:
            filters = self.search.public_filters(conn, filters)
            found = self.search.statement(
                base=select(*columns).select_from(t.service_requests), **filters)
            if near is None:
                page = found.limit(limit).offset(offset).subquery()
            else:
                wanted = [r.id for r in rows_within(conn, found, near, limit=limit,
                                                    offset=offset,
                                                    sensitive=filters.get("sensitive", ()))]
                page = (select(sr.id, sr.revision, sr.requested_datetime)
                        .where(self.db.dialect.one_of(sr.id, wanted)).subquery())
            stmt = (select(page.c.id, page.c.revision, pr.revision, pr.stamp, pr.record,
                           _generation().label("generation"))
                    .select_from(page.outerjoin(t.public_records, pr.request_id == page.c.id))
                    .order_by(page.c.requested_datetime.desc(), page.c.id.desc()))
            rows = conn.execute(stmt).all()
        return [(rid, record if record is not None and kept == revision
                 and stamp == f"{generation}|{stamp_tail}" else None)
                for rid, revision, kept, stamp, record, generation in rows]

    def record_rows(self, conn: Connection, ids: Sequence[int], zone_name: str | None
                    ) -> tuple[list[Any], dict[int, dict[str, str | None]], bool]:
        """The rows the records of ``ids`` are built from, with their districts.

        The flag says whether the database wrote the times (W3C text in ``zone_name``).

        Each row: id, status, notes, service name, code, description, agency,
        requested, updated, expected, address, zipcode, lat, lon, media_url,
        duplicate_of, reporters, sensitive, revision, generation, service group (for
        the routing table's agency). The revision and
        generation are read in the statement that reads the request, and the districts
        after it, so a change made meanwhile leaves the record stamped older than it.
        """
        sr, sv = t.service_requests.c, t.services.c
        times = [sr.requested_datetime, sr.updated_datetime, sr.expected_datetime]
        written = [self.db.dialect.local_time_text(c) if zone_name else None for c in times]
        columns = [
            sr.id, sr.status, sr.status_notes, sv.name, sr.service_code, sr.description,
            case((sv.active, sv.agency), else_=""),
            *(w if w is not None else c for w, c in zip(written, times, strict=True)),
            sr.address, sr.zipcode, func.ST_Y(sr.geom), func.ST_X(sr.geom), sr.media_url,
            sr.duplicate_of, sr.reporter_count, sv.sensitive, sr.revision,
            _generation().label("generation"), sv.group,
        ]
        rows: list[Any] = []
        with conn.begin():
            if zone_name and written[0] is not None:
                self.db.dialect.use_time_zone(conn, zone_name)
            for start in range(0, len(ids), REFRESH_BATCH):
                chunk = list(ids[start:start + REFRESH_BATCH])
                rows += conn.execute(
                    select(*columns)
                    .select_from(t.service_requests.join(t.services,
                                                         sv.code == sr.service_code))
                    .where(self.db.dialect.one_of(sr.id, chunk))).all()
            districts = district_names(self.db.dialect, conn, [r[0] for r in rows])
        return rows, districts, written[0] is not None

    def save(self, built: Built) -> int:
        """Store built records for the next reader; return how many were written.

        The records are a cache: when the database is busy (SQLite's single writer) they
        are not stored this time and the next reader builds them again.
        """
        pr = t.public_records.c
        rows = [{"request_id": rid, "revision": revision, "stamp": stamp, "record": record}
                for rid, (revision, stamp, record) in sorted(built.items())]  # one lock order
        try:
            with self.db.connect() as conn, self.db.dialect.cache_transaction(conn):
                for start in range(0, len(rows), REFRESH_BATCH):
                    upsert = self.db.dialect.upsert(t.public_records)
                    conn.execute(upsert.on_conflict_do_update(
                        index_elements=[pr.request_id],
                        set_={"revision": upsert.excluded.revision,
                              "stamp": upsert.excluded.stamp,
                              "record": upsert.excluded.record}),
                        rows[start:start + REFRESH_BATCH])
        except OperationalError as exc:
            LOGGER.info("public records not stored this time (%s); the next reader builds "
                        "them", exc.orig)
            return 0
        return len(rows)

    def stale(self, stamp_tail: str) -> tuple[list[int], int]:
        """Ids of requests whose record is missing or stale, and how many requests exist."""
        sr, pr = t.service_requests.c, t.public_records.c
        with self.db.connect() as conn:
            rows = conn.execute(
                select(sr.id, sr.revision == pr.revision,
                       pr.stamp == _generation() + f"|{stamp_tail}")
                .select_from(t.service_requests.outerjoin(t.public_records,
                                                          pr.request_id == sr.id))
                .order_by(sr.id)).all()
        return [rid for rid, same_revision, same_stamp in rows
                if not (same_revision and same_stamp)], len(rows)
