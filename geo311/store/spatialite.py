"""SpatiaLite: the embedded default backend, a single file with no server."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import ColumnElement

from geo311.errors import ConfigError
from geo311.store import tables as t
from geo311.store.database import Dialect

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
#: How long (ms) a reader waits for the write lock to save records it built.
SAVE_WAIT_MS = 200


class SpatiaLiteDialect(Dialect):
    """A SQLite file with the SpatiaLite extension: one writer, an R*Tree index table."""

    name = "spatialite"
    url_backend = "sqlite"
    version_sql = "SELECT spatialite_version()"

    def create_engine(self, url: str) -> Engine:
        """An engine whose connections load SpatiaLite through an extension-capable sqlite3."""
        try:
            import pysqlite3.dbapi2 as sqlite_module  # type: ignore[import-not-found]
        except ImportError:  # a Python whose own sqlite3 can load extensions is fine too
            import sqlite3 as sqlite_module
        if not hasattr(sqlite_module.connect(":memory:"), "enable_load_extension"):
            raise ConfigError(
                "this Python's sqlite3 cannot load extensions, so SpatiaLite cannot run: "
                "install the 'pysqlite3-binary' package"
            )
        # GDAL (bundled in pyogrio's wheel) must be loaded before mod_spatialite brings in
        # the system's PROJ, GEOS and SQLite: the other order crashes the process at exit.
        import pyogrio  # noqa: F401

        os.environ.setdefault("SPATIALITE_LIBRARY_PATH", "mod_spatialite")
        path = make_url(url).database
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        sep = "&" if "?" in url else "?"
        engine = create_engine(
            f"{url}{sep}geoalchemy2_connect_sqlite_init_mode=WGS84",
            module=sqlite_module, plugins=["geoalchemy2"],
            connect_args={"timeout": 30, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

        return engine

    def finish_schema(self, conn: Connection) -> list[str]:
        """The knowledge base's FTS5 index, over ``kb_index`` (external content)."""
        if conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'kb_fts'")).first():
            return []
        conn.execute(text(
            "CREATE VIRTUAL TABLE kb_fts USING fts5(title, keywords, department, body, "
            "content='kb_index', content_rowid='id', tokenize='porter unicode61')"))
        conn.execute(text("INSERT INTO kb_fts(kb_fts) VALUES ('rebuild')"))
        return ["full-text index kb_fts"]

    def rebuild_kb_index(self, conn: Connection) -> None:
        """FTS5 rebuilds an external-content index from its table in one statement."""
        conn.execute(text("INSERT INTO kb_fts(kb_fts) VALUES ('rebuild')"))

    def kb_match(self, conn: Connection, search_words: list[str], public_only: bool,
                 limit: int) -> list[tuple[int, float]]:
        """FTS5 ``MATCH`` of any word, ranked by bm25 (title 10, keywords 5, group 2, body 1)."""
        query = " OR ".join(f'"{w}"' for w in search_words)
        rows = conn.execute(text(
            "SELECT k.id, -bm25(kb_fts, 10.0, 5.0, 2.0, 1.0) AS r FROM kb_fts "
            "JOIN kb_index k ON k.id = kb_fts.rowid WHERE kb_fts MATCH :q"
            + (" AND k.public" if public_only else "") + " ORDER BY r DESC LIMIT :n"),
            {"q": query, "n": limit}).all()
        return [(int(i), float(r)) for i, r in rows]

    def record_triggers(self) -> list[str]:
        """SQLite triggers are per row.

        Each is dropped and made again so that a newer column list replaces an older one.
        """
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
            for change in ("UPDATE", "DELETE"):
                made[f"geo311_records_stale_{table}_{change.lower()}"] = (
                    f"AFTER {change} ON {table} BEGIN {bump} END")
        statements = []
        for name, body in made.items():
            statements += [f"DROP TRIGGER IF EXISTS {name}", f"CREATE TRIGGER {name} {body}"]
        return statements

    def spatial_index_missing(self, conn: Connection, table: str, column: str) -> bool:
        """The SpatiaLite way: see ``Dialect.spatial_index_missing``."""
        enabled = conn.execute(text(
            "SELECT spatial_index_enabled FROM geometry_columns "
            "WHERE f_table_name = lower(:table) AND f_geometry_column = lower(:column)"
        ), {"table": table, "column": column}).scalar()
        rtree = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :name"),
                             {"name": f"idx_{table}_{column}"}).first()
        return enabled != 1 or rtree is None

    def create_spatial_index(self, conn: Connection, table: str, column: str) -> None:
        """From whatever is left: metadata without its R*Tree, or an R*Tree not enabled."""
        conn.execute(text("SELECT DisableSpatialIndex(:table, :column)"),
                     {"table": table, "column": column})
        conn.execute(text(f'DROP TABLE IF EXISTS "idx_{table}_{column}"'))
        conn.execute(text("SELECT CreateSpatialIndex(:table, :column)"),
                     {"table": table, "column": column})

    @contextmanager
    def cache_transaction(self, conn: Connection) -> Iterator[None]:
        """A reader saving what it built does not queue behind a long write (an import).

        it waits SAVE_WAIT_MS for the lock, then gives up; the connection's own patience is
        given back afterwards.
        """
        waited = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {SAVE_WAIT_MS}")
        conn.commit()
        try:
            with conn.begin():
                yield
        finally:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited or 0)}")
            conn.commit()

    def lock_for_duplicates(self, conn: Connection, codes: Sequence[str]) -> None:
        """SQLite has one writer at a time: take the write lock before reading candidates."""
        conn.execute(text("UPDATE schema_info SET value = value WHERE key = 'version'"))

    def lock_key(self, conn: Connection, key: str) -> None:
        """One writer at a time: the write lock serialises every key at once."""
        conn.execute(text("UPDATE schema_info SET value = value WHERE key = 'version'"))

    def within_box(self, box: tuple[float, float, float, float]) -> ColumnElement[bool]:
        """The SpatiaLite way: see ``Dialect.within_box``."""
        minx, miny, maxx, maxy = box
        # SpatiaLite does not use its R*Tree on its own: ask the index table directly.
        index = text(
            "SELECT pkid FROM idx_service_requests_geom "
            "WHERE xmin <= :maxx AND xmax >= :minx AND ymin <= :maxy AND ymax >= :miny"
        ).bindparams(minx=minx, miny=miny, maxx=maxx, maxy=maxy)
        return t.service_requests.c.id.in_(index.columns(pkid=t.service_requests.c.id.type))

    def bulk_insert_requests(self, conn: Connection, frame: pd.DataFrame) -> np.ndarray:
        """SQLite serialises writers, so the next ids are ours for this transaction."""
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
            _nullable(frame["import_flags"]) if "import_flags" in frame else [None] * n,
            *[frame[c].astype(str).tolist() for c in text_columns],
            frame["outside_service_area"].astype(bool).astype(int).tolist(),
            *[_sqlite_times(frame[c]) for c in (
                "requested_datetime", "updated_datetime", "closed_datetime")],
            located.astype(int).tolist(),
            np.where(located, lon, 0.0).tolist(),
            np.where(located, lat, 0.0).tolist(),
        ]
        sql = (
            "INSERT INTO service_requests (id, external_id, external_parent_id, import_flags, "
            + ", ".join(text_columns) + ", outside_service_area, requested_datetime, "
            "updated_datetime, closed_datetime, media_url, reporter_count, geom) VALUES ("
            + ", ".join("?" * 16) + ", '', 1, CASE WHEN ? THEN MakePoint(?, ?, 4326) END)"
        )
        raw = conn.connection.dbapi_connection
        cur = raw.cursor()  # type: ignore[union-attr]
        cur.executemany(sql, list(zip(*columns, strict=True)))
        cur.close()
        return ids

    def bulk_insert_districts(self, conn: Connection, rows: pd.DataFrame) -> None:
        """The SpatiaLite way: see ``Dialect.bulk_insert_districts``."""
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
