"""The base map geo311 serves itself when no tile server is configured (``GEO311_TILE_URL``).

Streets come as GeoJSON for the box a map shows (zoomed in), district names as label
points; ``static/basemap.js`` draws them on every Leaflet map of every page.
"""

from __future__ import annotations

import threading

from flask import Blueprint, Response, current_app, jsonify, request

from geo311.basemap import StreetIndex
from geo311.errors import InvalidRequest
from geo311_web import state

bp = Blueprint("basemap", __name__, url_prefix="/basemap")
_LOCK = threading.Lock()


def _streets() -> StreetIndex:
    """The app's street index, rebuilt when a geocoding reference is loaded or replaced."""
    store = state().store
    key = store.addresses.reference_key()
    with _LOCK:
        cached = current_app.extensions.get("geo311.basemap")
        if cached is None or cached[0] != key:
            frames = store.addresses.reference_frames()
            cached = (key, StreetIndex.from_references(frames["centerlines"],
                                                       frames["intersections"]))
            current_app.extensions["geo311.basemap"] = cached
        return cached[1]  # type: ignore[no-any-return]


def _cached(body: Response) -> Response:
    body.headers["Cache-Control"] = "public, max-age=300"
    return body


@bp.get("/streets.geojson")
def streets() -> Response:
    """The streets crossing ``bbox=min_long,min_lat,max_long,max_lat`` (a zoomed-in view)."""
    parts = request.args.get("bbox", "").split(",")
    try:
        box = [float(p) for p in parts]
    except ValueError as exc:
        raise InvalidRequest(f"bbox was {request.args.get('bbox', '')[:80]!r} but is expected "
                             "as four numbers: min_long,min_lat,max_long,max_lat") from exc
    if len(box) != 4:
        raise InvalidRequest("bbox is expected as four numbers: min_long,min_lat,max_long,"
                             "max_lat")
    return _cached(jsonify(_streets().within(box)))


@bp.get("/labels.geojson")
def labels() -> Response:
    """A label point (its name) for each district of the first active district layer."""
    store = state().store
    versions = [v for v in store.layers.versions(active_only=True) if v.role == "district"]
    if not versions:
        return _cached(jsonify({"type": "FeatureCollection", "features": []}))
    # Every map of every page asks for these: the points are worked out once per version.
    key = versions[0].id
    with _LOCK:
        found = current_app.extensions.get("geo311.basemap_labels")
        if found is None or found[0] != key:
            features = store.layers.features(versions[0].layer)
            points = features.geometry.representative_point()
            found = (key, {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {"name": str(name or d)},
                 "geometry": {"type": "Point", "coordinates": [round(p.x, 6), round(p.y, 6)]}}
                for d, name, p in zip(features["district_id"], features["name"], points,
                                      strict=True)]})
            current_app.extensions["geo311.basemap_labels"] = found
    return _cached(jsonify(found[1]))
