"""Reference layers for the geocoder, read from the files GIS staff have.

Four kinds: address points (CSV or any GDAL vector file; a full address column or
a house number and street; a point geometry or lon/lat columns), street
intersections (two street names and a point), street centrelines with TIGER/Line
address ranges (``LFROMADD, LTOADD, RFROMADD, RTOADD, FULLNAME``), and
OpenStreetMap XML (named ways: street names and shapes). Column names are detected
from common spellings unless given. Every reader returns a frame ready for the
store, with street names in the normal form of ``geo311.geocoding.parsing``.
"""

from __future__ import annotations

import gzip
import io
import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from geo311.errors import InvalidRequest
from geo311.geocoding.parsing import parse_address, parse_street

LOGGER = logging.getLogger(__name__)

KINDS = ("points", "intersections", "centerlines", "osm")
ADDRESS_COLUMNS = ("address", "full_address", "fulladdress", "street_address", "addr",
                   "site_address", "location_address")
NUMBER_COLUMNS = ("house_number", "housenumber", "number", "addr_num", "add_number", "st_num",
                  "street_number", "address_number", "addr:housenumber")
STREET_COLUMNS = ("street", "street_name", "streetname", "st_name", "full_street",
                  "fullname", "addr:street")
PRE_DIR_COLUMNS = ("pre_dir", "predir", "street_direction", "st_dir", "direction")
ZIP_COLUMNS = ("zip", "zipcode", "zip_code", "postcode", "postal_code", "addr:postcode")
LON_COLUMNS = ("lon", "long", "longitude", "lng", "x")
LAT_COLUMNS = ("lat", "latitude", "y")
STREET_1_COLUMNS = ("street_1", "street1", "st1", "street_a", "from_street", "street")
STREET_2_COLUMNS = ("street_2", "street2", "st2", "street_b", "cross_street", "to_street")
#: Columns of the frames the readers return (and the store keeps), besides the point.
POINT_COLUMNS = ("address", "house_number", "pre_dir", "street_name", "suffix", "zipcode",
                 "lon", "lat")
INTERSECTION_COLUMNS = ("street_1", "street_2", "zipcode", "lon", "lat")
CENTERLINE_COLUMNS = ("street", "l_from", "l_to", "r_from", "r_to", "geometry")
_VECTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".zip", ".kml", ".fgb", ".gml")


def guess_kind(path: Path) -> str:
    """The kind of reference a file most likely holds, from its name and columns."""
    name = path.name.lower()
    if name.endswith((".osm", ".osm.gz")):
        return "osm"
    columns = {c.lower() for c in _columns(path)}
    if {"lfromadd", "rfromadd"} & columns:
        return "centerlines"
    if _find(columns, STREET_2_COLUMNS) and _find(columns, STREET_1_COLUMNS):
        return "intersections"
    return "points"


def read_reference(path: str | Path, kind: str | None = None,
                   columns: dict[str, str] | None = None) -> tuple[str, pd.DataFrame]:
    """Read one reference file; return its kind and its frame.

    Parameters
    ----------
    path : str or Path
        CSV (optionally gzipped), GDAL vector file, or OSM XML (optionally gzipped).
    kind : str, optional
        One of ``KINDS``; detected from the file when not given.
    columns : dict, optional
        Column names chosen by the user, keyed by role (``address``, ``number``,
        ``street``, ``pre_dir``, ``zip``, ``lon``, ``lat``, ``street_1``,
        ``street_2``); the rest is detected.

    Examples
    --------
    >>> kind, frame = read_reference("street_intersections.csv.gz")  # doctest: +SKIP
    >>> kind  # doctest: +SKIP
    'intersections'
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidRequest(f"{path}: no such file")
    kind = kind or guess_kind(path)
    if kind not in KINDS:
        raise InvalidRequest(f"kind was {kind!r} but is expected to be in {KINDS}")
    chosen = {k: v for k, v in (columns or {}).items() if v}
    if kind == "osm":
        return kind, read_osm(path)
    table = _read_table(path)
    if kind == "points":
        return kind, _points(table, chosen, path)
    if kind == "intersections":
        return kind, _intersections(table, chosen, path)
    return kind, _centerlines(table, chosen, path)


def normal_points(addresses: Sequence[str], lon: np.ndarray, lat: np.ndarray,
                  zipcodes: Sequence[str] | None = None) -> pd.DataFrame:
    """Address points in normal form from full address texts; unreadable ones dropped."""
    rows = []
    for i, text in enumerate(addresses):
        parsed = parse_address(text)
        if parsed.kind != "address" or parsed.street is None or parsed.number is None:
            continue
        if not (np.isfinite(lon[i]) and np.isfinite(lat[i])):
            continue
        s = parsed.street
        rows.append((f"{parsed.number} {s.label}", parsed.number, s.pre_dir, s.name, s.suffix,
                     (zipcodes[i] if zipcodes is not None else "") or parsed.zipcode,
                     float(lon[i]), float(lat[i])))
    return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def read_osm(path: Path) -> pd.DataFrame:
    """Named highways of an OSM XML file as centrelines without address ranges."""
    nodes: dict[str, tuple[float, float]] = {}
    rows = []
    try:
        with open_binary(path) as fh:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "node":
                    nodes[elem.get("id", "")] = (float(elem.get("lon", "nan")),
                                                 float(elem.get("lat", "nan")))
                    elem.clear()
                elif elem.tag == "way":
                    tags = {t.get("k"): t.get("v") for t in elem.findall("tag")}
                    if tags.get("highway") and tags.get("name"):
                        coords = [nodes[n.get("ref", "")] for n in elem.findall("nd")
                                  if n.get("ref", "") in nodes]
                        if len(coords) >= 2:
                            rows.append((_osm_street(tags), None, None, None, None,
                                         shapely.LineString(coords)))
                    elem.clear()
    except ET.ParseError as exc:
        raise InvalidRequest(f"{path}: not valid OSM XML: {exc}") from exc
    frame = pd.DataFrame(rows, columns=list(CENTERLINE_COLUMNS))
    return frame[frame["street"] != ""].reset_index(drop=True)


def _osm_street(tags: dict[str | None, str | None]) -> str:
    """A street name in normal form from OSM tags (the name, else the TIGER tags)."""
    named = parse_street(tags.get("name") or "")
    if named is not None and named.pre_dir:
        return named.label
    parts = (tags.get("tiger:name_direction_prefix") or "", tags.get("tiger:name_base") or "",
             tags.get("tiger:name_type") or "")
    tiger = parse_street(" ".join(p for p in parts if p))
    for candidate in (tiger, named):
        if candidate is not None:
            return candidate.label
    return ""


def _points(table: pd.DataFrame, chosen: dict[str, str], path: Path) -> pd.DataFrame:
    lon, lat = _lon_lat(table, chosen, path)
    zips = _column(table, chosen, "zip", ZIP_COLUMNS)
    zip_values = (table[zips].fillna("").astype(str).str.slice(0, 5).tolist() if zips
                  else None)
    address = _column(table, chosen, "address", ADDRESS_COLUMNS)
    number = _column(table, chosen, "number", NUMBER_COLUMNS)
    street = _column(table, chosen, "street", STREET_COLUMNS)
    if number and street and "address" not in chosen:
        pre = _column(table, chosen, "pre_dir", PRE_DIR_COLUMNS)
        parts = [table[number].fillna("").astype(str).str.replace(r"\.0$", "", regex=True)]
        if pre:
            parts.append(table[pre].fillna("").astype(str))
        parts.append(table[street].fillna("").astype(str))
        texts = [" ".join(p for p in row if p) for row in zip(*parts, strict=True)]
    elif address:
        texts = table[address].fillna("").astype(str).tolist()
    else:
        raise InvalidRequest(
            f"{path}: no address column (one of {ADDRESS_COLUMNS}) nor house number and "
            f"street columns; it has {list(table.columns)}; name them with --address-column "
            "or --number-column and --street-column")
    frame = normal_points(texts, lon, lat, zip_values)
    if frame.empty:
        raise InvalidRequest(f"{path}: none of the {len(table)} rows has a readable address "
                             "and a location")
    # The same address in two ZIP codes is two places (streets of one name in two
    # neighbourhoods); the geocoder chooses between them by the ZIP code written.
    return frame.drop_duplicates(["address", "zipcode"]).reset_index(drop=True)


def _intersections(table: pd.DataFrame, chosen: dict[str, str], path: Path) -> pd.DataFrame:
    lon, lat = _lon_lat(table, chosen, path)
    first = _column(table, chosen, "street_1", STREET_1_COLUMNS)
    second = _column(table, chosen, "street_2", STREET_2_COLUMNS)
    if not first or not second:
        raise InvalidRequest(f"{path}: needs two street-name columns (e.g. street_1, street_2);"
                             f" it has {list(table.columns)}")
    zips = _column(table, chosen, "zip", ZIP_COLUMNS)
    labels: dict[str, str] = {}

    def normal(name: str) -> str:
        if name not in labels:
            street = parse_street(name)
            labels[name] = street.label if street is not None else ""
        return labels[name]

    frame = pd.DataFrame({
        "street_1": [normal(str(v)) for v in table[first].fillna("")],
        "street_2": [normal(str(v)) for v in table[second].fillna("")],
        "zipcode": (table[zips].fillna("").astype(str).str.slice(0, 5) if zips else ""),
        "lon": lon, "lat": lat,
    })
    ok = (frame["street_1"] != "") & (frame["street_2"] != "") & np.isfinite(lon) & np.isfinite(
        lat)
    if not ok.any():
        raise InvalidRequest(f"{path}: no row has two readable street names and a location")
    return frame[ok].reset_index(drop=True)


def _centerlines(table: pd.DataFrame, chosen: dict[str, str], path: Path) -> pd.DataFrame:
    if "geometry" not in table:
        raise InvalidRequest(f"{path}: centrelines need line geometry (a GDAL vector file)")
    lower = {c.lower(): c for c in table.columns}
    street = chosen.get("street") or lower.get("fullname") or _find(lower, STREET_COLUMNS)
    if not street:
        raise InvalidRequest(f"{path}: no street name column (FULLNAME); it has "
                             f"{list(table.columns)}")
    street = lower.get(street.lower(), street)
    names: dict[str, str] = {}
    for v in table[street].fillna("").astype(str).unique():
        street_name = parse_street(v)
        names[v] = street_name.label if street_name is not None else ""

    def numbers(name: str) -> pd.Series:
        col = lower.get(name.lower())
        if col is None:
            return pd.Series(np.nan, index=table.index)
        return pd.to_numeric(table[col], errors="coerce")

    geoms = shapely.line_merge(np.asarray(table.geometry.values))
    frame = pd.DataFrame({
        "street": table[street].fillna("").astype(str).map(names),
        "l_from": numbers("LFROMADD"), "l_to": numbers("LTOADD"),
        "r_from": numbers("RFROMADD"), "r_to": numbers("RTOADD"),
        "geometry": list(geoms),
    })
    keep = (frame["street"] != "") & np.array(
        [g is not None and g.geom_type == "LineString" for g in frame["geometry"]])
    return frame[keep].reset_index(drop=True)


def _lon_lat(table: pd.DataFrame, chosen: dict[str, str], path: Path) -> tuple[
        np.ndarray, np.ndarray]:
    lon_col = _column(table, chosen, "lon", LON_COLUMNS)
    lat_col = _column(table, chosen, "lat", LAT_COLUMNS)
    if lon_col and lat_col:
        lon = pd.to_numeric(table[lon_col], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(table[lat_col], errors="coerce").to_numpy(dtype=float)
    elif "geometry" in table:
        geoms = np.asarray(table.geometry.values)
        points = shapely.point_on_surface(geoms)
        lon, lat = shapely.get_x(points), shapely.get_y(points)
    else:
        raise InvalidRequest(f"{path}: no point geometry and no lon/lat columns; it has "
                             f"{list(table.columns)}; name them with --lon-column/--lat-column")
    bad = (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if bad.any():
        raise InvalidRequest(f"{path}: {int(bad.sum())} rows have coordinates that are not "
                             "lon/lat degrees (reproject the file to EPSG:4326)")
    return lon, lat


def _read_table(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        try:
            with open_binary(path) as fh:
                return pd.read_csv(fh, dtype=str, keep_default_na=False,
                                   sep="\t" if name.endswith(".tsv") else ",")
        except (UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise InvalidRequest(f"{path}: not a readable CSV file: {exc}") from exc
    if name.endswith(_VECTOR_SUFFIXES):
        import geopandas as gpd

        try:
            frame = gpd.read_file(path)
        except Exception as exc:  # noqa: BLE001 - GDAL raises many types
            raise InvalidRequest(f"{path}: cannot be read as a vector file: {exc}") from exc
        if frame.crs is None:
            raise InvalidRequest(f"{path}: declares no CRS; give the file a .prj")
        return frame.to_crs("EPSG:4326")
    raise InvalidRequest(f"{path}: unknown file type; expected CSV, a GDAL vector file or OSM")


def _columns(path: Path) -> list[str]:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        with open_binary(path) as fh:
            head = io.TextIOWrapper(fh, encoding="utf-8-sig").readline()  # type: ignore[type-var]
        return [c.strip().strip('"') for c in head.split("\t" if name.endswith(".tsv") else ",")]
    if name.endswith(_VECTOR_SUFFIXES):
        import pyogrio

        try:
            return list(pyogrio.read_info(path)["fields"])
        except Exception:  # noqa: BLE001 - reported when the file is read
            return []
    return []


def open_binary(path: Path) -> io.BufferedIOBase:
    """A file opened for reading, gunzipped on the fly when it is gzip."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")  # noqa: SIM115 - closed by the caller


def _find(columns: object, candidates: Sequence[str]) -> str | None:
    names = {str(c).lower(): str(c) for c in columns}  # type: ignore[attr-defined]
    for c in candidates:
        if c in names:
            return names[c]
    return None


def _column(table: pd.DataFrame, chosen: dict[str, str], role: str,
            candidates: Sequence[str]) -> str | None:
    if role in chosen:
        if chosen[role] not in table.columns:
            raise InvalidRequest(f"column {chosen[role]!r} given for {role} is not in the file; "
                                 f"it has {list(table.columns)}")
        return chosen[role]
    return _find(table.columns, candidates)


def learned_points(trusted: pd.DataFrame) -> pd.DataFrame:
    """One address point per distinct address of ``address, zipcode, lon, lat`` rows.

    The point is the median of the rows' points; addresses written differently that
    read the same (``4853 S WOOD``, ``4853 S Wood St``) are one address.
    """
    if trusted.empty:
        return pd.DataFrame(columns=list(POINT_COLUMNS))
    grouped = trusted.groupby("address", sort=False).agg(
        lon=("lon", "median"), lat=("lat", "median"), zipcode=("zipcode", "first"))
    points = normal_points(grouped.index.tolist(), grouped["lon"].to_numpy(float),
                           grouped["lat"].to_numpy(float), grouped["zipcode"].tolist())
    points = points.groupby("address", sort=False, as_index=False).agg(
        {**{c: "first" for c in POINT_COLUMNS if c not in ("address", "lon", "lat")},
         "lon": "median", "lat": "median"})
    return pd.concat([points, _apart_by_zip(trusted)], ignore_index=True)


#: ZIP-code groups of one address farther apart than this are different places.
APART_M = 150.0


def _apart_by_zip(trusted: pd.DataFrame) -> pd.DataFrame:
    """Extra points for addresses that name two places: same text, ZIP codes far apart.

    A city with one MAIN ST per neighbourhood writes "29 MAIN ST" for each; the learned
    point of the address (its first row) is kept, and each other ZIP code's rows give
    one more point with that ZIP code, so a ZIP code or neighbourhood written in an
    address finds its own.
    """
    rows = trusted[trusted["zipcode"].fillna("").astype(str).str.len() > 0]
    if rows.empty:
        return pd.DataFrame(columns=list(POINT_COLUMNS))
    by_zip = rows.assign(zipcode=rows["zipcode"].astype(str).str[:5]).groupby(
        ["address", "zipcode"], sort=False, as_index=False).agg(
        lon=("lon", "median"), lat=("lat", "median"))
    repeated = by_zip["address"].duplicated(keep=False).to_numpy()
    if not repeated.any():
        return pd.DataFrame(columns=list(POINT_COLUMNS))
    by_zip = by_zip[repeated]
    groups = by_zip.groupby("address")
    spread_y = (groups["lat"].transform("max") - groups["lat"].transform("min")) * 111_132
    spread_x = (groups["lon"].transform("max") - groups["lon"].transform("min")) * (
        111_132 * np.cos(np.radians(by_zip["lat"].to_numpy(float))))
    apart = by_zip[np.hypot(spread_y, spread_x).to_numpy() > APART_M]
    if apart.empty:
        return pd.DataFrame(columns=list(POINT_COLUMNS))
    points = normal_points(apart["address"].tolist(), apart["lon"].to_numpy(float),
                           apart["lat"].to_numpy(float), apart["zipcode"].tolist())
    return points.drop_duplicates(["address", "zipcode"])


def learned_intersections(trusted: pd.DataFrame) -> pd.DataFrame:
    """One intersection per pair of streets among ``address, zipcode, lon, lat`` rows.

    Rows whose address reads as an intersection count; ``A & B`` and ``B & A`` are one
    pair, placed at the median of its rows' points.

    Examples
    --------
    >>> learned_intersections(pd.DataFrame({"address": ["Main St & Elm St",
    ...     "INTERSECTION of ELM STREET and MAIN STREET", "29 MAIN ST"],
    ...     "zipcode": ["01103", "01103", ""], "lon": [-72.5, -72.7, -72.0],
    ...     "lat": [42.1, 42.1, 42.0]})).to_dict("records")
    [{'street_1': 'ELM ST', 'street_2': 'MAIN ST', 'zipcode': '01103', 'lon': -72.6, 'lat': 42.1}]
    """
    if trusted.empty:
        return pd.DataFrame(columns=list(INTERSECTION_COLUMNS))
    pairs: dict[str, tuple[str, str] | None] = {}
    for address in pd.unique(trusted["address"].astype(str)):
        parsed = parse_address(address)
        if parsed.kind == "intersection" and parsed.street and parsed.cross:
            a, b = sorted((parsed.street.label, parsed.cross.label))
            pairs[address] = (a, b) if a != b else None
    found = trusted[trusted["address"].astype(str).map(lambda a: pairs.get(a) is not None)]
    found = found[np.isfinite(found["lon"].astype(float)) & np.isfinite(found["lat"].astype(float))]
    if found.empty:
        return pd.DataFrame(columns=list(INTERSECTION_COLUMNS))
    streets = [pairs[a] for a in found["address"].astype(str)]
    frame = pd.DataFrame({"street_1": [p[0] for p in streets if p],
                          "street_2": [p[1] for p in streets if p],
                          "zipcode": found["zipcode"].fillna("").astype(str).to_numpy(),
                          "lon": found["lon"].astype(float).to_numpy(),
                          "lat": found["lat"].astype(float).to_numpy()})
    return frame.groupby(["street_1", "street_2"], sort=True, as_index=False).agg(
        zipcode=("zipcode", "first"), lon=("lon", "median"), lat=("lat", "median"))[
        list(INTERSECTION_COLUMNS)]
