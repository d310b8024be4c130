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
from geoalchemy2 import Geometry
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Float,
    MetaData,
    bindparam,
    case,
    delete,
    func,
    insert,
    inspect,
    literal_column,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.schema import AddConstraint
from sqlalchemy.sql.elements import ColumnElement

from geo311.districts import DistrictLayer
from geo311.errors import InvalidRequest, NotFound
from geo311.geodesy import haversine_m
from geo311.hotspots import (
    STORED_RESOLUTION,
    RequestFilter,
    cells_of,
    masked_cell_keep,
    parent_bits,
)
from geo311.model import (
    ACTIVE_WORK_STATUSES,
    CLOSED,
    OPEN,
    STATUSES,
    Attribute,
    BulkResult,
    Candidate,
    Crew,
    DuplicateRule,
    DuplicateSearch,
    LayerVersion,
    NewRequest,
    Placement,
    Reporter,
    Service,
    ServiceRequest,
    WorkOrder,
)
from geo311.privacy import mask_frame
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
    t.service_requests.c.zipcode,
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


#: The largest id the integer id columns hold; a larger id names nothing stored.
MAX_ID = 2**31 - 1


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def degree_box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box that surely holds every point within ``radius_m`` of (lon, lat)."""
    dlat = radius_m / 111_000.0 * 1.01
    dlon = dlat / max(np.cos(np.radians(min(abs(lat) + dlat, 89.9))), 1e-6)
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


#: Clock slack when a live report's time is read only after its candidates.
_CLOCK_SLACK = timedelta(minutes=1)


def candidate_span(
    search: DuplicateSearch, requested: datetime | None
) -> tuple[datetime, datetime | None, datetime | None]:
    """``since, until, open_after`` bounds that keep every candidate ``decide`` may pick."""
    if requested is not None:
        return (requested - timedelta(days=search.window_days), requested,
                requested if search.only_open else None)
    now = now_utc()
    return (now - timedelta(days=search.window_days) - _CLOCK_SLACK, None,
            now - _CLOCK_SLACK if search.only_open else None)


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
    def bulk_load(self, expected_rows: int, min_rows: int | None = None) -> Iterator[None]:
        """Wrap a large import; a backend may suspend index upkeep while it runs.

        ``min_rows`` overrides the backend's ``bulk_min_rows`` for this load.
        """
        yield

    def _restore_suspended(self, conn: Connection) -> list[str]:
        """Re-create what a killed bulk load left suspended; return what came back.

        Nothing while a bulk load is running: its structure comes back when it ends.
        """
        return []

    def _spatial_index_missing(self, conn: Connection, table: str, column: str) -> bool:
        """Whether the declared spatial index on ``table.column`` is absent."""
        return False

    def _create_spatial_index(self, conn: Connection, table: str, column: str) -> None:
        """Build the spatial index on ``table.column``."""
        raise NotImplementedError

    def _foreign_keys_missing(self, conn: Connection, table: Any) -> list[Any]:
        """Declared foreign-key constraints of ``table`` that the database lacks."""
        return []

    def _prepare_schema(self, conn: Connection) -> None:
        """Backend set-up needed before tables exist (extensions)."""

    def _finish_schema(self, conn: Connection) -> list[str]:
        """Backend set-up needing the tables (special indexes); return what was added."""
        return []

    def _record_triggers(self) -> list[str]:
        """Statements (re)creating the triggers that keep stored public records honest.

        Writing a column of ``RECORD_COLUMNS`` raises the request's ``revision``; a
        change to services, layers, layer versions or a recorded request's districts
        raises the records generation. Stored records of an older revision or
        generation are then ignored, whichever code path (or person with psql) wrote.
        """
        return []

    @contextmanager
    def _cache_transaction(self, conn: Connection) -> Iterator[None]:
        """A transaction writing derived data a reader can rebuild (stored records).

        Backends make it cheap rather than durable: it need not wait for the disk or
        queue long behind other writers; losing it costs a rebuild, never an answer.
        """
        with conn.begin():
            yield

    def _local_time_text(self, column: Any) -> Any:
        """``column`` as W3C time text in the session's zone, or None: Python writes it."""
        return None

    def _use_time_zone(self, conn: Connection, zone: str) -> None:
        """Make the database write times in ``zone`` until the transaction ends."""

    # -- schema -----------------------------------------------------------------------

    def init_schema(self) -> int:
        """Create missing tables, columns, indexes and keys; return the schema version.

        Also rebuilds what a killed bulk load left suspended, so running it after any
        crash gives the structure of a clean database.
        """
        self.upgrade_schema()
        return t.SCHEMA_VERSION

    def upgrade_schema(self) -> list[str]:
        """Do what ``init_schema`` does; return what was added or rebuilt (for a report)."""
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
            if found is not None and int(found) > t.SCHEMA_VERSION:
                raise InvalidRequest(
                    f"the database has schema version {found} but this geo311 knows only "
                    f"{t.SCHEMA_VERSION}: upgrade geo311"
                )
            # What a killed bulk load suspended comes back first, from its recorded
            # definitions; tables still listed then belong to a load that is running.
            added = self._restore_suspended(conn)
            busy = set(conn.execute(select(t.suspended_structure.c.table_name)).scalars())
            added += self._add_missing_columns(conn, busy) + self._finish_schema(conn)
            added += self._add_missing_structure(conn, busy)
            if conn.execute(select(t.schema_info.c.key)
                            .where(t.schema_info.c.key == t.RECORDS_GENERATION)).first() is None:
                conn.execute(insert(t.schema_info).values(key=t.RECORDS_GENERATION, value="0"))
            for statement in self._record_triggers():
                conn.execute(text(statement))
            if found is None:
                conn.execute(
                    insert(t.schema_info).values(key="version", value=str(t.SCHEMA_VERSION))
                )
            elif int(found) < t.SCHEMA_VERSION:
                conn.execute(update(t.schema_info).where(t.schema_info.c.key == "version")
                             .values(value=str(t.SCHEMA_VERSION)))
            if added or (found is not None and int(found) < t.SCHEMA_VERSION):
                self._audit(conn, "upgrade_schema", "schema", t.SCHEMA_VERSION,
                            {"from": found, "added_columns": added})
        return added

    def _add_missing_columns(self, conn: Connection, busy: set[str] | None = None) -> list[str]:
        """Add the columns a newer geo311 declares to tables an older one created.

        Schema changes are additive: new tables are created by ``create_all`` and
        new columns, which are nullable or carry a scalar default, are added here,
        so upgrading never rewrites or loses stored rows. Missing declared indexes
        are created too, except on ``busy`` tables (a bulk load is rebuilding them).
        """
        busy = busy or set()
        existing = inspect(conn)
        tables = set(existing.get_table_names())
        added: list[str] = []
        for table in t.metadata.sorted_tables:
            if table.name not in tables:
                continue
            self._add_missing_table_columns(conn, existing, table, added)
            if table.name in busy:
                continue
            indexes = {i["name"] for i in existing.get_indexes(table.name)}
            for index in table.indexes:
                spatial = any(isinstance(c.type, Geometry) for c in index.columns)
                if index.name and index.name not in indexes and not spatial:
                    index.create(conn)
                    added.append(f"index {index.name}")
                    LOGGER.info("schema upgrade: created index %s", index.name)
        return added

    def _add_missing_structure(self, conn: Connection, busy: set[str]) -> list[str]:
        """Rebuild declared spatial indexes and foreign keys the database lacks.

        They go missing only by accident (a bulk load killed by an older geo311, a
        hand-made change); ``init-db`` puts them back and reports them.
        """
        existing = set(inspect(conn).get_table_names())
        added: list[str] = []
        for table in t.metadata.sorted_tables:
            if table.name not in existing or table.name in busy:
                continue
            for column in table.columns:
                if (isinstance(column.type, Geometry) and column.type.spatial_index
                        and self._spatial_index_missing(conn, table.name, column.name)):
                    self._create_spatial_index(conn, table.name, column.name)
                    added.append(f"spatial index {table.name}.{column.name}")
                    LOGGER.info("schema repair: created the spatial index on %s.%s",
                                table.name, column.name)
            for constraint in self._foreign_keys_missing(conn, table):
                conn.execute(AddConstraint(constraint))
                columns = ", ".join(c.name for c in constraint.columns)
                added.append(f"foreign key {table.name}({columns})")
                LOGGER.info("schema repair: added the foreign key %s(%s)", table.name, columns)
        return added

    def _add_missing_table_columns(self, conn: Connection, existing: Any, table: Any,
                                   added: list[str]) -> None:
        """Add ``table``'s declared columns that the stored table lacks."""
        have = {c["name"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if isinstance(column.type, Geometry):
                raise InvalidRequest(
                    f"cannot add geometry column {table.name}.{column.name} in place: "
                    "export, re-create with init-db and re-import"
                )
            ddl = f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" ' \
                f"{column.type.compile(dialect=conn.dialect)}"
            default = getattr(column.default, "arg", None)
            if isinstance(default, bool):
                ddl += f" DEFAULT {'TRUE' if default else 'FALSE'}"
            elif isinstance(default, int | float):
                ddl += f" DEFAULT {default}"
            elif isinstance(default, str):
                ddl += " DEFAULT '" + default.replace("'", "''") + "'"
            if not column.nullable and default is not None:
                ddl += " NOT NULL"
            conn.execute(text(ddl))
            added.append(f"{table.name}.{column.name}")
            LOGGER.info("schema upgrade: added column %s.%s", table.name, column.name)

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
            candidates: list[Candidate] = []
            if duplicates is not None and point is not None:
                candidates = self._duplicate_candidates(
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

    def _lock_key(self, conn: Connection, key: str) -> None:
        """Serialise transactions naming ``key`` until the commit."""
        raise NotImplementedError

    def _duplicate_candidates(
        self, conn: Connection, lon: float, lat: float, search: DuplicateSearch,
        requested: datetime | None,
    ) -> list[Candidate]:
        """Lock ``search.codes`` to the commit, then read earlier requests near the point.

        ``requested`` is the new request's time when the caller gives one (an import);
        a live report has none yet, so this reads every request of the window ending
        now, and later ones, for ``search.decide`` to narrow once the time is known.
        """
        self._lock_for_duplicates(conn, search.codes)
        return self._candidates(conn, lon, lat, search, *candidate_span(search, requested))

    def _candidates(
        self, conn: Connection, lon: float, lat: float, search: DuplicateSearch,
        since: datetime, until: datetime | None, open_after: datetime | None,
    ) -> list[Candidate]:
        sr, sv = t.service_requests.c, t.services.c
        stmt = (
            select(sr.id, func.ST_X(sr.geom), func.ST_Y(sr.geom), sr.service_code, sv.group,
                   sr.requested_datetime, sr.closed_datetime, sr.duplicate_of)
            .select_from(t.service_requests.join(t.services, sv.code == sr.service_code))
            .where(self._within_box(degree_box(lon, lat, search.radius_m)))
            .where(sr.service_code.in_(list(search.codes)))
            .where(sr.requested_datetime >= since)
        )
        if until is not None:
            stmt = stmt.where(sr.requested_datetime <= until)
        if open_after is not None:
            stmt = stmt.where(or_(sr.closed_datetime.is_(None), sr.closed_datetime > open_after))
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

    def _one_of(self, column: Any, values: list[Any]) -> ColumnElement[bool]:
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
                districts=names.get(r.id, {}), zipcode=r.zipcode,
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
        newest: dict[tuple[int, str], int] = {}
        for start in range(0, len(ids), 5000):
            rows = conn.execute(
                select(rd.request_id, ly.name, lv.version, rd.district_id)
                .select_from(t.request_districts
                             .join(t.layer_versions, lv.id == rd.layer_version_id)
                             .join(t.layers, ly.id == lv.layer_id))
                .where(self._one_of(rd.request_id, list(ids[start:start + 5000])))
            ).all()
            for rid, layer, version, district in rows:
                if newest.get((rid, layer), -1) < version:
                    newest[rid, layer] = version
                    out.setdefault(rid, {})[layer] = district
        # Layers in name order, as readers expect.
        return {rid: dict(sorted(names.items())) for rid, names in out.items()}

    def get(self, request_id: int) -> ServiceRequest:
        """One request by id; raise ``NotFound``."""
        if not 0 < int(request_id) <= MAX_ID:
            raise NotFound(f"service request {request_id} does not exist")
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
        sr = t.service_requests.c
        stmt = self._request_filters(self._public_select(), service_codes=service_codes,
                                     status=status, start=start, end=end, bbox=bbox)
        if ids is not None:
            stmt = stmt.where(sr.id.in_([int(i) for i in ids if 0 < int(i) <= MAX_ID]))
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
        sensitive = set() if include_private else self.sensitive_service_codes()
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

    def layer_version_validity(
        self, name: str | None = None
    ) -> list[tuple[str, int, datetime | None, datetime | None]]:
        """When each layer version was in force: ``(layer, version, valid_from, valid_to)``.

        Read from the audit log, where every activation and retirement is recorded;
        a period is half-open (``valid_to`` is when the next version or the retirement
        took over, None while in force). An active version with no audited activation
        (loaded before the audit log) counts from its ``activated_at``, else always.
        """
        a, lay, lv = t.audit_log.c, t.layers.c, t.layer_versions.c
        events = (select(a.at, a.action, a.entity_id, a.detail)
                  .where(a.entity == "layer")
                  .where(a.action.in_(["layer_activated", "layer_retired"])).order_by(a.id))
        active = (select(lay.name, lv.version, lv.activated_at)
                  .select_from(t.layer_versions.join(t.layers, lay.id == lv.layer_id))
                  .where(lv.status == "active"))
        if name is not None:
            events = events.where(a.entity_id == name)
            active = active.where(lay.name == name)
        with self.engine.connect() as conn:
            rows = conn.execute(events).all()
            current = conn.execute(active).all()
        periods: list[tuple[str, int, datetime | None, datetime | None]] = []
        open_: dict[str, tuple[int, datetime | None]] = {}
        for at, action, layer, detail in rows:
            version = json.loads(detail).get("version") if action == "layer_activated" else None
            held = open_.get(layer)
            if held is not None and held[0] == version:
                continue  # activated again while in force: one period
            if held is not None:
                periods.append((layer, held[0], held[1], at))
                del open_[layer]
            if version is not None:
                open_[layer] = (int(version), at)
        for layer, version, activated_at in current:
            if open_.get(layer, (None,))[0] != version:
                open_[layer] = (int(version), activated_at)
        periods += [(layer, version, since, None) for layer, (version, since) in open_.items()]
        return sorted(periods, key=lambda p: (p[0], p[2] or datetime.min.replace(tzinfo=UTC)))

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

    # --- dispatch: staff accounts, SLA clocks, crews and work orders -------------------

    def add_user(self, username: str, password_hash: str, role: str, *,
                 actor: str = "system") -> int:
        """Create a staff account; raise ``InvalidRequest`` if the name is taken."""
        u = t.users.c
        with self.engine.begin() as conn:
            if conn.execute(select(u.id).where(u.username == username)).first():
                raise InvalidRequest(f"user {username!r} exists already")
            user_id = conn.execute(insert(t.users).values(
                username=username, password_hash=password_hash, role=role, active=True,
                created=now_utc()).returning(u.id)).scalar_one()
            self._audit(conn, "user_created", "user", username, {"role": role}, actor)
        return int(user_id)

    def user(self, username: str | None = None, *, user_id: int | None = None
             ) -> dict[str, Any] | None:
        """One account row (with its password hash) by name or id, or None."""
        u = t.users.c
        stmt = select(t.users).where(u.username == username if user_id is None
                                     else u.id == int(user_id))
        with self.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return None if row is None else dict(row)

    def users(self) -> list[dict[str, Any]]:
        """Every account (without password hashes), by name."""
        u = t.users.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(u.id, u.username, u.role, u.active, u.created,
                                       u.last_login).order_by(u.username)).mappings().all()
        return [dict(r) for r in rows]

    def set_user_active(self, username: str, active: bool, *, actor: str = "system") -> None:
        """Enable or disable an account; audited."""
        u = t.users.c
        with self.engine.begin() as conn:
            done = conn.execute(update(t.users).where(u.username == username).values(
                active=active, session_generation=u.session_generation + 1)).rowcount
            if not done:
                raise NotFound(f"user {username!r} does not exist")
            self._audit(conn, "user_enabled" if active else "user_disabled", "user", username,
                        {}, actor)

    def set_user_password(self, username: str, password_hash: str, *,
                          actor: str = "system") -> None:
        """Replace an account's password hash; audited (without the hash)."""
        u = t.users.c
        with self.engine.begin() as conn:
            if not conn.execute(update(t.users).where(u.username == username).values(
                    password_hash=password_hash,
                    session_generation=u.session_generation + 1)).rowcount:
                raise NotFound(f"user {username!r} does not exist")
            self._audit(conn, "password_set", "user", username, {}, actor)

    def set_user_role(self, username: str, role: str, *, actor: str = "system") -> None:
        """Change an account's role, ending its sessions; audited."""
        u = t.users.c
        with self.engine.begin() as conn:
            before = conn.execute(select(u.role).where(u.username == username)).scalar()
            if before is None:
                raise NotFound(f"user {username!r} does not exist")
            conn.execute(update(t.users).where(u.username == username).values(
                role=role, session_generation=u.session_generation + 1))
            self._audit(conn, "role_set", "user", username, {"from": before, "to": role},
                        actor)

    def end_sessions(self, user_id: int, *, actor: str = "system") -> None:
        """Refuse every session of this account signed so far (logout everywhere)."""
        u = t.users.c
        with self.engine.begin() as conn:
            name = conn.execute(update(t.users).where(u.id == int(user_id)).values(
                session_generation=u.session_generation + 1).returning(u.username)).scalar()
            if name is not None:
                self._audit(conn, "sessions_ended", "user", name, {}, actor)

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
        with self.engine.begin() as conn:
            self._lock_key(conn, f"geo311.login.{username}.{address}")
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
        with self.engine.begin() as conn:
            if ok:
                conn.execute(update(t.users).where(u.username == username)
                             .values(last_login=now))
                conn.execute(delete(t.login_failures).where(lf.username == username)
                             .where(lf.address == address))
                self._audit(conn, "login", "user", username, {"address": address}, username)
            else:
                conn.execute(insert(t.login_failures).values(username=username[:100],
                                                             address=address[:64], at=now))

    def login_failures_since(self, username: str, address: str, since: datetime
                             ) -> list[datetime]:
        """Times of failed logins of this name from this address since ``since``."""
        lf = t.login_failures.c
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(lf.at).where(lf.username == username[:100]).where(
                    lf.address == address[:64]).where(lf.at >= since).order_by(lf.at)
            ).scalars())

    def sla_rows(self, codes: Sequence[str], *, missing_only: bool = False,
                 ids: Sequence[int] | None = None) -> list[tuple[int, str, datetime]]:
        """Id, service code and request time of requests of these services."""
        sr = t.service_requests.c
        stmt = select(sr.id, sr.service_code, sr.requested_datetime).where(
            sr.service_code.in_(list(codes))).order_by(sr.id)
        if missing_only:
            stmt = stmt.where(sr.expected_datetime.is_(None))
        if ids is not None:
            stmt = stmt.where(sr.id.in_([int(i) for i in ids]))
        with self.engine.connect() as conn:
            return [(int(a), str(b), c) for a, b, c in conn.execute(stmt).all()]

    def set_expected_datetimes(self, ids: Sequence[int],
                               values: Sequence[datetime | None]) -> None:
        """Write due times (``expected_datetime``) of many requests in one transaction."""
        sr = t.service_requests.c
        with self.engine.begin() as conn:
            for i, v in zip(ids, values, strict=True):
                conn.execute(update(t.service_requests).where(sr.id == int(i))
                             .values(expected_datetime=v))

    def sla_pauses_of(self, ids: Sequence[int]
                      ) -> dict[int, list[tuple[datetime, datetime | None]]]:
        """Pauses of these requests, oldest first, as (started, ended or None)."""
        p = t.sla_pauses.c
        out: dict[int, list[tuple[datetime, datetime | None]]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 5000):
                chunk = [int(i) for i in ids[start:start + 5000]]
                for rid, s, e in conn.execute(
                        select(p.request_id, p.started, p.ended)
                        .where(p.request_id.in_(chunk)).order_by(p.id)):
                    out.setdefault(int(rid), []).append((s, e))
        return out

    def start_sla_pause(self, request_id: int, reason: str, at: datetime, *,
                        actor: str = "system") -> None:
        """Open a pause of a request's clock; one at a time."""
        p = t.sla_pauses.c
        with self.engine.begin() as conn:
            if conn.execute(select(p.id).where(p.request_id == request_id)
                            .where(p.ended.is_(None))).first():
                raise InvalidRequest(f"request {request_id} is paused already")
            conn.execute(insert(t.sla_pauses).values(request_id=request_id, reason=reason,
                                                     started=at, started_by=actor))
            self._audit(conn, "sla_paused", "request", request_id, {"reason": reason}, actor)

    def end_sla_pause(self, request_id: int, at: datetime, *, actor: str = "system") -> None:
        """Close the open pause of a request's clock."""
        p = t.sla_pauses.c
        with self.engine.begin() as conn:
            pause_id = conn.execute(select(p.id).where(p.request_id == request_id)
                                    .where(p.ended.is_(None))).scalar()
            if pause_id is None:
                raise InvalidRequest(f"request {request_id} is not paused")
            conn.execute(update(t.sla_pauses).where(p.id == pause_id)
                         .values(ended=at, ended_by=actor))
            self._audit(conn, "sla_resumed", "request", request_id, {}, actor)

    def open_sla_rows(self) -> list[tuple[int, str, datetime | None, bool]]:
        """Open group roots: id, service code, due time and whether paused now."""
        sr, p = t.service_requests.c, t.sla_pauses.c
        paused = select(p.request_id).where(p.ended.is_(None))
        stmt = select(sr.id, sr.service_code, sr.expected_datetime,
                      sr.id.in_(paused).label("paused")).where(sr.status == OPEN).where(
            sr.duplicate_of.is_(None)).order_by(sr.id)
        with self.engine.connect() as conn:
            return [(int(a), str(b), c, bool(d)) for a, b, c, d in conn.execute(stmt).all()]

    def add_crew(self, crew: Crew, *, actor: str = "system") -> Crew:
        """Store a new crew; raise ``InvalidRequest`` if the name is taken."""
        c = t.crews.c
        with self.engine.begin() as conn:
            if conn.execute(select(c.id).where(c.name == crew.name)).first():
                raise InvalidRequest(f"crew {crew.name!r} exists already")
            crew_id = conn.execute(insert(t.crews).values(
                name=crew.name, service_groups=json.dumps(list(crew.service_groups)),
                layer=crew.layer, districts=json.dumps(list(crew.districts)),
                capacity_per_day=crew.capacity_per_day, calendar=crew.calendar,
                depot_lon=crew.depot_lon, depot_lat=crew.depot_lat, active=True,
                created=now_utc()).returning(c.id)).scalar_one()
            self._audit(conn, "crew_created", "crew", crew_id,
                        {"name": crew.name, "districts": list(crew.districts),
                         "service_groups": list(crew.service_groups)}, actor)
        return self.crew(int(crew_id))

    def crews(self, *, active_only: bool = True) -> list[Crew]:
        """Crews by id."""
        stmt = select(t.crews).order_by(t.crews.c.id)
        if active_only:
            stmt = stmt.where(t.crews.c.active)
        with self.engine.connect() as conn:
            return [_crew_from_row(r) for r in conn.execute(stmt).mappings().all()]

    def crew(self, key: int | str) -> Crew:
        """One crew by id or name; raise ``NotFound``."""
        c = t.crews.c
        cond = c.id == key if isinstance(key, int) else c.name == key
        with self.engine.connect() as conn:
            row = conn.execute(select(t.crews).where(cond)).mappings().first()
        if row is None:
            raise NotFound(f"crew {key!r} does not exist")
        return _crew_from_row(row)

    def set_crew_active(self, crew_id: int, active: bool, *, actor: str = "system") -> None:
        """Retire a crew (or bring it back); audited."""
        with self.engine.begin() as conn:
            conn.execute(update(t.crews).where(t.crews.c.id == crew_id).values(active=active))
            self._audit(conn, "crew_enabled" if active else "crew_disabled", "crew", crew_id,
                        {}, actor)

    def add_work_order(self, crew_id: int, request_ids: Sequence[int], scheduled_date: str,
                       *, actor: str = "system") -> WorkOrder:
        """A work order for the groups of ``request_ids`` (open, not on another order)."""
        sr, wr, wo = t.service_requests.c, t.work_order_requests.c, t.work_orders.c
        if not request_ids:
            raise InvalidRequest("a work order needs at least one request")
        self.crew(int(crew_id))
        now = now_utc()
        with self.engine.begin() as conn:
            rows = conn.execute(select(sr.id, sr.status, sr.duplicate_of).where(
                sr.id.in_([int(i) for i in request_ids]))).all()
            missing = sorted(set(int(i) for i in request_ids) - {r.id for r in rows})
            if missing:
                raise NotFound(f"service requests {missing} do not exist")
            roots = sorted({r.duplicate_of or r.id for r in rows})
            states = dict(conn.execute(select(sr.id, sr.status).where(sr.id.in_(roots))).all())
            closed = [i for i in roots if states.get(i) != OPEN]
            if closed:
                raise InvalidRequest(f"requests {closed} are not open")
            taken = conn.execute(
                select(wr.request_id, wr.work_order_id).select_from(
                    t.work_order_requests.join(t.work_orders, wo.id == wr.work_order_id))
                .where(wr.request_id.in_(roots)).where(wo.status.in_(ACTIVE_WORK_STATUSES))
            ).all()
            if taken:
                raise InvalidRequest(
                    "requests already on an open work order: "
                    + ", ".join(f"#{r} (work order {w})" for r, w in taken))
            order_id = conn.execute(insert(t.work_orders).values(
                crew_id=int(crew_id), status="assigned", scheduled_date=scheduled_date,
                created=now, created_by=actor, updated=now).returning(wo.id)).scalar_one()
            conn.execute(insert(t.work_order_requests),
                         [{"work_order_id": order_id, "request_id": r} for r in roots])
            self._audit(conn, "created", "work_order", order_id,
                        {"crew_id": int(crew_id), "requests": roots, "date": scheduled_date},
                        actor)
            for r in roots:
                self._audit(conn, "assigned", "request", r,
                            {"work_order": order_id, "crew_id": int(crew_id)}, actor)
        return self.work_order(int(order_id))

    def work_order(self, order_id: int) -> WorkOrder:
        """One work order with its requests and notes; raise ``NotFound``."""
        found = self.work_orders(ids=[int(order_id)])
        if not found:
            raise NotFound(f"work order {order_id} does not exist")
        return found[0]

    def work_orders(self, *, crew_id: int | None = None, status: Sequence[str] | None = None,
                    scheduled_date: str | None = None, ids: Sequence[int] | None = None,
                    limit: int = 5000) -> list[WorkOrder]:
        """Work orders matching filters, by date then route position then id."""
        wo, wr, wn = t.work_orders.c, t.work_order_requests.c, t.work_order_notes.c
        stmt = select(t.work_orders).order_by(wo.scheduled_date, wo.route_position, wo.id)
        if crew_id is not None:
            stmt = stmt.where(wo.crew_id == int(crew_id))
        if status is not None:
            stmt = stmt.where(wo.status.in_(list(status)))
        if scheduled_date is not None:
            stmt = stmt.where(wo.scheduled_date == scheduled_date)
        if ids is not None:
            stmt = stmt.where(wo.id.in_([int(i) for i in ids]))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.limit(limit)).mappings().all()
            wanted = [r["id"] for r in rows]
            reqs: dict[int, list[int]] = {}
            notes: dict[int, list[tuple[datetime, str, str]]] = {}
            for start in range(0, len(wanted), 5000):
                chunk = wanted[start:start + 5000]
                for w, r in conn.execute(select(wr.work_order_id, wr.request_id).where(
                        wr.work_order_id.in_(chunk)).order_by(wr.request_id)):
                    reqs.setdefault(w, []).append(int(r))
                for w, at, author, body in conn.execute(
                        select(wn.work_order_id, wn.at, wn.author, wn.text)
                        .where(wn.work_order_id.in_(chunk)).order_by(wn.id)):
                    notes.setdefault(w, []).append((at, author, body))
        return [WorkOrder(
            id=r["id"], crew_id=r["crew_id"], status=r["status"],
            scheduled_date=r["scheduled_date"], route_position=r["route_position"],
            request_ids=tuple(reqs.get(r["id"], [])), resolution=r["resolution"],
            created=r["created"], created_by=r["created_by"], updated=r["updated"],
            started=r["started"], finished=r["finished"],
            notes=tuple(notes.get(r["id"], []))) for r in rows]

    def set_work_order_status(self, order_id: int, status: str, *, resolution: str = "",
                              actor: str = "system") -> WorkOrder:
        """Move a work order on (assigned, in_progress, done, cancelled); audited."""
        order = self.work_order(order_id)
        now = now_utc()
        values: dict[str, Any] = {"status": status, "updated": now}
        if status == "in_progress" and order.started is None:
            values["started"] = now
        if status in ("done", "cancelled"):
            values["finished"] = now
            values["resolution"] = resolution
        with self.engine.begin() as conn:
            conn.execute(update(t.work_orders).where(t.work_orders.c.id == order.id)
                         .values(**values))
            self._audit(conn, "status", "work_order", order.id,
                        {"from": order.status, "to": status, "resolution": resolution}, actor)
        return self.work_order(order.id)

    def reassign_work_order(self, order_id: int, crew_id: int, *, scheduled_date: str | None
                            = None, actor: str = "system") -> WorkOrder:
        """Give a work order to another crew (the dispatcher's override); audited."""
        order = self.work_order(order_id)
        self.crew(int(crew_id))
        values: dict[str, Any] = {"crew_id": int(crew_id), "updated": now_utc(),
                                  "route_position": None}
        if scheduled_date:
            values["scheduled_date"] = scheduled_date
        with self.engine.begin() as conn:
            conn.execute(update(t.work_orders).where(t.work_orders.c.id == order.id)
                         .values(**values))
            self._audit(conn, "reassigned", "work_order", order.id,
                        {"from_crew": order.crew_id, "to_crew": int(crew_id),
                         "date": values.get("scheduled_date", order.scheduled_date)}, actor)
        return self.work_order(order.id)

    def add_work_order_note(self, order_id: int, body: str, *, author: str) -> None:
        """Append a note to a work order; audited."""
        order = self.work_order(order_id)
        with self.engine.begin() as conn:
            conn.execute(insert(t.work_order_notes).values(
                work_order_id=order.id, at=now_utc(), author=author, text=body))
            conn.execute(update(t.work_orders).where(t.work_orders.c.id == order.id)
                         .values(updated=now_utc()))
            self._audit(conn, "note", "work_order", order.id, {"length": len(body)}, author)

    def set_route_positions(self, positions: dict[int, int], *, actor: str = "system") -> None:
        """Store the visiting order of work orders (one crew's day); audited."""
        wo = t.work_orders.c
        with self.engine.begin() as conn:
            for order_id, pos in positions.items():
                conn.execute(update(t.work_orders).where(wo.id == int(order_id))
                             .values(route_position=int(pos)))
            self._audit(conn, "route_ordered", "work_order", "",
                        {"positions": {str(k): v for k, v in positions.items()}}, actor)

    def group_members(self, roots: Sequence[int]) -> list[int]:
        """Open requests of these groups: the roots and their duplicates, by id."""
        sr = t.service_requests.c
        wanted = [int(r) for r in roots]
        with self.engine.connect() as conn:
            return [int(i) for i in conn.execute(
                select(sr.id).where(sr.id.in_(wanted) | sr.duplicate_of.in_(wanted))
                .where(sr.status == OPEN).order_by(sr.id)).scalars()]

    def crew_loads(self) -> dict[int, int]:
        """Stops on open work orders (assigned or in progress), per crew id."""
        wo, wr = t.work_orders.c, t.work_order_requests.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(wo.crew_id, func.count()).select_from(
                    t.work_orders.join(t.work_order_requests, wr.work_order_id == wo.id))
                .where(wo.status.in_(ACTIVE_WORK_STATUSES)).group_by(wo.crew_id)).all()
        return {int(c): int(n) for c, n in rows}

    def dispatch_frame(self, layer_version_id: int | None, *, district: str | None = None,
                       unassigned_only: bool = True,
                       ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Open located group roots with service group, due time, pause and district.

        Columns: id, service_code, group, lon, lat, requested, expected, paused,
        district_id (in ``layer_version_id``), work_order_id (None when unassigned).
        """
        sr, sv, rd = t.service_requests.c, t.services.c, t.request_districts.c
        wo, wr, p = t.work_orders.c, t.work_order_requests.c, t.sla_pauses.c
        active_orders = (select(wr.request_id, wr.work_order_id)
                         .select_from(t.work_order_requests.join(
                             t.work_orders, wo.id == wr.work_order_id))
                         .where(wo.status.in_(ACTIVE_WORK_STATUSES)).subquery())
        joined = t.service_requests.join(t.services, sv.code == sr.service_code).outerjoin(
            active_orders, active_orders.c.request_id == sr.id)
        district_col: Any = None
        if layer_version_id is not None:
            joined = joined.outerjoin(t.request_districts, (rd.request_id == sr.id)
                                      & (rd.layer_version_id == layer_version_id))
            district_col = rd.district_id
        paused = select(p.request_id).where(p.ended.is_(None))
        stmt = select(
            sr.id, sr.service_code, sv.group, func.ST_X(sr.geom), func.ST_Y(sr.geom),
            sr.requested_datetime, sr.expected_datetime, sr.id.in_(paused),
            district_col if district_col is not None else text("NULL"),
            active_orders.c.work_order_id,
        ).select_from(joined).where(sr.status == OPEN).where(sr.duplicate_of.is_(None)).where(
            sr.geom.isnot(None)).order_by(sr.id)
        if unassigned_only:
            stmt = stmt.where(active_orders.c.work_order_id.is_(None))
        if district is not None and district_col is not None:
            stmt = stmt.where(district_col == district)
        if ids is not None:
            stmt = stmt.where(sr.id.in_([int(i) for i in ids]))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        frame = _frame(rows, ["id", "service_code", "group", "lon", "lat", "requested",
                              "expected", "paused", "district_id", "work_order_id"])
        frame["paused"] = frame["paused"].astype(bool)
        return frame

    def kpi_frame(self, layer_version_id: int | None, *, start: datetime | None = None,
                  end: datetime | None = None) -> pd.DataFrame:
        """Group roots (``duplicate_of`` NULL) for KPIs: service, district and times."""
        sr, sv, rd = t.service_requests.c, t.services.c, t.request_districts.c
        joined = t.service_requests.join(t.services, sv.code == sr.service_code)
        district_col: Any = text("NULL")
        if layer_version_id is not None:
            joined = joined.outerjoin(t.request_districts, (rd.request_id == sr.id)
                                      & (rd.layer_version_id == layer_version_id))
            district_col = rd.district_id
        stmt = select(
            sr.service_code, sv.name, district_col, sr.status,
            type_coerce(sr.requested_datetime, DateTime()),
            type_coerce(sr.closed_datetime, DateTime()),
            type_coerce(sr.expected_datetime, DateTime()),
        ).select_from(joined).where(sr.duplicate_of.is_(None))
        if start is not None:
            stmt = stmt.where(sr.requested_datetime >= start)
        if end is not None:
            stmt = stmt.where(sr.requested_datetime < end)
        with self.engine.connect() as conn:
            frame = _frame(conn.execute(stmt).all(), ["service_code", "service_name",
                                                      "district_id", "status", "requested",
                                                      "closed", "expected"])
        for col in ("requested", "closed", "expected"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame
    # --- geocoding: reference layers ---------------------------------------------------

    _REFERENCE_TABLES = {"points": t.address_points, "intersections": t.street_intersections,
                         "centerlines": t.street_centerlines}

    def replace_reference(self, kind: str, frame: pd.DataFrame, source: str, *,
                          actor: str = "system") -> int:
        """Store a reference layer's rows under ``source``, replacing that source's rows.

        ``kind`` is ``points``, ``intersections`` or ``centerlines`` (frames as
        ``geo311.gazetteer`` reads them). Returns the number of rows stored.
        """
        table = self._REFERENCE_TABLES.get(kind)
        if table is None:
            raise InvalidRequest(f"kind was {kind!r} but is expected to be in "
                                 f"{sorted(self._REFERENCE_TABLES)}")
        if kind == "centerlines":
            rows = [{
                "street": r.street, "source": source,
                **{k: (None if pd.isna(v) else int(v)) for k, v in (
                    ("l_from", r.l_from), ("l_to", r.l_to), ("r_from", r.r_from),
                    ("r_to", r.r_to))},
                "geom": f"SRID=4326;{shapely.to_wkt(r.geometry, rounding_precision=7)}",
            } for r in frame.itertuples(index=False)]
        else:
            columns = [c for c in frame.columns if c not in ("lon", "lat") and c in table.c]
            values = {c: frame[c].tolist() for c in columns}
            wkt = [f"SRID=4326;POINT({x:.7f} {y:.7f})" for x, y in zip(
                frame["lon"].to_numpy(float), frame["lat"].to_numpy(float), strict=True)]
            rows = [{**{c: values[c][i] for c in columns}, "source": source, "geom": wkt[i]}
                    for i in range(len(frame))]
        with self.engine.begin() as conn:
            kept = _keep_address_ids(conn, source, rows) if kind == "points" else []
            conn.execute(delete(table).where(table.c.source == source))
            for part in (kept, [r for r in rows if "id" not in r]):
                for start in range(0, len(part), 20_000):
                    conn.execute(insert(table), part[start:start + 20_000])
            self._audit(conn, "reference_loaded", "geocoding", source,
                        {"kind": kind, "rows": len(rows), "ids_kept": len(kept)}, actor)
        LOGGER.info("stored %s %s rows from %s", len(rows), kind, source)
        return len(rows)

    def reference_frames(self) -> dict[str, pd.DataFrame]:
        """Every stored reference layer as frames the geocoder takes, by kind."""
        ap, si, sc = t.address_points.c, t.street_intersections.c, t.street_centerlines.c
        with self.engine.connect() as conn:
            points = _frame(conn.execute(select(
                ap.id, ap.address, ap.house_number, ap.pre_dir, ap.street_name, ap.suffix,
                ap.zipcode, func.ST_X(ap.geom), func.ST_Y(ap.geom), ap.source)
                .order_by(ap.id)).all(),
                ["id", "address", "house_number", "pre_dir", "street_name", "suffix",
                 "zipcode", "lon", "lat", "source"])
            crossings = _frame(conn.execute(select(
                si.street_1, si.street_2, si.zipcode, func.ST_X(si.geom), func.ST_Y(si.geom))
                .order_by(si.id)).all(), ["street_1", "street_2", "zipcode", "lon", "lat"])
            lines = conn.execute(select(sc.street, sc.l_from, sc.l_to, sc.r_from, sc.r_to,
                                        sc.geom).order_by(sc.id)).all()
        centerlines = pd.DataFrame({
            "street": [r.street for r in lines],
            **{k: pd.array([getattr(r, k) for r in lines], dtype="Int64")
               for k in ("l_from", "l_to", "r_from", "r_to")},
            "geometry": [to_shape(r.geom) for r in lines],
        })
        return {"points": points, "intersections": crossings, "centerlines": centerlines}

    def context_key(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(active layer version ids, ``reference_key()``) read in one round trip.

        Asked before every live report, so it reads ids only, through one connection.
        """
        a, lv = t.audit_log.c, t.layer_versions.c
        reference = [select(func.max(a.id)).where(a.entity == "geocoding").scalar_subquery(),
                     *(select(func.max(table.c.id)).scalar_subquery()
                       for table in self._REFERENCE_TABLES.values())]
        with self.engine.connect() as conn:
            active = tuple(int(i) for i in conn.execute(
                select(lv.id).where(lv.status == "active").order_by(lv.id)).scalars())
            row = conn.execute(select(*reference)).one()
        return active, tuple(int(v or 0) for v in row)

    def reference_key(self) -> tuple[int, ...]:
        """Changes whenever a reference layer is loaded or replaced (for cache rebuilds)."""
        a = t.audit_log.c
        with self.engine.connect() as conn:
            # Every load is audited: the last audit id changes even when a reload
            # leaves the same ids behind (SQLite reuses the highest deleted ids).
            loads = conn.execute(select(func.max(a.id)).where(a.entity == "geocoding")).scalar()
            return (int(loads or 0), *(
                int(conn.execute(select(func.max(table.c.id))).scalar() or 0)
                for table in self._REFERENCE_TABLES.values()))

    def reference_sources(self) -> list[tuple[str, str, int]]:
        """(kind, source, rows) of every stored reference source."""
        out = []
        with self.engine.connect() as conn:
            for kind, table in self._REFERENCE_TABLES.items():
                for source, n in conn.execute(select(table.c.source, func.count())
                                              .group_by(table.c.source)
                                              .order_by(table.c.source)).all():
                    out.append((kind, str(source), int(n)))
        return out

    def address_point(self, point_id: int) -> tuple[str, float, float]:
        """One stored address point: (address, lon, lat); raise ``NotFound``."""
        if not 0 < int(point_id) <= MAX_ID:
            raise NotFound(f"address_id {point_id} is not a stored address point")
        ap = t.address_points.c
        with self.engine.connect() as conn:
            row = conn.execute(select(ap.address, func.ST_X(ap.geom), func.ST_Y(ap.geom))
                               .where(ap.id == point_id)).first()
        if row is None:
            raise NotFound(f"address_id {point_id} is not a stored address point")
        return str(row[0]), float(row[1]), float(row[2])

    def trusted_addresses(self, *, since: datetime | None = None,
                          matches: Sequence[str] = ("source",)) -> pd.DataFrame:
        """Address, zipcode, lon, lat of stored requests whose point is trusted."""
        sr = t.service_requests.c
        stmt = select(sr.address, sr.zipcode, func.ST_X(sr.geom), func.ST_Y(sr.geom)).where(
            sr.geom.isnot(None), sr.address != "", sr.geocode_match.in_(list(matches)))
        if since is not None:
            stmt = stmt.where(sr.requested_datetime >= since)
        with self.engine.connect() as conn:
            return _frame(conn.execute(stmt).all(), ["address", "zipcode", "lon", "lat"])
    # --- hotspots and maps ---

    def fill_h3_cells(self, chunk_rows: int = 200_000) -> int:
        """Store the resolution-15 H3 cell of requests that lack one; return how many.

        Requests without a location get 0, so a partial index keeps finding the
        missing ones cheap (a page view after a new report fills just that one).
        """
        sr = t.service_requests.c
        filled = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(sr.id, func.ST_X(sr.geom), func.ST_Y(sr.geom))
                    .where(sr.h3_cell.is_(None)).order_by(sr.id).limit(chunk_rows)
                ).all()
            if not rows:
                return filled
            frame = _frame(rows, ["id", "lon", "lat"])
            cells = cells_of(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float),
                             STORED_RESOLUTION)
            with self.engine.begin() as conn:
                self._write_h3_cells(conn, frame["id"].to_numpy(np.int64), cells)
            filled += len(frame)
            LOGGER.info("stored H3 cells of %s requests", filled)

    def _write_h3_cells(self, conn: Connection, ids: np.ndarray, cells: np.ndarray) -> None:
        conn.execute(
            update(t.service_requests)
            .where(t.service_requests.c.id == bindparam("rid"))
            .values(h3_cell=bindparam("cell")),
            [{"rid": int(i), "cell": int(c)} for i, c in zip(ids, cells, strict=True)],
        )

    def _filtered_parents(self, stmt: Any, where: RequestFilter) -> Any:
        """Restrict a statement on ``service_requests`` to the parents ``where`` keeps."""
        sr, rd = t.service_requests.c, t.request_districts.c
        stmt = stmt.where(sr.duplicate_of.is_(None))
        if where.service_codes:
            stmt = stmt.where(sr.service_code.in_(list(where.service_codes)))
        if where.status is not None:
            if where.status not in STATUSES:
                raise InvalidRequest(
                    f"status was {where.status!r} but is expected to be in {STATUSES}")
            stmt = stmt.where(sr.status == where.status)
        if where.start is not None:
            stmt = stmt.where(sr.requested_datetime >= where.start)
        if where.end is not None:
            stmt = stmt.where(sr.requested_datetime < where.end)
        if where.district_id is not None and where.layer_version_id is not None:
            stmt = stmt.where(sr.id.in_(
                select(rd.request_id).where(rd.layer_version_id == where.layer_version_id)
                .where(rd.district_id == where.district_id)))
        return stmt

    def _parent_cell(self, resolution: int) -> Any:
        keep, set_ = parent_bits(resolution)
        return self._public_cell().op("&")(literal_column(str(keep))).op("|")(
            literal_column(str(set_)))

    def _public_cell(self) -> Any:
        """A request's stored H3 cell, or for a sensitive service its masked cell."""
        sr, sv = t.service_requests.c, t.services.c
        masked = sr.h3_cell.op("&")(literal_column(str(masked_cell_keep())))
        return case((sr.service_code.in_(select(sv.code).where(sv.sensitive)), masked),
                    else_=sr.h3_cell)

    def _epoch_s(self, column: Any) -> Any:
        """Seconds since 1970 of a stored time, in SQL."""
        if self.engine.dialect.name == "sqlite":
            return (func.julianday(column) - 2440587.5) * 86400.0
        return func.extract("epoch", column)

    def hotspot_counts(self, resolution: int, where: RequestFilter) -> pd.DataFrame:
        """Parent requests and their reporters per H3 cell at ``resolution``, in SQL.

        Returns ``cell, requests, reporters``; children never count, their reporters
        are in their parent's ``reporter_count``.
        """
        self.fill_h3_cells()
        sr = t.service_requests.c
        cell = self._parent_cell(resolution).label("cell")
        stmt = self._filtered_parents(
            select(cell, func.count().label("requests"),
                   func.sum(sr.reporter_count).label("reporters"))
            .where(sr.h3_cell != 0), where).group_by(cell)
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # A one-pass scan: compiling it to machine code costs more than it saves.
                conn.execute(text("SET LOCAL jit = off"))
            frame = _frame(conn.execute(stmt).all(), ["cell", "requests", "reporters"])
        return frame.astype({"cell": np.int64, "requests": np.int64, "reporters": np.int64})

    def hotspot_weekly(
        self, resolution: int, where: RequestFilter, origin: datetime
    ) -> pd.DataFrame:
        """Reporters per H3 cell and week since ``origin``: ``cell, week, reporters``."""
        self.fill_h3_cells()
        sr = t.service_requests.c
        cell = self._parent_cell(resolution).label("cell")
        seconds = self._epoch_s(sr.requested_datetime) - origin.timestamp()
        week = type_coerce(func.floor(seconds / 604800.0), Float).label("week")
        stmt = self._filtered_parents(
            select(cell, week, func.sum(sr.reporter_count).label("reporters"))
            .where(sr.h3_cell != 0).where(sr.requested_datetime >= origin), where,
        ).group_by(cell, week)
        with self.engine.connect() as conn:
            frame = _frame(conn.execute(stmt).all(), ["cell", "week", "reporters"])
        return frame.astype({"cell": np.int64, "week": np.int64, "reporters": np.int64})

    def district_summary(self, layer_version_id: int, where: RequestFilter) -> pd.DataFrame:
        """Per district of a layer version: volume, median hours to close, SLA share.

        Returns ``district_id, requests, reporters, median_hours_to_close, sla_due,
        sla_met`` (SLA columns count parents that have an expected time and are
        closed or overdue now). The median comes from an hourly histogram in SQL.
        """
        sr, rd = t.service_requests.c, t.request_districts.c
        join = t.service_requests.join(t.request_districts, rd.request_id == sr.id)
        on_layer = rd.layer_version_id == layer_version_id
        now = now_utc()
        due = or_(sr.closed_datetime.isnot(None), sr.expected_datetime < now)
        met = sr.closed_datetime <= sr.expected_datetime
        hours = type_coerce(func.floor(
            (self._epoch_s(sr.closed_datetime) - self._epoch_s(sr.requested_datetime))
            / 3600.0), Float).label("hours")
        stmt = self._filtered_parents(
            select(rd.district_id, hours, func.count(), func.sum(sr.reporter_count),
                   func.sum(case((sr.expected_datetime.isnot(None) & due, 1), else_=0)),
                   func.sum(case((sr.expected_datetime.isnot(None) & met, 1), else_=0)))
            .select_from(join).where(on_layer).where(rd.district_id.isnot(None)), where,
        ).group_by(rd.district_id, hours)
        with self.engine.connect() as conn:
            hist = _frame(conn.execute(stmt).all(), ["district_id", "hours", "requests",
                                                     "reporters", "sla_due", "sla_met"])
        counts = hist.groupby("district_id", as_index=False)[
            ["requests", "reporters", "sla_due", "sla_met"]].sum()
        medians: dict[str, float] = {}
        for district, part in hist[hist["hours"].notna()].groupby("district_id"):
            part = part.sort_values("hours")
            cum = part["requests"].to_numpy(float).cumsum()
            at = int(np.searchsorted(cum, cum[-1] / 2.0))
            medians[str(district)] = float(part["hours"].to_numpy(float)[at])
        counts["median_hours_to_close"] = [medians.get(str(d)) for d in counts["district_id"]]
        return counts.astype({"requests": np.int64, "reporters": np.int64,
                              "sla_due": np.int64, "sla_met": np.int64})

    def last_change(self) -> int:
        """Id of the newest audit entry (0 when none).

        Every change to requests is audited, so cached map results stay exact while
        this does not move.
        """
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(t.audit_log.c.id))).scalar() or 0)

    def latest_requested(self) -> datetime | None:
        """When the newest request was made (None in an empty store)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(t.service_requests.c.requested_datetime)
                .order_by(t.service_requests.c.requested_datetime.desc()).limit(1)).scalar()
        return found  # type: ignore[no-any-return]

    def hotspot_rows(
        self, *, since: datetime | None = None, ids: Sequence[int] = ()
    ) -> pd.DataFrame:
        """What in-memory hotspot maps need of each located request, parents and children.

        ``id, cell`` (H3, resolution 15; masked for sensitive services) ``, reporters,
        service_code, status, requested``
        (seconds since 1970) ``, parent`` (not a duplicate) ``, updated``. With ``since``
        or ``ids``, only requests updated since then or with those ids.
        """
        self.fill_h3_cells()
        sr = t.service_requests.c
        stmt = select(sr.id, self._public_cell(), sr.reporter_count, sr.service_code, sr.status,
                      self._epoch_s(sr.requested_datetime), sr.duplicate_of.is_(None),
                      self._epoch_s(sr.updated_datetime)).where(sr.h3_cell != 0)
        columns = ["id", "cell", "reporters", "service_code", "status", "requested", "parent",
                   "updated"]
        if since is None and not ids:
            frame = self._read_all(stmt, columns)
        else:  # two index lookups (an OR of both would scan the table)
            with self.engine.connect() as conn:
                rows = list(conn.execute(stmt.where(sr.updated_datetime >= (since or now_utc())))
                            .all())
                if ids:
                    rows += conn.execute(stmt.where(sr.id.in_([int(i) for i in ids]))).all()
            frame = _frame(rows, columns).drop_duplicates("id")
        return frame.astype({"id": np.int64, "cell": np.int64, "reporters": np.int64,
                             "requested": float, "parent": bool, "updated": float})

    def _read_all(self, stmt: Any, columns: list[str]) -> pd.DataFrame:
        """Run a large read (a backend may stream it faster than row by row)."""
        with self.engine.connect() as conn:
            return _frame(conn.execute(stmt).all(), columns)

    def audit_since(self, after_id: int, limit: int = 10_000) -> list[dict[str, Any]]:
        """Audit entries newer than ``after_id``, oldest first (at most ``limit``)."""
        a = t.audit_log.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(a.id, a.action, a.entity, a.entity_id, a.detail)
                .where(a.id > after_id).order_by(a.id).limit(limit)).mappings().all()
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]

    def sensitive_service_codes(self) -> set[str]:
        """Codes of services whose locations maps show only as an H3 cell centre."""
        with self.engine.connect() as conn:
            return set(conn.execute(
                select(t.services.c.code).where(t.services.c.sensitive)).scalars())

    def set_service_sensitive(self, code: str, sensitive: bool, *, actor: str = "system") -> None:
        """Mark a service as sensitive (or not); audited."""
        self.service(code)
        with self.engine.begin() as conn:
            conn.execute(update(t.services).where(t.services.c.code == code)
                         .values(sensitive=sensitive))
            self._audit(conn, "service_sensitive", "service", code, {"to": sensitive}, actor)
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


def _keep_address_ids(conn: Connection, source: str, rows: list[dict[str, Any]]
                      ) -> list[dict[str, Any]]:
    """Give reloaded address points the ids they had; return the rows that got one.

    Clients keep ``address_id`` values (Open311 POST takes them), so an address that
    is still in its source keeps its id when the source is loaded again; the k-th row
    of an address takes the k-th old id of it. New addresses get new ids.
    """
    ap = t.address_points.c
    old: dict[str, list[int]] = {}
    for rid, address in conn.execute(select(ap.id, ap.address).where(ap.source == source)
                                     .order_by(ap.id)):
        old.setdefault(address, []).append(rid)
    kept = []
    for row in rows:
        ids = old.get(row["address"])
        if ids:
            row["id"] = ids.pop(0)
            kept.append(row)
    return kept


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
        "sla_hours": s.sla_hours, "sla_clock": s.sla_clock or None,
        "sla_calendar": s.sla_calendar or None,
        "agency": s.agency, "attributes": json.dumps([a.as_dict() for a in s.attributes]),
    }


def _service_from_row(r: Any) -> Service:
    rule = None
    if r["dedup_radius_m"] is not None:
        rule = DuplicateRule(radius_m=r["dedup_radius_m"], window_days=r["dedup_window_days"],
                             scope=r["dedup_scope"], only_open=bool(r["dedup_only_open"]))
    return Service(r["code"], r["name"], r["group"], r["description"], r["keywords"],
                   r["sla_days"], rule, sla_hours=r["sla_hours"],
                   sla_clock=r["sla_clock"] or "business", sla_calendar=r["sla_calendar"] or "",
                   agency=r["agency"],
                   attributes=tuple(Attribute.from_dict(a) for a in json.loads(r["attributes"])))


def _reporter_values(reporter: Reporter) -> dict[str, str]:
    return {
        "first_name": reporter.first_name, "last_name": reporter.last_name,
        "email": reporter.email, "phone": reporter.phone, "device_id": reporter.device_id,
        "account_id": reporter.account_id,
    }


def _crew_from_row(r: Any) -> Crew:
    return Crew(id=r["id"], name=r["name"], service_groups=tuple(json.loads(r["service_groups"])),
                layer=r["layer"], districts=tuple(json.loads(r["districts"])),
                capacity_per_day=r["capacity_per_day"], calendar=r["calendar"],
                depot_lon=r["depot_lon"], depot_lat=r["depot_lat"], active=bool(r["active"]))


def _as_multipolygon(geom: Any) -> Any:
    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    return geom
