"""Stored public records: GET requests reads a page of them instead of building each.

A request's record is its extended Open311 record (``open311.public_record``, a
sensitive service masked), written once as JSON into ``public_records`` with the
request's ``revision`` and a stamp, "records generation|time zone|record format".
Triggers raise the
revision whenever the request's shown columns are written, and the generation
whenever services, layers, layer versions or a recorded request's districts change
(``SQLStore._record_triggers``). A reader therefore knows a stale record when it meets
one, whichever code path made it stale: it builds the record again from the rows and
stores it for the next reader. Nothing has to remember to invalidate.

A page of 1,000 stored records is one indexed query and a string join; building them
costs a districts query and 1,000 Python dicts more.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import orjson
from sqlalchemy import Connection, and_, case, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from geo311 import open311
from geo311.geodesy import haversine_m
from geo311.privacy import MASK_SHIFT_MAX_M, mask_record, shown_points
from geo311.store import tables as t
from geo311.store.sql import MAX_ID, SQLStore, degree_box

LOGGER = logging.getLogger(__name__)

#: Records built and stored per batch when refreshing them all.
REFRESH_BATCH = 5000


@dataclass(frozen=True)
class RecordPage:
    """A page of requests' public records, each the extended record as JSON text."""

    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def documents(self, *, extensions: bool) -> list[dict[str, Any]]:
        """The records as dicts; without ``extensions``, the strict GeoReport v2 fields."""
        records: list[dict[str, Any]] = orjson.loads("[" + ",".join(self.texts) + "]")
        if extensions:
            return records
        return [open311.strict_record(r) for r in records]

    def json(self, *, extensions: bool) -> bytes:
        """The page as the JSON document GET requests returns."""
        if extensions:  # the stored texts are the answer: no parsing, no writing
            return ("[" + ",".join(self.texts) + "]").encode("utf-8")
        return open311.to_json(self.documents(extensions=False))


#: The shape of a record; raised when its fields change, so older stored records are stale.
RECORD_FORMAT = 2


def stamp_tail(zone: tzinfo) -> str:
    """What follows the generation in a current record's stamp: zone and record format."""
    return f"{zone_key(zone)}|{RECORD_FORMAT}"


def zone_key(zone: tzinfo) -> str:
    """The name a stamp gives ``zone`` (records keep the times they were written in)."""
    return str(getattr(zone, "key", None) or zone)


def _generation() -> Any:
    si = t.schema_info.c
    return select(si.value).where(si.key == t.RECORDS_GENERATION).scalar_subquery()


def find_statement(
    store: SQLStore, *, base: Any = None, ids: Sequence[int] | None = None,
    service_codes: Sequence[str] = (), statuses: Sequence[str] = (),
    start: datetime | None = None, end: datetime | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    near: tuple[float, float, float] | None = None, updated_after: datetime | None = None,
    updated_before: datetime | None = None, sensitive: Collection[str] = (),
    masked_in_bbox: Sequence[int] = (),
) -> Any:
    """``base`` (default: the public columns) filtered as GET requests asks, newest first.

    ``ids`` override every other filter (an id the column cannot hold matches
    nothing); ``near`` narrows to its box only, widened by the mask's reach when
    services are ``sensitive`` (the caller decides in metres, on the shown point).
    With ``sensitive`` services a ``bbox`` keeps the others by their point and, of the
    sensitive ones, only ``masked_in_bbox`` (whose masked point is inside it).
    """
    sr = t.service_requests.c
    stmt = store._public_select() if base is None else base
    if ids is not None:
        stmt = stmt.where(sr.id.in_(stored_ids(ids)))
    else:
        stmt = store._request_filters(stmt, service_codes=service_codes, start=start, end=end,
                                      bbox=None if sensitive else bbox)
        if statuses:
            stmt = stmt.where(sr.status.in_(list(statuses)))
        if updated_after is not None:
            stmt = stmt.where(sr.updated_datetime >= updated_after)
        if updated_before is not None:
            stmt = stmt.where(sr.updated_datetime <= updated_before)
        if bbox is not None and sensitive:
            # One index lookup (the widened box); the exact box on the coordinates.
            x, y = func.ST_X(sr.geom), func.ST_Y(sr.geom)
            stmt = stmt.where(store._within_box(widened(bbox, MASK_SHIFT_MAX_M))).where(or_(
                and_(sr.service_code.not_in(list(sensitive)), x.between(bbox[0], bbox[2]),
                     y.between(bbox[1], bbox[3])),
                store._one_of(sr.id, list(masked_in_bbox))))
        if near is not None:
            reach = near[2] + (MASK_SHIFT_MAX_M if sensitive else 0.0)
            stmt = stmt.where(store._within_box(degree_box(near[0], near[1], reach)))
    return stmt.order_by(sr.requested_datetime.desc(), sr.id.desc())


def stored_ids(ids: Sequence[int]) -> list[int]:
    """The ids a request can have: one outside the id column's range does not exist."""
    return [int(i) for i in ids if 0 < int(i) <= MAX_ID]


def widened(box: tuple[float, float, float, float], margin_m: float
            ) -> tuple[float, float, float, float]:
    """``box`` grown by ``margin_m`` metres on every side (in degrees, generously)."""
    x0, y0, _, _ = degree_box(box[0], box[1], margin_m)
    _, _, x1, y1 = degree_box(box[2], box[3], margin_m)
    # The wider of the two latitudes' longitude spans holds at both edges.
    dlon = max(box[0] - x0, x1 - box[2])
    return box[0] - dlon, y0, box[2] + dlon, y1


def public_filters(store: SQLStore, conn: Connection, filters: dict[str, Any]
                   ) -> dict[str, Any]:
    """``filters`` with what matching on the public's view of sensitive points needs.

    A sensitive service is shown at its cell centre, so every spatial filter must
    decide on that point, not the true one: otherwise sliding a search area reveals
    where it is. The sensitive candidates of a ``bbox`` (few) are read in a widened
    box and kept when their masked point is inside; the rest stays one indexed query.
    """
    if filters.get("ids") is not None or (filters.get("bbox") is None
                                          and filters.get("near") is None):
        return filters
    sensitive = sorted(store.sensitive_service_codes())
    out = {**filters, "sensitive": sensitive}
    box = filters.get("bbox")
    if sensitive and box is not None:
        sr = t.service_requests.c
        candidates = find_statement(
            store, base=select(sr.id, sr.service_code, func.ST_X(sr.geom).label("lon"),
                               func.ST_Y(sr.geom).label("lat"))
            .select_from(t.service_requests).where(sr.service_code.in_(sensitive)),
            **{**filters, "bbox": widened(box, MASK_SHIFT_MAX_M), "near": None})
        rows = conn.execute(candidates).all()
        xs, ys = shown_points([r.service_code for r in rows], [r.lon for r in rows],
                              [r.lat for r in rows], set(sensitive))
        inside = (xs >= box[0]) & (xs <= box[2]) & (ys >= box[1]) & (ys <= box[3])
        out["masked_in_bbox"] = [r.id for r, keep in zip(rows, inside, strict=True) if keep]
    return out


def rows_within(conn: Connection, stmt: Any, near: tuple[float, float, float], *,
                limit: int, offset: int, sensitive: Collection[str] = ()) -> list[Any]:
    """One page of ``stmt``'s rows (``lon``, ``lat``, ``service_code``) within ``near``.

    ``near`` is (lon, lat, metres). The index narrows to a box; the distance is decided
    here in metres, so both backends agree, and from the point the public sees: a
    ``sensitive`` service's masked point.
    """
    rows = list(conn.execute(stmt).all())
    if rows:
        xs, ys = shown_points([r.service_code for r in rows] if sensitive else [""] * len(rows),
                              [r.lon for r in rows], [r.lat for r in rows], set(sensitive))
        dist = haversine_m(near[0], near[1], xs, ys)
        rows = [r for r, d in zip(rows, dist, strict=True) if d <= near[2]]
    return rows[offset:offset + limit]


def request_page(store: SQLStore, zone: tzinfo, *, limit: int = 1000, offset: int = 0,
                 **filters: Any) -> RecordPage:
    """The public records of the requests ``clients.find_requests`` finds, newest first.

    Stored records are used while current; missing or stale ones are built from the
    rows, returned, and stored for the next reader.

    Examples
    --------
    >>> page = request_page(store, ZoneInfo("America/Chicago"), bbox=box)  # doctest: +SKIP
    >>> page.json(extensions=True)  # doctest: +SKIP
    b'[{"service_request_id":"7",...}]'
    """
    sr, pr = t.service_requests.c, t.public_records.c
    near = filters.get("near") if filters.get("ids") is None else None
    columns: list[Any] = [sr.id, sr.revision, sr.requested_datetime]
    if near is not None:
        columns += [func.ST_X(sr.geom).label("lon"), func.ST_Y(sr.geom).label("lat"),
                    sr.service_code]
    with store.engine.connect() as conn:
        filters = public_filters(store, conn, filters)
        found = find_statement(store, base=select(*columns).select_from(t.service_requests),
                               **filters)
        if near is None:
            page = found.limit(limit).offset(offset).subquery()
        else:
            wanted = [r.id for r in rows_within(conn, found, near, limit=limit,
                                                offset=offset,
                                                sensitive=filters.get("sensitive", ()))]
            page = (select(sr.id, sr.revision, sr.requested_datetime)
                    .where(store._one_of(sr.id, wanted)).subquery())
        stmt = (select(page.c.id, page.c.revision, pr.revision, pr.stamp, pr.record,
                       _generation().label("generation"))
                .select_from(page.outerjoin(t.public_records, pr.request_id == page.c.id))
                .order_by(page.c.requested_datetime.desc(), page.c.id.desc()))
        rows = conn.execute(stmt).all()
        zone_name = stamp_tail(zone)
        texts: list[str | None] = []
        missing: list[int] = []
        for rid, revision, kept_revision, stamp, record, generation in rows:
            if record is not None and kept_revision == revision \
                    and stamp == f"{generation}|{zone_name}":
                texts.append(record)
            else:
                texts.append(None)
                missing.append(rid)
        built: dict[int, tuple[int, str, str]] = {}
        if missing:
            conn.rollback()  # end the read; building reads the rows as they are now
            built = build_records(store, conn, missing, zone)
    if built:
        save_records(store, built)
    return RecordPage([x if x is not None else built[rows[i][0]][2]
                       for i, x in enumerate(texts)])


def build_records(store: SQLStore, conn: Connection, ids: Sequence[int], zone: tzinfo
                  ) -> dict[int, tuple[int, str, str]]:
    """Build the records of ``ids``: id -> (revision, stamp, JSON text).

    The revision and generation are read in the statement that reads the request, and
    the districts after it, so a change made meanwhile leaves the record stamped older
    than the change: the next reader builds it again instead of trusting it.
    """
    sr, sv = t.service_requests.c, t.services.c
    zone_name = getattr(zone, "key", None)
    times = [sr.requested_datetime, sr.updated_datetime, sr.expected_datetime]
    written = [store._local_time_text(c) if zone_name else None for c in times]
    columns = [
        sr.id, sr.status, sr.status_notes, sv.name, sr.service_code, sr.description,
        case((sv.active, sv.agency), else_=""),
        *(w if w is not None else c for w, c in zip(written, times, strict=True)),
        sr.address, sr.zipcode, func.ST_Y(sr.geom), func.ST_X(sr.geom), sr.media_url,
        sr.duplicate_of, sr.reporter_count, sv.sensitive, sr.revision,
        _generation().label("generation"),
    ]
    out: dict[int, tuple[int, str, str]] = {}
    record_of = open311.public_record
    stamp_zone = stamp_tail(zone)
    with conn.begin():
        if zone_name and written[0] is not None:
            store._use_time_zone(conn, zone_name)
        for start in range(0, len(ids), REFRESH_BATCH):
            chunk = list(ids[start:start + REFRESH_BATCH])
            rows = conn.execute(
                select(*columns)
                .select_from(t.service_requests.join(t.services, sv.code == sr.service_code))
                .where(store._one_of(sr.id, chunk))).all()
            districts = store._district_names_for(conn, [r[0] for r in rows])
            for (rid, status, notes, name, code, description, agency, requested, updated,
                 expected, address, zipcode, lat, lon, media_url, duplicate_of, reporters,
                 sensitive, revision, generation) in rows:
                if written[0] is None:
                    requested, updated, expected = (open311.format_datetime(v, zone)
                                                    for v in (requested, updated, expected))
                record = record_of(rid, status, notes, name, code, description, agency,
                                   requested, updated, expected, address, zipcode, lat, lon,
                                   media_url, duplicate_of, reporters, districts.get(rid, {}),
                                   extensions=True)
                if sensitive:
                    record = mask_record(record)
                out[rid] = (revision, f"{generation}|{stamp_zone}",
                            orjson.dumps(record).decode("utf-8"))
    return out


def save_records(store: SQLStore, built: dict[int, tuple[int, str, str]]) -> int:
    """Store built records for the next reader; return how many were written.

    The records are a cache: when the database is busy (SQLite's single writer) they
    are not stored this time and the next reader builds them again.
    """
    pr = t.public_records.c
    dialect_insert = pg_insert if store.engine.dialect.name == "postgresql" else sqlite_insert
    rows = [{"request_id": rid, "revision": revision, "stamp": stamp, "record": record}
            for rid, (revision, stamp, record) in sorted(built.items())]  # one lock order
    try:
        with store.engine.connect() as conn, store._cache_transaction(conn):
            for start in range(0, len(rows), REFRESH_BATCH):
                upsert = dialect_insert(t.public_records)
                conn.execute(upsert.on_conflict_do_update(
                    index_elements=[pr.request_id],
                    set_={"revision": upsert.excluded.revision,
                          "stamp": upsert.excluded.stamp, "record": upsert.excluded.record}),
                    rows[start:start + REFRESH_BATCH])
    except OperationalError as exc:
        LOGGER.info("public records not stored this time (%s); the next reader builds them",
                    exc.orig)
        return 0
    return len(rows)


def refresh_records(store: SQLStore, zone: tzinfo) -> tuple[int, int]:
    """Build and store every missing or stale record; return (built, already current).

    Readers do this lazily; running it after a bulk import, a layer activation or a
    catalogue change keeps the first readers of each area from paying for it.
    """
    sr, pr = t.service_requests.c, t.public_records.c
    stamp_zone = stamp_tail(zone)
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(sr.id, sr.revision == pr.revision,
                   pr.stamp == _generation() + f"|{stamp_zone}")
            .select_from(t.service_requests.outerjoin(t.public_records,
                                                      pr.request_id == sr.id))
            .order_by(sr.id)).all()
    stale = [rid for rid, same_revision, same_stamp in rows
             if not (same_revision and same_stamp)]
    built = 0
    for start in range(0, len(stale), REFRESH_BATCH):
        with store.engine.connect() as conn:
            done = build_records(store, conn, stale[start:start + REFRESH_BATCH], zone)
        built += save_records(store, done)
    return built, len(rows) - len(stale)
