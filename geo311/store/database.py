"""The database: one engine and the dialect of its backend.

``Dialect`` holds every difference between backends as a method with a portable
default; ``PostGISDialect`` (``postgis.py``) and ``SpatiaLiteDialect``
(``spatialite.py``) override what their database does better or differently.
They are the only code that knows which database it is talking to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement

from geo311.model import Candidate, DuplicateSearch
from geo311.store import tables as t
from geo311.store.rows import candidate_span, degree_box, to_frame


class Dialect:
    """What differs between backends, with portable defaults."""

    #: The backend's name, as the health check reports it.
    name = "sql"
    #: The backend part of the URLs naming this backend (``sqlite``, ``postgresql``).
    url_backend = ""
    #: A statement proving the spatial extension works; it returns its version.
    version_sql = "SELECT 1"
    #: What ``DROP TABLE`` needs to drop dependants too.
    cascade = ""
    #: How many values one ``one_of`` filter may carry.
    lookup_chunk = 5000
    #: Loads smaller than this keep their indexes (rebuilding costs more than it saves).
    bulk_min_rows = 0

    def create_engine(self, url: str) -> Engine:
        """The one engine of this process for ``url``."""
        raise NotImplementedError

    # -- schema ------------------------------------------------------------------------

    def prepare_schema(self, conn: Connection) -> None:
        """Backend set-up needed before tables exist (extensions)."""

    def finish_schema(self, conn: Connection) -> list[str]:
        """Backend set-up needing the tables (special indexes); return what was added."""
        return []

    def record_triggers(self) -> list[str]:
        """Statements (re)creating the triggers that keep stored public records honest.

        Writing a column of ``RECORD_COLUMNS`` raises the request's ``revision``; a
        change to services, layers, layer versions or a recorded request's districts
        raises the records generation. Stored records of an older revision or
        generation are then ignored, whichever code path (or person with psql) wrote.
        """
        return []

    def restore_suspended(self, conn: Connection) -> list[str]:
        """Re-create what a killed bulk load left suspended; return what came back.

        Nothing while a bulk load is running: its structure comes back when it ends.
        """
        return []

    def spatial_index_missing(self, conn: Connection, table: str, column: str) -> bool:
        """Whether the declared spatial index on ``table.column`` is absent."""
        return False

    def create_spatial_index(self, conn: Connection, table: str, column: str) -> None:
        """Build the spatial index on ``table.column``."""
        raise NotImplementedError

    def foreign_keys_missing(self, conn: Connection, table: Any) -> list[Any]:
        """Declared foreign-key constraints of ``table`` that the database lacks."""
        return []

    def truncate_all(self, conn: Connection) -> None:
        """Delete every row but the schema's own (tests and demos)."""
        for table in reversed(t.metadata.sorted_tables):
            if table.name != "schema_info":
                conn.execute(delete(table))

    # -- reading and writing -------------------------------------------------------------

    def within_box(self, box: tuple[float, float, float, float]) -> ColumnElement[bool]:
        """A filter on ``service_requests`` keeping points in a lon/lat box (index-backed)."""
        raise NotImplementedError

    def one_of(self, column: Any, values: list[Any]) -> ColumnElement[bool]:
        """``column`` is one of ``values`` (a bound parameter per value)."""
        return column.in_(values)  # type: ignore[no-any-return]

    def upsert(self, table: Any) -> Any:
        """An ``INSERT`` into ``table`` that can say ``on_conflict_do_update``."""
        return sqlite_insert(table)

    def epoch_s(self, column: Any) -> Any:
        """Seconds since 1970 of a stored time, in SQL."""
        return (func.julianday(column) - 2440587.5) * 86400.0

    def before_scan(self, conn: Connection) -> None:
        """Set up a transaction about to aggregate a whole table in one pass."""

    def read_all(self, engine: Engine, stmt: Any, columns: list[str],
                 text_columns: Sequence[str] = ()) -> pd.DataFrame:
        """Run a large read (a backend may stream it faster than row by row)."""
        with engine.connect() as conn:
            return to_frame(conn.execute(stmt).all(), columns)

    def write_h3_cells(self, conn: Connection, ids: np.ndarray, cells: np.ndarray) -> None:
        """Store the H3 cells of requests ``ids``."""
        conn.execute(
            update(t.service_requests)
            .where(t.service_requests.c.id == bindparam("rid"))
            .values(h3_cell=bindparam("cell")),
            [{"rid": int(i), "cell": int(c)} for i, c in zip(ids, cells, strict=True)],
        )

    def bulk_insert_requests(self, conn: Connection, frame: pd.DataFrame) -> np.ndarray:
        """Insert prepared rows; return their new ids in frame order."""
        raise NotImplementedError

    def bulk_insert_districts(self, conn: Connection, rows: pd.DataFrame) -> None:
        """Insert ``request_id, layer_version_id, district_id, boundary_case`` rows."""
        conn.execute(insert(t.request_districts), rows.to_dict("records"))

    @contextmanager
    def bulk_load(self, engine: Engine, expected_rows: int,
                  min_rows: int | None = None) -> Iterator[None]:
        """Wrap a large import; a backend may suspend index upkeep while it runs."""
        yield

    # -- knowledge-base search ------------------------------------------------------------

    def rebuild_kb_index(self, conn: Connection) -> None:
        """Bring the full-text index of ``kb_index`` up to date after its rows changed."""

    def kb_match(self, conn: Connection, search_words: list[str], public_only: bool,
                 limit: int) -> list[tuple[int, float]]:
        """``(id, rank)`` of ``kb_index`` rows holding any of ``search_words``, best first.

        The words are plain lower-case letters and digits; the title weighs most.
        """
        raise NotImplementedError

    # -- transactions and locks ------------------------------------------------------------

    @contextmanager
    def cache_transaction(self, conn: Connection) -> Iterator[None]:
        """A transaction writing derived data a reader can rebuild (stored records).

        Backends make it cheap rather than durable: it need not wait for the disk or
        queue long behind other writers; losing it costs a rebuild, never an answer.
        """
        with conn.begin():
            yield

    def local_time_text(self, column: Any) -> Any:
        """``column`` as W3C time text in the session's zone, or None: Python writes it."""
        return None

    def use_time_zone(self, conn: Connection, zone: str) -> None:
        """Make the database write times in ``zone`` until the transaction ends."""

    def lock_for_duplicates(self, conn: Connection, codes: Sequence[str]) -> None:
        """Serialise duplicate decisions for these services until the commit."""
        raise NotImplementedError

    def lock_key(self, conn: Connection, key: str) -> None:
        """Serialise transactions naming ``key`` until the commit."""
        raise NotImplementedError

    def claim_rows(self, stmt: Any) -> Any:
        """``stmt`` (a SELECT of rows to claim) locking them, passing over rows held elsewhere.

        By default unchanged: a backend with one writer at a time has none held elsewhere.
        """
        return stmt

    def duplicate_candidates(
        self, conn: Connection, lon: float, lat: float, search: DuplicateSearch,
        requested: datetime | None,
    ) -> list[Candidate]:
        """Lock ``search.codes`` to the commit, then read earlier requests near the point.

        ``requested`` is the new request's time when the caller gives one (an import);
        a live report has none yet, so this reads every request of the window ending
        now, and later ones, for ``search.decide`` to narrow once the time is known.
        """
        self.lock_for_duplicates(conn, search.codes)
        since, until, open_after = candidate_span(search, requested)
        sr, sv = t.service_requests.c, t.services.c
        stmt = (
            select(sr.id, func.ST_X(sr.geom), func.ST_Y(sr.geom), sr.service_code, sv.group,
                   sr.requested_datetime, sr.closed_datetime, sr.duplicate_of)
            .select_from(t.service_requests.join(t.services, sv.code == sr.service_code))
            .where(self.within_box(degree_box(lon, lat, search.radius_m)))
            .where(sr.service_code.in_(list(search.codes)))
            .where(sr.requested_datetime >= since)
        )
        if until is not None:
            stmt = stmt.where(sr.requested_datetime <= until)
        if open_after is not None:
            stmt = stmt.where(or_(sr.closed_datetime.is_(None), sr.closed_datetime > open_after))
        return [Candidate(*row) for row in conn.execute(stmt).all()]


class Database:
    """One engine, the dialect of its backend, and transactions.

    Examples
    --------
    >>> with store.db.begin() as conn:  # doctest: +SKIP
    ...     conn.execute(...)
    """

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self.engine = engine
        self.dialect = dialect

    def begin(self) -> Any:
        """A connection in a transaction committed on success (``engine.begin()``)."""
        return self.engine.begin()

    def connect(self) -> Any:
        """A connection for reading (``engine.connect()``)."""
        return self.engine.connect()

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()

    def ping(self) -> str:
        """A spatial round trip proving the extension works; returns its version."""
        with self.engine.connect() as conn:
            return str(conn.execute(text(self.dialect.version_sql)).scalar())

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
