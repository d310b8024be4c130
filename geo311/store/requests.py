"""Service requests: store one or many, read, count, close, export."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import Connection, and_, func, insert, select, update

from geo311.errors import InvalidRequest, NotFound
from geo311.geodesy import haversine_m
from geo311.model import (
    CLOSED,
    OPEN,
    STATUSES,
    BulkResult,
    Candidate,
    DuplicateSearch,
    NewRequest,
    Placement,
    Reporter,
    ServiceRequest,
)
from geo311.privacy import mask_frame
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.catalogue import Catalogue
from geo311.store.database import Database
from geo311.store.layers import Layers
from geo311.store.outbox import enqueue
from geo311.store.request_rows import public_select, request_filters, to_requests
from geo311.store.rows import MAX_ID, as_utc, degree_box, now_utc, stored_ids, to_frame

LOGGER = logging.getLogger(__name__)

#: Columns of the frame that ``add_many`` takes.
BULK_COLUMNS = (
    "external_id", "external_parent_id", "source", "service_code", "status", "status_notes",
    "description", "address", "zipcode", "geocode_match", "outside_service_area",
    "requested_datetime", "updated_datetime", "closed_datetime", "lon", "lat",
)


class Requests:
    """The stored service requests and their reporters."""

    def __init__(self, db: Database, catalogue: Catalogue, layers: Layers) -> None:
        self.db = db
        self.catalogue = catalogue
        self.layers = layers

    def add(
        self, new: NewRequest, placement: Placement, *, duplicates: DuplicateSearch | None = None,
        due: Callable[[datetime], datetime | None] | None = None, actor: str = "system",
    ) -> ServiceRequest:
        """Store one new request with its reporter and districts; audited as ``actor``.

        ``due`` gives the due time (``expected_datetime``) from the stored request time;
        it is written with the request, in the same transaction.

        With ``duplicates``, the earlier requests nearby are read and the decision
        made under a lock held to the commit, so two reports of the same problem
        arriving together still end up in one group.

        Examples
        --------
        >>> store.requests.add(NewRequest("SCB", -87.6, 41.8),  # doctest: +SKIP
        ...                    Placement(-87.6, 41.8))
        """
        geom = None
        if placement.lon is not None and placement.lat is not None:
            geom = from_shape(shapely.Point(placement.lon, placement.lat), srid=4326)
        sr = t.service_requests.c
        with self.db.begin() as conn:
            parent: tuple[int, float] | None = None
            point = (None if placement.lon is None or placement.lat is None
                     else (placement.lon, placement.lat))
            candidates: list[Candidate] = []
            if duplicates is not None and point is not None:
                candidates = self.db.dialect.duplicate_candidates(
                    conn, *point, duplicates, requested=new.requested_datetime)
            # A live report's time is read after the lock, so time order and commit order
            # agree; the candidates read are a superset that ``decide`` narrows exactly.
            now = now_utc()
            requested = new.requested_datetime or now
            if duplicates is not None and point is not None:
                parent = duplicates.decide(candidates, requested)
            request_id = conn.execute(
                insert(t.service_requests)
                .values(
                    external_id=new.external_id, source=new.source,
                    service_code=new.service_code, status=OPEN, status_notes="",
                    description=new.description, address=new.address, media_url=new.media_url,
                    geocode_match=placement.geocode_match,
                    outside_service_area=placement.outside_service_area,
                    requested_datetime=requested, updated_datetime=now, reporter_count=1,
                    expected_datetime=due(requested) if due is not None else None,
                    duplicate_of=parent[0] if parent else None, geom=geom,
                    attributes=json.dumps({k: list(v) for k, v in new.attributes.items()})
                    if new.attributes else None,
                )
                .returning(sr.id)
            ).scalar_one()
            if not new.reporter.is_empty():
                conn.execute(
                    insert(t.reporters).values(
                        request_id=request_id, created=now, **_reporter_values(new.reporter)
                    )
                )
            if placement.districts:
                conn.execute(
                    insert(t.request_districts),
                    [
                        {"request_id": request_id, "layer_version_id": vid,
                         "district_id": did, "boundary_case": bool(edge)}
                        for vid, (did, edge) in placement.districts.items()
                    ],
                )
            write_audit(conn, "created", "request", request_id, {"source": new.source}, actor)
            # The reporter hears of it by mail, in this same transaction (``store.outbox``).
            enqueue(conn, "received", request_id,
                    detail={"into": parent[0]} if parent is not None else None)
            if parent is not None:
                conn.execute(update(t.service_requests).where(sr.id == parent[0])
                             .values(reporter_count=sr.reporter_count + 1,
                                     updated_datetime=now))
                write_audit(conn, "merged", "request", request_id,
                            {"into": parent[0], "distance_m": round(parent[1], 1)}, actor)
                LOGGER.info("merged #%s into #%s, %.0f m", request_id, parent[0], parent[1])
        LOGGER.info("stored request #%s (%s)", request_id, new.service_code)
        return self.get(request_id)

    def bulk_load(self, expected_rows: int,
                  min_rows: int | None = None) -> AbstractContextManager[None]:
        """Wrap a large import; a backend may suspend index upkeep while it runs.

        ``min_rows`` overrides the backend's ``bulk_min_rows`` for this load.
        """
        return self.db.dialect.bulk_load(self.db.engine, expected_rows, min_rows)

    def add_many(
        self, frame: pd.DataFrame,
        districts: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
        *, actor: str = "import",
    ) -> BulkResult:
        """Store many requests at once; rows whose ``external_id`` exists are updated.

        ``frame`` has the columns of ``BULK_COLUMNS`` (times aware, UTC);
        ``districts`` maps a layer version id to arrays of district ids and
        boundary flags aligned with the frame's rows. Runs in one transaction:
        on any error nothing is written.
        """
        missing = [c for c in BULK_COLUMNS if c not in frame.columns]
        if missing:
            raise InvalidRequest(f"bulk rows lack columns {missing}")
        frame = frame.reset_index(drop=True)
        districts = districts or {}
        with self.db.begin() as conn:
            existing = self._existing_by_external_id(conn, frame["external_id"])
            is_new = ~frame["external_id"].isin(existing.index) | frame["external_id"].isna()
            new_rows = frame[is_new.to_numpy()]
            updated = self._update_existing(conn, frame[~is_new.to_numpy()], existing)
            ids = (
                self.db.dialect.bulk_insert_requests(conn, new_rows) if len(new_rows)
                else np.empty(0, dtype=np.int64)
            )
            if len(new_rows) and districts:
                picks = np.flatnonzero(is_new.to_numpy())
                parts = [
                    pd.DataFrame({
                        "request_id": ids,
                        "layer_version_id": int(vid),
                        "district_id": np.asarray(did, dtype=object)[picks],
                        "boundary_case": np.asarray(edge, dtype=bool)[picks],
                    })
                    for vid, (did, edge) in districts.items()
                ]
                self.db.dialect.bulk_insert_districts(conn, pd.concat(parts, ignore_index=True))
            result = BulkResult(
                stored=len(new_rows), updated=updated,
                unchanged=int((~is_new).sum()) - updated,
            )
            write_audit(conn, "bulk_import", "request", "", {
                "stored": result.stored, "updated": result.updated,
                "unchanged": result.unchanged,
            }, actor)
        return result

    def _existing_by_external_id(self, conn: Connection, external_ids: pd.Series) -> pd.DataFrame:
        wanted = [str(x) for x in external_ids.dropna().unique()]
        found: list[Any] = []
        sr = t.service_requests.c
        step = self.db.dialect.lookup_chunk
        for start in range(0, len(wanted), step):
            found.extend(
                conn.execute(
                    select(sr.id, sr.external_id, sr.status, sr.status_notes, sr.closed_datetime)
                    .where(self.db.dialect.one_of(sr.external_id, wanted[start:start + step]))
                ).all()
            )
        existing = to_frame(found, ["id", "external_id", "status", "status_notes",
                                  "closed_datetime"])
        return existing.set_index("external_id")

    def _update_existing(
        self, conn: Connection, rows: pd.DataFrame, existing: pd.DataFrame
    ) -> int:
        """Update status and closing time where a re-import brings a change."""
        if rows.empty:
            return 0
        rows = rows.drop_duplicates("external_id", keep="last").set_index("external_id")
        old = existing.loc[rows.index]
        closed_new = pd.to_datetime(rows["closed_datetime"], utc=True)
        closed_old = pd.to_datetime(old["closed_datetime"], utc=True)
        same_closed = (closed_new == closed_old) | (closed_new.isna() & closed_old.isna())
        changed = (
            (rows["status"] != old["status"]) | (rows["status_notes"] != old["status_notes"])
            | ~same_closed
        )
        changes = rows[changed.to_numpy()]
        now = now_utc()
        sr = t.service_requests.c
        for ext, row in changes.iterrows():
            closed = row["closed_datetime"]
            conn.execute(
                update(t.service_requests)
                .where(sr.id == int(existing.at[ext, "id"]))
                .values(
                    status=row["status"], status_notes=row["status_notes"],
                    closed_datetime=None if pd.isna(closed) else closed.to_pydatetime(),
                    updated_datetime=now,
                )
            )
        return len(changes)

    def get(self, request_id: int) -> ServiceRequest:
        """One request by id; raise ``NotFound``."""
        if not 0 < int(request_id) <= MAX_ID:
            raise NotFound(f"service request {request_id} does not exist")
        with self.db.connect() as conn:
            rows = conn.execute(
                public_select().where(t.service_requests.c.id == int(request_id))
            ).all()
            if not rows:
                raise NotFound(f"service request {request_id} does not exist")
            return to_requests(self.db.dialect, conn, rows)[0]

    def get_by_external_id(self, external_id: str) -> ServiceRequest:
        """One request by the id it had in the system it came from."""
        with self.db.connect() as conn:
            rows = conn.execute(
                public_select().where(t.service_requests.c.external_id == external_id)
            ).all()
            if not rows:
                raise NotFound(f"no service request has external id {external_id!r}")
            return to_requests(self.db.dialect, conn, rows)[0]

    def answers(self, request_id: int) -> dict[str, list[str]]:
        """The answers given to the service's questions when the request was made (staff)."""
        sr = t.service_requests.c
        if not stored_ids([request_id]):
            raise NotFound(f"service request {request_id} does not exist")
        with self.db.connect() as conn:
            row = conn.execute(select(sr.attributes).where(sr.id == int(request_id))).first()
        if row is None:
            raise NotFound(f"service request {request_id} does not exist")
        return dict(json.loads(row[0])) if row[0] else {}

    def near(
        self, lon: float, lat: float, radius_m: float, *, service_code: str | None = None,
        status: str | None = OPEN, limit: int = 50,
    ) -> list[tuple[ServiceRequest, float]]:
        """Requests within ``radius_m`` metres, nearest first, with their distance.

        Examples
        --------
        >>> store.near(-87.65, 41.85, 250, service_code="SCB")  # doctest: +SKIP
        """
        if radius_m <= 0:
            raise InvalidRequest(f"radius_m was {radius_m} but is expected to be > 0")
        stmt = public_select().where(self.db.dialect.within_box(degree_box(lon, lat, radius_m)))
        if service_code is not None:
            stmt = stmt.where(t.service_requests.c.service_code == service_code)
        if status is not None:
            stmt = stmt.where(t.service_requests.c.status == status)
        with self.db.connect() as conn:
            rows = conn.execute(stmt).all()
            if not rows:
                return []
            dist = haversine_m(
                lon, lat, np.array([r.lon for r in rows]), np.array([r.lat for r in rows])
            )
            order = [i for i in np.lexsort((np.array([r.id for r in rows]), dist))
                     if dist[i] <= radius_m][:limit]
            found = to_requests(self.db.dialect, conn, [rows[i] for i in order])
        return [(req, float(dist[i])) for req, i in zip(found, order, strict=True)]

    def query(
        self, *, service_codes: Sequence[str] | None = None, status: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None, limit: int = 1000,
        offset: int = 0, ids: Sequence[int] | None = None,
    ) -> list[ServiceRequest]:
        """Requests matching filters, newest first."""
        sr = t.service_requests.c
        stmt = request_filters(self.db.dialect, public_select(), service_codes=service_codes,
                                     status=status, start=start, end=end, bbox=bbox)
        if ids is not None:
            stmt = stmt.where(sr.id.in_([int(i) for i in ids if 0 < int(i) <= MAX_ID]))
        stmt = stmt.order_by(sr.requested_datetime.desc(), sr.id.desc())
        stmt = stmt.limit(limit).offset(offset)
        with self.db.connect() as conn:
            return to_requests(self.db.dialect, conn, conn.execute(stmt).all())

    def count(self, *, status: str | None = None) -> int:
        """How many requests are stored."""
        stmt = select(func.count()).select_from(t.service_requests)
        if status is not None:
            stmt = stmt.where(t.service_requests.c.status == status)
        with self.db.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def count_matching(
        self, *, service_codes: Sequence[str] | None = None, status: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> int:
        """How many requests ``query`` would return with these filters and no limit."""
        stmt = request_filters(self.db.dialect,
            select(func.count()).select_from(t.service_requests), service_codes=service_codes,
            status=status, start=start, end=end, bbox=bbox)
        with self.db.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def set_status(
        self, request_id: int, status: str, *, note: str = "", actor: str = "system",
        why: str = "",
    ) -> ServiceRequest:
        """Open or close a request; audited (with ``why`` when staff give a reason)."""
        if status not in STATUSES:
            raise InvalidRequest(f"status was {status!r} but is expected to be in {STATUSES}")
        current = self.get(request_id)
        now = now_utc()
        with self.db.begin() as conn:
            conn.execute(
                update(t.service_requests)
                .where(t.service_requests.c.id == request_id)
                .values(
                    status=status, status_notes=note, updated_datetime=now,
                    closed_datetime=now if status == CLOSED else None,
                )
            )
            write_audit(conn, "status", "request", request_id,
                        {"from": current.status, "to": status, "note": note,
                         **({"why": why} if why else {})}, actor)
            if status != current.status or note != current.status_notes:
                sr = t.service_requests.c
                group = [request_id, *conn.execute(
                    select(sr.id).where(sr.duplicate_of == request_id)).scalars()]
                # Everyone who reported the problem hears of it, duplicates' reporters too.
                enqueue(conn, "closed" if status == CLOSED else "status", request_id,
                        reporters_of=group, event=now.isoformat(),
                        detail={"status": status, "note": note})
        return self.get(request_id)

    def set_service(
        self, request_id: int, service_code: str, *, actor: str = "system", why: str = ""
    ) -> ServiceRequest:
        """Forward a request to another service (and so its agency); audited.

        The due time is the caller's to recompute (``geo311.sla.expected_for``).
        """
        current = self.get(request_id)
        service = self.catalogue.service(service_code)
        with self.db.begin() as conn:
            conn.execute(
                update(t.service_requests)
                .where(t.service_requests.c.id == current.id)
                .values(service_code=service.code, updated_datetime=now_utc())
            )
            write_audit(conn, "forwarded", "request", current.id,
                        {"from": current.service_code, "to": service.code,
                         **({"why": why} if why else {})}, actor)
        LOGGER.info("forwarded #%s from %s to %s", current.id, current.service_code, service.code)
        return self.get(request_id)

    def reporters_of(self, request_id: int) -> list[Reporter]:
        """Personal data of a request's reporters: for staff only."""
        with self.db.connect() as conn:
            rows = conn.execute(
                select(t.reporters).where(t.reporters.c.request_id == request_id)
            ).mappings().all()
        return [
            Reporter(r["first_name"], r["last_name"], r["email"], r["phone"], r["device_id"],
                     r["account_id"], r["language"] or "")
            for r in rows
        ]

    def points(self) -> pd.DataFrame:
        """Id, status, lon, lat and address of every located request (for reassignment)."""
        sr = t.service_requests.c
        stmt = select(
            sr.id, sr.status, func.ST_X(sr.geom).label("lon"), func.ST_Y(sr.geom).label("lat"),
            sr.address,
        ).where(sr.geom.isnot(None)).order_by(sr.id)
        with self.db.connect() as conn:
            return to_frame(conn.execute(stmt).all(), ["id", "status", "lon", "lat", "address"])

    def export_frames(
        self, *, include_private: bool = False, chunk_rows: int = 50_000,
        service_codes: Sequence[str] | None = None, status: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        districts: Sequence[tuple[str, str]] = (),
    ) -> Iterator[pd.DataFrame]:
        """Requests as frames of public columns (plus reporters when asked), in id order.

        The filters narrow by service, status, requested time and ``(layer, district)``
        of active layers: districts of one layer are alternatives, layers all apply.
        """
        sr, sv = t.service_requests.c, t.services.c
        cols = [
            sr.id.label("service_request_id"), sr.external_id, sr.service_code,
            sv.name.label("service_name"), sr.status, sr.status_notes, sr.description,
            sr.requested_datetime, sr.updated_datetime, sr.closed_datetime,
            sr.expected_datetime, sr.address, func.ST_Y(sr.geom).label("lat"),
            func.ST_X(sr.geom).label("long"), sr.geocode_match, sr.outside_service_area,
            sr.duplicate_of, sr.reporter_count,
        ]
        active = {lv.layer: lv.id for lv in self.layers.versions(active_only=True)}
        sensitive = set() if include_private else self.catalogue.sensitive_codes()
        # Each active layer's district joined in the query: one read per chunk, streamed
        # by the backend (COPY on PostGIS), no per-request lookups.
        source = t.service_requests.join(t.services, sv.code == sr.service_code)
        for i, (layer, version_id) in enumerate(active.items()):
            d = t.request_districts.alias(f"d{i}")
            source = source.outerjoin(d, and_(d.c.request_id == sr.id,
                                              d.c.layer_version_id == version_id))
            cols.append(d.c.district_id.label(f"district_{layer}"))
        names = [c.name for c in cols]
        text_columns = [n for n in names if n.startswith("district_")] + [
            "external_id", "service_code", "service_name", "status", "status_notes",
            "description", "address", "geocode_match"]
        base = request_filters(self.db.dialect, select(*cols).select_from(source),
                               service_codes=service_codes, status=status, start=start,
                               end=end)
        rd = t.request_districts.c
        by_layer: dict[str, list[str]] = {}
        for layer, district in districts:
            if layer not in active:
                raise InvalidRequest(f"layer was {layer!r} but is expected to be an active "
                                     f"layer: {sorted(active)}")
            by_layer.setdefault(layer, []).append(district)
        for layer, ids in by_layer.items():
            base = base.where(sr.id.in_(select(rd.request_id).where(
                rd.layer_version_id == active[layer], rd.district_id.in_(ids))))
        last_id = 0
        while True:
            stmt = base.where(sr.id > last_id).order_by(sr.id).limit(chunk_rows)
            frame = self.db.dialect.read_all(self.db.engine, stmt, names,
                                             text_columns=text_columns)
            if frame.empty:
                return
            frame["duplicate_of"] = pd.to_numeric(frame["duplicate_of"]).astype("Int64")
            for name in names:
                if name.startswith("district_") or name == "external_id":
                    frame[name] = frame[name].replace("", None)  # COPY's CSV has no NULL text
            last_id = int(frame["service_request_id"].iloc[-1])
            if include_private:
                with self.db.connect() as conn:
                    reporters = self._reporter_frame(conn, frame["service_request_id"].tolist())
                frame = frame.merge(reporters, how="left", left_on="service_request_id",
                                    right_on="request_id").drop(columns=["request_id"])
            else:
                frame = mask_frame(frame, sensitive)
            yield frame

    def _reporter_frame(self, conn: Connection, ids: Sequence[int]) -> pd.DataFrame:
        rp = t.reporters.c
        fields = ["first_name", "last_name", "email", "phone", "device_id", "account_id"]
        rows = conn.execute(
            select(rp.request_id, *[rp[f] for f in fields])
            .where(rp.request_id.in_(list(ids))).order_by(rp.id)
        ).all()
        frame = to_frame(rows, ["request_id", *fields])
        # One row per request: several reporters of one request are joined with "; ".
        return frame.groupby("request_id", as_index=False).agg(
            {f: lambda s: "; ".join(v for v in s if v) for f in fields}
        ).rename(columns={f: f"reporter_{f}" for f in fields})

    def parent_points(
        self, *, start: datetime | None = None, end: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> pd.DataFrame:
        """``id, lon, lat, reporter_count, status`` of located requests that lead a group."""
        sr = t.service_requests.c
        stmt = request_filters(self.db.dialect,
            select(sr.id, func.ST_X(sr.geom), func.ST_Y(sr.geom), sr.reporter_count, sr.status)
            .where(sr.geom.isnot(None)), start=start, end=end, bbox=bbox, parents_only=True)
        with self.db.connect() as conn:
            return to_frame(conn.execute(stmt.order_by(sr.id)).all(),
                          ["id", "lon", "lat", "reporter_count", "status"])

    def extent(
        self,
    ) -> tuple[tuple[float, float, float, float] | None, tuple[datetime | None, datetime | None]]:
        """Bounding box of located requests and the span of their request times."""
        sr = t.service_requests.c
        x, y = func.ST_X(sr.geom), func.ST_Y(sr.geom)
        with self.db.connect() as conn:
            row = conn.execute(select(func.min(x), func.min(y), func.max(x), func.max(y))
                               .where(sr.geom.isnot(None))).one()
            times = conn.execute(select(func.min(sr.requested_datetime),
                                        func.max(sr.requested_datetime))).one()
        box = None if row[0] is None else tuple(float(v) for v in row)
        span = tuple(None if v is None else as_utc(v) for v in times)
        return box, span  # type: ignore[return-value]

    def latest_requested(self) -> datetime | None:
        """When the newest request was made (None in an empty store)."""
        with self.db.connect() as conn:
            found = conn.execute(
                select(t.service_requests.c.requested_datetime)
                .order_by(t.service_requests.c.requested_datetime.desc()).limit(1)).scalar()
        return found  # type: ignore[no-any-return]


def _reporter_values(reporter: Reporter) -> dict[str, str | None]:
    return {
        "first_name": reporter.first_name, "last_name": reporter.last_name,
        "email": reporter.email, "phone": reporter.phone, "device_id": reporter.device_id,
        "account_id": reporter.account_id, "language": reporter.language[:16] or None,
    }
