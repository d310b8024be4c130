"""One SQL implementation of the store; backends override a few hooks.

The database narrows candidates (spatial index, filters); distances in metres
are decided in Python so SpatiaLite and PostGIS give the same answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import shapely
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    MetaData,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from geo311.dedup import Candidate, DuplicateRule
from geo311.districts import DistrictLayer
from geo311.errors import InvalidRequest, NotFound
from geo311.geodesy import haversine_m
from geo311.model import (
    CLOSED,
    OPEN,
    STATUSES,
    BulkResult,
    DuplicateSearch,
    LayerVersion,
    NewRequest,
    Placement,
    Reporter,
    Service,
    ServiceRequest,
)
from geo311.store import tables as t

LOGGER = logging.getLogger(__name__)

#: Columns of the frame that ``add_many`` takes.
BULK_COLUMNS = (
    "external_id", "external_parent_id", "source", "service_code", "status", "status_notes",
    "description", "address", "zipcode", "geocode_match", "outside_service_area",
    "requested_datetime", "updated_datetime", "closed_datetime", "lon", "lat",
)

_PUBLIC_COLUMNS = [
    t.service_requests.c.id,
    t.service_requests.c.external_id,
    t.service_requests.c.service_code,
    t.services.c.name.label("service_name"),
    t.service_requests.c.status,
    t.service_requests.c.status_notes,
    t.service_requests.c.description,
    t.service_requests.c.address,
    t.service_requests.c.media_url,
    func.ST_X(t.service_requests.c.geom).label("lon"),
    func.ST_Y(t.service_requests.c.geom).label("lat"),
    t.service_requests.c.requested_datetime,
    t.service_requests.c.updated_datetime,
    t.service_requests.c.closed_datetime,
    t.service_requests.c.expected_datetime,
    t.service_requests.c.geocode_match,
    t.service_requests.c.duplicate_of,
    t.service_requests.c.reporter_count,
    t.service_requests.c.outside_service_area,
]


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def degree_box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box that surely holds every point within ``radius_m`` of (lon, lat)."""
    dlat = radius_m / 111_000.0 * 1.01
    dlon = dlat / max(np.cos(np.radians(min(abs(lat) + dlat, 89.9))), 1e-6)
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


class SQLStore:
    """A request store over SQLAlchemy 2 and GeoAlchemy2."""

    dialect = "sql"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- hooks the backends override -------------------------------------------------

    def _within_box(self, box: tuple[float, float, float, float]) -> ColumnElement[bool]:
        """A filter on ``service_requests`` keeping points in a lon/lat box (index-backed)."""
        raise NotImplementedError

    def _bulk_insert_requests(self, conn: Connection, frame: pd.DataFrame) -> np.ndarray:
        """Insert prepared rows; return their new ids in frame order."""
        raise NotImplementedError

    def _bulk_insert_districts(self, conn: Connection, rows: pd.DataFrame) -> None:
        """Insert ``request_id, layer_version_id, district_id, boundary_case`` rows."""
        conn.execute(insert(t.request_districts), rows.to_dict("records"))

    @contextmanager
    def bulk_load(self, expected_rows: int) -> Iterator[None]:
        """Wrap a large import; a backend may suspend index upkeep while it runs."""
        yield

    def _prepare_schema(self, conn: Connection) -> None:
        """Backend set-up needed before tables exist (extensions)."""

    # -- schema -----------------------------------------------------------------------

    def init_schema(self) -> int:
        """Create missing tables and indexes; return the schema version."""
        with self.engine.begin() as conn:
            self._prepare_schema(conn)
        # A copy: GeoAlchemy2's SQLite DDL hooks edit the metadata they create from.
        copy = MetaData()
        for table in t.metadata.sorted_tables:
            table.to_metadata(copy)
        copy.create_all(self.engine)
        with self.engine.begin() as conn:
            found = conn.execute(
                select(t.schema_info.c.value).where(t.schema_info.c.key == "version")
            ).scalar()
            if found is None:
                conn.execute(
                    insert(t.schema_info).values(key="version", value=str(t.SCHEMA_VERSION))
                )
            elif int(found) > t.SCHEMA_VERSION:
                raise InvalidRequest(
                    f"the database has schema version {found} but this geo311 knows only "
                    f"{t.SCHEMA_VERSION}: upgrade geo311"
                )
        return t.SCHEMA_VERSION

    def drop_schema(self) -> None:
        """Drop every geo311 table and its data (tests and benchmarks only)."""
        with self.engine.begin() as conn:
            for table in reversed(t.metadata.sorted_tables):
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}"{self._cascade}'))

    _cascade = ""

    def schema_version(self) -> int | None:
        """The schema version stored in the database, or None when not initialised."""
        try:
            with self.engine.connect() as conn:
                found = conn.execute(
                    select(t.schema_info.c.value).where(t.schema_info.c.key == "version")
                ).scalar()
        except Exception:  # noqa: BLE001 - no table yet means no schema
            return None
        return None if found is None else int(found)

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()

    # -- audit --------------------------------------------------------------------------

    def _audit(
        self, conn: Connection, action: str, entity: str, entity_id: object,
        detail: dict[str, Any] | None = None, actor: str = "system",
    ) -> None:
        conn.execute(
            insert(t.audit_log).values(
                at=now_utc(), actor=actor, action=action, entity=entity,
                entity_id=str(entity_id), detail=json.dumps(detail or {}, default=str),
            )
        )

    def audit(
        self, action: str, entity: str, entity_id: object, detail: dict[str, Any] | None = None,
        actor: str = "system",
    ) -> None:
        """Record something that happened, outside any other change."""
        with self.engine.begin() as conn:
            self._audit(conn, action, entity, entity_id, detail, actor)

    def audit_entries(
        self, entity: str | None = None, entity_id: object | None = None
    ) -> list[dict[str, Any]]:
        """Audit rows, oldest first."""
        stmt = select(t.audit_log).order_by(t.audit_log.c.id)
        if entity is not None:
            stmt = stmt.where(t.audit_log.c.entity == entity)
        if entity_id is not None:
            stmt = stmt.where(t.audit_log.c.entity_id == str(entity_id))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]

    # -- services -----------------------------------------------------------------------

    def upsert_services(self, services: Sequence[Service]) -> int:
        """Add services, or update those whose code exists; return how many were new."""
        added = 0
        with self.engine.begin() as conn:
            existing = set(conn.execute(select(t.services.c.code)).scalars())
            for s in services:
                values = _service_values(s)
                if s.code in existing:
                    conn.execute(
                        update(t.services).where(t.services.c.code == s.code).values(**values)
                    )
                else:
                    conn.execute(insert(t.services).values(code=s.code, active=True, **values))
                    existing.add(s.code)
                    added += 1
        return added

    def ensure_services(self, services: Sequence[Service]) -> list[str]:
        """Add only the services whose code is missing; return the codes added."""
        with self.engine.begin() as conn:
            existing = set(conn.execute(select(t.services.c.code)).scalars())
            new = [s for s in services if s.code not in existing]
            if new:
                conn.execute(
                    insert(t.services),
                    [{"code": s.code, "active": True, **_service_values(s)} for s in new],
                )
        return [s.code for s in new]

    def services(self) -> list[Service]:
        """The active service catalogue, by code."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.services).where(t.services.c.active).order_by(t.services.c.code)
            ).mappings().all()
        return [_service_from_row(r) for r in rows]

    def service(self, code: str) -> Service:
        """One service by code; raise ``NotFound``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.services).where(t.services.c.code == code).where(t.services.c.active)
            ).mappings().first()
        if row is None:
            raise NotFound(f"service_code {code!r} is not in the service catalogue")
        return _service_from_row(row)

    # -- requests -----------------------------------------------------------------------

    def add(
        self, new: NewRequest, placement: Placement, *, duplicates: DuplicateSearch | None = None
    ) -> ServiceRequest:
        """Store one new request with its reporter and districts.

        With ``duplicates``, the earlier requests nearby are read and the decision
        made under a lock held to the commit, so two reports of the same problem
        arriving together still end up in one group.

        Examples
        --------
        >>> store.add(NewRequest("SCB", -87.6, 41.8), Placement(-87.6, 41.8))  # doctest: +SKIP
        """
        geom = None
        if placement.lon is not None and placement.lat is not None:
            geom = from_shape(shapely.Point(placement.lon, placement.lat), srid=4326)
        sr = t.service_requests.c
        with self.engine.begin() as conn:
            parent: tuple[int, float] | None = None
            point = (None if placement.lon is None or placement.lat is None
                     else (placement.lon, placement.lat))
            if duplicates is not None and point is not None:
                self._lock_for_duplicates(conn, duplicates.codes)
            now = now_utc()
            requested = new.requested_datetime or now
            if duplicates is not None and point is not None:
                parent = duplicates.decide(
                    self._candidates(conn, *point, duplicates, until=requested), requested)
            request_id = conn.execute(
                insert(t.service_requests)
                .values(
                    external_id=new.external_id, source=new.source,
                    service_code=new.service_code, status=OPEN, status_notes="",
                    description=new.description, address=new.address, media_url=new.media_url,
                    geocode_match=placement.geocode_match,
                    outside_service_area=placement.outside_service_area,
                    requested_datetime=requested, updated_datetime=now, reporter_count=1,
                    duplicate_of=parent[0] if parent else None, geom=geom,
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
            self._audit(conn, "created", "request", request_id, {"source": new.source})
            if parent is not None:
                conn.execute(update(t.service_requests).where(sr.id == parent[0])
                             .values(reporter_count=sr.reporter_count + 1,
                                     updated_datetime=now))
                self._audit(conn, "merged", "request", request_id,
                            {"into": parent[0], "distance_m": round(parent[1], 1)})
                LOGGER.info("merged #%s into #%s, %.0f m", request_id, parent[0], parent[1])
        LOGGER.info("stored request #%s (%s)", request_id, new.service_code)
        return self.get(request_id)

    def _lock_for_duplicates(self, conn: Connection, codes: Sequence[str]) -> None:
        """Serialise duplicate decisions for these services until the commit."""
        raise NotImplementedError

    def _candidates(
        self, conn: Connection, lon: float, lat: float, search: DuplicateSearch,
        until: datetime,
    ) -> list[Candidate]:
        sr, sv = t.service_requests.c, t.services.c
        stmt = (
            select(sr.id, func.ST_X(sr.geom), func.ST_Y(sr.geom), sr.service_code, sv.group,
                   sr.requested_datetime, sr.closed_datetime, sr.duplicate_of)
            .select_from(t.service_requests.join(t.services, sv.code == sr.service_code))
            .where(self._within_box(degree_box(lon, lat, search.radius_m)))
            .where(sr.service_code.in_(list(search.codes)))
            .where(sr.requested_datetime >= until - timedelta(days=search.window_days))
            .where(sr.requested_datetime <= until)
        )
        if search.only_open:
            stmt = stmt.where(or_(sr.closed_datetime.is_(None), sr.closed_datetime > until))
        rows = conn.execute(stmt).all()
        return [Candidate(*row) for row in rows]

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
        with self.engine.begin() as conn:
            existing = self._existing_by_external_id(conn, frame["external_id"])
            is_new = ~frame["external_id"].isin(existing.index) | frame["external_id"].isna()
            new_rows = frame[is_new.to_numpy()]
            updated = self._update_existing(conn, frame[~is_new.to_numpy()], existing)
            ids = (
                self._bulk_insert_requests(conn, new_rows) if len(new_rows)
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
                self._bulk_insert_districts(conn, pd.concat(parts, ignore_index=True))
            result = BulkResult(
                stored=len(new_rows), updated=updated,
                unchanged=int((~is_new).sum()) - updated,
            )
            self._audit(conn, "bulk_import", "request", "", {
                "stored": result.stored, "updated": result.updated,
                "unchanged": result.unchanged,
            }, actor)
        return result

    def _existing_by_external_id(self, conn: Connection, external_ids: pd.Series) -> pd.DataFrame:
        wanted = [str(x) for x in external_ids.dropna().unique()]
        found: list[Any] = []
        sr = t.service_requests.c
        step = self._lookup_chunk
        for start in range(0, len(wanted), step):
            found.extend(
                conn.execute(
                    select(sr.id, sr.external_id, sr.status, sr.status_notes, sr.closed_datetime)
                    .where(self._one_of(sr.external_id, wanted[start:start + step]))
                ).all()
            )
        existing = _frame(found, ["id", "external_id", "status", "status_notes",
                                  "closed_datetime"])
        return existing.set_index("external_id")

    #: How many values one ``_one_of`` filter may carry.
    _lookup_chunk = 5000

    def _one_of(self, column: Any, values: list[str]) -> ColumnElement[bool]:
        """``column`` is one of ``values`` (a bound parameter per value)."""
        return column.in_(values)  # type: ignore[no-any-return]

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

    def _public_select(self) -> Any:
        return select(*_PUBLIC_COLUMNS).select_from(
            t.service_requests.join(
                t.services, t.services.c.code == t.service_requests.c.service_code
            )
        )

    def _to_requests(self, conn: Connection, rows: Sequence[Any]) -> list[ServiceRequest]:
        ids = [r.id for r in rows]
        names = self._district_names_for(conn, ids)
        return [
            ServiceRequest(
                id=r.id, external_id=r.external_id, service_code=r.service_code,
                service_name=r.service_name, status=r.status, status_notes=r.status_notes,
                description=r.description, address=r.address,
                lon=r.lon, lat=r.lat, requested_datetime=r.requested_datetime,
                updated_datetime=r.updated_datetime, closed_datetime=r.closed_datetime,
                expected_datetime=r.expected_datetime, geocode_match=r.geocode_match,
                duplicate_of=r.duplicate_of, reporter_count=r.reporter_count,
                outside_service_area=bool(r.outside_service_area), media_url=r.media_url,
                districts=names.get(r.id, {}),
            )
            for r in rows
        ]

    def _district_names_for(
        self, conn: Connection, ids: Sequence[int]
    ) -> dict[int, dict[str, str | None]]:
        """Each request's district per layer, from the newest version it was assigned."""
        out: dict[int, dict[str, str | None]] = {}
        if not ids:
            return out
        rd, lv, ly = t.request_districts.c, t.layer_versions.c, t.layers.c
        for start in range(0, len(ids), 5000):
            stmt = (
                select(rd.request_id, ly.name, lv.version, rd.district_id)
                .select_from(
                    t.request_districts.join(t.layer_versions, lv.id == rd.layer_version_id)
                    .join(t.layers, ly.id == lv.layer_id)
                )
                .where(rd.request_id.in_(list(ids[start:start + 5000])))
                .order_by(rd.request_id, ly.name, lv.version)
            )
            for rid, layer, _version, district in conn.execute(stmt):
                out.setdefault(rid, {})[layer] = district
        return out

    def get(self, request_id: int) -> ServiceRequest:
        """One request by id; raise ``NotFound``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                self._public_select().where(t.service_requests.c.id == int(request_id))
            ).all()
            if not rows:
                raise NotFound(f"service request {request_id} does not exist")
            return self._to_requests(conn, rows)[0]

    def get_by_external_id(self, external_id: str) -> ServiceRequest:
        """One request by the id it had in the system it came from."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                self._public_select().where(t.service_requests.c.external_id == external_id)
            ).all()
            if not rows:
                raise NotFound(f"no service request has external id {external_id!r}")
            return self._to_requests(conn, rows)[0]

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
        stmt = self._public_select().where(self._within_box(degree_box(lon, lat, radius_m)))
        if service_code is not None:
            stmt = stmt.where(t.service_requests.c.service_code == service_code)
        if status is not None:
            stmt = stmt.where(t.service_requests.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            if not rows:
                return []
            dist = haversine_m(
                lon, lat, np.array([r.lon for r in rows]), np.array([r.lat for r in rows])
            )
            order = [i for i in np.lexsort((np.array([r.id for r in rows]), dist))
                     if dist[i] <= radius_m][:limit]
            found = self._to_requests(conn, [rows[i] for i in order])
        return [(req, float(dist[i])) for req, i in zip(found, order, strict=True)]

    def query(
        self, *, service_codes: Sequence[str] | None = None, status: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None, limit: int = 1000,
        offset: int = 0, ids: Sequence[int] | None = None,
    ) -> list[ServiceRequest]:
        """Requests matching filters, newest first."""
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"status was {status!r} but is expected to be in {STATUSES}")
        sr = t.service_requests.c
        stmt = self._public_select()
        if ids is not None:
            stmt = stmt.where(sr.id.in_([int(i) for i in ids]))
        if service_codes:
            stmt = stmt.where(sr.service_code.in_(list(service_codes)))
        if status is not None:
            stmt = stmt.where(sr.status == status)
        if start is not None:
            stmt = stmt.where(sr.requested_datetime >= start)
        if end is not None:
            stmt = stmt.where(sr.requested_datetime <= end)
        if bbox is not None:
            stmt = stmt.where(self._within_box(bbox))
        stmt = stmt.order_by(sr.requested_datetime.desc(), sr.id.desc())
        stmt = stmt.limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return self._to_requests(conn, conn.execute(stmt).all())

    def count(self, *, status: str | None = None) -> int:
        """How many requests are stored."""
        stmt = select(func.count()).select_from(t.service_requests)
        if status is not None:
            stmt = stmt.where(t.service_requests.c.status == status)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def set_status(
        self, request_id: int, status: str, *, note: str = "", actor: str = "system"
    ) -> ServiceRequest:
        """Open or close a request; audited."""
        if status not in STATUSES:
            raise InvalidRequest(f"status was {status!r} but is expected to be in {STATUSES}")
        current = self.get(request_id)
        now = now_utc()
        with self.engine.begin() as conn:
            conn.execute(
                update(t.service_requests)
                .where(t.service_requests.c.id == request_id)
                .values(
                    status=status, status_notes=note, updated_datetime=now,
                    closed_datetime=now if status == CLOSED else None,
                )
            )
            self._audit(conn, "status", "request", request_id,
                        {"from": current.status, "to": status, "note": note}, actor)
        return self.get(request_id)

    def mark_duplicate(self, child_id: int, parent_id: int, *, actor: str = "system") -> None:
        """Move one request into the group of another (staff's "move"); audited, reversible.

        A request that leads a group of its own cannot be moved alone: merge the groups.
        """
        if child_id == parent_id:
            raise InvalidRequest(f"request {child_id} cannot be a duplicate of itself")
        child, parent = self.get(child_id), self.get(parent_id)
        root = parent.duplicate_of or parent.id
        if root == child.id:
            raise InvalidRequest(f"request {parent_id} is already in the group of {child_id}")
        if child.duplicate_of is None and child.reporter_count > 1:
            raise InvalidRequest(
                f"request {child_id} leads a group of {child.reporter_count}; "
                "merge the two groups instead"
            )
        sr = t.service_requests.c
        with self.engine.begin() as conn:
            conn.execute(update(t.service_requests).where(sr.id == child.id)
                         .values(duplicate_of=root, updated_datetime=now_utc()))
            self._recount(conn, [root, child.duplicate_of])
            self._audit(conn, "merged", "request", child.id,
                        {"into": root, "from": child.duplicate_of}, actor)
        LOGGER.info("moved #%s into group #%s", child.id, root)

    def unmerge(self, child_id: int, *, actor: str = "system") -> None:
        """Take a request out of its group: it becomes a group of its own; audited."""
        child = self.get(child_id)
        if child.duplicate_of is None:
            raise InvalidRequest(f"request {child_id} is not a duplicate of another request")
        sr = t.service_requests.c
        with self.engine.begin() as conn:
            conn.execute(update(t.service_requests).where(sr.id == child.id)
                         .values(duplicate_of=None, updated_datetime=now_utc()))
            self._recount(conn, [child.duplicate_of, child.id])
            self._audit(conn, "unmerged", "request", child.id, {"from": child.duplicate_of},
                        actor)
        LOGGER.info("unmerged #%s from group #%s", child.id, child.duplicate_of)

    def merge_groups(self, first_id: int, second_id: int, *, actor: str = "system") -> int:
        """Join two groups under the older root; every member follows. Returns that root."""
        a, b = self.get(first_id), self.get(second_id)
        roots = sorted({a.duplicate_of or a.id, b.duplicate_of or b.id})
        if len(roots) == 1:
            raise InvalidRequest(f"requests {first_id} and {second_id} are in one group already")
        heads = sorted((self.get(r) for r in roots), key=lambda r: (r.requested_datetime, r.id))
        keep, fold = heads[0].id, heads[1].id
        sr = t.service_requests.c
        with self.engine.begin() as conn:
            conn.execute(update(t.service_requests)
                         .where((sr.id == fold) | (sr.duplicate_of == fold))
                         .values(duplicate_of=keep, updated_datetime=now_utc()))
            self._recount(conn, [keep, fold])
            self._audit(conn, "groups_merged", "request", keep, {"folded": fold}, actor)
        LOGGER.info("merged group #%s into #%s", fold, keep)
        return keep

    def _recount(self, conn: Connection, ids: Sequence[int | None]) -> None:
        """Reporter count = the request itself plus the duplicates linked to it."""
        sr = t.service_requests.c
        child = t.service_requests.alias("child")
        wanted = [i for i in ids if i is not None]
        conn.execute(
            update(t.service_requests).where(sr.id.in_(wanted)).values(
                reporter_count=1 + select(func.count()).select_from(child)
                .where(child.c.duplicate_of == sr.id).scalar_subquery()
            )
        )

    def duplicate_frame(self, *, since: datetime | None = None) -> pd.DataFrame:
        """Located requests for reclustering: id, lon, lat, service_code, requested, closed."""
        sr = t.service_requests.c
        # Raw times (no per-value conversion): pandas reads them as UTC in one pass.
        stmt = select(
            sr.id, func.ST_X(sr.geom), func.ST_Y(sr.geom), sr.service_code,
            type_coerce(sr.requested_datetime, DateTime()),
            type_coerce(sr.closed_datetime, DateTime()),
        ).where(sr.geom.isnot(None)).order_by(sr.id)
        if since is not None:
            stmt = stmt.where(sr.requested_datetime >= since)
        with self.engine.connect() as conn:
            frame = _frame(conn.execute(stmt).all(),
                           ["id", "lon", "lat", "service_code", "requested", "closed"])
        frame["requested"] = pd.to_datetime(frame["requested"], utc=True)
        frame["closed"] = pd.to_datetime(frame["closed"], utc=True)
        return frame

    def set_duplicate_groups(
        self, ids: Sequence[int], duplicate_of: Sequence[int | None], *, actor: str = "system",
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Rewrite the group links of ``ids`` and the reporter counts of their roots.

        One transaction and one audit entry; returns how many links changed.
        """
        links = pd.DataFrame({"id": np.asarray(ids, dtype=np.int64),
                              "parent": pd.array(duplicate_of, dtype="Int64")})
        sr = t.service_requests.c
        with self.engine.begin() as conn:
            before = _frame(conn.execute(
                select(sr.id, sr.duplicate_of).where(sr.duplicate_of.isnot(None))).all(),
                ["id", "old"])
            conn.execute(text("CREATE TEMPORARY TABLE dedup_links (id INTEGER PRIMARY KEY, "
                              "parent INTEGER)"))
            conn.execute(text("INSERT INTO dedup_links (id, parent) VALUES (:id, :parent)"),
                         [{"id": int(i), "parent": None if pd.isna(p) else int(p)}
                          for i, p in zip(links["id"], links["parent"], strict=True)])
            conn.execute(text(
                "UPDATE service_requests SET duplicate_of = (SELECT parent FROM dedup_links "
                "WHERE dedup_links.id = service_requests.id) "
                "WHERE id IN (SELECT id FROM dedup_links)"))
            conn.execute(text(
                "UPDATE service_requests SET reporter_count = 1 + (SELECT count(*) FROM "
                "service_requests AS child WHERE child.duplicate_of = service_requests.id) "
                "WHERE id IN (SELECT id FROM dedup_links) OR id IN "
                "(SELECT parent FROM dedup_links WHERE parent IS NOT NULL)"))
            conn.execute(text("DROP TABLE dedup_links"))
            merged = links.merge(before, on="id", how="left")
            changed = int((merged["parent"].astype("Float64").fillna(-1)
                           != merged["old"].astype("Float64").fillna(-1)).sum())
            self._audit(conn, "duplicates_recomputed", "request", "", {
                "requests": len(links), "children": int(links["parent"].notna().sum()),
                "changed": changed, **(detail or {})}, actor)
        return changed

    def reporters_of(self, request_id: int) -> list[Reporter]:
        """Personal data of a request's reporters: for staff only."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.reporters).where(t.reporters.c.request_id == request_id)
            ).mappings().all()
        return [
            Reporter(r["first_name"], r["last_name"], r["email"], r["phone"], r["device_id"],
                     r["account_id"])
            for r in rows
        ]

    def request_points(self) -> pd.DataFrame:
        """Id, status, lon, lat and address of every located request (for reassignment)."""
        sr = t.service_requests.c
        stmt = select(
            sr.id, sr.status, func.ST_X(sr.geom).label("lon"), func.ST_Y(sr.geom).label("lat"),
            sr.address,
        ).where(sr.geom.isnot(None)).order_by(sr.id)
        with self.engine.connect() as conn:
            return _frame(conn.execute(stmt).all(), ["id", "status", "lon", "lat", "address"])

    def export_frames(
        self, *, include_private: bool = False, chunk_rows: int = 50_000
    ) -> Iterator[pd.DataFrame]:
        """All requests as frames of public columns (plus reporters when asked)."""
        sr, sv = t.service_requests.c, t.services.c
        cols = [
            sr.id.label("service_request_id"), sr.external_id, sr.service_code,
            sv.name.label("service_name"), sr.status, sr.status_notes, sr.description,
            sr.requested_datetime, sr.updated_datetime, sr.closed_datetime,
            sr.expected_datetime, sr.address, func.ST_Y(sr.geom).label("lat"),
            func.ST_X(sr.geom).label("long"), sr.geocode_match, sr.outside_service_area,
            sr.duplicate_of, sr.reporter_count,
        ]
        layer_names = [lv.layer for lv in self.layer_versions(active_only=True)]
        last_id = 0
        with self.engine.connect() as conn:
            while True:
                stmt = (
                    select(*cols)
                    .select_from(t.service_requests.join(t.services, sv.code == sr.service_code))
                    .where(sr.id > last_id).order_by(sr.id).limit(chunk_rows)
                )
                rows = conn.execute(stmt).all()
                if not rows:
                    return
                frame = _frame(rows, [c.name for c in cols])
                last_id = int(frame["service_request_id"].iloc[-1])
                ids = frame["service_request_id"].tolist()
                names = self._district_names_for(conn, ids)
                for layer in layer_names:
                    frame[f"district_{layer}"] = [names.get(i, {}).get(layer) for i in ids]
                if include_private:
                    frame = frame.merge(
                        self._reporter_frame(conn, ids), how="left",
                        left_on="service_request_id", right_on="request_id",
                    ).drop(columns=["request_id"])
                yield frame

    def _reporter_frame(self, conn: Connection, ids: Sequence[int]) -> pd.DataFrame:
        rp = t.reporters.c
        fields = ["first_name", "last_name", "email", "phone", "device_id", "account_id"]
        rows = conn.execute(
            select(rp.request_id, *[rp[f] for f in fields])
            .where(rp.request_id.in_(list(ids))).order_by(rp.id)
        ).all()
        frame = _frame(rows, ["request_id", *fields])
        # One row per request: several reporters of one request are joined with "; ".
        return frame.groupby("request_id", as_index=False).agg(
            {f: lambda s: "; ".join(v for v in s if v) for f in fields}
        ).rename(columns={f: f"reporter_{f}" for f in fields})

    # -- layers -------------------------------------------------------------------------

    def add_layer_version(
        self, name: str, features: Any, *, title: str = "", role: str = "district",
        description: str = "", source_file: str = "", source_crs: str = "",
        checksum: str = "", id_field: str = "", name_field: str = "",
        report: dict[str, Any] | None = None, loaded_by: str = "system",
    ) -> LayerVersion:
        """Store a new version of a layer from a frame of ``district_id, name, geometry``.

        The version starts inactive; ``activate_layer_version`` puts it to use.
        """
        lay, lv = t.layers.c, t.layer_versions.c
        with self.engine.begin() as conn:
            layer_id = conn.execute(select(lay.id).where(lay.name == name)).scalar()
            if layer_id is None:
                layer_id = conn.execute(
                    insert(t.layers).values(name=name, title=title or name, role=role,
                                            description=description).returning(lay.id)
                ).scalar_one()
            else:
                conn.execute(update(t.layers).where(lay.id == layer_id).values(
                    title=title or name, role=role, description=description))
            version = (conn.execute(
                select(func.max(lv.version)).where(lv.layer_id == layer_id)).scalar() or 0) + 1
            version_id = conn.execute(
                insert(t.layer_versions).values(
                    layer_id=layer_id, version=version, status="inactive",
                    source_file=source_file, source_crs=source_crs, checksum=checksum,
                    id_field=id_field, name_field=name_field, feature_count=len(features),
                    report=json.dumps(report or {}, default=str), loaded_by=loaded_by,
                    loaded_at=now_utc(),
                ).returning(lv.id)
            ).scalar_one()
            conn.execute(
                insert(t.districts),
                [
                    {"layer_version_id": version_id, "district_id": str(row.district_id),
                     "name": None if pd.isna(row.name) else str(row.name),
                     "geom": from_shape(_as_multipolygon(row.geometry), srid=4326)}
                    for row in features.itertuples(index=False)
                ],
            )
            self._audit(conn, "layer_loaded", "layer", name,
                        {"version": version, "source": source_file, "checksum": checksum,
                         "features": len(features)}, loaded_by)
        LOGGER.info("loaded layer %s version %s (%s features)", name, version, len(features))
        return self.layer_version(name, version)

    def activate_layer_version(
        self, name: str, version: int, *, actor: str = "system",
        districts: dict[str, Any] | None = None, retire: Sequence[str] = (),
        detail: dict[str, Any] | None = None,
    ) -> LayerVersion:
        """Make one version the active one of its layer, in one transaction.

        ``districts`` optionally carries ``ids``, ``district_id`` and ``boundary_case``
        arrays (the new assignment of stored requests) written in the same transaction:
        those requests (the open ones, and closed ones without a district of this layer)
        lose the districts they had from other versions of the layer and get the new
        one; every other request keeps the district of its day. ``retire`` names layers
        this one replaces: their active versions are retired in the same transaction.
        """
        target = self.layer_version(name, version)
        lv, rd = t.layer_versions.c, t.request_districts.c
        with self.engine.begin() as conn:
            siblings = conn.execute(
                select(lv.id, lv.status).where(lv.layer_id == select(t.layer_versions.c.layer_id)
                                               .where(lv.id == target.id).scalar_subquery())
            ).all()
            previous = [i for i, status in siblings if status == "active" and i != target.id]
            conn.execute(update(t.layer_versions)
                         .where(lv.id.in_(previous)).values(status="inactive"))
            conn.execute(update(t.layer_versions).where(lv.id == target.id)
                         .values(status="active", activated_at=now_utc()))
            if districts is not None and len(districts["ids"]):
                ids = [int(i) for i in districts["ids"]]
                versions = [i for i, _status in siblings]
                for start in range(0, len(ids), 5000):
                    conn.execute(delete(t.request_districts)
                                 .where(rd.layer_version_id.in_(versions))
                                 .where(rd.request_id.in_(ids[start:start + 5000])))
                self._bulk_insert_districts(conn, pd.DataFrame({
                    "request_id": np.asarray(ids, dtype=np.int64),
                    "layer_version_id": target.id,
                    "district_id": np.asarray(districts["district_id"], dtype=object),
                    "boundary_case": np.asarray(districts["boundary_case"], dtype=bool),
                }))
            for other in retire:
                self._retire(conn, other, actor, {"replaced_by": name, "version": version})
            self._audit(conn, "layer_activated", "layer", name,
                        {"version": version, "replaced": previous, **(detail or {})}, actor)
        return self.layer_version(name, version)

    def layer_versions(
        self, name: str | None = None, *, active_only: bool = False
    ) -> list[LayerVersion]:
        """Layer versions, by layer name then version."""
        lay, lv = t.layers.c, t.layer_versions.c
        stmt = select(*lv, lay.name.label("layer"), lay.title, lay.role).select_from(
            t.layer_versions.join(t.layers, lay.id == lv.layer_id)
        ).order_by(lay.id, lv.version)
        if name is not None:
            stmt = stmt.where(lay.name == name)
        if active_only:
            stmt = stmt.where(lv.status == "active")
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            LayerVersion(
                id=r["id"], layer=r["layer"], title=r["title"], role=r["role"],
                version=r["version"], status=r["status"], source_file=r["source_file"],
                source_crs=r["source_crs"], checksum=r["checksum"],
                feature_count=r["feature_count"], loaded_by=r["loaded_by"],
                loaded_at=r["loaded_at"], report=json.loads(r["report"]),
            )
            for r in rows
        ]

    def layer_version(self, name: str, version: int | None = None) -> LayerVersion:
        """One version of a layer (default: the active one, else the newest)."""
        versions = self.layer_versions(name)
        if not versions:
            raise NotFound(f"layer {name!r} does not exist")
        if version is None:
            active = [v for v in versions if v.status == "active"]
            return (active or versions)[-1]
        for v in versions:
            if v.version == version:
                return v
        raise NotFound(
            f"layer {name!r} has no version {version}; it has "
            f"{[v.version for v in versions]}"
        )

    def layer_features(self, name: str, version: int | None = None) -> Any:
        """A version's districts as a GeoDataFrame in EPSG:4326."""
        import geopandas as gpd

        lv = self.layer_version(name, version)
        d = t.districts.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(d.district_id, d.name, d.geom)
                .where(d.layer_version_id == lv.id).order_by(d.id)
            ).all()
        return gpd.GeoDataFrame(
            {"district_id": [r.district_id for r in rows], "name": [r.name for r in rows]},
            geometry=[to_shape(r.geom) for r in rows], crs="EPSG:4326",
        )

    def active_district_layers(self) -> list[DistrictLayer]:
        """Every active layer version with its geometry, for the district index."""
        out = []
        for lv in self.layer_versions(active_only=True):
            features = self.layer_features(lv.layer, lv.version)
            out.append(DistrictLayer(
                name=lv.layer, version_id=lv.id,
                district_ids=list(features["district_id"]),
                geometries=list(features.geometry.values),
            ))
        return out

    def requests_assigned_to(self, version_ids: Sequence[int]) -> list[int]:
        """Ids of requests holding a district from any of these layer versions."""
        rd = t.request_districts.c
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(rd.request_id).where(rd.layer_version_id.in_(list(version_ids)))
                .distinct()
            ).scalars())

    def request_district_counts(self, layer_version_id: int) -> dict[str | None, int]:
        """How many requests each district of a layer version holds (None: outside)."""
        rd = t.request_districts.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(rd.district_id, func.count()).where(rd.layer_version_id == layer_version_id)
                .group_by(rd.district_id)
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    def truncate_all(self) -> None:
        """Delete every row (tests and demos); the schema stays."""
        with self.engine.begin() as conn:
            for table in reversed(t.metadata.sorted_tables):
                if table.name != "schema_info":
                    conn.execute(delete(table))

    def ping(self) -> str:
        """A spatial round trip proving the extension works; returns its version."""
        with self.engine.connect() as conn:
            return str(conn.execute(text(self._version_sql)).scalar())

    _version_sql = "SELECT 1"

    # --- GIS staff: layer retirement and reassignment ----------------------------------

    def _retire(
        self, conn: Connection, name: str, actor: str, detail: dict[str, Any] | None = None
    ) -> list[int]:
        lay, lv = t.layers.c, t.layer_versions.c
        layer_id = conn.execute(select(lay.id).where(lay.name == name)).scalar()
        if layer_id is None:
            raise NotFound(f"layer {name!r} does not exist")
        active = list(conn.execute(select(lv.version).where(lv.layer_id == layer_id)
                                   .where(lv.status == "active")).scalars())
        if not active:
            raise InvalidRequest(f"layer {name!r} has no active version; nothing to retire")
        conn.execute(update(t.layer_versions).where(lv.layer_id == layer_id)
                     .where(lv.status == "active").values(status="retired"))
        self._audit(conn, "layer_retired", "layer", name, {"versions": active, **(detail or {})},
                    actor)
        return active

    def retire_layer(
        self, name: str, *, actor: str = "system", service_area: str | None = None
    ) -> list[int]:
        """Take a layer out of use; requests keep the districts they hold from it.

        ``service_area`` names the active layer that becomes the service area in the
        same transaction. Returns the versions retired.
        """
        lay = t.layers.c
        with self.engine.begin() as conn:
            if service_area is not None:
                conn.execute(update(t.layers).where(lay.name == name).values(role="district"))
                conn.execute(update(t.layers).where(lay.name == service_area)
                             .values(role="service_area"))
            retired = self._retire(conn, name, actor, {"service_area": service_area})
        LOGGER.info("retired layer %s (versions %s)", name, retired)
        return retired

    def request_districts_of(self, layer_version_ids: Sequence[int]) -> pd.DataFrame:
        """``request_id, layer_version_id, district_id`` rows of these layer versions."""
        rd = t.request_districts.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(rd.request_id, rd.layer_version_id, rd.district_id)
                .where(rd.layer_version_id.in_(list(layer_version_ids)))
            ).all()
        return _frame(rows, ["request_id", "layer_version_id", "district_id"])

    # --- GIS staff: public requests for OGC API Features --------------------------------

    def _request_filters(
        self, stmt: Any, *, service_codes: Sequence[str] | None = None, status: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None, parents_only: bool = False,
    ) -> Any:
        sr = t.service_requests.c
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"status was {status!r} but is expected to be in {STATUSES}")
        if service_codes:
            stmt = stmt.where(sr.service_code.in_(list(service_codes)))
        if status is not None:
            stmt = stmt.where(sr.status == status)
        if start is not None:
            stmt = stmt.where(sr.requested_datetime >= start)
        if end is not None:
            stmt = stmt.where(sr.requested_datetime <= end)
        if bbox is not None:
            stmt = stmt.where(self._within_box(bbox))
        if parents_only:
            stmt = stmt.where(sr.duplicate_of.is_(None))
        return stmt

    def count_matching(
        self, *, service_codes: Sequence[str] | None = None, status: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> int:
        """How many requests ``query`` would return with these filters and no limit."""
        stmt = self._request_filters(
            select(func.count()).select_from(t.service_requests), service_codes=service_codes,
            status=status, start=start, end=end, bbox=bbox)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def parent_points(
        self, *, start: datetime | None = None, end: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> pd.DataFrame:
        """``id, lon, lat, reporter_count, status`` of located requests that lead a group."""
        sr = t.service_requests.c
        stmt = self._request_filters(
            select(sr.id, func.ST_X(sr.geom), func.ST_Y(sr.geom), sr.reporter_count, sr.status)
            .where(sr.geom.isnot(None)), start=start, end=end, bbox=bbox, parents_only=True)
        with self.engine.connect() as conn:
            return _frame(conn.execute(stmt.order_by(sr.id)).all(),
                          ["id", "lon", "lat", "reporter_count", "status"])

    def request_extent(
        self,
    ) -> tuple[tuple[float, float, float, float] | None, tuple[datetime | None, datetime | None]]:
        """Bounding box of located requests and the span of their request times."""
        sr = t.service_requests.c
        x, y = func.ST_X(sr.geom), func.ST_Y(sr.geom)
        with self.engine.connect() as conn:
            row = conn.execute(select(func.min(x), func.min(y), func.max(x), func.max(y))
                               .where(sr.geom.isnot(None))).one()
            times = conn.execute(select(func.min(sr.requested_datetime),
                                        func.max(sr.requested_datetime))).one()
        box = None if row[0] is None else tuple(float(v) for v in row)
        span = tuple(None if v is None else _as_utc(v) for v in times)
        return box, span  # type: ignore[return-value]


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """Rows to a frame column-wise (pandas probes every Row object otherwise: 10x slower)."""
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(dict(zip(columns, zip(*rows, strict=True), strict=True)))


def _as_utc(value: Any) -> datetime:
    """A time read by an aggregate (SQLite gives text, naive or aware) as aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _service_values(s: Service) -> dict[str, Any]:
    rule = s.duplicate_rule
    return {
        "name": s.name, "group": s.group, "description": s.description,
        "keywords": s.keywords, "sla_days": s.sla_days,
        "dedup_radius_m": rule.radius_m if rule else None,
        "dedup_window_days": rule.window_days if rule else None,
        "dedup_scope": rule.scope if rule else None,
        "dedup_only_open": rule.only_open if rule else None,
    }


def _service_from_row(r: Any) -> Service:
    rule = None
    if r["dedup_radius_m"] is not None:
        rule = DuplicateRule(radius_m=r["dedup_radius_m"], window_days=r["dedup_window_days"],
                             scope=r["dedup_scope"], only_open=bool(r["dedup_only_open"]))
    return Service(r["code"], r["name"], r["group"], r["description"], r["keywords"],
                   r["sla_days"], rule)


def _reporter_values(reporter: Reporter) -> dict[str, str]:
    return {
        "first_name": reporter.first_name, "last_name": reporter.last_name,
        "email": reporter.email, "phone": reporter.phone, "device_id": reporter.device_id,
        "account_id": reporter.account_id,
    }


def _as_multipolygon(geom: Any) -> Any:
    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    return geom
