"""SpatiaLite: the embedded default store, a single file with no server."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select, text
from sqlalchemy.sql.elements import ColumnElement

from geo311.store import tables as t
from geo311.store.sql import SQLStore

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
#: How long (ms) a reader waits for the write lock to save records it built.
SAVE_WAIT_MS = 200


class SpatiaLiteStore(SQLStore):
    """Requests in a SQLite file with the SpatiaLite extension."""

    dialect = "spatialite"
    _version_sql = "SELECT spatialite_version()"

    def _record_triggers(self) -> list[str]:
        # SQLite triggers are per row; each is dropped and made again so that a newer
        # column list replaces an older one.
        bump = (f"UPDATE schema_info SET value = CAST(value AS INTEGER) + 1 "
                f"WHERE key = '{t.RECORDS_GENERATION}';")
        made = {
            "geo311_request_revised": (
                f"AFTER UPDATE OF {', '.join(t.RECORD_COLUMNS)} ON service_requests BEGIN "
                "UPDATE service_requests SET revision = revision + 1 WHERE id = NEW.id; END"),
            "geo311_districts_added": (
                "AFTER INSERT ON request_districts WHEN EXISTS (SELECT 1 FROM public_records "
                f"WHERE request_id = NEW.request_id) BEGIN {bump} END"),
        }
        for table in ("services", "layers", "layer_versions", "request_districts"):
            for event in ("UPDATE", "DELETE"):
                made[f"geo311_records_stale_{table}_{event.lower()}"] = (
                    f"AFTER {event} ON {table} BEGIN {bump} END")
        statements = []
        for name, body in made.items():
            statements += [f"DROP TRIGGER IF EXISTS {name}", f"CREATE TRIGGER {name} {body}"]
        return statements

    def _spatial_index_missing(self, conn: Connection, table: str, column: str) -> bool:
        enabled = conn.execute(text(
            "SELECT spatial_index_enabled FROM geometry_columns "
            "WHERE f_table_name = lower(:table) AND f_geometry_column = lower(:column)"
        ), {"table": table, "column": column}).scalar()
        rtree = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :name"),
                             {"name": f"idx_{table}_{column}"}).first()
        return enabled != 1 or rtree is None

    def _create_spatial_index(self, conn: Connection, table: str, column: str) -> None:
        # From whatever is left: metadata without its R*Tree, or an R*Tree not enabled.
        conn.execute(text("SELECT DisableSpatialIndex(:table, :column)"),
                     {"table": table, "column": column})
        conn.execute(text(f'DROP TABLE IF EXISTS "idx_{table}_{column}"'))
        conn.execute(text("SELECT CreateSpatialIndex(:table, :column)"),
                     {"table": table, "column": column})

    @contextmanager
    def _cache_transaction(self, conn: Connection) -> Iterator[None]:
        # A reader saving what it built does not queue behind a long write (an import):
        # it waits SAVE_WAIT_MS for the lock, then gives up; the connection's own
        # patience is given back afterwards.
        waited = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {SAVE_WAIT_MS}")
        conn.commit()
        try:
            with conn.begin():
                yield
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited or 0)}")
            conn.commit()

    def _lock_for_duplicates(self, conn: Connection, codes: Sequence[str]) -> None:
        # SQLite has one writer at a time: take the write lock before reading candidates.
        conn.execute(text("UPDATE schema_info SET value = value WHERE key = 'version'"))

    def _lock_key(self, conn: Connection, key: str) -> None:
        # One writer at a time: the write lock serialises every key at once.
        conn.execute(text("UPDATE schema_info SET value = value WHERE key = 'version'"))

    def _within_box(self, box: tuple[float, float, float, float]) -> ColumnElement[bool]:
        minx, miny, maxx, maxy = box
        # SpatiaLite does not use its R*Tree on its own: ask the index table directly.
        index = text(
            "SELECT pkid FROM idx_service_requests_geom "
            "WHERE xmin <= :maxx AND xmax >= :minx AND ymin <= :maxy AND ymax >= :miny"
        ).bindparams(minx=minx, miny=miny, maxx=maxx, maxy=maxy)
        return t.service_requests.c.id.in_(index.columns(pkid=t.service_requests.c.id.type))

    def _bulk_insert_requests(self, conn: Connection, frame: pd.DataFrame) -> np.ndarray:
        # SQLite serialises writers, so the next ids are ours for this transaction.
        first = (conn.execute(select(t.service_requests.c.id).order_by(
            t.service_requests.c.id.desc()).limit(1)).scalar() or 0) + 1
        n = len(frame)
        ids = np.arange(first, first + n, dtype=np.int64)
        lon, lat = frame["lon"].to_numpy(float), frame["lat"].to_numpy(float)
        located = ~(np.isnan(lon) | np.isnan(lat))
        text_columns = ("source", "service_code", "status", "status_notes", "description",
                        "address", "zipcode", "geocode_match")
        columns: list[list[Any]] = [
            ids.tolist(),
            _nullable(frame["external_id"]),
            _nullable(frame["external_parent_id"]),
            *[frame[c].astype(str).tolist() for c in text_columns],
            frame["outside_service_area"].astype(bool).astype(int).tolist(),
            *[_sqlite_times(frame[c]) for c in (
                "requested_datetime", "updated_datetime", "closed_datetime")],
            located.astype(int).tolist(),
            np.where(located, lon, 0.0).tolist(),
            np.where(located, lat, 0.0).tolist(),
        ]
        sql = (
            "INSERT INTO service_requests (id, external_id, external_parent_id, "
            + ", ".join(text_columns) + ", outside_service_area, requested_datetime, "
            "updated_datetime, closed_datetime, media_url, reporter_count, geom) VALUES ("
            + ", ".join("?" * 15) + ", '', 1, CASE WHEN ? THEN MakePoint(?, ?, 4326) END)"
        )
        raw = conn.connection.dbapi_connection
        cur = raw.cursor()  # type: ignore[union-attr]
        cur.executemany(sql, list(zip(*columns, strict=True)))
        cur.close()
        return ids

    def _bulk_insert_districts(self, conn: Connection, rows: pd.DataFrame) -> None:
        raw = conn.connection.dbapi_connection
        cur = raw.cursor()  # type: ignore[union-attr]
        cur.executemany(
            "INSERT INTO request_districts (request_id, layer_version_id, district_id, "
            "boundary_case) VALUES (?, ?, ?, ?)",
            list(zip(rows["request_id"].astype(int).tolist(),
                rows["layer_version_id"].astype(int).tolist(),
                _nullable(rows["district_id"]),
                rows["boundary_case"].astype(bool).astype(int).tolist(), strict=True)),
        )
        cur.close()


def _nullable(values: pd.Series) -> list[object]:
    return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v)
            for v in values.tolist()]


def _sqlite_times(values: pd.Series) -> list[str | None]:
    times = pd.to_datetime(values, utc=True)
    text_values = times.dt.strftime(_SQLITE_TIME)
    return [None if pd.isna(v) else v for v in text_values.tolist()]
