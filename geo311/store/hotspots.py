"""Frames for maps and KPIs: H3 cells, hotspot counts, district summaries."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Float,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
    type_coerce,
)

from geo311.errors import InvalidRequest
from geo311.hotspots import (
    STORED_RESOLUTION,
    RequestFilter,
    cells_of,
    masked_cell_keep,
    parent_bits,
)
from geo311.model import (
    STATUSES,
)
from geo311.store import tables as t
from geo311.store.database import Database
from geo311.store.rows import now_utc, to_frame

LOGGER = logging.getLogger(__name__)


class Hotspots:
    """What hotspot maps and KPI tables read."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def fill_cells(self, chunk_rows: int = 200_000) -> int:
        """Store the resolution-15 H3 cell of requests that lack one; return how many.

        Requests without a location get 0, so a partial index keeps finding the
        missing ones cheap (a page view after a new report fills just that one).
        """
        sr = t.service_requests.c
        filled = 0
        while True:
            with self.db.connect() as conn:
                rows = conn.execute(
                    select(sr.id, func.ST_X(sr.geom), func.ST_Y(sr.geom))
                    .where(sr.h3_cell.is_(None)).order_by(sr.id).limit(chunk_rows)
                ).all()
            if not rows:
                return filled
            frame = to_frame(rows, ["id", "lon", "lat"])
            cells = cells_of(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float),
                             STORED_RESOLUTION)
            with self.db.begin() as conn:
                self.db.dialect.write_h3_cells(conn, frame["id"].to_numpy(np.int64), cells)
            filled += len(frame)
            LOGGER.info("stored H3 cells of %s requests", filled)

    def counts(self, resolution: int, where: RequestFilter) -> pd.DataFrame:
        """Parent requests and their reporters per H3 cell at ``resolution``, in SQL.

        Returns ``cell, requests, reporters``; children never count, their reporters
        are in their parent's ``reporter_count``.
        """
        self.fill_cells()
        sr = t.service_requests.c
        cell = self._parent_cell(resolution).label("cell")
        stmt = self._filtered_parents(
            select(cell, func.count().label("requests"),
                   func.sum(sr.reporter_count).label("reporters"))
            .where(sr.h3_cell != 0), where).group_by(cell)
        with self.db.begin() as conn:
            self.db.dialect.before_scan(conn)
            frame = to_frame(conn.execute(stmt).all(), ["cell", "requests", "reporters"])
        return frame.astype({"cell": np.int64, "requests": np.int64, "reporters": np.int64})

    def weekly(
        self, resolution: int, where: RequestFilter, origin: datetime
    ) -> pd.DataFrame:
        """Reporters per H3 cell and week since ``origin``: ``cell, week, reporters``."""
        self.fill_cells()
        sr = t.service_requests.c
        cell = self._parent_cell(resolution).label("cell")
        seconds = self.db.dialect.epoch_s(sr.requested_datetime) - origin.timestamp()
        week = type_coerce(func.floor(seconds / 604800.0), Float).label("week")
        stmt = self._filtered_parents(
            select(cell, week, func.sum(sr.reporter_count).label("reporters"))
            .where(sr.h3_cell != 0).where(sr.requested_datetime >= origin), where,
        ).group_by(cell, week)
        with self.db.connect() as conn:
            frame = to_frame(conn.execute(stmt).all(), ["cell", "week", "reporters"])
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
            (self.db.dialect.epoch_s(sr.closed_datetime)
             - self.db.dialect.epoch_s(sr.requested_datetime))
            / 3600.0), Float).label("hours")
        stmt = self._filtered_parents(
            select(rd.district_id, hours, func.count(), func.sum(sr.reporter_count),
                   func.sum(case((sr.expected_datetime.isnot(None) & due, 1), else_=0)),
                   func.sum(case((sr.expected_datetime.isnot(None) & met, 1), else_=0)))
            .select_from(join).where(on_layer).where(rd.district_id.isnot(None)), where,
        ).group_by(rd.district_id, hours)
        with self.db.connect() as conn:
            hist = to_frame(conn.execute(stmt).all(), ["district_id", "hours", "requests",
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

    def rows(
        self, *, since: datetime | None = None, ids: Sequence[int] = ()
    ) -> pd.DataFrame:
        """What in-memory hotspot maps need of each located request, parents and children.

        ``id, cell`` (H3, resolution 15; masked for sensitive services) ``, reporters,
        service_code, status, requested``
        (seconds since 1970) ``, parent`` (not a duplicate) ``, updated``. With ``since``
        or ``ids``, only requests updated since then or with those ids.
        """
        self.fill_cells()
        sr = t.service_requests.c
        stmt = select(sr.id, self._public_cell(), sr.reporter_count, sr.service_code, sr.status,
                      self.db.dialect.epoch_s(sr.requested_datetime), sr.duplicate_of.is_(None),
                      self.db.dialect.epoch_s(sr.updated_datetime)).where(sr.h3_cell != 0)
        columns = ["id", "cell", "reporters", "service_code", "status", "requested", "parent",
                   "updated"]
        frame = self._all_or_changed(stmt, columns, since, ids)
        return frame.astype({"id": np.int64, "cell": np.int64, "reporters": np.int64,
                             "requested": float, "parent": bool, "updated": float})

    def kpi_frame(self, layer_version_id: int | None, *, start: datetime | None = None,
                  end: datetime | None = None) -> pd.DataFrame:
        """Group roots (``duplicate_of`` NULL) for KPIs: service, district and times.

        Read in one stream with times as epoch seconds (a million rows in seconds, not
        the tens of seconds datetime objects row by row take); names joined after.
        """
        sr, rd = t.service_requests.c, t.request_districts.c
        dialect = self.db.dialect
        joined: Any = t.service_requests
        district_col: Any = text("NULL")
        if layer_version_id is not None:
            joined = joined.outerjoin(t.request_districts, (rd.request_id == sr.id)
                                      & (rd.layer_version_id == layer_version_id))
            district_col = rd.district_id
        stmt = select(
            sr.service_code, district_col, sr.status, dialect.epoch_s(sr.requested_datetime),
            dialect.epoch_s(sr.closed_datetime), dialect.epoch_s(sr.expected_datetime),
        ).select_from(joined).where(sr.duplicate_of.is_(None))
        if start is not None:
            stmt = stmt.where(sr.requested_datetime >= start)
        if end is not None:
            stmt = stmt.where(sr.requested_datetime < end)
        frame = dialect.read_all(self.db.engine, stmt, ["service_code", "district_id", "status",
                                                        "requested", "closed", "expected"],
                                 text_columns=("district_id",))
        with self.db.connect() as conn:
            names = dict(conn.execute(select(t.services.c.code, t.services.c.name)).all())
        frame.insert(1, "service_name", frame["service_code"].map(names))
        district = frame["district_id"]
        frame["district_id"] = district.where(district.notna() & (district != ""), None)
        return _as_times(frame)

    def kpi_rows(self, *, since: datetime | None = None, ids: Sequence[int] = ()
                 ) -> pd.DataFrame:
        """Every request's KPI columns, for the in-memory KPI index.

        ``id, service_code, status, requested, closed, expected, parent``; with ``since``
        or ``ids``, only requests updated since then or with those ids.
        """
        sr = t.service_requests.c
        dialect = self.db.dialect
        stmt = select(sr.id, sr.service_code, sr.status, dialect.epoch_s(sr.requested_datetime),
                      dialect.epoch_s(sr.closed_datetime), dialect.epoch_s(sr.expected_datetime),
                      sr.duplicate_of.is_(None))
        columns = ["id", "service_code", "status", "requested", "closed", "expected", "parent"]
        frame = self._all_or_changed(stmt, columns, since, ids)
        frame = frame.astype({"id": np.int64, "parent": bool})
        return _as_times(frame)

    def _all_or_changed(self, stmt: Any, columns: list[str], since: datetime | None,
                        ids: Sequence[int]) -> pd.DataFrame:
        """Every row of ``stmt``, or only requests updated since ``since`` or in ``ids``."""
        sr = t.service_requests.c
        if since is None and not ids:
            return self.db.dialect.read_all(self.db.engine, stmt, columns)
        with self.db.connect() as conn:  # two index lookups (an OR of both would scan)
            rows = list(conn.execute(stmt.where(sr.updated_datetime >= (since or now_utc())))
                        .all())
            if ids:
                rows += conn.execute(stmt.where(sr.id.in_([int(i) for i in ids]))).all()
        return to_frame(rows, columns).drop_duplicates("id")

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


def _as_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Epoch-second columns ``requested, closed, expected`` as UTC timestamps."""
    for col in ("requested", "closed", "expected"):
        frame[col] = pd.to_datetime(pd.to_numeric(frame[col]), unit="s", utc=True)
    return frame
