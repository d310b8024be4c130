"""OGC API - Features, Part 1 Core, as plain documents: what ``/ogc`` serves, without HTTP.

Three kinds of collection: public requests (only public fields; never reporters),
each active boundary layer, and counts of requests per H3 cell at a few resolutions.
Every function here returns JSON-ready values; ``web/ogc.py`` only adapts them to
HTTP, so the paging, bbox and datetime rules are tested without a server.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import h3
import numpy as np
import pandas as pd

from geo311.errors import InvalidRequest, NotFound
from geo311.hotspots import cells_of
from geo311.model import STATUSES, ServiceRequest
from geo311.privacy import mask_request
from geo311.store import Store

LOGGER = logging.getLogger(__name__)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
#: H3 resolutions served as collections: about 5 km², 0.7 km² and 0.1 km² cells.
H3_RESOLUTIONS = (7, 8, 9)
REQUESTS = "requests"
_COMMON_PARAMS = ("f", "limit", "offset", "bbox", "bbox-crs")
#: Request ids are a 32-bit integer column on PostgreSQL; larger ids cannot exist.
MAX_REQUEST_ID = 2**31 - 1
#: Offsets are served from Python once past the matches, but never held as huge ints.
MAX_OFFSET = 2**63 - 1
#: The calendar's ends as UTC instants: an interval end beyond them is open.
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
#: What ``parse_datetime`` answers for times wholly outside the calendar: matches nothing.
NEVER = (LATEST, EARLIEST)
#: More service codes than any catalogue holds is a malformed query, not a filter.
MAX_SERVICE_CODES = 1000
_WHOLE = re.compile(r"-?[0-9]+")
_REQUEST_ID = re.compile(r"0|[1-9][0-9]{0,9}")
_H3_CELL = re.compile(r"[0-9a-f]{15,16}")


@dataclass(frozen=True)
class Collection:
    """One collection: ``kind`` is ``requests``, ``layer`` or ``h3``."""

    id: str
    title: str
    description: str
    kind: str
    bbox: tuple[float, float, float, float] | None
    interval: tuple[datetime | None, datetime | None] | None = None
    h3_resolution: int | None = None

    @property
    def params(self) -> tuple[str, ...]:
        """The query parameters its items accept (others are refused with 400)."""
        if self.kind == "requests":
            return (*_COMMON_PARAMS, "datetime", "status", "service_code")
        return (*_COMMON_PARAMS, "datetime")


# --- parameters ----------------------------------------------------------------------------


def _shown(text: str) -> str:
    """``text`` as quoted in an error message, cut short when it is long."""
    if len(text) <= 60:
        return repr(text)
    return f"{text[:40]!r}… ({len(text):,} characters)"


def check_params(args: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    """Refuse query parameters this resource does not define (OGC: 400, not ignored)."""
    unknown = sorted(k for k in args if k not in allowed)
    if unknown:
        shown = [k if len(k) <= 60 else _shown(k) for k in unknown[:10]]
        raise InvalidRequest(
            f"unknown query parameter(s) {shown}; this resource takes {list(allowed)}")


def query_args(args: Mapping[str, Sequence[str]], allowed: tuple[str, ...]) -> dict[str, str]:
    """Every parameter once: unknown ones and ones given twice are refused with 400.

    ``args`` maps each name to every value it came with, as a query string holds them.

    Examples
    --------
    >>> query_args({"limit": ["5"]}, ("limit",))
    {'limit': '5'}
    """
    check_params(args, allowed)
    for name, values in args.items():
        if len(values) > 1:
            shown = [_shown(v) for v in values[:3]]
            raise InvalidRequest(
                f"{name} was given {len(values)} times ({', '.join(shown)}"
                f"{', …' if len(values) > 3 else ''}) but takes one value")
    return {name: values[0] for name, values in args.items() if values}


def parse_limit(text: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """``limit``: a whole number from 1; values above ``maximum`` are served as ``maximum``.

    Examples
    --------
    >>> parse_limit("50"), parse_limit(None), parse_limit("99999")
    (50, 100, 10000)
    """
    if text is None or text == "":
        return default
    return _whole_number("limit", text, 1, "at least 1", maximum)


def parse_offset(text: str | None) -> int:
    """``offset``: a whole number from 0 (how many matching features to skip).

    Offsets beyond ``MAX_OFFSET`` are served as ``MAX_OFFSET``: past every match
    either way, so the page is empty and ``numberMatched`` still counts them all.
    """
    if text is None or text == "":
        return 0
    return _whole_number("offset", text, 0, "0 or more", MAX_OFFSET)


def _whole_number(name: str, text: str, least: int, wording: str, most: int) -> int:
    """Digits only (ASCII, optional minus), read without ever parsing a huge string."""
    if not _WHOLE.fullmatch(text):
        raise InvalidRequest(f"{name} was {_shown(text)} but is expected to be a whole number")
    digits = text.lstrip("-").lstrip("0") or "0"
    if text.startswith("-") and digits != "0":
        raise InvalidRequest(f"{name} was {_shown(text)} but is expected to be {wording}")
    if len(digits) > len(str(most)):
        return most
    value = int(digits)
    if value < least:
        raise InvalidRequest(f"{name} was {_shown(text)} but is expected to be {wording}")
    return min(value, most)


def parse_bbox(
    text: str | None, crs: str | None = None
) -> tuple[float, float, float, float] | None:
    """``bbox=minlon,minlat,maxlon,maxlat`` (or six numbers with heights) in CRS84.

    ``minlon > maxlon`` is a box across the antimeridian (``bbox_parts`` splits it).

    Examples
    --------
    >>> parse_bbox("-87.7,41.8,-87.6,41.9")
    (-87.7, 41.8, -87.6, 41.9)
    >>> parse_bbox("170,-10,-170,10")
    (170.0, -10.0, -170.0, 10.0)
    """
    if crs not in (None, "", CRS84):
        raise InvalidRequest(f"bbox-crs was {_shown(crs)} but only {CRS84} is supported")
    if text is None or text == "":
        return None
    wanted = "4 numbers: minlon,minlat,maxlon,maxlat (or 6 with heights)"
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise InvalidRequest(f"bbox was {_shown(text)} but is expected to be {wanted}")
    try:
        values = [float(v) for v in parts]
    except ValueError as exc:
        raise InvalidRequest(f"bbox was {_shown(text)} but is expected to be {wanted}") from exc
    if not all(math.isfinite(v) for v in values):
        raise InvalidRequest(f"bbox was {_shown(text)} but is expected to be {wanted}")
    if len(values) == 6:
        if values[2] > values[5]:
            raise InvalidRequest(f"bbox was {_shown(text)}: the lower height is above the upper")
        values = [values[0], values[1], values[3], values[4]]
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidRequest(
            f"bbox was {_shown(text)}: longitudes must be within ±180, latitudes within ±90 "
            "and minlat <= maxlat")
    return minx, miny, maxx, maxy


def bbox_parts(
    bbox: tuple[float, float, float, float],
) -> list[tuple[float, float, float, float]]:
    """A bbox as boxes that do not cross the antimeridian: itself, or its two halves.

    Examples
    --------
    >>> bbox_parts((170, -10, -170, 10))
    [(170, -10, 180.0, 10), (-180.0, -10, -170, 10)]
    """
    minx, miny, maxx, maxy = bbox
    if minx <= maxx:
        return [bbox]
    return [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]


def parse_datetime(text: str | None) -> tuple[datetime | None, datetime | None]:
    """``datetime``: an RFC 3339 instant, or an interval ``start/end`` with ``..`` open ends.

    Times without an offset are refused (RFC 3339 requires one). Times beyond the
    calendar (before 0001-01-01 or after 9999-12-31 in UTC, as ``+14:00`` and
    ``-14:00`` offsets can make them) are applied, not refused: a start before the
    calendar or an end after it is an open end; an instant, a start after it or an
    end before it matches nothing and comes back as ``NEVER`` (start after end).
    ``../..`` is every time.

    Examples
    --------
    >>> parse_datetime("2021-01-01T00:00:00Z/..")[0].isoformat()
    '2021-01-01T00:00:00+00:00'
    >>> parse_datetime("0001-01-01T00:00:00+14:00/..")
    (None, None)
    """
    if text is None or text == "":
        return None, None
    if "/" not in text:
        side, instant = _instant(text, text)
        return NEVER if side else (instant, instant)
    first, _, second = text.partition("/")
    start = None if first in ("", "..") else _instant(first, text)
    end = None if second in ("", "..") else _instant(second, text)
    if start is not None and end is not None and start > end:  # sides order the ends too
        raise InvalidRequest(f"datetime was {_shown(text)}: the start is after the end")
    if (start is not None and start[0] > 0) or (end is not None and end[0] < 0):
        return NEVER
    return (None if start is None or start[0] < 0 else start[1],
            None if end is None or end[0] > 0 else end[1])


def _instant(value: str, whole: str) -> tuple[int, datetime]:
    """``(0, the time in UTC)``, or ``(-1, EARLIEST)``/``(1, LATEST)`` beyond the calendar."""
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise InvalidRequest(
            f"datetime was {_shown(whole)} but is expected to be RFC 3339, e.g. "
            "2021-01-01T00:00:00Z or 2021-01-01T00:00:00Z/2021-01-02T00:00:00Z") from exc
    if parsed.tzinfo is None:
        if len(value) == 10:  # a bare date: the whole UTC day's start
            return 0, parsed.replace(tzinfo=UTC)
        raise InvalidRequest(f"datetime was {_shown(whole)}: give a UTC offset, e.g. Z or -06:00")
    try:
        return 0, parsed.astimezone(UTC)
    except OverflowError:  # only within a day of the calendar's ends
        return (-1, EARLIEST) if parsed.year == 1 else (1, LATEST)


# --- H3 aggregates -------------------------------------------------------------------------


def cell_counts(points: pd.DataFrame, h3_resolution: int) -> pd.DataFrame:
    """Count requests per H3 cell: ``cell, requests, reports, open``, most reports first.

    ``points`` are group leaders (``duplicate_of`` NULL) with ``lon, lat,
    reporter_count, status``: ``requests`` counts them, ``reports`` weights each by
    its reporter count (the leader plus its duplicates), ``open`` counts open ones.
    """
    if points.empty:
        return pd.DataFrame({"cell": [], "requests": [], "reports": [], "open": []})
    frame = pd.DataFrame({
        "cell": [h3.int_to_str(int(c)) for c in
                 cells_of(points["lon"].to_numpy(float), points["lat"].to_numpy(float),
                          h3_resolution)],
        "reports": points["reporter_count"].astype(int).to_numpy(),
        "open": (points["status"] == "open").astype(int).to_numpy(),
    })
    out = frame.groupby("cell").agg(requests=("reports", "size"), reports=("reports", "sum"),
                                    open=("open", "sum")).reset_index()
    return out.sort_values(["reports", "cell"], ascending=[False, True]).reset_index(drop=True)


def _cell_polygon(cell: str) -> dict[str, Any]:
    ring = [[round(lng, 7), round(lat, 7)] for lat, lng in h3.cell_to_boundary(cell)]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


# --- collections ---------------------------------------------------------------------------


def list_collections(store: Store) -> list[Collection]:
    """Public requests, each active boundary layer, and the H3 aggregates."""
    box, span = store.requests.extent()
    out = [Collection(REQUESTS, "Service requests",
                      "Public 311 service requests: service, status, address, times and "
                      "districts. No personal data.", "requests", box, span)]
    since: dict[str, datetime | None] = {}
    for layer, _version, valid_from, _valid_to in store.layers.validity():
        since.setdefault(layer, valid_from)  # periods come earliest first
    for v in store.layers.versions(active_only=True):
        bounds = v.report.get("bounds")
        out.append(Collection(
            v.layer, v.title or v.layer,
            f"Boundary layer {v.layer}, version {v.version} ({v.feature_count} districts, "
            f"loaded from {v.source_file}); with datetime, the version in force then",
            "layer", tuple(bounds) if isinstance(bounds, list) else None,  # type: ignore[arg-type]
            (since.get(v.layer), None)))
    for res in H3_RESOLUTIONS:
        out.append(Collection(
            f"requests_h3_r{res}", f"Requests per H3 cell, resolution {res}",
            f"Requests counted per H3 cell of resolution {res}: duplicates count once, "
            "in the reporter count of the request they joined", "h3", box, span, res))
    return out


def find_collection(store: Store, collection_id: str) -> Collection:
    """One collection by id; ``NotFound`` names the ones there are."""
    collections = list_collections(store)
    for c in collections:
        if c.id == collection_id:
            return c
    raise NotFound(f"collection {_shown(collection_id)} does not exist; there are "
                   f"{[c.id for c in collections]}")


# --- documents -----------------------------------------------------------------------------


def _link(href: str, rel: str, type_: str, title: str = "") -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


def landing_page(base: str, title: str = "geo311") -> dict[str, Any]:
    """The landing page: links to the API definition, conformance and collections."""
    return {
        "title": f"{title} OGC API - Features",
        "description": "City 311 service requests, boundary layers and request counts per "
                       "H3 cell, for GIS clients such as QGIS.",
        "links": [
            _link(f"{base}?f=json", "self", JSON, "this document"),
            _link(f"{base}?f=html", "alternate", HTML, "this document as HTML"),
            _link(f"{base}/api", "service-desc", OPENAPI, "the API definition"),
            _link(f"{base}/api?f=html", "service-doc", HTML, "the API documentation"),
            _link(f"{base}/conformance", "conformance", JSON, "conformance classes"),
            _link(f"{base}/conformance", "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                  JSON, "conformance classes"),
            _link(f"{base}/collections", "data", JSON, "the collections"),
            _link(f"{base}/collections", "http://www.opengis.net/def/rel/ogc/1.0/data", JSON,
                  "the collections"),
        ],
    }


def conformance() -> dict[str, Any]:
    """The conformance classes implemented."""
    return {"conformsTo": CONFORMANCE}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def collection_document(base: str, c: Collection) -> dict[str, Any]:
    """One collection's metadata: extent, CRS and links to its items."""
    extent: dict[str, Any] = {}
    if c.bbox is not None:
        extent["spatial"] = {"bbox": [list(c.bbox)], "crs": CRS84}
    if c.interval is not None:
        extent["temporal"] = {"interval": [[_iso(c.interval[0]), _iso(c.interval[1])]],
                              "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    href = f"{base}/collections/{c.id}"
    return {
        "id": c.id, "title": c.title, "description": c.description, "itemType": "feature",
        "crs": [CRS84], "extent": extent,
        "links": [
            _link(href, "self", JSON, c.title),
            _link(f"{href}?f=html", "alternate", HTML, c.title),
            _link(f"{href}/items", "items", GEOJSON, f"{c.title} (GeoJSON)"),
            _link(f"{href}/items?f=html", "items", HTML, f"{c.title} (HTML)"),
        ],
    }


def collections_document(base: str, collections: list[Collection]) -> dict[str, Any]:
    """Every collection's metadata."""
    return {
        "links": [_link(f"{base}/collections", "self", JSON),
                  _link(f"{base}/collections?f=html", "alternate", HTML)],
        "collections": [collection_document(base, c) for c in collections],
    }


def _request_feature(r: ServiceRequest, layers: list[str]) -> dict[str, Any]:
    """A request as a GeoJSON feature of public fields only."""
    properties: dict[str, Any] = {
        "service_request_id": r.service_request_id, "external_id": r.external_id,
        "service_code": r.service_code, "service_name": r.service_name, "status": r.status,
        "status_notes": r.status_notes, "description": r.description, "address": r.address,
        "requested_datetime": _iso(r.requested_datetime),
        "updated_datetime": _iso(r.updated_datetime),
        "closed_datetime": _iso(r.closed_datetime),
        "duplicate_of": r.duplicate_of, "reporter_count": r.reporter_count,
        "outside_service_area": r.outside_service_area,
    }
    for layer in layers:
        properties[f"district_{layer}"] = r.districts.get(layer)
    geometry = (None if r.lon is None or r.lat is None
                else {"type": "Point", "coordinates": [r.lon, r.lat]})
    return {"type": "Feature", "id": r.id, "geometry": geometry, "properties": properties}


def _district_feature(district_id: str, name: Any, geom: Any, version: int) -> dict[str, Any]:
    import shapely

    return {"type": "Feature", "id": district_id,
            "geometry": shapely.geometry.mapping(geom),
            "properties": {"district_id": district_id,
                           "name": None if name is None or pd.isna(name) else str(name),
                           "layer_version": version}}


def _cell_feature(row: Any, h3_resolution: int) -> dict[str, Any]:
    return {"type": "Feature", "id": row.cell, "geometry": _cell_polygon(row.cell),
            "properties": {"cell": row.cell, "h3_resolution": h3_resolution,
                           "requests": int(row.requests), "reports": int(row.reports),
                           "open": int(row.open)}}


@dataclass(frozen=True)
class ItemQuery:
    """Parsed ``items`` parameters."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    start: datetime | None = None
    end: datetime | None = None
    status: str | None = None
    service_codes: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: Mapping[str, str], collection: Collection) -> ItemQuery:
        """Check and parse query parameters for ``collection``'s items."""
        check_params(args, collection.params)
        start, end = parse_datetime(args.get("datetime"))
        status = args.get("status") or None
        if status is not None and status not in STATUSES:
            raise InvalidRequest(
                f"status was {_shown(status)} but is expected to be in {STATUSES}")
        text = args.get("service_code") or ""
        codes = tuple(c for c in text.split(",") if c)
        if len(codes) > MAX_SERVICE_CODES or "\x00" in text:
            raise InvalidRequest(f"service_code was {_shown(text)} but is expected to be at "
                                 f"most {MAX_SERVICE_CODES} service codes, comma separated")
        return cls(limit=parse_limit(args.get("limit")), offset=parse_offset(args.get("offset")),
                   bbox=parse_bbox(args.get("bbox"), args.get("bbox-crs")), start=start,
                   end=end, status=status, service_codes=codes)


def find_features(
    store: Store, c: Collection, q: ItemQuery
) -> tuple[list[dict[str, Any]], int]:
    """One page of a collection's features and how many match in all.

    An offset past the matches gives an empty page without asking the database for it.
    """
    if q.start is not None and q.end is not None and q.start > q.end:
        return [], 0  # NEVER: a time wholly outside the calendar
    if c.kind == "requests":
        return _request_page(store, q)
    if c.kind == "layer":
        version = layer_version_at(store, c.id, q.start, q.end)
        if version is None:
            return [], 0
        features = store.layers.features(c.id, version)
        if q.bbox is not None:
            features = features.iloc[features.sindex.query(_box(q.bbox), predicate="intersects")]
            features = features.sort_index()
        page = features.iloc[q.offset:q.offset + q.limit] if q.offset < len(features) else \
            features.iloc[:0]
        return [_district_feature(d, n, g, version) for d, n, g in
                zip(page["district_id"], page["name"], page.geometry, strict=True)], len(features)
    counts = _counts(store, c, q)
    page = counts.iloc[q.offset:q.offset + q.limit] if q.offset < len(counts) else counts.iloc[:0]
    return [_cell_feature(row, c.h3_resolution or 0) for row in page.itertuples()], len(counts)


def _request_page(store: Store, q: ItemQuery) -> tuple[list[dict[str, Any]], int]:
    """Requests newest first; a bbox across the antimeridian is two boxes merged."""
    # Matched on the point the public sees: a sensitive service at its cell centre, so a
    # sliding box cannot find its true location (clients.find_requests).
    filters: dict[str, Any] = {"service_codes": q.service_codes or (),
                               "statuses": (q.status,) if q.status else (),
                               "start": q.start, "end": q.end}
    boxes = [None] if q.bbox is None else bbox_parts(q.bbox)
    matched = sum(store.search.count(**filters, bbox=box) for box in boxes)
    if q.offset >= matched:
        return [], matched
    if len(boxes) == 1:
        rows = store.search.find(**filters, bbox=boxes[0], limit=q.limit, offset=q.offset)
    else:  # the halves are disjoint: the page is a slice of both, merged in query order
        both = [r for box in boxes
                for r in store.search.find(**filters, bbox=box, limit=q.offset + q.limit)]
        both.sort(key=lambda r: (r.requested_datetime, r.id), reverse=True)
        rows = both[q.offset:q.offset + q.limit]
    layers = [v.layer for v in store.layers.versions(active_only=True)]
    sensitive = store.catalogue.sensitive_codes()
    return [_request_feature(mask_request(r, sensitive), layers) for r in rows], matched


def layer_version_at(
    store: Store, layer: str, start: datetime | None, end: datetime | None
) -> int | None:
    """The version of ``layer`` whose features ``datetime`` selects (None: none then).

    With no datetime, the active version. For an instant, the version in force at
    that instant; for an interval, the last version in force during it (the one in
    force at its end, or the last before the end if the layer was out of use then).
    """
    if start is None and end is None:
        return store.layers.version(layer).version
    latest: tuple[datetime, int] | None = None
    for _layer, version, valid_from, valid_to in store.layers.validity(layer):
        begins = valid_from or EARLIEST
        if (end is None or begins <= end) and (valid_to is None or start is None
                                               or valid_to > start):
            if latest is None or begins >= latest[0]:
                latest = (begins, version)
    return None if latest is None else latest[1]


def _box(bbox: tuple[float, float, float, float]) -> Any:
    """The bbox as one shapely geometry: a box, or two across the antimeridian."""
    import shapely

    parts = [shapely.box(*part) for part in bbox_parts(bbox)]
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _counts(store: Store, c: Collection, q: ItemQuery) -> pd.DataFrame:
    """Cell counts; with a bbox, the cells whose hexagon meets it (counted in full)."""
    counts = cell_counts(store.requests.parent_points(start=q.start, end=q.end),
                         c.h3_resolution or 0)
    if q.bbox is not None and len(counts):
        import shapely

        hexagons = [shapely.Polygon(_cell_polygon(cell)["coordinates"][0])
                    for cell in counts["cell"]]
        counts = counts[shapely.intersects(np.array(hexagons), _box(q.bbox))]
    return counts


def find_feature(store: Store, c: Collection, fid: str) -> dict[str, Any]:
    """One feature by id; ``NotFound`` otherwise (also for ids no column could hold)."""
    missing = NotFound(f"feature {_shown(fid)} does not exist in {c.id}")
    if c.kind == "requests":
        if not _REQUEST_ID.fullmatch(fid) or int(fid) > MAX_REQUEST_ID:
            raise missing
        layers = [v.layer for v in store.layers.versions(active_only=True)]
        return _request_feature(mask_request(store.requests.get(int(fid)),
                                             store.catalogue.sensitive_codes()), layers)
    if c.kind == "layer":
        active = store.layers.version(c.id).version
        features = store.layers.features(c.id, active)
        hit = features[features["district_id"] == fid]
        if hit.empty:
            raise missing
        row = hit.iloc[0]
        return _district_feature(row["district_id"], row["name"], row.geometry, active)
    if not _H3_CELL.fullmatch(fid) or not h3.is_valid_cell(fid) \
            or h3.get_resolution(fid) != c.h3_resolution:
        raise NotFound(f"feature {_shown(fid)} is not an H3 cell of resolution "
                       f"{c.h3_resolution}")
    counts = _counts(store, c, ItemQuery())
    hit = counts[counts["cell"] == fid]
    if hit.empty:
        raise NotFound(f"feature {fid!r} does not exist in {c.id}: no requests there")
    return _cell_feature(next(hit.itertuples()), c.h3_resolution or 0)


def items_document(
    base: str, c: Collection, q: ItemQuery, args: Mapping[str, str],
    features: list[dict[str, Any]], matched: int, now: datetime | None = None,
) -> dict[str, Any]:
    """A page of features with ``numberMatched``, ``numberReturned`` and paging links.

    ``next`` and ``prev`` keep every other parameter of the request as it came.
    """
    href = f"{base}/collections/{c.id}/items"
    kept = {k: v for k, v in args.items() if k not in ("offset", "f")}

    def page(offset: int, fmt: str | None = None) -> str:
        query = {**kept, "offset": str(offset)} if offset else dict(kept)
        if fmt:
            query["f"] = fmt
        return f"{href}?{urlencode(query)}" if query else href

    links = [_link(page(q.offset, "json"), "self", GEOJSON, "this page"),
             _link(page(q.offset, "html"), "alternate", HTML, "this page as HTML"),
             _link(f"{base}/collections/{c.id}", "collection", JSON, c.title)]
    if q.offset + len(features) < matched:
        links.append(_link(page(q.offset + q.limit, "json"), "next", GEOJSON, "next page"))
    if q.offset > 0:
        links.append(_link(page(max(q.offset - q.limit, 0), "json"), "prev", GEOJSON,
                           "previous page"))
    for f in features:
        f["links"] = [_link(f"{href}/{f['id']}", "self", GEOJSON)]
    return {
        "type": "FeatureCollection", "features": features, "numberMatched": matched,
        "numberReturned": len(features),
        "timeStamp": _iso(now or datetime.now(UTC)), "links": links,
    }


def feature_document(base: str, c: Collection, feature: dict[str, Any]) -> dict[str, Any]:
    """One feature with its ``self`` and ``collection`` links."""
    href = f"{base}/collections/{c.id}/items/{feature['id']}"
    return {**feature, "links": [
        _link(href, "self", GEOJSON), _link(f"{href}?f=html", "alternate", HTML),
        _link(f"{base}/collections/{c.id}", "collection", JSON, c.title)]}


# --- OpenAPI -------------------------------------------------------------------------------


def _param(name: str, where: str, schema: dict[str, Any], description: str,
           **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema,
            "description": description, **extra}


def _json_response(description: str, media: str = JSON) -> dict[str, Any]:
    return {"description": description,
            "content": {media: {"schema": {"type": "object"}},
                        HTML: {"schema": {"type": "string"}}}}


def openapi_document(base: str, collections: list[Collection]) -> dict[str, Any]:
    """The OpenAPI 3.0 definition of the API, one items path per collection."""
    fmt = _param("f", "query", {"type": "string", "enum": ["json", "html"]},
                 "response format (default: from the Accept header, else JSON)")
    limit = _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                      "default": DEFAULT_LIMIT},
                   "how many features per page", style="form", explode=False)
    offset = _param("offset", "query", {"type": "integer", "minimum": 0, "default": 0},
                    "how many matching features to skip (past the last: an empty page)")
    bbox = _param("bbox", "query", {"type": "array", "minItems": 4, "maxItems": 6,
                                    "items": {"type": "number"}},
                  "minlon,minlat,maxlon,maxlat in CRS84 (minlon > maxlon: across the "
                  "antimeridian)", style="form", explode=False)
    bbox_crs = _param("bbox-crs", "query", {"type": "string", "format": "uri", "enum": [CRS84]},
                      "CRS of bbox (only CRS84)")
    when = _param("datetime", "query", {"type": "string"},
                  "RFC 3339 instant or interval (start/end, '..' for open) on the request time",
                  style="form", explode=False)
    when_layer = _param(
        "datetime", "query", {"type": "string"},
        "RFC 3339 instant or interval (start/end, '..' for open): the districts of the layer "
        "version in force at the instant, or of the last one in force during the interval",
        style="form", explode=False)
    status = _param("status", "query", {"type": "string", "enum": list(STATUSES)},
                    "only requests with this status")
    codes = _param("service_code", "query", {"type": "string"},
                   "only these service codes (comma separated)")
    fid = _param("featureId", "path", {"type": "string"}, "id of a feature")
    paths: dict[str, Any] = {
        "/": {"get": {"summary": "Landing page", "operationId": "getLandingPage",
                      "parameters": [fmt], "responses": {"200": _json_response("links")}}},
        "/conformance": {"get": {"summary": "Conformance classes",
                                 "operationId": "getConformance", "parameters": [fmt],
                                 "responses": {"200": _json_response("conformance")}}},
        "/api": {"get": {"summary": "This document", "operationId": "getAPI",
                         "responses": {"200": _json_response("OpenAPI", OPENAPI)}}},
        "/collections": {"get": {"summary": "Collections", "operationId": "getCollections",
                                 "parameters": [fmt],
                                 "responses": {"200": _json_response("collections")}}},
    }
    errors = {"400": {"description": "bad parameter"}, "404": {"description": "not found"}}
    for c in collections:
        extra = {"requests": [when, status, codes], "h3": [when], "layer": [when_layer]}[c.kind]
        paths[f"/collections/{c.id}"] = {"get": {
            "summary": f"{c.title}: metadata", "operationId": f"describe_{c.id}",
            "parameters": [fmt], "responses": {"200": _json_response("collection"), **errors}}}
        paths[f"/collections/{c.id}/items"] = {"get": {
            "summary": f"{c.title}: features", "operationId": f"get_{c.id}_items",
            "parameters": [limit, offset, bbox, bbox_crs, *extra, fmt],
            "responses": {"200": _json_response("features", GEOJSON), **errors}}}
        paths[f"/collections/{c.id}/items/{{featureId}}"] = {"get": {
            "summary": f"{c.title}: one feature", "operationId": f"get_{c.id}_item",
            "parameters": [fid, fmt],
            "responses": {"200": _json_response("feature", GEOJSON), **errors}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "geo311 OGC API - Features", "version": "1.0.0",
                 "description": "311 service requests, boundary layers and H3 aggregates. "
                                "Public data only.",
                 "license": {"name": "MIT"}},
        "servers": [{"url": base}],
        "paths": paths,
    }
