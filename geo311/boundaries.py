"""Read a boundary layer from a GIS file and check it before districts are assigned with it.

GIS staff deliver layers as shapefiles (loose, in a folder or zipped), GeoJSON, GeoPackage or
KML. Everything is read through GDAL (pyogrio), refused with a precise ``LayerError`` when it
cannot be used as it is, repaired where the repair is unambiguous, and reported feature by
feature, so that staff can decide whether to activate the layer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import re
import stat
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo311.errors import LayerError

LOGGER = logging.getLogger(__name__)

#: What each accepted file extension holds, for messages.
FORMATS = {
    ".shp": "ESRI Shapefile",
    ".zip": "zipped ESRI Shapefile",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".kml": "KML",
}
SUPPORTED_FORMATS = (
    "an ESRI Shapefile (a folder, a .shp with its .shx, .dbf and .prj, or a .zip of them), "
    "GeoJSON (.geojson, .json), GeoPackage (.gpkg) or KML (.kml)"
)
#: The shapefile parts GDAL reads data from; spatial indexes (.qix, .sbn) are left out.
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
#: How many overlaps and gaps a report lists; its totals count them all.
QUALITY_LIST_LIMIT = 100

_POLYGONAL = ("Polygon", "MultiPolygon")
_REQUIRED_PARTS = {".shx": "shape index", ".dbf": "attribute table"}
_ROW_ID_FIELDS = {"fid", "gid", "objectid", "ogc_fid", "globalid", "shape_id"}
_ID_PATTERNS = (  # best first
    re.compile(r"id"),
    re.compile(r".+_id|id_.+"),
    re.compile(r"code|.+_code"),
    re.compile(r"(.+_)?(number|numbe|numb|num|no)"),
)
_NAME_PATTERN = re.compile(r"name|label|.+_name|.+_label")
_REASON = re.compile(r"^(?P<what>.*?)\s*\[(?P<x>\S+) (?P<y>\S+)\]$")
_CHUNK_BYTES = 1 << 20


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
    #: Features reaching beyond the active service area by more than ``outside_tolerance_m2``
    #: (filled in when the layer is loaded while a service-area layer is active).
    service_area: str | None = None
    outside: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    outside_area_m2: float = 0.0
    outside_tolerance_m2: float = 0.0

    @property
    def valid(self) -> bool:
        """Whether every feature of the source made it into the layer."""
        return not any(p.action == "rejected" for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready values."""
        data = asdict(self)
        data["bounds"] = list(self.bounds)
        data["valid"] = self.valid
        return data


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
    max_unzipped_bytes: int = 500 * 1024 * 1024,
    tolerance_m2: float = 1.0,
) -> LoadedLayer:
    """Read a boundary file into one polygon per district, with a report on its quality.

    ``crs`` is only for files that do not declare a coordinate system (a shapefile without
    .prj); ``layer`` picks a layer of a GeoPackage or KML, or a shapefile in a folder or zip.
    Features with empty or non-polygonal geometry are rejected and reported; the caller
    decides whether a layer with ``report.valid`` False may be used.

    Examples
    --------
    >>> loaded = read_layer("shapefiles/wards_2015_2023", id_field="ward")
    >>> len(loaded.features), loaded.report.source_crs
    (50, 'EPSG:4326')
    """
    path = Path(path)
    given_crs = _parse_crs(crs, f"{path}: --crs") if crs else None
    with ExitStack() as stack:
        dataset, layer_name = _locate_dataset(
            path, layer, given_crs is not None, max_unzipped_bytes, stack
        )
        frame = _read_frame(path, dataset, layer_name)
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
    ids = _district_ids(path, id_column, frame[id_column])
    names = [_as_text(v) for v in frame[name_column]] if name_column else [None] * len(ids)
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

    features = gpd.GeoDataFrame(
        {
            "district_id": pd.Series([ids[i] for i in kept], dtype=object),
            "name": pd.Series([names[i] for i in kept], dtype=object),
        },
        geometry=gpd.GeoSeries(geoms[kept], crs="EPSG:4326"),
    )
    overlaps, gaps = layer_quality(features, tolerance_m2)
    report = LayerReport(
        source=str(path),
        source_crs=source_crs,
        feature_count=len(frame),
        bounds=tuple(float(v) for v in features.total_bounds),  # type: ignore[arg-type]
        problems=problems,
        overlaps=overlaps[:QUALITY_LIST_LIMIT],
        gaps=gaps[:QUALITY_LIST_LIMIT],
        overlap_area_m2=round(sum(o["area_m2"] for o in overlaps), 1),
        gap_area_m2=round(sum(g["area_m2"] for g in gaps), 1),
        overlap_count=len(overlaps),
        gap_count=len(gaps),
    )
    LOGGER.info(
        "%s: %d districts from %d features (%s, id field %r), %d repaired, %d rejected, "
        "%d overlaps (%.0f m2), %d gaps (%.0f m2)",
        path,
        len(features),
        len(frame),
        source_crs,
        id_column,
        sum(p.action == "repaired" for p in problems),
        sum(p.action == "rejected" for p in problems),
        len(overlaps),
        report.overlap_area_m2,
        len(gaps),
        report.gap_area_m2,
    )
    return LoadedLayer(features=features, report=report)


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
    projected = features.to_crs(utm)
    area_utm = gpd.GeoSeries([area], crs=4326).to_crs(utm).iloc[0]
    beyond = shapely.difference(projected.geometry.to_numpy(), area_utm)
    outside_m2 = shapely.area(beyond)
    whole_m2 = shapely.area(projected.geometry.to_numpy())
    picks = np.flatnonzero(outside_m2 > tolerance_m2)
    if not len(picks):
        return []
    inside = gpd.GeoSeries(shapely.point_on_surface(beyond[picks]), crs=utm).to_crs(4326)
    items = [
        {
            "district_id": str(features["district_id"].iloc[i]),
            "name": _as_text(features["name"].iloc[i]),
            "outside_m2": round(float(outside_m2[i]), 1),
            "share": round(float(outside_m2[i] / whole_m2[i]), 4) if whole_m2[i] else 1.0,
            "lon": round(float(point.x), 6),
            "lat": round(float(point.y), 6),
        }
        for i, point in zip(picks, inside, strict=True)
    ]
    return sorted(items, key=lambda item: -item["outside_m2"])


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
            holes, [sorted(around[h], key=_natural_key) for h in range(len(holes))], utm_crs
        )
    return overlaps, gaps


def checksum(path: str | Path) -> str:
    """Fingerprint a boundary file so a reloaded layer can be recognised.

    A plain file gives the sha256 of its bytes. A shapefile gives one digest over its parts
    (.shp .shx .dbf .prj .cpg), ordered by file name, whether it is passed as the .shp, its
    folder or a zip of it, so re-zipping does not change it. Call it on files `read_layer`
    accepted: it does not re-check zip sizes.

    Examples
    --------
    >>> len(checksum("shapefiles/wards_2023/wards_2023.shp"))
    64
    """
    path = Path(path)
    if not path.exists():
        raise LayerError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".shp":
        folder, stem = (path, None) if path.is_dir() else (path.parent, path.stem)
        parts = sorted(
            p.name
            for p in folder.iterdir()
            if p.is_file()
            and p.suffix.lower() in SHAPEFILE_PARTS
            and (stem is None or p.stem == stem)
        )
        return _combined_digest((name, (folder / name).open("rb")) for name in parts)
    if suffix == ".zip" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = sorted(
                (PurePosixPath(info.filename).name, info.filename)
                for info in archive.infolist()
                if not info.is_dir()
                and not _is_junk(info.filename)
                and PurePosixPath(info.filename).suffix.lower() in SHAPEFILE_PARTS
            )
            return _combined_digest((name, archive.open(member)) for name, member in members)
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _combined_digest(members: Iterable[tuple[str, Any]]) -> str:
    """Hash each member's name and content digest, so moving bytes between files counts."""
    digest = hashlib.sha256()
    for name, handle in members:
        with handle:
            inner = hashlib.file_digest(handle, "sha256").digest()
        digest.update(name.encode("utf-8") + b"\0" + inner)
    return digest.hexdigest()


# --- finding the dataset -------------------------------------------------------------------


def _locate_dataset(
    path: Path, layer: str | None, have_crs: bool, max_unzipped_bytes: int, stack: ExitStack
) -> tuple[Path, str | None]:
    """Return the file GDAL should open and the layer in it; unzip into a scratch folder."""
    if not path.exists():
        raise LayerError(f"{path} does not exist")
    if path.is_dir():
        shp = _pick_shapefile(path, path.iterdir(), layer)
        _check_shapefile_parts(path, shp, have_crs)
        return shp, None
    suffix = path.suffix.lower()
    if suffix == ".zip":
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="geo311-layer-")))
        _extract_zip(path, folder, max_unzipped_bytes)
        shp = _pick_shapefile(path, folder.rglob("*"), layer)
        _check_shapefile_parts(path, shp, have_crs)
        return shp, None
    if suffix == ".shp":
        _check_shapefile_parts(path, path, have_crs)
        return path, None
    if suffix in FORMATS:
        if suffix == ".kml" and not {"KML", "LIBKML"} & set(pyogrio.list_drivers()):
            raise LayerError(f"{path}: this GDAL build has no KML driver; convert it to GeoJSON")
        return path, _pick_layer(path, layer)
    raise LayerError(
        f"{path} is not a boundary file geo311 can read (extension "
        f"{suffix or 'none'!r}); expected {SUPPORTED_FORMATS}"
    )


def _is_junk(name: str) -> bool:
    """Whether a zip member is macOS metadata (``__MACOSX/``, ``._x.shp``), not data."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return "__MACOSX" in parts or PurePosixPath(name).name.startswith("._")


def _pick_shapefile(shown: Path, candidates: Iterable[Path], layer: str | None) -> Path:
    shapefiles = sorted(
        p
        for p in candidates
        if p.is_file() and p.suffix.lower() == ".shp" and not _is_junk(p.as_posix())
    )
    if not shapefiles:
        raise LayerError(f"{shown} holds no .shp file; expected {SUPPORTED_FORMATS}")
    if layer is not None:
        chosen = [p for p in shapefiles if p.stem.lower() == layer.lower()]
        if not chosen:
            raise LayerError(
                f"{shown} has no shapefile named {layer!r}; it has: "
                + ", ".join(p.stem for p in shapefiles)
            )
        return chosen[0]
    if len(shapefiles) > 1:
        raise LayerError(
            f"{shown} holds {len(shapefiles)} shapefiles ("
            + ", ".join(p.stem for p in shapefiles)
            + "); choose one with --layer"
        )
    return shapefiles[0]


def _check_shapefile_parts(shown: Path, shp: Path, have_crs: bool) -> None:
    present = {p.suffix.lower() for p in shp.parent.iterdir() if p.stem == shp.stem}
    label = f"{shown}" if shown == shp else f"{shown}: shapefile {shp.name}"
    for suffix, what in _REQUIRED_PARTS.items():
        if suffix not in present:
            raise LayerError(f"{label} is missing its {suffix} ({what}); send all its files")
    if ".prj" not in present and not have_crs:
        raise LayerError(
            f"{label} has no .prj, so its coordinate system is unknown; include the .prj or "
            "pass --crs EPSG:XXXX (for example --crs EPSG:3435, Illinois East, US feet)"
        )


def _extract_zip(archive: Path, folder: Path, max_unzipped_bytes: int) -> None:
    """Unpack ``archive`` into ``folder``, refusing anything that could escape or explode."""
    if not zipfile.is_zipfile(archive):
        raise LayerError(f"{archive} has a .zip extension but is not a zip archive")
    root = folder.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member(archive, info)
            files = [i for i in members if not i.is_dir()]
            declared = sum(i.file_size for i in files)
            if declared > max_unzipped_bytes:
                raise LayerError(
                    f"{archive} would expand to {declared:,} bytes, more than the "
                    f"{max_unzipped_bytes:,} allowed"
                )
            written = 0
            for info in files:
                target = root.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
                if not target.resolve().is_relative_to(root):
                    raise LayerError(f"{archive}: entry {info.filename!r} points outside the zip")
                target.parent.mkdir(parents=True, exist_ok=True)
                # zipfile stops at each declared size; counting keeps the limit whatever
                # the archive claims
                with zf.open(info) as source, target.open("wb") as sink:
                    while chunk := source.read(_CHUNK_BYTES):
                        written += len(chunk)
                        if written > max_unzipped_bytes:
                            raise LayerError(
                                f"{archive} expands to more than the {max_unzipped_bytes:,} "
                                "bytes allowed"
                            )
                        sink.write(chunk)
    except (zipfile.BadZipFile, NotImplementedError, EOFError) as exc:
        raise LayerError(f"{archive} is a damaged or unsupported zip archive: {exc}") from exc


def _check_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise LayerError(f"{archive}: entry {info.filename!r} is an absolute path; refused")
    if ".." in name.split("/"):
        raise LayerError(f"{archive}: entry {info.filename!r} points outside the zip; refused")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise LayerError(f"{archive}: entry {info.filename!r} is a symbolic link; refused")
    if info.flag_bits & 0x1:
        raise LayerError(f"{archive}: entry {info.filename!r} is encrypted; send it unencrypted")


def _pick_layer(path: Path, layer: str | None) -> str | None:
    try:
        listed = pyogrio.list_layers(path)
    except (RuntimeError, ValueError) as exc:  # pyogrio's errors are RuntimeErrors
        raise LayerError(
            f"{path} could not be read as {FORMATS[path.suffix.lower()]}: {exc}"
        ) from exc
    names = [str(name) for name, geometry_type in listed if geometry_type is not None]
    if layer is not None:
        if layer not in names:
            raise LayerError(
                f"{path} has no layer {layer!r}; its layers are: {', '.join(names) or 'none'}"
            )
        return layer
    if not names:
        raise LayerError(f"{path} has no layer with geometries")
    if len(names) > 1:
        raise LayerError(
            f"{path} holds {len(names)} layers ({', '.join(names)}); choose one with --layer"
        )
    return names[0]


def _read_frame(shown: Path, dataset: Path, layer: str | None) -> gpd.GeoDataFrame:
    kind = FORMATS.get(dataset.suffix.lower(), "a GIS file")
    try:
        frame = pyogrio.read_dataframe(dataset, layer=layer)
    except (RuntimeError, ValueError) as exc:  # pyogrio's errors are RuntimeErrors
        raise LayerError(f"{shown} could not be read as {kind}: {exc}") from exc
    if not isinstance(frame, gpd.GeoDataFrame):
        raise LayerError(f"{shown} has no geometry column (read as {kind})")
    return frame


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


def _as_text(value: Any) -> str | None:
    """Turn a field value into text, reading 35.0 as "35" (numeric DBF fields)."""
    missing = pd.isna(value)
    if value is None or (isinstance(missing, bool | np.bool_) and missing):
        return None
    if isinstance(value, float | np.floating) and math.isfinite(value) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


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
        values = [_as_text(v) for v in frame[field]]
        if None not in values and len(set(values)) == len(values):
            LOGGER.info("%s: using %r as the district id field", path, field)
            return field
    tried = f" ({', '.join(dict.fromkeys(candidates))} are not unique)" if candidates else ""
    raise LayerError(
        f"{path}: could not tell which field holds the district id{tried}; its fields are: "
        f"{', '.join(fields) or 'none'}. Name it with --id-field"
    )


def _district_ids(path: Path, column: str, values: Iterable[Any]) -> list[str]:
    ids = [_as_text(v) for v in values]
    empty = [n for n, v in enumerate(ids, start=1) if v is None]
    if empty:
        raise LayerError(
            f"{path}: id field {column!r} is empty for feature(s) {_numbers(empty)}; "
            "every district needs an id"
        )
    where: dict[str, list[int]] = defaultdict(list)
    for n, v in enumerate(ids, start=1):
        where[v].append(n)  # type: ignore[index]
    repeated = {v: ns for v, ns in where.items() if len(ns) > 1}
    if repeated:
        listed = "; ".join(f"{v!r} at features {_numbers(ns)}" for v, ns in repeated.items())
        raise LayerError(
            f"{path}: id field {column!r} is not unique: {listed}. Each district must be one "
            f"feature: merge its parts first (dissolve by {column})"
        )
    return ids  # type: ignore[return-value]


def _numbers(numbers: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f" and {len(numbers) - limit} more" if len(numbers) > limit else "")


def _natural_key(text: str) -> tuple[Any, ...]:
    """Sort "2" before "10"."""
    return tuple(
        (0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.findall(r"\d+|\D+", text)
    )


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
