"""Open requests near a point as the public sees them: sensitive services at their mask.

The database narrows by the true point within the radius plus the largest mask shift;
the distance that decides is the one to the point the public is shown, so sliding a
search circle cannot narrow down where a sensitive request really is.
"""

from __future__ import annotations

from collections.abc import Set

import numpy as np

from geo311.errors import InvalidRequest
from geo311.geodesy import haversine_m
from geo311.model import ServiceRequest
from geo311.privacy import MASK_SHIFT_MAX_M, mask_request, shown_points
from geo311.store import Store

#: At most this many stored requests are read for one search.
MAX_READ_AROUND = 100_000


def open_requests_around(store: Store, lon: float, lat: float, radius_m: float,
                         sensitive: Set[str], *, limit: int) -> list[tuple[ServiceRequest, float]]:
    """Open requests that lead a group within ``radius_m`` of a point, nearest first.

    Each comes as the public sees it (``mask_request``) with its distance in metres to
    a decimetre; equal distances are in id order.

    Examples
    --------
    >>> open_requests_around(store, -87.63, 41.88, 400, set(), limit=10)  # doctest: +SKIP
    [(ServiceRequest(id=7, ...), 35.2), ...]
    """
    margin_m = MASK_SHIFT_MAX_M if sensitive else 0.0
    out = []
    for r, _ in store.requests.near(lon, lat, radius_m + margin_m, status="open",
                                    limit=MAX_READ_AROUND):
        if r.duplicate_of is not None:
            continue
        shown = mask_request(r, sensitive)
        if shown.lon is None or shown.lat is None:  # the database found it by its point
            continue
        distance = float(haversine_m(lon, lat, shown.lon, shown.lat))
        if distance <= radius_m:
            out.append((shown, round(distance, 1)))
    out.sort(key=lambda x: (x[1], int(x[0].service_request_id)))
    return out[:limit]


def open_groups_near(store: Store, lon: float, lat: float, radius_m: float,
                     sensitive: Set[str], *, service_code: str | None = None,
                     limit: int = 5) -> list[tuple[ServiceRequest, float]]:
    """The open groups a resident could join: each group's first request, nearest first.

    A group is as near as its nearest open member within ``radius_m`` (of the service,
    if given); each comes as the public sees it with that distance to a decimetre.

    Examples
    --------
    >>> open_groups_near(store, -87.63, 41.88, 250, set(), service_code="SCB")
    ... # doctest: +SKIP
    [(ServiceRequest(id=7, ...), 12.4)]
    """
    margin_m = MASK_SHIFT_MAX_M if sensitive else 0.0
    found = store.requests.near(lon, lat, radius_m + margin_m, service_code=service_code,
                                status="open", limit=5000 if sensitive else 500)
    xs, ys = shown_points([r.service_code for r, _ in found],
                          np.array([r.lon for r, _ in found], dtype=float),
                          np.array([r.lat for r, _ in found], dtype=float), sensitive)
    shown_m = haversine_m(lon, lat, xs, ys) if found else np.empty(0)
    nearest: dict[int, float] = {}  # each group once, at its nearest member's distance
    for (r, _d), d in sorted(zip(found, shown_m, strict=True), key=lambda x: (x[1], x[0][0].id)):
        if d <= radius_m:
            nearest.setdefault(r.duplicate_of or r.id, float(d))
    picked = list(nearest)[:limit]
    roots = {r.id: r for r in store.requests.query(ids=picked, limit=limit)}
    return [(mask_request(roots[i], sensitive), round(nearest[i], 1))
            for i in picked if i in roots]


#: How far from a resident's point the report form offers open groups to join.
JOIN_RADIUS_M = 250.0


def joinable_group(store: Store, lon: float, lat: float, service_code: str,
                   request_id: int, radius_m: float = JOIN_RADIUS_M) -> int:
    """The group a resident chose to add their report to, if the form could offer it.

    A resident may join only an open group of the service within ``radius_m`` of their
    point (what ``open_groups_near`` lists for them); anything else is refused, so a
    count cannot be raised on a group somewhere else. Staff choose freely (the desk).
    """
    groups = open_groups_near(store, lon, lat, radius_m, store.catalogue.sensitive_codes(),
                              service_code=service_code, limit=50)
    if int(request_id) not in {g.id for g, _ in groups}:
        raise InvalidRequest(f"request {request_id} is not an open {service_code} request "
                             f"within {radius_m:.0f} m of this place: the report cannot join it")
    return int(request_id)
