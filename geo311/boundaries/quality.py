"""Quality measures of a boundary layer: overlaps, gaps and reach beyond the service area.

Areas are measured in the layer's UTM zone; the report lists the largest first and
counts them all, for GIS staff to judge before activating the layer.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from pyproj import CRS, Geod

LOGGER = logging.getLogger(__name__)

#: How many overlaps and gaps a report lists; its totals count them all.
QUALITY_LIST_LIMIT = 100


@dataclass
class FeatureProblem:
    """One line of the per-feature report: what was wrong and what was done about it."""

    feature: int
    district_id: str | None
    problem: str
    action: str


@dataclass
class LayerReport:
    """What reading a layer found, for GIS staff to judge before activating it.

    ``overlaps`` and ``gaps`` list the largest first, at most ``QUALITY_LIST_LIMIT`` each;
    the areas and counts cover them all.
    """

    source: str
    source_crs: str
    feature_count: int
    bounds: tuple[float, float, float, float]
    problems: list[FeatureProblem]
    overlaps: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    overlap_area_m2: float
    gap_area_m2: float
    overlap_count: int = 0
    gap_count: int = 0
    #: How the file's ids were read (``geo311.district_ids``), e.g. "digits".
    id_rule: str = "as written"
    #: Features reaching beyond the active service area by more than ``outside_tolerance_m2``
    #: (filled in when the layer is loaded while a service-area layer is active).
    service_area: str | None = None
    outside: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    outside_area_m2: float = 0.0
    outside_tolerance_m2: float = 0.0
    #: Districts that cannot be right (``sanity_findings``): they block activation unless
    #: forced, as rejected features do.
    findings: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def valid(self) -> bool:
        """Whether every feature made it into the layer and none looks impossible."""
        return not any(p.action == "rejected" for p in self.problems) and not self.findings

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready values."""
        data = asdict(self)
        data["bounds"] = list(self.bounds)
        data["valid"] = self.valid
        return data


def outside_area(
    features: gpd.GeoDataFrame, area: Any, tolerance_m2: float = 10_000.0
) -> list[dict[str, Any]]:
    """Find districts that reach beyond a service area by more than ``tolerance_m2``.

    ``area`` is the service area's polygon in EPSG:4326. Areas are measured in the
    layer's UTM zone; slivers along a shared edge drawn twice are below the tolerance.
    Each item has ``district_id``, ``name``, ``outside_m2``, ``share`` (of the
    district's area) and a ``lon``/``lat`` inside the outside part; largest first.

    Examples
    --------
    >>> from shapely import box
    >>> f = gpd.GeoDataFrame({"district_id": ["1"], "name": [None]},
    ...                      geometry=[box(-87.70, 41.80, -87.68, 41.82)], crs=4326)
    >>> [o["district_id"] for o in outside_area(f, box(-87.70, 41.80, -87.69, 41.82))]
    ['1']
    """
    if features.empty or area is None or area.is_empty:
        return []
    utm = features.estimate_utm_crs()
    # Reprojection can leave a ring of a valid polygon touching itself (a district dissolved
    # from many parts, a union of many districts); make_valid keeps GEOS from refusing it.
    projected = shapely.make_valid(features.to_crs(utm).geometry.to_numpy())
    area_utm = shapely.make_valid(gpd.GeoSeries([area], crs=4326).to_crs(utm).iloc[0])
    beyond = shapely.difference(projected, area_utm)
    outside_m2 = shapely.area(beyond)
    whole_m2 = shapely.area(projected)
    picks = np.flatnonzero(outside_m2 > tolerance_m2)
    if not len(picks):
        return []
    inside = gpd.GeoSeries(shapely.point_on_surface(beyond[picks]), crs=utm).to_crs(4326)
    items = [
        {
            "district_id": str(features["district_id"].iloc[i]),
            "name": as_text(features["name"].iloc[i]),
            "outside_m2": round(float(outside_m2[i]), 1),
            "share": round(float(outside_m2[i] / whole_m2[i]), 4) if whole_m2[i] else 1.0,
            "lon": round(float(point.x), 6),
            "lat": round(float(point.y), 6),
        }
        for i, point in zip(picks, inside, strict=True)
    ]
    return sorted(items, key=lambda item: -item["outside_m2"])


#: A district this far (metres) from the service area, or from every other district of
#: its layer, is not part of the city: a test polygon at 0°,0°, a swapped coordinate.
FAR_M = 5_000.0
#: A district this many times the median district's area is implausible (a county
#: loaded as a ward); one under this share of the median is a sliver, not a district.
AREA_RATIO_MAX, AREA_RATIO_MIN = 50.0, 1e-4
#: A district whose overlaps with others cover this share of it is drawn twice.
OVERLAP_SHARE_MAX = 0.10


def sanity_findings(features: gpd.GeoDataFrame, area: Any = None,
                    overlaps: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Districts no city has: far away, empty, implausibly large or small, drawn twice.

    ``area`` is the service area (EPSG:4326) when one is active; without it a district
    is far when it lies ``FAR_M`` from every other district of the layer. Areas are
    geodesic, so a polygon on another continent is measured right. Each finding has
    ``kind`` (``far_outside``, ``empty``, ``implausible_area``, ``overlapping``),
    ``district_id``, ``name`` and a ``detail`` in words.

    Examples
    --------
    >>> from shapely import box
    >>> f = gpd.GeoDataFrame({"district_id": ["1", "2"], "name": [None, None]},
    ...                      geometry=[box(-87.7, 41.8, -87.6, 41.9), box(0, 0, 0.7, 0.7)],
    ...                      crs=4326)
    >>> [x["kind"] for x in sanity_findings(f, box(-87.7, 41.8, -87.6, 41.9))]
    ['far_outside']
    """
    if features.empty:
        return []
    geod = Geod(ellps="WGS84")
    geoms = features.geometry.to_numpy()
    ids = features["district_id"].astype(str).tolist()
    names = [as_text(n) for n in features["name"]]
    areas = np.array([abs(geod.geometry_area_perimeter(g)[0]) if g is not None and not
                      g.is_empty else 0.0 for g in geoms])
    found: list[dict[str, Any]] = []

    def add(i: int, kind: str, detail: str) -> None:
        found.append({"kind": kind, "district_id": ids[i], "name": names[i], "detail": detail})

    solid = [k for k in range(len(geoms)) if areas[k] >= 1.0]
    # Without a service area, each district is measured to its nearest neighbour of the
    # layer (a tree query, not a union of all the others per district).
    tree = shapely.STRtree(geoms[solid]) if area is None or area.is_empty else None
    for i, g in enumerate(geoms):
        if areas[i] < 1.0:
            add(i, "empty", "no area")
            continue
        if tree is None:
            reference = area
        else:
            others = [solid[j] for j in np.atleast_1d(tree.query_nearest(g, exclusive=True))
                      if solid[j] != i]
            if not others:
                continue
            reference = geoms[others[0]]
        a, b = shapely.ops.nearest_points(g, reference)
        far = geod.inv(a.x, a.y, b.x, b.y)[2]
        if far > FAR_M:
            what = "the service area" if area is not None else "every other district"
            add(i, "far_outside", f"{far / 1000:,.0f} km from {what}")
    usable = areas[areas >= 1.0]
    if len(usable) >= 5:
        median = float(np.median(usable))
        for i, a_m2 in enumerate(areas):
            if a_m2 >= 1.0 and not AREA_RATIO_MIN <= a_m2 / median <= AREA_RATIO_MAX:
                add(i, "implausible_area", f"{a_m2 / 1e6:,.3f} km², {a_m2 / median:,.4g} "
                    "times the median district")
    shared: dict[str, float] = defaultdict(float)
    for o in overlaps or []:
        for district in o.get("ids", []):
            shared[str(district)] += float(o.get("area_m2", 0.0))
    for i, district in enumerate(ids):
        if areas[i] >= 1.0 and shared.get(district, 0.0) / areas[i] > OVERLAP_SHARE_MAX:
            add(i, "overlapping", f"{100 * shared[district] / areas[i]:.0f} % of it is also "
                "in other districts")
    return found


def layer_quality(
    features: gpd.GeoDataFrame, tolerance_m2: float = 1.0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Find where districts overlap and where the union of districts has holes.

    ``features`` are as `read_layer` returns them. Areas are measured in the layer's UTM
    zone; anything up to ``tolerance_m2`` is digitising noise and left out. The outside of
    the city is not a gap; an enclave that is not part of the city is one (the report cannot
    tell them apart). Each item has the ``ids`` involved, ``area_m2`` and a ``lon``/``lat``
    inside it; both lists are sorted largest first.

    Examples
    --------
    >>> wards = read_layer("shapefiles/wards_2023", id_field="ward").features
    >>> overlaps, gaps = layer_quality(wards)
    >>> sorted(gaps[0])
    ['area_m2', 'ids', 'lat', 'lon']
    """
    if features.empty:
        return [], []
    utm_crs = features.estimate_utm_crs()
    geoms = features.geometry.to_crs(utm_crs).to_numpy()
    ids = features["district_id"].to_numpy()
    tree = shapely.STRtree(geoms)

    left, right = tree.query(geoms, predicate="intersects")
    pair = left < right
    left, right = left[pair], right[pair]
    shared = shapely.intersection(geoms[left], geoms[right])
    big = shapely.area(shared) > tolerance_m2
    overlaps = _quality_items(
        shared[big], [[ids[a], ids[b]] for a, b in zip(left[big], right[big], strict=True)], utm_crs
    )

    union = shapely.union_all(geoms)
    holes = np.array(
        [
            shapely.Polygon(ring)
            for part in shapely.get_parts(union)
            if part.geom_type == "Polygon"
            for ring in part.interiors
        ],
        dtype=object,
    )
    gaps: list[dict[str, Any]] = []
    holes = holes[shapely.area(holes) > tolerance_m2] if len(holes) else holes
    if len(holes):
        for h, d in zip(*tree.query(holes, predicate="contains"), strict=True):
            holes[h] = shapely.difference(holes[h], geoms[d])  # a district islanded in a hole
        holes = holes[shapely.area(holes) > tolerance_m2]
        hole_index, district_index = tree.query(holes, predicate="dwithin", distance=1.0)
        around: dict[int, list[str]] = defaultdict(list)
        for h, d in zip(hole_index, district_index, strict=True):
            around[int(h)].append(ids[d])
        gaps = _quality_items(
            holes, [sorted(around[h], key=natural_key) for h in range(len(holes))], utm_crs
        )
    return overlaps, gaps


def as_text(value: Any) -> str | None:
    """Turn a field value into text, reading 35.0 as "35" (numeric DBF fields)."""
    missing = pd.isna(value)
    if value is None or (isinstance(missing, bool | np.bool_) and missing):
        return None
    if isinstance(value, float | np.floating) and math.isfinite(value) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _quality_items(pieces: np.ndarray, ids: list[list[str]], utm_crs: CRS) -> list[dict[str, Any]]:
    if not len(pieces):
        return []
    inside = gpd.GeoSeries(shapely.point_on_surface(pieces), crs=utm_crs).to_crs(4326)
    items = [
        {
            "ids": [str(i) for i in involved],
            "area_m2": round(float(area), 1),
            "lon": round(float(point.x), 6),
            "lat": round(float(point.y), 6),
        }
        for involved, area, point in zip(ids, shapely.area(pieces), inside, strict=True)
    ]
    return sorted(items, key=lambda item: -item["area_m2"])


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort "2" before "10"."""
    return tuple(
        (0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.findall(r"\d+|\D+", text)
    )
