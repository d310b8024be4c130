"""OGC API - Features documents: landing page, conformance, collections, items, OpenAPI.

Pure functions from values to JSON-ready dictionaries; the features they page through
come from ``geo311.ogc.features``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import h3
import pandas as pd

from geo311.model import STATUSES, ServiceRequest
from geo311.ogc.params import (
    CONFORMANCE,
    CRS84,
    DEFAULT_LIMIT,
    GEOJSON,
    HTML,
    JSON,
    MAX_LIMIT,
    OPENAPI,
    Collection,
    ItemQuery,
)

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


def request_feature(r: ServiceRequest, layers: list[str]) -> dict[str, Any]:
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


def district_feature(district_id: str, name: Any, geom: Any, version: int) -> dict[str, Any]:
    """A district of a layer version as a GeoJSON feature."""
    import shapely

    return {"type": "Feature", "id": district_id,
            "geometry": shapely.geometry.mapping(geom),
            "properties": {"district_id": district_id,
                           "name": None if name is None or pd.isna(name) else str(name),
                           "layer_version": version}}


def cell_feature(row: Any, h3_resolution: int) -> dict[str, Any]:
    """A row of ``cell_counts`` as a GeoJSON feature: the H3 cell's hexagon and counts."""
    return {"type": "Feature", "id": row.cell, "geometry": cell_polygon(row.cell),
            "properties": {"cell": row.cell, "h3_resolution": h3_resolution,
                           "requests": int(row.requests), "reports": int(row.reports),
                           "open": int(row.open)}}


def cell_polygon(cell: str) -> dict[str, Any]:
    """An H3 cell's hexagon as a GeoJSON polygon (lon, lat)."""
    ring = [[round(lng, 7), round(lat, 7)] for lat, lng in h3.cell_to_boundary(cell)]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


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
