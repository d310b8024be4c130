"""OGC API - Features collections and their items, read from the store.

Public requests (only public fields, sensitive services at their masked point), each
active boundary layer (with ``datetime``, the version in force then), and counts of
requests per H3 cell.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

import h3
import numpy as np
import pandas as pd

from geo311.errors import NotFound
from geo311.hotspots import cells_of
from geo311.ogc.documents import cell_feature, cell_polygon, district_feature, request_feature
from geo311.ogc.params import (
    EARLIEST,
    H3_RESOLUTIONS,
    MAX_REQUEST_ID,
    REQUESTS,
    Collection,
    ItemQuery,
    bbox_parts,
    shown,
)
from geo311.privacy import mask_request
from geo311.store import Store

LOGGER = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"0|[1-9][0-9]{0,9}")
_H3_CELL = re.compile(r"[0-9a-f]{15,16}")


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
    raise NotFound(f"collection {shown(collection_id)} does not exist; there are "
                   f"{[c.id for c in collections]}")


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
        return [district_feature(d, n, g, version) for d, n, g in
                zip(page["district_id"], page["name"], page.geometry, strict=True)], len(features)
    counts = _counts(store, c, q)
    page = counts.iloc[q.offset:q.offset + q.limit] if q.offset < len(counts) else counts.iloc[:0]
    return [cell_feature(row, c.h3_resolution or 0) for row in page.itertuples()], len(counts)


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
    return [request_feature(mask_request(r, sensitive), layers) for r in rows], matched


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

        hexagons = [shapely.Polygon(cell_polygon(cell)["coordinates"][0])
                    for cell in counts["cell"]]
        counts = counts[shapely.intersects(np.array(hexagons), _box(q.bbox))]
    return counts


def find_feature(store: Store, c: Collection, fid: str) -> dict[str, Any]:
    """One feature by id; ``NotFound`` otherwise (also for ids no column could hold)."""
    missing = NotFound(f"feature {shown(fid)} does not exist in {c.id}")
    if c.kind == "requests":
        if not _REQUEST_ID.fullmatch(fid) or int(fid) > MAX_REQUEST_ID:
            raise missing
        layers = [v.layer for v in store.layers.versions(active_only=True)]
        return request_feature(mask_request(store.requests.get(int(fid)),
                                             store.catalogue.sensitive_codes()), layers)
    if c.kind == "layer":
        active = store.layers.version(c.id).version
        features = store.layers.features(c.id, active)
        hit = features[features["district_id"] == fid]
        if hit.empty:
            raise missing
        row = hit.iloc[0]
        return district_feature(row["district_id"], row["name"], row.geometry, active)
    if not _H3_CELL.fullmatch(fid) or not h3.is_valid_cell(fid) \
            or h3.get_resolution(fid) != c.h3_resolution:
        raise NotFound(f"feature {shown(fid)} is not an H3 cell of resolution "
                       f"{c.h3_resolution}")
    counts = _counts(store, c, ItemQuery())
    hit = counts[counts["cell"] == fid]
    if hit.empty:
        raise NotFound(f"feature {fid!r} does not exist in {c.id}: no requests there")
    return cell_feature(next(hit.itertuples()), c.h3_resolution or 0)
