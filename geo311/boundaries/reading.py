"""Read a boundary layer from a GIS file and check it before districts are assigned with it.

GIS staff deliver layers as shapefiles (loose, in a folder or zipped), GeoJSON, GeoPackage or
KML. Everything is read through GDAL (pyogrio), refused with a precise ``LayerError`` when it
cannot be used as it is, repaired where the repair is unambiguous, and reported feature by
feature, so that staff can decide whether to activate the layer.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo311.boundaries.files import (
    locate_dataset,
    read_frame,
)
from geo311.boundaries.quality import (
    QUALITY_LIST_LIMIT,
    FeatureProblem,
    LayerReport,
    as_text,
    layer_quality,
)
from geo311.district_ids import IdRule, normalise_ids, parse_id_rule
from geo311.errors import LayerError

LOGGER = logging.getLogger(__name__)

_POLYGONAL = ("Polygon", "MultiPolygon")
_ROW_ID_FIELDS = {"fid", "gid", "objectid", "ogc_fid", "globalid", "shape_id"}
_ID_PATTERNS = (  # best first
    re.compile(r"id"),
    re.compile(r".+_id|id_.+"),
    re.compile(r"code|.+_code"),
    re.compile(r"(.+_)?(number|numbe|numb|num|no)"),
)
_NAME_PATTERN = re.compile(r"name|label|.+_name|.+_label")
_REASON = re.compile(r"^(?P<what>.*?)\s*\[(?P<x>\S+) (?P<y>\S+)\]$")


@dataclass
class LoadedLayer:
    """Districts ready to use (``district_id``, ``name``, ``geometry`` in EPSG:4326)."""

    features: gpd.GeoDataFrame
    report: LayerReport


def read_layer(
    path: str | Path,
    *,
    id_field: str | None = None,
    name_field: str | None = None,
    crs: str | None = None,
    layer: str | None = None,
    id_rule: str | Sequence[str] | None = None,
    max_unzipped_bytes: int = 500 * 1024 * 1024,
    tolerance_m2: float = 1.0,
) -> LoadedLayer:
    """Read a boundary file into one polygon per district, with a report on its quality.

    ``crs`` is only for files that do not declare a coordinate system (a shapefile without
    .prj); ``layer`` picks a layer of a GeoPackage or KML, or a shapefile in a folder or zip.
    Features with empty or non-polygonal geometry are rejected and reported; the caller
    decides whether a layer with ``report.valid`` False may be used. ``id_rule`` (see
    ``geo311.district_ids``) says how the file writes its ids; a district delivered as
    several features with the same id (islands, exclaves, or ids the rule makes one) is
    dissolved into one, and the report notes it on the district's first feature.

    Examples
    --------
    >>> loaded = read_layer("shapefiles/wards_2015_2023", id_field="ward")
    >>> len(loaded.features), loaded.report.source_crs
    (50, 'EPSG:4326')
    """
    path = Path(path)
    given_crs = _parse_crs(crs, f"{path}: --crs") if crs else None
    with ExitStack() as stack:
        dataset, layer_name = locate_dataset(
            path, layer, given_crs is not None, max_unzipped_bytes, stack
        )
        frame = read_frame(path, dataset, layer_name)
    if frame.empty:
        raise LayerError(f"{path} holds no features")
    source_crs = _settle_crs(path, frame, given_crs, crs)
    fields = [str(c) for c in frame.columns if c != frame.geometry.name]
    id_column = (
        _resolve_field(path, fields, id_field, "id")
        if id_field
        else _guess_id_field(path, frame, fields)
    )
    name_column = (
        _resolve_field(path, fields, name_field, "name")
        if name_field
        else next((f for f in fields if _NAME_PATTERN.fullmatch(f.lower())), None)
    )
    rule = parse_id_rule(id_rule, f"{path}: id_rule")
    ids = _district_ids(path, id_column, frame[id_column], rule)
    names: list[str | None] = (
        [as_text(v) for v in frame[name_column]] if name_column else [None] * len(ids))
    try:
        frame = frame.to_crs(4326)
    except Exception as exc:  # pyproj raises several kinds
        raise LayerError(
            f"{path}: could not reproject from {source_crs} to EPSG:4326: {exc}"
        ) from exc
    geoms = shapely.force_2d(frame.geometry.to_numpy())
    _check_coordinates(path, geoms, ids, source_crs)

    kept: list[int] = []
    problems: list[FeatureProblem] = []
    for index, geom in enumerate(geoms):
        fixed, problem = _polygonal(geom)
        number = index + 1
        if problem is not None:
            action = "rejected" if fixed is None else "repaired"
            problems.append(FeatureProblem(number, ids[index], problem, action))
            LOGGER.info("%s: %s feature %d (id %r): %s", path, action, number, ids[index], problem)
        if fixed is not None:
            geoms[index] = fixed
            kept.append(index)
    if not kept:
        listed = "; ".join(f"feature {p.feature}: {p.problem}" for p in problems[:5])
        raise LayerError(f"{path}: no feature has a usable polygon ({listed})")

    written = [as_text(v) for v in frame[id_column]]
    features = _dissolve_parts(kept, ids, names, geoms, written, problems, path)
    overlaps, gaps = layer_quality(features, tolerance_m2)
    report = LayerReport(
        source=str(path),
        source_crs=source_crs,
        feature_count=len(frame),
        id_rule=str(rule),
        bounds=tuple(float(v) for v in features.total_bounds),  # type: ignore[arg-type]
        problems=sorted(problems, key=lambda p: p.feature),
        overlaps=overlaps[:QUALITY_LIST_LIMIT],
        gaps=gaps[:QUALITY_LIST_LIMIT],
        overlap_area_m2=round(sum(o["area_m2"] for o in overlaps), 1),
        gap_area_m2=round(sum(g["area_m2"] for g in gaps), 1),
        overlap_count=len(overlaps),
        gap_count=len(gaps),
    )
    LOGGER.info(
        "%s: %d districts from %d features (%s, id field %r), %d repaired, %d dissolved, "
        "%d rejected, %d overlaps (%.0f m2), %d gaps (%.0f m2)",
        path,
        len(features),
        len(frame),
        source_crs,
        id_column,
        sum(p.action == "repaired" for p in problems),
        sum(p.action == "dissolved" for p in problems),
        sum(p.action == "rejected" for p in problems),
        len(overlaps),
        report.overlap_area_m2,
        len(gaps),
        report.gap_area_m2,
    )
    return LoadedLayer(features=features, report=report)


# --- coordinate systems --------------------------------------------------------------------


def _parse_crs(text: str, where: str) -> CRS:
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise LayerError(
            f"{where} was {text!r} but is expected to be a coordinate system such as EPSG:3435"
        ) from exc


def _crs_label(crs: CRS) -> str:
    """Name a CRS as ``EPSG:nnnn`` where it can be identified, else by its WKT name."""
    authority = crs.to_authority(min_confidence=70)
    return f"{authority[0]}:{authority[1]}" if authority else crs.name


def _settle_crs(path: Path, frame: gpd.GeoDataFrame, given: CRS | None, text: str | None) -> str:
    """Set the CRS a file lacks from ``given``; refuse a file with none or a contradiction."""
    declared = frame.crs
    if declared is None:
        if given is None:
            raise LayerError(
                f"{path} does not say which coordinate system it uses; "
                "pass --crs EPSG:XXXX (for example --crs EPSG:3435, Illinois East, US feet)"
            )
        frame.set_crs(given, inplace=True)
        return _crs_label(given)
    if given is not None and not _same_crs(declared, given):
        raise LayerError(
            f"{path} declares {_crs_label(declared)} but --crs {text} was given; --crs is only "
            "for files without a coordinate system: drop it or fix the file"
        )
    return _crs_label(declared)


def _same_crs(one: CRS, other: CRS) -> bool:
    if one.equals(other, ignore_axis_order=True):
        return True
    code = one.to_epsg(min_confidence=70)
    return code is not None and code == other.to_epsg(min_confidence=70)


def _check_coordinates(path: Path, geoms: np.ndarray, ids: list[str], source_crs: str) -> None:
    bounds = shapely.bounds(geoms)
    present = ~np.isnan(bounds).all(axis=1)  # None and empty geometries are judged later
    with np.errstate(invalid="ignore"):
        bad = present & ~(
            np.isfinite(bounds).all(axis=1)
            & (bounds[:, 0] >= -180)
            & (bounds[:, 2] <= 180)
            & (bounds[:, 1] >= -90)
            & (bounds[:, 3] <= 90)
        )
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        listed = ", ".join(f"{i + 1} (id {ids[i]!r})" for i in np.flatnonzero(bad)[:10])
        raise LayerError(
            f"{path}: feature(s) {listed} have impossible coordinates once read as "
            f"{source_crs} (bounds {tuple(round(float(v), 3) for v in bounds[first])}, "
            "outside lon -180..180 / lat -90..90); is the coordinate system right?"
        )


# --- fields and ids ------------------------------------------------------------------------


def _resolve_field(path: Path, fields: list[str], wanted: str, role: str) -> str:
    if wanted in fields:
        return wanted
    folded = [f for f in fields if f.lower() == wanted.lower()]
    if len(folded) == 1:
        return folded[0]
    raise LayerError(
        f"{path}: {role} field {wanted!r} is not in the file; its fields are: "
        + (", ".join(fields) or "none")
    )


def _guess_id_field(path: Path, frame: gpd.GeoDataFrame, fields: list[str]) -> str:
    ranked = [
        (rank, f)
        for f in fields
        if f.lower() not in _ROW_ID_FIELDS
        for rank, pattern in enumerate(_ID_PATTERNS)
        if pattern.fullmatch(f.lower())
    ]
    candidates = [f for _, f in sorted(ranked, key=lambda item: item[0])]
    for field in dict.fromkeys(candidates):
        values = [as_text(v) for v in frame[field]]
        if None not in values and len(set(values)) == len(values):
            LOGGER.info("%s: using %r as the district id field", path, field)
            return field
    tried = f" ({', '.join(dict.fromkeys(candidates))} are not unique)" if candidates else ""
    raise LayerError(
        f"{path}: could not tell which field holds the district id{tried}; its fields are: "
        f"{', '.join(fields) or 'none'}. Name it with --id-field"
    )


def _district_ids(path: Path, column: str, values: Iterable[Any], rule: IdRule) -> list[str]:
    ids = [as_text(v) for v in values]
    empty = [n for n, v in enumerate(ids, start=1) if v is None]
    if empty:
        raise LayerError(
            f"{path}: id field {column!r} is empty for feature(s) {_numbers(empty)}; "
            "every district needs an id"
        )
    return normalise_ids(ids, rule, f"{path}: id field {column!r}")  # type: ignore[arg-type]


def _dissolve_parts(
    kept: list[int], ids: list[str], names: list[str | None], geoms: np.ndarray,
    written: list[str | None], problems: list[FeatureProblem], path: Path,
) -> gpd.GeoDataFrame:
    """One feature per district id, in the order ids first appear; parts are unioned.

    Cities deliver a district split over islands and exclaves as several features with
    the same id; each such district gets one ``dissolved`` line in the report, on its
    first feature, naming its other features and the ways its id was written.
    """
    parts: dict[str, list[int]] = defaultdict(list)
    for i in kept:
        parts[ids[i]].append(i)
    out_ids, out_names, out_geoms = [], [], []
    for district, members in parts.items():
        out_ids.append(district)
        out_names.append(next((names[i] for i in members if names[i] is not None), None))
        if len(members) == 1:
            out_geoms.append(geoms[members[0]])
            continue
        merged = shapely.union_all(geoms[members])
        out_geoms.append(merged if merged.geom_type in _POLYGONAL else _polygonal(merged)[0])
        forms = sorted({w for w in (written[i] for i in members) if w is not None})
        shown = f"; written {', '.join(repr(f) for f in forms)}" if forms != [district] else ""
        names_seen = sorted({n for n in (names[i] for i in members) if n is not None})
        if len(names_seen) > 1:
            shown += f"; names {', '.join(repr(n) for n in names_seen)}, kept the first"
        problems.append(FeatureProblem(
            members[0] + 1, district,
            f"district delivered as {len(members)} features "
            f"({_numbers([i + 1 for i in members])}){shown}",
            "dissolved",
        ))
        LOGGER.info("%s: dissolved district %r from features %s", path, district,
                    _numbers([i + 1 for i in members]))
    return gpd.GeoDataFrame(
        {
            "district_id": pd.Series(out_ids, dtype=object),
            "name": pd.Series(out_names, dtype=object),
        },
        geometry=gpd.GeoSeries(out_geoms, crs="EPSG:4326"),
    )


def _numbers(numbers: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")



# --- geometry ------------------------------------------------------------------------------


def _polygonal(geom: Any) -> tuple[Any, str | None]:
    """Return the usable polygon of a feature (None if rejected) and the problem found."""
    if geom is None or geom.is_empty:
        return None, "empty geometry"
    kind = geom.geom_type
    if kind not in _POLYGONAL and kind != "GeometryCollection":
        return None, f"not a polygon ({kind})"
    valid = geom.is_valid
    if valid and kind in _POLYGONAL:
        return geom, None
    problem = (
        "geometry collection reduced to its polygons"
        if valid
        else _describe(shapely.is_valid_reason(geom))
    )
    candidate = geom if valid else shapely.make_valid(geom)
    if candidate.geom_type not in _POLYGONAL:
        polygons = [p for p in shapely.get_parts(candidate) if p.geom_type in _POLYGONAL]
        candidate = shapely.union_all(polygons) if polygons else None
    if candidate is None or candidate.is_empty or candidate.area == 0:
        if valid:
            return None, "not a polygon (GeometryCollection without polygons)"
        return None, f"{problem}: no area left after repair"
    return candidate, problem


def _describe(reason: str) -> str:
    """Turn GEOS's "Self-intersection[-87.6 41.8]" into "self-intersection at (-87.6, 41.8)"."""
    match = _REASON.match(reason)
    if not match:
        return reason.lower()
    try:
        x, y = round(float(match["x"]), 6), round(float(match["y"]), 6)
    except ValueError:
        return reason.lower()
    return f"{match['what'].lower()} at ({x}, {y})"
