"""PostGIS: the production backend. Bulk rows go in with COPY."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg.errors import UndefinedFunction
from sqlalchemy import (
    ARRAY,
    Connection,
    Engine,
    Integer,
    String,
    any_,
    bindparam,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.sql.elements import ColumnElement

from geo311.model import Candidate, DuplicateSearch
from geo311.store import tables as t
from geo311.store.database import Dialect
from geo311.store.rows import candidate_span, degree_box

LOGGER = logging.getLogger(__name__)
#: Free-text columns the work queue searches (``q``), each with a trigram index.
QUEUE_TEXT_COLUMNS = ("description", "address")

_REQUEST_COPY_COLUMNS = (
    "id", "external_id", "external_parent_id", "source", "service_code", "status",
    "status_notes", "description", "address", "zipcode", "media_url", "geocode_match",
    "outside_service_area", "import_flags", "requested_datetime", "updated_datetime",
    "closed_datetime", "reporter_count", "geom",
)


#: Live duplicate check in one round trip. The advisory locks are the ones
#: ``_lock_for_duplicates`` takes (same keys, same order); being VOLATILE, the function
#: reads the candidates with a snapshot taken after the locks, so it sees the request
#: the previous lock holder committed.
_DUPLICATE_CANDIDATES_SQL = """
CREATE OR REPLACE FUNCTION geo311_duplicate_candidates(
    codes text[], xmin float8, ymin float8, xmax float8, ymax float8,
    since timestamptz, until timestamptz, open_after timestamptz)
RETURNS TABLE (c_id bigint, c_lon float8, c_lat float8, c_service_code text, c_group text,
               c_requested timestamptz, c_closed timestamptz, c_duplicate_of bigint)
LANGUAGE plpgsql VOLATILE
-- Plan for the actual box and times each call: a generic plan may scan by time alone.
SET plan_cache_mode = force_custom_plan
AS $fn$
DECLARE
    code text;
BEGIN
    FOREACH code IN ARRAY codes LOOP
        PERFORM pg_advisory_xact_lock(hashtext('geo311.dedup.' || code));
    END LOOP;
    RETURN QUERY
        SELECT sr.id::bigint, ST_X(sr.geom), ST_Y(sr.geom), sr.service_code::text,
               sv."group"::text, sr.requested_datetime, sr.closed_datetime,
               sr.duplicate_of::bigint
        FROM service_requests sr JOIN services sv ON sv.code = sr.service_code
        WHERE sr.geom && ST_MakeEnvelope(xmin, ymin, xmax, ymax, 4326)
          AND sr.service_code = ANY (codes)
          AND sr.requested_datetime >= since
          AND (until IS NULL OR sr.requested_datetime <= until)
          AND (open_after IS NULL OR sr.closed_datetime IS NULL
               OR sr.closed_datetime > open_after);
END
$fn$
"""
#: One bulk load at a time; held (per session) by a running load, gone with a killed one.
_TAKE_BULK_LOCK = text("SELECT pg_advisory_lock(hashtext('geo311.bulk_load'))")
_RELEASE_BULK_LOCK = text("SELECT pg_advisory_unlock(hashtext('geo311.bulk_load'))")
_TRY_BULK_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('geo311.bulk_load'))")

_CALL_DUPLICATE_CANDIDATES = text(
    "SELECT * FROM geo311_duplicate_candidates(CAST(:codes AS text[]), :xmin, :ymin, :xmax, "
    ":ymax, :since, :until, :open_after)")


def _record_trigger_sql() -> list[str]:
    """Revision and generation triggers (see ``Dialect.record_triggers``)."""
    old = ", ".join(f"OLD.{c}" for c in t.RECORD_COLUMNS)
    new = ", ".join(f"NEW.{c}" for c in t.RECORD_COLUMNS)
    bump = (f"UPDATE schema_info SET value = (value::bigint + 1)::text "
            f"WHERE key = '{t.RECORDS_GENERATION}'")
    statements = [
        """CREATE OR REPLACE FUNCTION geo311_request_revised() RETURNS trigger
        LANGUAGE plpgsql AS $fn$ BEGIN NEW.revision := OLD.revision + 1; RETURN NEW; END $fn$""",
        f"""CREATE OR REPLACE TRIGGER geo311_request_revised BEFORE UPDATE ON service_requests
        FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new}))
        EXECUTE FUNCTION geo311_request_revised()""",
        f"""CREATE OR REPLACE FUNCTION geo311_records_stale() RETURNS trigger
        LANGUAGE plpgsql AS $fn$ BEGIN {bump}; RETURN NULL; END $fn$""",
        # Districts written for a new request concern no stored record; only those
        # added to a recorded request (a layer activated) make records stale.
        f"""CREATE OR REPLACE FUNCTION geo311_districts_added() RETURNS trigger
        LANGUAGE plpgsql AS $fn$ BEGIN
            IF EXISTS (SELECT 1 FROM added JOIN public_records p
                       ON p.request_id = added.request_id) THEN {bump}; END IF;
            RETURN NULL; END $fn$""",
        """CREATE OR REPLACE TRIGGER geo311_districts_added AFTER INSERT ON request_districts
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT
        EXECUTE FUNCTION geo311_districts_added()""",
    ]
    for table in ("services", "layers", "layer_versions", "request_districts"):
        statements.append(
            f"CREATE OR REPLACE TRIGGER geo311_records_stale AFTER UPDATE OR DELETE OR "
            f"TRUNCATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION geo311_records_stale()")
    return statements


class PostGISDialect(Dialect):
    """PostgreSQL with PostGIS: advisory locks, COPY, array parameters, GiST indexes."""

    name = "postgis"
    url_backend = "postgresql"
    version_sql = "SELECT PostGIS_Lib_Version()"
    cascade = " CASCADE"
    bulk_min_rows = 100_000
    lookup_chunk = 200_000

    def create_engine(self, url: str) -> Engine:
        """An engine over psycopg 3 (a bare ``postgresql://`` URL names it too)."""
        parsed = make_url(url)
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, plugins=["geoalchemy2"], pool_pre_ping=True)

    def prepare_schema(self, conn: Connection) -> None:
        """The PostGIS way: see ``Dialect.prepare_schema``."""
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        conn.execute(text(_DUPLICATE_CANDIDATES_SQL))

    def finish_schema(self, conn: Connection) -> list[str]:
        """Box and time in one GiST index (btree_gist).

        a 90-day bbox (Open311's default) or a duplicate check's window reads only the rows it
        returns, where ANDing the spatial and time indexes first built a bitmap of every request
        of the window. Not while a bulk load has it suspended: the load builds it again at its
        end.
        """
        added = [*self._finish_kb_index(conn), *self._finish_queue_text_indexes(conn)]
        exists = conn.execute(text(
            "SELECT 1 FROM pg_indexes WHERE indexname = 'ix_requests_geom_requested' UNION ALL "
            "SELECT 1 FROM suspended_structure WHERE name = 'ix_requests_geom_requested'"
        )).first()
        if exists:
            return added
        LOGGER.info("creating index ix_requests_geom_requested (box and time)")
        conn.execute(text("CREATE INDEX ix_requests_geom_requested ON service_requests "
                          "USING gist (geom, requested_datetime)"))
        return [*added, "index ix_requests_geom_requested"]

    def _finish_queue_text_indexes(self, conn: Connection) -> list[str]:
        """Trigram indexes: the work queue's ``q`` (ILIKE '%words%') reads a few rows, not 1M."""
        added = []
        for column in QUEUE_TEXT_COLUMNS:
            name = f"ix_requests_{column}_trgm"
            if conn.execute(text(
                "SELECT 1 FROM pg_indexes WHERE indexname = :n UNION ALL "
                "SELECT 1 FROM suspended_structure WHERE name = :n"), {"n": name}).first():
                continue
            LOGGER.info("creating index %s (work queue text search)", name)
            conn.execute(text(f"CREATE INDEX {name} ON service_requests "
                              f"USING gin ({column} gin_trgm_ops)"))
            added.append(f"index {name}")
        return added

    def _finish_kb_index(self, conn: Connection) -> list[str]:
        """The knowledge base's weighted tsvector (title A … body D) and its GIN index."""
        have = conn.execute(text(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'kb_index' "
            "AND column_name = 'search' AND table_schema = current_schema()")).first()
        if have:
            return []
        conn.execute(text(
            "ALTER TABLE kb_index ADD COLUMN search tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', title), 'A') || "
            "setweight(to_tsvector('english', keywords), 'B') || "
            "setweight(to_tsvector('english', department), 'C') || "
            "setweight(to_tsvector('english', body), 'D')) STORED"))
        conn.execute(text("CREATE INDEX ix_kb_index_search ON kb_index USING gin (search)"))
        return ["full-text index ix_kb_index_search"]

    def kb_match(self, conn: Connection, search_words: list[str], public_only: bool,
                 limit: int) -> list[tuple[int, float]]:
        """``@@`` any word, ranked by ts_rank with weights D 0.1, C 0.2, B 0.4, A 1."""
        rows = conn.execute(text(
            "SELECT k.id, ts_rank('{0.1, 0.2, 0.4, 1.0}', k.search, q) AS r "
            "FROM kb_index k, to_tsquery('english', :q) q WHERE k.search @@ q"
            + (" AND k.public" if public_only else "") + " ORDER BY r DESC LIMIT :n"),
            {"q": " | ".join(search_words), "n": limit}).all()
        return [(int(i), float(r)) for i, r in rows]

    def record_triggers(self) -> list[str]:
        """The PostGIS way: see ``Dialect.record_triggers``."""
        return _record_trigger_sql()

    @contextmanager
    def cache_transaction(self, conn: Connection) -> Iterator[None]:
        """Commit without waiting for the WAL flush: a crash loses only the last few."""
        with conn.begin():
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            yield

    def local_time_text(self, column: Any) -> Any:
        """As open311.format_datetime writes it: whole seconds, offset as +HH:MM."""
        return func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM')

    def use_time_zone(self, conn: Connection, zone: str) -> None:
        """The PostGIS way: see ``Dialect.use_time_zone``."""
        conn.execute(text("SELECT set_config('TimeZone', :zone, true)"), {"zone": zone})

    def duplicate_candidates(
        self, conn: Connection, lon: float, lat: float, search: DuplicateSearch,
        requested: datetime | None,
    ) -> list[Candidate]:
        """One round trip: the function takes the locks, then reads with a fresh snapshot."""
        since, until, open_after = candidate_span(search, requested)
        xmin, ymin, xmax, ymax = degree_box(lon, lat, search.radius_m)
        try:
            rows = conn.execute(_CALL_DUPLICATE_CANDIDATES, {
                "codes": sorted(search.codes), "xmin": xmin, "ymin": ymin, "xmax": xmax,
                "ymax": ymax, "since": since, "until": until, "open_after": open_after,
            }).all()
        except ProgrammingError as exc:
            if isinstance(exc.orig, UndefinedFunction):
                raise RuntimeError("the database lacks geo311_duplicate_candidates (schema "
                                   "3): run `geo311 init-db` to upgrade it") from exc
            raise
        return [Candidate(*row) for row in rows]

    def truncate_all(self, conn: Connection) -> None:
        """Delete every row and restart ids (tests and demos); the schema stays."""
        names = ", ".join(tb.name for tb in t.metadata.sorted_tables if tb.name != "schema_info")
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    def upsert(self, table: Any) -> Any:
        """The PostGIS way: see ``Dialect.upsert``."""
        return pg_insert(table)

    def epoch_s(self, column: Any) -> Any:
        """The PostGIS way: see ``Dialect.epoch_s``."""
        return func.extract("epoch", column)

    def before_scan(self, conn: Connection) -> None:
        """A one-pass scan: compiling it to machine code costs more than it saves."""
        conn.execute(text("SET LOCAL jit = off"))

    def one_of(self, column: Any, values: list[Any]) -> ColumnElement[bool]:
        """One array parameter instead of thousands of bound values."""
        kind = Integer if isinstance(column.type, Integer) else String
        return column == any_(bindparam("wanted", values, type_=ARRAY(kind)))  # type: ignore[no-any-return]

    def lock_for_duplicates(self, conn: Connection, codes: Sequence[str]) -> None:
        """One advisory lock per service, in a fixed order so two scopes never deadlock."""
        for code in sorted(codes):
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                         {"key": f"geo311.dedup.{code}"})

    def lock_key(self, conn: Connection, key: str) -> None:
        """The PostGIS way: see ``Dialect.lock_key``."""
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})

    def claim_rows(self, stmt: Any) -> Any:
        """``FOR UPDATE SKIP LOCKED``: two workers claiming at once take different rows."""
        return stmt.with_for_update(skip_locked=True)

    def within_box(self, box: tuple[float, float, float, float]) -> ColumnElement[bool]:
        """The PostGIS way: see ``Dialect.within_box``."""
        return t.service_requests.c.geom.op("&&")(func.ST_MakeEnvelope(*box, 4326))

    def bulk_insert_requests(self, conn: Connection, frame: pd.DataFrame) -> np.ndarray:
        """The PostGIS way: see ``Dialect.bulk_insert_requests``."""
        n = len(frame)
        # Reserve n ids at once. The lock (which live inserts wait for) keeps anyone else
        # from drawing from the sequence until this commits. Under it no insert is in
        # flight, so the ids start after the largest stored one rather than at the
        # sequence: numbers a killed or rolled-back load drew are drawn again, and a load
        # re-run after a crash numbers its rows as a clean one does.
        conn.execute(text("LOCK TABLE service_requests IN SHARE ROW EXCLUSIVE MODE"))
        first = int(conn.execute(text(
            "SELECT coalesce(max(id), 0) + 1 FROM service_requests")).scalar_one())
        conn.execute(text("SELECT setval(pg_get_serial_sequence('service_requests', 'id'), :last)"),
                     {"last": first + n - 1})
        ids = np.arange(first, first + n, dtype=np.int64)
        columns: dict[str, Any] = {"id": ids}
        for col in _REQUEST_COPY_COLUMNS[1:-2]:
            if col == "media_url":
                columns[col] = pa.array([""] * n)
            elif col not in frame:  # optional columns (import_flags) a caller may leave out
                columns[col] = pa.array([None] * n, pa.string())
            elif col.endswith("_datetime"):
                columns[col] = pa.array(pd.to_datetime(frame[col], utc=True))
            else:
                columns[col] = pa.array(frame[col], from_pandas=True)
        columns["reporter_count"] = np.ones(n, dtype=np.int32)
        columns["geom"] = point_ewkb_hex(frame["lon"].to_numpy(float),
                                         frame["lat"].to_numpy(float))
        _copy_table(conn, "service_requests", pa.table(columns))
        return ids

    def bulk_insert_districts(self, conn: Connection, rows: pd.DataFrame) -> None:
        """The PostGIS way: see ``Dialect.bulk_insert_districts``."""
        _copy_table(conn, "request_districts", pa.table({
            "request_id": rows["request_id"].to_numpy(np.int64),
            "layer_version_id": rows["layer_version_id"].to_numpy(np.int64),
            "district_id": pa.array(rows["district_id"].to_numpy(dtype=object), type=pa.string(),
                                    from_pandas=True),
            "boundary_case": rows["boundary_case"].to_numpy(bool),
        }))

    @contextmanager
    def bulk_load(self, engine: Engine, expected_rows: int,
                  min_rows: int | None = None) -> Iterator[None]:
        """Suspend index and foreign-key upkeep on ``service_requests`` for a large load.

        Building an index once is several times faster than growing it row by row, and
        validating a foreign key once beats a trigger per row. So when the load is at
        least as large as the table (and ``bulk_min_rows``), secondary and spatial
        indexes and the foreign keys are dropped here and restored on the way out,
        whatever happened; the primary key and the unique ``external_id`` stay.

        A process killed in between cannot restore anything, so each dropped definition
        is written to ``suspended_structure`` in the transaction that drops it. The
        next bulk load (or ``init-db``) re-creates what a killed one left there. A
        session advisory lock, held for the whole load, tells a killed load (its
        connection, and so its lock, is gone) from a running one, and makes a second
        bulk load wait for the first.
        """
        threshold = self.bulk_min_rows if min_rows is None else min_rows
        guard = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            guard.execute(_TAKE_BULK_LOCK)
            with engine.begin() as conn:
                self.restore_suspended(conn, locked=True)
                existing = int(conn.execute(text(
                    "SELECT greatest(reltuples, 0)::bigint FROM pg_class "
                    "WHERE relname = 'service_requests'"
                )).scalar() or 0)
            if expected_rows < max(threshold, existing):
                yield
                return
            suspended = self.suspend_structure(engine)
            LOGGER.info("bulk load of %s rows: %s suspended until it ends",
                        expected_rows, ", ".join(suspended))
            try:
                yield
            finally:
                with engine.begin() as conn:
                    self.restore_suspended(conn, locked=True)
                    conn.execute(text("ANALYZE service_requests"))
        finally:
            guard.execute(_RELEASE_BULK_LOCK)
            guard.close()

    def suspend_structure(self, engine: Engine) -> list[str]:
        """Drop the secondary indexes and foreign keys, recording each; return their names."""
        now = datetime.now(UTC)
        with engine.begin() as conn:
            indexes = conn.execute(text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'service_requests'"
                " AND schemaname = current_schema()"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            )).all()
            foreign_keys = conn.execute(text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'service_requests'::regclass AND contype = 'f'"
            )).all()
            rows = [{"table_name": "service_requests", "kind": kind, "name": name,
                     "definition": definition, "suspended_at": now}
                    for kind, found in (("index", indexes), ("foreign_key", foreign_keys))
                    for name, definition in found]
            if rows:
                conn.execute(insert(t.suspended_structure), rows)
            for name, _definition in indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
            for name, _definition in foreign_keys:
                conn.execute(text(f'ALTER TABLE service_requests DROP CONSTRAINT "{name}"'))
        return [f"{row['kind']} {row['name']}" for row in rows]

    def restore_suspended(self, conn: Connection, locked: bool = False) -> list[str]:
        """Without the bulk-load lock (``locked``.

        the caller holds it), try to take it for this transaction: if a load is running, its
        structure is not ours to touch.
        """
        if not locked and not conn.execute(_TRY_BULK_LOCK).scalar():
            return []
        ss = t.suspended_structure
        rows = conn.execute(select(ss.c.table_name, ss.c.kind, ss.c.name, ss.c.definition)
                            .order_by(ss.c.kind.desc(), ss.c.table_name, ss.c.name)).all()
        restored = []
        for table, kind, name, definition in rows:  # indexes first, then foreign keys
            if kind == "index":
                if conn.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar():
                    continue
                conn.execute(text(definition))
            else:
                if conn.execute(text(
                    "SELECT 1 FROM pg_constraint WHERE conname = :name "
                    "AND conrelid = CAST(:table AS regclass)"), {"name": name, "table": table},
                ).first():
                    continue
                conn.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" '
                                  f"{definition} NOT VALID"))
                conn.execute(text(f'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{name}"'))
            restored.append(f"{kind.replace('_', ' ')} {name}")
        if rows:
            conn.execute(delete(ss))
            LOGGER.info("re-created after a bulk load: %s", ", ".join(restored) or "nothing")
        return restored

    def spatial_index_missing(self, conn: Connection, table: str, column: str) -> bool:
        """Any single-column GiST index on the column will do, whatever its name."""
        return conn.execute(text(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am am ON am.oid = c.relam JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = CAST(:table AS regclass) AND am.amname = 'gist' "
            "AND i.indnatts = 1 AND a.attname = :column"
        ), {"table": table, "column": column}).first() is None

    def create_spatial_index(self, conn: Connection, table: str, column: str) -> None:
        """The name and form GeoAlchemy2 gives it when it creates the table."""
        conn.execute(text(f'CREATE INDEX "idx_{table}_{column}" ON "{table}" '
                          f'USING gist ("{column}")'))

    def foreign_keys_missing(self, conn: Connection, table: Any) -> list[Any]:
        """The PostGIS way: see ``Dialect.foreign_keys_missing``."""
        have = {(tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in inspect(conn).get_foreign_keys(table.name)}
        return [c for c in table.foreign_key_constraints
                if (tuple(col.name for col in c.columns), c.referred_table.name) not in have]

    def read_all(self, engine: Engine, stmt: Any, columns: list[str],
                 text_columns: Sequence[str] = ()) -> pd.DataFrame:
        """COPY the result out as CSV and parse it with Arrow: ten times faster than rows.

        ``text_columns`` stay text ("05" is not the number 5).
        """
        sql = str(stmt.compile(dialect=engine.dialect,
                               compile_kwargs={"literal_binds": True}))
        buffer = io.BytesIO()
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            with raw.cursor() as cur:  # type: ignore[union-attr]
                with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                    for block in copy:
                        buffer.write(block)
        if not buffer.tell():
            return pd.DataFrame({c: [] for c in columns})
        buffer.seek(0)
        table = pa_csv.read_csv(
            buffer, read_options=pa_csv.ReadOptions(column_names=columns),
            convert_options=pa_csv.ConvertOptions(
                true_values=["t"], false_values=["f"], strings_can_be_null=False,
                column_types={c: pa.string() for c in text_columns}))
        return table.to_pandas()

    def write_h3_cells(self, conn: Connection, ids: np.ndarray, cells: np.ndarray) -> None:
        """One UPDATE joined to two array parameters, not a statement per row."""
        conn.execute(text(
            "UPDATE service_requests SET h3_cell = v.cell FROM "
            "(SELECT unnest(CAST(:ids AS bigint[])) AS id, "
            "unnest(CAST(:cells AS bigint[])) AS cell) AS v WHERE service_requests.id = v.id"
        ), {"ids": ids.tolist(), "cells": cells.tolist()})

def point_ewkb_hex(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    """Hex EWKB of SRID 4326 points, built in numpy (NaN coordinates give NULL).

    Ten times faster than formatting text, and exact: the doubles are copied, not printed.
    """
    n = len(lon)
    record = np.empty((n, 25), dtype=np.uint8)
    record[:, :9] = np.frombuffer(_EWKB_POINT_4326, dtype=np.uint8)
    record[:, 9:17] = np.ascontiguousarray(lon, dtype="<f8").view(np.uint8).reshape(n, 8)
    record[:, 17:] = np.ascontiguousarray(lat, dtype="<f8").view(np.uint8).reshape(n, 8)
    hexed = np.frombuffer(record.tobytes().hex().encode("ascii"), dtype="S50").astype(str)
    missing = np.isnan(lon) | np.isnan(lat)
    return pa.array(hexed, mask=missing)


#: Little-endian EWKB header of a 2-D point with SRID 4326.
_EWKB_POINT_4326 = bytes.fromhex("0101000020E6100000")


def _copy_table(conn: Connection, table: str, data: pa.Table) -> None:
    """Stream an Arrow table into ``table`` with COPY (CSV written by Arrow).

    Every value is quoted and nulls are not, which is exactly how COPY's CSV format
    tells an empty string from NULL.
    """
    buffer = io.BytesIO()
    pa_csv.write_csv(data, buffer, pa_csv.WriteOptions(include_header=False,
                                                       quoting_style="all_valid"))
    cols = ", ".join(f'"{c}"' for c in data.column_names)
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        with cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
            view = buffer.getbuffer()
            for start in range(0, len(view), 1 << 22):
                copy.write(view[start:start + (1 << 22)])
