"""OGC API - Features, Part 1 Core, as plain documents: what ``/ogc`` serves, without HTTP.

Three kinds of collection: public requests (only public fields; never reporters),
each active boundary layer, and counts of requests per H3 cell at a few resolutions.
Every function here returns JSON-ready values; ``web/ogc.py`` only adapts them to
HTTP, so the paging, bbox and datetime rules are tested without a server.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
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
from geo311.store.sql import SQLStore

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
        if self.kind == "h3":
            return (*_COMMON_PARAMS, "datetime")
        return _COMMON_PARAMS


# --- parameters ----------------------------------------------------------------------------


def check_params(args: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    """Refuse query parameters this resource does not define (OGC: 400, not ignored)."""
    unknown = sorted(k for k in args if k not in allowed)
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter(s) {unknown}; this resource takes {list(allowed)}")


def parse_limit(text: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """``limit``: a whole number from 1; values above ``maximum`` are served as ``maximum``.

    Examples
    --------
    >>> parse_limit("50"), parse_limit(None), parse_limit("99999")
    (50, 100, 10000)
    """
    if text is None or text == "":
        return default
    return min(_whole_number("limit", text, 1, "at least 1"), maximum)


def parse_offset(text: str | None) -> int:
    """``offset``: a whole number from 0 (how many matching features to skip)."""
    if text is None or text == "":
        return 0
    return _whole_number("offset", text, 0, "0 or more")


def _whole_number(name: str, text: str, least: int, wording: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise InvalidRequest(f"{name} was {text!r} but is expected to be a whole number") from exc
    if value < least:
        raise InvalidRequest(f"{name} was {value} but is expected to be {wording}")
    return value


def parse_bbox(
    text: str | None, crs: str | None = None
) -> tuple[float, float, float, float] | None:
    """``bbox=minlon,minlat,maxlon,maxlat`` (or six numbers with heights) in CRS84.

    Examples
    --------
    >>> parse_bbox("-87.7,41.8,-87.6,41.9")
    (-87.7, 41.8, -87.6, 41.9)
    """
    if crs not in (None, "", CRS84):
        raise InvalidRequest(f"bbox-crs was {crs!r} but only {CRS84} is supported")
    if text is None or text == "":
        return None
    parts = text.split(",")
    try:
        values = [float(v) for v in parts]
    except ValueError as exc:
        raise InvalidRequest(
            f"bbox was {text!r} but is expected to be 4 numbers: minlon,minlat,maxlon,maxlat"
        ) from exc
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidRequest(
            f"bbox was {text!r} but is expected to be 4 numbers: minlon,minlat,maxlon,maxlat")
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidRequest(
            f"bbox was {text!r}: longitudes must be within ±180, latitudes within ±90 and "
            "minlat <= maxlat")
    if minx > maxx:
        raise InvalidRequest(f"bbox was {text!r}: boxes across the antimeridian are not supported")
    return minx, miny, maxx, maxy


def parse_datetime(text: str | None) -> tuple[datetime | None, datetime | None]:
    """``datetime``: an RFC 3339 instant, or an interval ``start/end`` with ``..`` open ends.

    Times without an offset are refused (RFC 3339 requires one).

    Examples
    --------
    >>> parse_datetime("2021-01-01T00:00:00Z/..")[0].isoformat()
    '2021-01-01T00:00:00+00:00'
    """
    if text is None or text == "":
        return None, None
    if "/" not in text:
        instant = _instant(text, text)
        return instant, instant
    first, _, second = text.partition("/")
    start = None if first in ("", "..") else _instant(first, text)
    end = None if second in ("", "..") else _instant(second, text)
    if start is None and end is None:
        raise InvalidRequest(f"datetime was {text!r}: an interval needs at least one end")
    if start is not None and end is not None and start > end:
        raise InvalidRequest(f"datetime was {text!r}: the start is after the end")
    return start, end


def _instant(value: str, whole: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise InvalidRequest(
            f"datetime was {whole!r} but is expected to be RFC 3339, e.g. 2021-01-01T00:00:00Z "
            "or 2021-01-01T00:00:00Z/2021-01-02T00:00:00Z") from exc
    if parsed.tzinfo is None:
        if len(value) == 10:  # a bare date: the whole UTC day's start
            return parsed.replace(tzinfo=UTC)
        raise InvalidRequest(f"datetime was {whole!r}: give a UTC offset, e.g. Z or -06:00")
    return parsed.astimezone(UTC)


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


def list_collections(store: SQLStore) -> list[Collection]:
    """Public requests, each active boundary layer, and the H3 aggregates."""
    box, span = store.request_extent()
    out = [Collection(REQUESTS, "Service requests",
                      "Public 311 service requests: service, status, address, times and "
                      "districts. No personal data.", "requests", box, span)]
    for v in store.layer_versions(active_only=True):
        bounds = v.report.get("bounds")
        out.append(Collection(
            v.layer, v.title or v.layer,
            f"Boundary layer {v.layer}, version {v.version} ({v.feature_count} districts, "
            f"loaded from {v.source_file})", "layer",
            tuple(bounds) if isinstance(bounds, list) else None))  # type: ignore[arg-type]
    for res in H3_RESOLUTIONS:
        out.append(Collection(
            f"requests_h3_r{res}", f"Requests per H3 cell, resolution {res}",
            f"Requests counted per H3 cell of resolution {res}: duplicates count once, "
            "in the reporter count of the request they joined", "h3", box, span, res))
    return out


def find_collection(store: SQLStore, collection_id: str) -> Collection:
    """One collection by id; ``NotFound`` names the ones there are."""
    collections = list_collections(store)
    for c in collections:
        if c.id == collection_id:
            return c
    raise NotFound(f"collection {collection_id!r} does not exist; there are "
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


def _district_feature(district_id: str, name: Any, geom: Any) -> dict[str, Any]:
    import shapely

    return {"type": "Feature", "id": district_id,
            "geometry": shapely.geometry.mapping(geom),
            "properties": {"district_id": district_id,
                           "name": None if name is None or pd.isna(name) else str(name)}}


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
            raise InvalidRequest(f"status was {status!r} but is expected to be in {STATUSES}")
        codes = tuple(c for c in (args.get("service_code") or "").split(",") if c)
        return cls(limit=parse_limit(args.get("limit")), offset=parse_offset(args.get("offset")),
                   bbox=parse_bbox(args.get("bbox"), args.get("bbox-crs")), start=start,
                   end=end, status=status, service_codes=codes)


def find_features(
    store: SQLStore, c: Collection, q: ItemQuery
) -> tuple[list[dict[str, Any]], int]:
    """One page of a collection's features and how many match in all."""
    if c.kind == "requests":
        filters = {"service_codes": q.service_codes or None, "status": q.status,
                   "start": q.start, "end": q.end, "bbox": q.bbox}
        matched = store.count_matching(**filters)  # type: ignore[arg-type]
        rows = store.query(**filters, limit=q.limit, offset=q.offset)  # type: ignore[arg-type]
        layers = [v.layer for v in store.layer_versions(active_only=True)]
        sensitive = store.sensitive_service_codes()
        return [_request_feature(mask_request(r, sensitive), layers) for r in rows], matched
    if c.kind == "layer":
        features = store.layer_features(c.id)
        if q.bbox is not None:
            features = features.iloc[features.sindex.query(_box(q.bbox), predicate="intersects")]
            features = features.sort_index()
        page = features.iloc[q.offset:q.offset + q.limit]
        return [_district_feature(d, n, g) for d, n, g in
                zip(page["district_id"], page["name"], page.geometry, strict=True)], len(features)
    counts = _counts(store, c, q)
    page = counts.iloc[q.offset:q.offset + q.limit]
    return [_cell_feature(row, c.h3_resolution or 0) for row in page.itertuples()], len(counts)


def _box(bbox: tuple[float, float, float, float]) -> Any:
    import shapely

    return shapely.box(*bbox)


def _counts(store: SQLStore, c: Collection, q: ItemQuery) -> pd.DataFrame:
    """Cell counts; with a bbox, the cells whose hexagon meets it (counted in full)."""
    counts = cell_counts(store.parent_points(start=q.start, end=q.end), c.h3_resolution or 0)
    if q.bbox is not None and len(counts):
        import shapely

        hexagons = [shapely.Polygon(_cell_polygon(cell)["coordinates"][0])
                    for cell in counts["cell"]]
        counts = counts[shapely.intersects(np.array(hexagons), _box(q.bbox))]
    return counts


def find_feature(store: SQLStore, c: Collection, fid: str) -> dict[str, Any]:
    """One feature by id; ``NotFound`` otherwise."""
    if c.kind == "requests":
        try:
            request_id = int(fid)
        except ValueError as exc:
            raise NotFound(f"feature {fid!r} does not exist in {c.id}") from exc
        layers = [v.layer for v in store.layer_versions(active_only=True)]
        return _request_feature(mask_request(store.get(request_id),
                                             store.sensitive_service_codes()), layers)
    if c.kind == "layer":
        features = store.layer_features(c.id)
        hit = features[features["district_id"] == fid]
        if hit.empty:
            raise NotFound(f"feature {fid!r} does not exist in {c.id}")
        row = hit.iloc[0]
        return _district_feature(row["district_id"], row["name"], row.geometry)
    if not h3.is_valid_cell(fid) or h3.get_resolution(fid) != c.h3_resolution:
        raise NotFound(f"feature {fid!r} is not an H3 cell of resolution {c.h3_resolution}")
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
                    "how many matching features to skip")
    bbox = _param("bbox", "query", {"type": "array", "minItems": 4, "maxItems": 6,
                                    "items": {"type": "number"}},
                  "minlon,minlat,maxlon,maxlat in CRS84", style="form", explode=False)
    bbox_crs = _param("bbox-crs", "query", {"type": "string", "format": "uri", "enum": [CRS84]},
                      "CRS of bbox (only CRS84)")
    when = _param("datetime", "query", {"type": "string"},
                  "RFC 3339 instant or interval (start/end, '..' for open) on the request time",
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
        extra = {"requests": [when, status, codes], "h3": [when]}.get(c.kind, [])
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
