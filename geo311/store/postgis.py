"""PostGIS: the production store. Bulk rows go in with COPY."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ARRAY, Connection, String, any_, bindparam, func, text
from sqlalchemy.sql.elements import ColumnElement

from geo311.store import tables as t
from geo311.store.sql import SQLStore

_REQUEST_COPY_COLUMNS = (
    "id", "external_id", "external_parent_id", "source", "service_code", "status",
    "status_notes", "description", "address", "zipcode", "media_url", "geocode_match",
    "outside_service_area", "requested_datetime", "updated_datetime", "closed_datetime",
    "reporter_count", "geom",
)


class PostGISStore(SQLStore):
    """Requests in PostgreSQL with PostGIS."""

    dialect = "postgis"
    _version_sql = "SELECT PostGIS_Lib_Version()"

    def _prepare_schema(self, conn: Connection) -> None:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))

    def truncate_all(self) -> None:
        """Delete every row and restart ids (tests and demos); the schema stays."""
        names = ", ".join(tb.name for tb in t.metadata.sorted_tables if tb.name != "schema_info")
        with self.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    _lookup_chunk = 200_000

    def _one_of(self, column: Any, values: list[str]) -> ColumnElement[bool]:
        """One array parameter instead of thousands of bound values."""
        return column == any_(bindparam("wanted", values, type_=ARRAY(String)))  # type: ignore[no-any-return]

    def _within_box(self, box: tuple[float, float, float, float]) -> ColumnElement[bool]:
        return t.service_requests.c.geom.op("&&")(func.ST_MakeEnvelope(*box, 4326))

    def _bulk_insert_requests(self, conn: Connection, frame: pd.DataFrame) -> np.ndarray:
        n = len(frame)
        ids = np.fromiter(
            (r[0] for r in conn.execute(
                text("SELECT nextval(pg_get_serial_sequence('service_requests', 'id')) "
                     "FROM generate_series(1, :n)"), {"n": n})),
            dtype=np.int64, count=n,
        )
        out = pd.DataFrame({"id": ids})
        for col in _REQUEST_COPY_COLUMNS[1:-2]:
            if col == "media_url":
                out[col] = ""
            elif col == "outside_service_area":
                out[col] = np.where(frame[col].to_numpy(dtype=bool), "t", "f")
            elif col.endswith("_datetime"):
                out[col] = _copy_times(frame[col])
            else:
                out[col] = frame[col].to_numpy()
        out["reporter_count"] = 1
        lon, lat = frame["lon"].to_numpy(float), frame["lat"].to_numpy(float)
        located = ~(np.isnan(lon) | np.isnan(lat))
        geom = np.full(n, None, dtype=object)
        geom[located] = (
            "SRID=4326;POINT(" + pd.Series(lon[located]).map(repr).to_numpy(dtype=object)
            + " " + pd.Series(lat[located]).map(repr).to_numpy(dtype=object) + ")"
        )
        out["geom"] = geom
        _copy_frame(conn, "service_requests", out, _REQUEST_COPY_COLUMNS, (
            "source", "service_code", "status", "status_notes", "description", "address",
            "zipcode", "media_url", "geocode_match",
        ))
        return ids

    def _bulk_insert_districts(self, conn: Connection, rows: pd.DataFrame) -> None:
        rows = rows.assign(boundary_case=np.where(rows["boundary_case"].to_numpy(bool), "t", "f"))
        _copy_frame(conn, "request_districts", rows,
                    ("request_id", "layer_version_id", "district_id", "boundary_case"))


def _copy_times(values: pd.Series) -> np.ndarray:
    times = pd.to_datetime(values, utc=True)
    text_values = times.dt.strftime("%Y-%m-%d %H:%M:%S.%f+00:00").astype(object)
    return text_values.where(times.notna(), None).to_numpy(dtype=object)


def _copy_frame(
    conn: Connection, table: str, frame: pd.DataFrame, columns: tuple[str, ...],
    text_not_null: tuple[str, ...] = (),
) -> None:
    """Stream a frame into a table with COPY.

    In CSV an unquoted empty field is NULL; ``text_not_null`` columns read it as ''.
    """
    raw = conn.connection.dbapi_connection
    buffer = io.StringIO()
    frame.loc[:, list(columns)].to_csv(buffer, index=False, header=False, na_rep="")
    cols = ", ".join(f'"{c}"' for c in columns)
    options = "FORMAT csv"
    if text_not_null:
        options += ", FORCE_NOT_NULL (" + ", ".join(f'"{c}"' for c in text_not_null) + ")"
    with raw.cursor() as cur:  # type: ignore[union-attr]
        with cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH ({options})") as copy:
            view = buffer.getvalue()
            for start in range(0, len(view), 1 << 20):
                copy.write(view[start:start + (1 << 20)])
