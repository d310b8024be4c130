"""Boundary layers: versions, activation, retirement, features and assigned districts."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import shapely
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import (
    Connection,
    delete,
    func,
    insert,
    select,
    update,
)

from geo311.districts import DistrictLayer
from geo311.errors import InvalidRequest, NotFound
from geo311.model import (
    LayerVersion,
)
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.rows import now_utc, to_frame

LOGGER = logging.getLogger(__name__)


class Layers:
    """The stored boundary layers and the districts requests hold."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_version(
        self, name: str, features: Any, *, title: str = "", role: str = "district",
        description: str = "", source_file: str = "", source_crs: str = "",
        checksum: str = "", id_field: str = "", name_field: str = "",
        report: dict[str, Any] | None = None, loaded_by: str = "system",
    ) -> LayerVersion:
        """Store a new version of a layer from a frame of ``district_id, name, geometry``.

        The version starts inactive; ``activate_layer_version`` puts it to use.
        """
        lay, lv = t.layers.c, t.layer_versions.c
        with self.db.begin() as conn:
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
            write_audit(conn, "layer_loaded", "layer", name,
                        {"version": version, "source": source_file, "checksum": checksum,
                         "features": len(features)}, loaded_by)
        LOGGER.info("loaded layer %s version %s (%s features)", name, version, len(features))
        return self.version(name, version)

    def activate(
        self, name: str, version: int, *, actor: str = "system",
        districts: dict[str, Any] | None = None, retire: Sequence[str] = (),
        detail: dict[str, Any] | None = None, crews: Sequence[dict[str, Any]] = (),
    ) -> LayerVersion:
        """Make one version the active one of its layer, in one transaction.

        ``districts`` optionally carries ``ids``, ``district_id`` and ``boundary_case``
        arrays (the new assignment of stored requests) written in the same transaction:
        those requests (the open ones, and closed ones without a district of this layer)
        lose the districts they had from other versions of the layer and get the new
        one; every other request keeps the district of its day. ``retire`` names layers
        this one replaces: their active versions are retired in the same transaction.
        ``crews`` (``id, layer, districts, active, detail``) are the crews that follow
        the new map; each is updated and audited in the same transaction.
        """
        target = self.version(name, version)
        lv, rd = t.layer_versions.c, t.request_districts.c
        with self.db.begin() as conn:
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
                self.db.dialect.bulk_insert_districts(conn, pd.DataFrame({
                    "request_id": np.asarray(ids, dtype=np.int64),
                    "layer_version_id": target.id,
                    "district_id": np.asarray(districts["district_id"], dtype=object),
                    "boundary_case": np.asarray(districts["boundary_case"], dtype=bool),
                }))
            for crew in crews:
                conn.execute(update(t.crews).where(t.crews.c.id == int(crew["id"])).values(
                    layer=crew["layer"], districts=json.dumps(list(crew["districts"])),
                    active=bool(crew["active"])))
                write_audit(conn, "crew_remapped", "crew", crew["id"],
                            {**crew.get("detail", {}), "version": version}, actor)
            for other in retire:
                self._retire(conn, other, actor, {"replaced_by": name, "version": version})
            write_audit(conn, "layer_activated", "layer", name,
                        {"version": version, "replaced": previous, **(detail or {})}, actor)
        return self.version(name, version)

    def versions(
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
        with self.db.connect() as conn:
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

    def version(self, name: str, version: int | None = None) -> LayerVersion:
        """One version of a layer (default: the active one, else the newest)."""
        versions = self.versions(name)
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

    def features(self, name: str, version: int | None = None) -> Any:
        """A version's districts as a GeoDataFrame in EPSG:4326."""
        import geopandas as gpd

        lv = self.version(name, version)
        d = t.districts.c
        with self.db.connect() as conn:
            rows = conn.execute(
                select(d.district_id, d.name, d.geom)
                .where(d.layer_version_id == lv.id).order_by(d.id)
            ).all()
        return gpd.GeoDataFrame(
            {"district_id": [r.district_id for r in rows], "name": [r.name for r in rows]},
            geometry=[to_shape(r.geom) for r in rows], crs="EPSG:4326",
        )

    def validity(
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
        with self.db.connect() as conn:
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
        for lv in self.versions(active_only=True):
            features = self.features(lv.layer, lv.version)
            out.append(DistrictLayer(
                name=lv.layer, version_id=lv.id,
                district_ids=list(features["district_id"]),
                geometries=list(features.geometry.values),
            ))
        return out

    def requests_assigned_to(self, version_ids: Sequence[int]) -> list[int]:
        """Ids of requests holding a district from any of these layer versions."""
        rd = t.request_districts.c
        with self.db.connect() as conn:
            return list(conn.execute(
                select(rd.request_id).where(rd.layer_version_id.in_(list(version_ids)))
                .distinct()
            ).scalars())

    def district_counts(self, layer_version_id: int) -> dict[str | None, int]:
        """How many requests each district of a layer version holds (None: outside)."""
        rd = t.request_districts.c
        with self.db.connect() as conn:
            rows = conn.execute(
                select(rd.district_id, func.count()).where(rd.layer_version_id == layer_version_id)
                .group_by(rd.district_id)
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    def active_district_names(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Each active layer's title and its districts' names by id, for pages people read."""
        d, lv, ly = t.districts.c, t.layer_versions.c, t.layers.c
        with self.db.connect() as conn:
            rows = conn.execute(
                select(ly.name, ly.title, d.district_id, d.name)
                .select_from(t.districts.join(t.layer_versions, lv.id == d.layer_version_id)
                             .join(t.layers, ly.id == lv.layer_id))
                .where(lv.status == "active")
            ).all()
        out: dict[str, tuple[str, dict[str, str]]] = {}
        for layer, title, district_id, name in rows:
            out.setdefault(layer, (title or layer, {}))[1][district_id] = name or district_id
        return out

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
        write_audit(conn, "layer_retired", "layer", name, {"versions": active, **(detail or {})},
                    actor)
        return active

    def retire(
        self, name: str, *, actor: str = "system", service_area: str | None = None
    ) -> list[int]:
        """Take a layer out of use; requests keep the districts they hold from it.

        ``service_area`` names the active layer that becomes the service area in the
        same transaction. Returns the versions retired.
        """
        lay = t.layers.c
        with self.db.begin() as conn:
            if service_area is not None:
                conn.execute(update(t.layers).where(lay.name == name).values(role="district"))
                conn.execute(update(t.layers).where(lay.name == service_area)
                             .values(role="service_area"))
            retired = self._retire(conn, name, actor, {"service_area": service_area})
        LOGGER.info("retired layer %s (versions %s)", name, retired)
        return retired

    def districts_of_requests(self, layer_version_id: int,
                              ids: Sequence[int] | None = None) -> pd.Series:
        """Each request's district in one layer version (outside: None), by request id."""
        rd = t.request_districts.c
        stmt = select(rd.request_id, rd.district_id).where(
            rd.layer_version_id == layer_version_id)
        if ids is not None:
            stmt = stmt.where(rd.request_id.in_([int(i) for i in ids]))
        frame = self.db.dialect.read_all(self.db.engine, stmt, ["request_id", "district_id"],
                                         text_columns=("district_id",))
        district = frame["district_id"]
        return pd.Series(district.where(district.notna() & (district != ""), None).to_numpy(),
                         index=frame["request_id"].astype(np.int64).to_numpy(), dtype=object)

    def request_districts_of(self, layer_version_ids: Sequence[int]) -> pd.DataFrame:
        """``request_id, layer_version_id, district_id`` rows of these layer versions."""
        rd = t.request_districts.c
        with self.db.connect() as conn:
            rows = conn.execute(
                select(rd.request_id, rd.layer_version_id, rd.district_id)
                .where(rd.layer_version_id.in_(list(layer_version_ids)))
            ).all()
        return to_frame(rows, ["request_id", "layer_version_id", "district_id"])


def _as_multipolygon(geom: Any) -> Any:
    if geom.geom_type == "Polygon":
        return shapely.MultiPolygon([geom])
    return geom
