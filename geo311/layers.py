"""Boundary layers in the store: load a file as a new version, activate it, describe it.

Activating a version reassigns stored requests in the same transaction: every
request when the layer is new; for a later version, open requests move to it
and closed ones keep the district of their day.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geo311.boundaries import LayerReport, checksum, read_layer
from geo311.districts import DistrictIndex, DistrictLayer, assign_by_address
from geo311.errors import InvalidRequest
from geo311.layerdefs import ROLES, LayerDefinition
from geo311.model import OPEN, LayerVersion
from geo311.store.sql import SQLStore

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadResult:
    """A stored layer version, its report, and whether it was put to use."""

    version: LayerVersion
    report: LayerReport
    activated: bool
    reassigned: int = 0


def load_layer(
    store: SQLStore, path: str | Path, *, name: str, title: str = "", role: str = "district",
    description: str = "", id_field: str | None = None, name_field: str | None = None,
    crs: str | None = None, layer: str | None = None, activate: bool = True,
    force: bool = False, loaded_by: str = "system", max_unzipped_bytes: int = 500 * 1024 * 1024,
    boundary_tolerance_m: float = 15.0,
) -> LoadResult:
    """Read a boundary file and store it as the next version of layer ``name``.

    A version with rejected features is stored but not activated unless
    ``force``: its holes would leave requests without a district.

    Examples
    --------
    >>> load_layer(store, "shapefiles/wards_2023", name="wards_2023", id_field="ward")
    ... # doctest: +SKIP
    """
    if role not in ROLES:
        raise InvalidRequest(f"role was {role!r} but is expected to be in {list(ROLES)}")
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise InvalidRequest(
            f"layer name was {name!r} but is expected to be letters, digits, '_' or '-'"
        )
    loaded = read_layer(path, id_field=id_field, name_field=name_field, crs=crs, layer=layer,
                        max_unzipped_bytes=max_unzipped_bytes)
    report = loaded.report
    version = store.add_layer_version(
        name, loaded.features, title=title, role=role, description=description,
        source_file=Path(path).name, source_crs=report.source_crs, checksum=checksum(path),
        id_field=id_field or "", name_field=name_field or "", report=report.to_dict(),
        loaded_by=loaded_by,
    )
    if not activate or not (report.valid or force):
        return LoadResult(version, report, activated=False)
    version, moved = activate_version(store, name, version.version, actor=loaded_by,
                                      boundary_tolerance_m=boundary_tolerance_m)
    return LoadResult(version, report, activated=True, reassigned=moved)


def activate_version(
    store: SQLStore, name: str, version: int, *, actor: str = "system",
    boundary_tolerance_m: float = 15.0,
) -> tuple[LayerVersion, int]:
    """Activate a layer version and reassign stored requests; return it and how many moved."""
    target = store.layer_version(name, version)
    features = store.layer_features(name, version)
    index = DistrictIndex(
        [DistrictLayer(name, target.id, list(features["district_id"]),
                       list(features.geometry.values))],
        boundary_tolerance_m=boundary_tolerance_m,
    )
    points = store.request_points()
    earlier = [v for v in store.layer_versions(name) if v.id != target.id]
    if earlier:
        covered = store.requests_assigned_to([v.id for v in earlier])
        keep = (points["status"] == OPEN) | ~points["id"].isin(covered)
        points = points[keep.to_numpy()]
    assigned = assign_by_address(index, points["lon"].to_numpy(), points["lat"].to_numpy(),
                                 points["address"].tolist())[name]
    version_row = store.activate_layer_version(
        name, version, actor=actor,
        districts={"ids": points["id"].to_numpy(), "district_id": assigned.district_id,
                   "boundary_case": assigned.boundary_case},
    )
    LOGGER.info("activated %s version %s; %s requests assigned", name, version, len(points))
    return version_row, len(points)


def load_definitions(
    store: SQLStore, definitions: list[LayerDefinition], *, loaded_by: str = "system",
    boundary_tolerance_m: float = 15.0,
) -> list[tuple[LayerDefinition, LoadResult | None]]:
    """Load the shipped layers; a layer whose newest version has the same checksum is skipped."""
    done: list[tuple[LayerDefinition, LoadResult | None]] = []
    for d in definitions:
        existing = store.layer_versions(d.name)
        if existing and existing[-1].checksum == checksum(d.source):
            done.append((d, None))
            continue
        done.append((d, load_layer(
            store, d.source, name=d.name, title=d.title, role=d.role,
            description=d.description, id_field=d.id_field, name_field=d.name_field,
            crs=d.crs, activate=d.active, loaded_by=loaded_by,
            boundary_tolerance_m=boundary_tolerance_m,
        )))
    return done


def describe_layer(store: SQLStore, name: str, version: int | None = None) -> dict[str, Any]:
    """What ``layers show`` prints: counts, extent, source CRS, validity, gaps and overlaps."""
    v = store.layer_version(name, version)
    report = v.report
    counts = store.request_district_counts(v.id)
    return {
        "name": v.layer, "title": v.title, "role": v.role, "version": v.version,
        "status": v.status, "source_file": v.source_file, "source_crs": v.source_crs,
        "checksum": v.checksum, "loaded_by": v.loaded_by, "loaded_at": v.loaded_at.isoformat(),
        "feature_count": v.feature_count, "extent": report.get("bounds"),
        "valid": report.get("valid"), "problems": report.get("problems", []),
        "overlap_area_m2": report.get("overlap_area_m2"),
        "overlap_count": report.get("overlap_count"),
        "gap_area_m2": report.get("gap_area_m2"), "gap_count": report.get("gap_count"),
        "requests_assigned": sum(c for d, c in counts.items() if d is not None),
        "requests_outside": counts.get(None, 0),
        "versions": [(x.version, x.status) for x in store.layer_versions(name)],
    }
