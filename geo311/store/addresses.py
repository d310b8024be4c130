"""Geocoding references: address points, intersections, centerlines, trusted addresses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import shapely
from geoalchemy2.shape import to_shape
from sqlalchemy import (
    Connection,
    delete,
    func,
    insert,
    or_,
    select,
)

from geo311.errors import InvalidRequest, NotFound
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.rows import MAX_ID, to_frame

LOGGER = logging.getLogger(__name__)

#: The table of each kind of reference layer.
REFERENCE_TABLES = {"points": t.address_points, "intersections": t.street_intersections,
                    "centerlines": t.street_centerlines}


class Addresses:
    """The reference layers the geocoder reads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def replace_reference(self, kind: str, frame: pd.DataFrame, source: str, *,
                          actor: str = "system") -> int:
        """Store a reference layer's rows under ``source``, replacing that source's rows.

        ``kind`` is ``points``, ``intersections`` or ``centerlines`` (frames as
        ``geo311.gazetteer`` reads them). Returns the number of rows stored.
        """
        table = REFERENCE_TABLES.get(kind)
        if table is None:
            raise InvalidRequest(f"kind was {kind!r} but is expected to be in "
                                 f"{sorted(REFERENCE_TABLES)}")
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
        with self.db.begin() as conn:
            kept = _keep_address_ids(conn, source, rows) if kind == "points" else []
            conn.execute(delete(table).where(table.c.source == source))
            for part in (kept, [r for r in rows if "id" not in r]):
                for start in range(0, len(part), 20_000):
                    conn.execute(insert(table), part[start:start + 20_000])
            write_audit(conn, "reference_loaded", "geocoding", source,
                        {"kind": kind, "rows": len(rows), "ids_kept": len(kept)}, actor)
        LOGGER.info("stored %s %s rows from %s", len(rows), kind, source)
        return len(rows)

    def reference_frames(self) -> dict[str, pd.DataFrame]:
        """Every stored reference layer as frames the geocoder takes, by kind."""
        ap, si, sc = t.address_points.c, t.street_intersections.c, t.street_centerlines.c
        with self.db.connect() as conn:
            points = to_frame(conn.execute(select(
                ap.id, ap.address, ap.house_number, ap.pre_dir, ap.street_name, ap.suffix,
                ap.zipcode, func.ST_X(ap.geom), func.ST_Y(ap.geom), ap.source)
                .order_by(ap.id)).all(),
                ["id", "address", "house_number", "pre_dir", "street_name", "suffix",
                 "zipcode", "lon", "lat", "source"])
            crossings = to_frame(conn.execute(select(
                si.street_1, si.street_2, si.zipcode, func.ST_X(si.geom), func.ST_Y(si.geom),
                si.source).order_by(si.id)).all(),
                ["street_1", "street_2", "zipcode", "lon", "lat", "source"])
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
        """(layer version ids in use, ``reference_key()``) read in one round trip.

        The versions in use are the active ones and every version of a jurisdiction
        layer (referrals use its newest). Asked before every live report, so it reads
        ids only, through one connection.
        """
        a, lv = t.audit_log.c, t.layer_versions.c
        jurisdictions = select(t.layers.c.id).where(t.layers.c.role == "jurisdiction")
        reference = [select(func.max(a.id)).where(a.entity == "geocoding").scalar_subquery(),
                     *(select(func.max(table.c.id)).scalar_subquery()
                       for table in REFERENCE_TABLES.values())]
        with self.db.connect() as conn:
            active = tuple(int(i) for i in conn.execute(
                select(lv.id).where(or_(lv.status == "active",
                                        lv.layer_id.in_(jurisdictions.scalar_subquery())))
                .order_by(lv.id)).scalars())
            row = conn.execute(select(*reference)).one()
        return active, tuple(int(v or 0) for v in row)

    def reference_key(self) -> tuple[int, ...]:
        """Changes whenever a reference layer is loaded or replaced (for cache rebuilds)."""
        a = t.audit_log.c
        with self.db.connect() as conn:
            # Every load is audited: the last audit id changes even when a reload
            # leaves the same ids behind (SQLite reuses the highest deleted ids).
            loads = conn.execute(select(func.max(a.id)).where(a.entity == "geocoding")).scalar()
            return (int(loads or 0), *(
                int(conn.execute(select(func.max(table.c.id))).scalar() or 0)
                for table in REFERENCE_TABLES.values()))

    def reference_sources(self) -> list[tuple[str, str, int]]:
        """(kind, source, rows) of every stored reference source."""
        out = []
        with self.db.connect() as conn:
            for kind, table in REFERENCE_TABLES.items():
                for source, n in conn.execute(select(table.c.source, func.count())
                                              .group_by(table.c.source)
                                              .order_by(table.c.source)).all():
                    out.append((kind, str(source), int(n)))
        return out

    def point(self, point_id: int) -> tuple[str, float, float]:
        """One stored address point: (address, lon, lat); raise ``NotFound``."""
        if not 0 < int(point_id) <= MAX_ID:
            raise NotFound(f"address_id {point_id} is not a stored address point")
        ap = t.address_points.c
        with self.db.connect() as conn:
            row = conn.execute(select(ap.address, func.ST_X(ap.geom), func.ST_Y(ap.geom))
                               .where(ap.id == point_id)).first()
        if row is None:
            raise NotFound(f"address_id {point_id} is not a stored address point")
        return str(row[0]), float(row[1]), float(row[2])

    def trusted(self, *, since: datetime | None = None,
                          matches: Sequence[str] = ("source",)) -> pd.DataFrame:
        """Address, zipcode, lon, lat of stored requests whose point is trusted."""
        sr = t.service_requests.c
        stmt = select(sr.address, sr.zipcode, func.ST_X(sr.geom), func.ST_Y(sr.geom)).where(
            sr.geom.isnot(None), sr.address != "", sr.geocode_match.in_(list(matches)))
        if since is not None:
            stmt = stmt.where(sr.requested_datetime >= since)
        with self.db.connect() as conn:
            return to_frame(conn.execute(stmt).all(), ["address", "zipcode", "lon", "lat"])


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
