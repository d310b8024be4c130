"""Search as the public sees it: Open311 and OGC filters, sensitive services matched masked.

A sensitive service is shown at its cell centre, so every spatial filter decides on
that point, not the true one: otherwise sliding a search area reveals where it is.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from geo311.geodesy import haversine_m
from geo311.model import ServiceRequest
from geo311.privacy import MASK_SHIFT_MAX_M, shown_points
from geo311.store import tables as t
from geo311.store.catalogue import Catalogue
from geo311.store.database import Database, Dialect
from geo311.store.request_rows import public_select, request_filters, to_requests
from geo311.store.rows import degree_box, stored_ids


class Search:
    """Public requests matching GET requests' and OGC API Features' filters."""

    def __init__(self, db: Database, catalogue: Catalogue) -> None:
        self.db = db
        self.catalogue = catalogue

    def find(self, *, limit: int = 1000, offset: int = 0, **filters: Any
             ) -> list[ServiceRequest]:
        """Public requests matching every filter given, newest first (ids alone override all).

        Filters: ``ids``, ``service_codes``, ``statuses``, ``start``, ``end``, ``bbox``,
        ``near``, ``updated_after``, ``updated_before``. ``near`` is ``(lon, lat,
        radius_m)``, decided in metres after the index narrows to a box, so both backends
        agree.
        """
        near = filters.get("near")
        with self.db.connect() as conn:
            filters = self.public_filters(conn, filters)
            stmt = self.statement(**filters)
            if near is None or filters.get("ids") is not None:
                rows = conn.execute(stmt.limit(limit).offset(offset)).all()
            else:
                rows = rows_within(conn, stmt, near, limit=limit, offset=offset,
                                   sensitive=filters.get("sensitive", ()))
            return to_requests(self.db.dialect, conn, rows)

    def count(self, **filters: Any) -> int:
        """How many public requests ``find`` would find (``near`` aside), masked alike."""
        sr = t.service_requests.c
        with self.db.connect() as conn:
            filters = self.public_filters(conn, {**filters, "near": None})
            stmt = self.statement(base=select(sr.id).select_from(t.service_requests),
                                  **filters).order_by(None)
            return int(conn.execute(select(func.count()).select_from(stmt.subquery()))
                       .scalar_one())

    def statement(self, **filters: Any) -> Any:
        """``find_statement`` on this database."""
        return find_statement(self.db.dialect, **filters)

    def public_filters(self, conn: Connection, filters: dict[str, Any]) -> dict[str, Any]:
        """``filters`` with what matching on the public's view of sensitive points needs.

        The sensitive candidates of a ``bbox`` (few) are read in a widened box and kept
        when their masked point is inside; the rest stays one indexed query.
        """
        if filters.get("ids") is not None or (filters.get("bbox") is None
                                              and filters.get("near") is None):
            return filters
        sensitive = sorted(self.catalogue.sensitive_codes())
        out = {**filters, "sensitive": sensitive}
        box = filters.get("bbox")
        if sensitive and box is not None:
            sr = t.service_requests.c
            candidates = self.statement(
                base=select(sr.id, sr.service_code, func.ST_X(sr.geom).label("lon"),
                            func.ST_Y(sr.geom).label("lat"))
                .select_from(t.service_requests).where(sr.service_code.in_(sensitive)),
                **{**filters, "bbox": widened(box, MASK_SHIFT_MAX_M), "near": None})
            rows = conn.execute(candidates).all()
            xs, ys = shown_points([r.service_code for r in rows], [r.lon for r in rows],
                                  [r.lat for r in rows], set(sensitive))
            inside = (xs >= box[0]) & (xs <= box[2]) & (ys >= box[1]) & (ys <= box[3])
            out["masked_in_bbox"] = [r.id for r, keep in zip(rows, inside, strict=True)
                                     if keep]
        return out


def find_statement(
    dialect: Dialect, *, base: Any = None, ids: Sequence[int] | None = None,
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
    stmt = public_select() if base is None else base
    if ids is not None:
        stmt = stmt.where(sr.id.in_(stored_ids(ids)))
    else:
        stmt = request_filters(dialect, stmt, service_codes=service_codes, start=start,
                               end=end, bbox=None if sensitive else bbox)
        if statuses:
            stmt = stmt.where(sr.status.in_(list(statuses)))
        if updated_after is not None:
            stmt = stmt.where(sr.updated_datetime >= updated_after)
        if updated_before is not None:
            stmt = stmt.where(sr.updated_datetime <= updated_before)
        if bbox is not None and sensitive:
            # One index lookup (the widened box); the exact box on the coordinates.
            x, y = func.ST_X(sr.geom), func.ST_Y(sr.geom)
            stmt = stmt.where(dialect.within_box(widened(bbox, MASK_SHIFT_MAX_M))).where(or_(
                and_(sr.service_code.not_in(list(sensitive)), x.between(bbox[0], bbox[2]),
                     y.between(bbox[1], bbox[3])),
                dialect.one_of(sr.id, list(masked_in_bbox))))
        if near is not None:
            reach = near[2] + (MASK_SHIFT_MAX_M if sensitive else 0.0)
            stmt = stmt.where(dialect.within_box(degree_box(near[0], near[1], reach)))
    return stmt.order_by(sr.requested_datetime.desc(), sr.id.desc())


def widened(box: tuple[float, float, float, float], margin_m: float
            ) -> tuple[float, float, float, float]:
    """``box`` grown by ``margin_m`` metres on every side (in degrees, generously)."""
    x0, y0, _, _ = degree_box(box[0], box[1], margin_m)
    _, _, x1, y1 = degree_box(box[2], box[3], margin_m)
    # The wider of the two latitudes' longitude spans holds at both edges.
    dlon = max(box[0] - x0, x1 - box[2])
    return box[0] - dlon, y0, box[2] + dlon, y1


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
