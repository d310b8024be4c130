"""Reading requests as the public sees them: columns, filters, districts, values.

Shared by the requests, search and public-records repositories.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from geo311.errors import InvalidRequest
from geo311.model import STATUSES, ServiceRequest
from geo311.store import tables as t
from geo311.store.database import Dialect

PUBLIC_COLUMNS = [
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
    t.service_requests.c.import_flags,
]

def public_select() -> Any:
    """The public columns of requests joined to their service's name."""
    return select(*PUBLIC_COLUMNS).select_from(
        t.service_requests.join(
            t.services, t.services.c.code == t.service_requests.c.service_code
        )
    )

def to_requests(dialect: Dialect, conn: Connection, rows: Sequence[Any]
                ) -> list[ServiceRequest]:
    """Rows of ``public_select`` as requests, with their districts."""
    ids = [r.id for r in rows]
    names = district_names(dialect, conn, ids)
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
            import_flags=r.import_flags or "",
        )
        for r in rows
    ]

def district_names(
    dialect: Dialect, conn: Connection, ids: Sequence[int]
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
            .where(dialect.one_of(rd.request_id, list(ids[start:start + 5000])))
        ).all()
        for rid, layer, version, district in rows:
            if newest.get((rid, layer), -1) < version:
                newest[rid, layer] = version
                out.setdefault(rid, {})[layer] = district
    # Layers in name order, as readers expect.
    return {rid: dict(sorted(names.items())) for rid, names in out.items()}

def request_filters(
    dialect: Dialect, stmt: Any, *, service_codes: Sequence[str] | None = None,
    status: str | None = None,
    start: datetime | None = None, end: datetime | None = None,
    bbox: tuple[float, float, float, float] | None = None, parents_only: bool = False,
) -> Any:
    """``stmt`` on ``service_requests`` narrowed by the filters given (the box by index)."""
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
        stmt = stmt.where(dialect.within_box(bbox))
    if parents_only:
        stmt = stmt.where(sr.duplicate_of.is_(None))
    return stmt
