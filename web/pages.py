"""Public pages and the small public JSON API of the foundation."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from werkzeug.wrappers import Response

from geo311.errors import InvalidRequest
from geo311.model import ServiceRequest
from web import maps, state

bp = Blueprint("pages", __name__)
MAX_MAP_REQUESTS = 2000
NEARBY_RADIUS_M = 250.0
NEARBY_LIMIT = 5


def _public(r: ServiceRequest) -> dict[str, object]:
    """The fields of a request anyone may see."""
    return {
        "service_request_id": r.service_request_id, "external_id": r.external_id,
        "service_code": r.service_code, "service_name": r.service_name, "status": r.status,
        "status_notes": r.status_notes, "description": r.description, "address": r.address,
        "lat": r.lat, "long": r.lon, "requested_datetime": r.requested_datetime.isoformat(),
        "updated_datetime": r.updated_datetime.isoformat(),
        "closed_datetime": r.closed_datetime.isoformat() if r.closed_datetime else None,
        "geocode_match": r.geocode_match, "duplicate_of": r.duplicate_of,
        "reporter_count": r.reporter_count, "districts": r.districts,
    }


@bp.get("/")
def index() -> str:
    """Citizen map: district outlines and the most recent requests."""
    s = state()
    try:
        limit = min(int(request.args.get("limit", 500)), MAX_MAP_REQUESTS)
    except ValueError as exc:
        raise InvalidRequest(f"limit was {request.args['limit']!r} but is expected "
                             "to be a whole number") from exc
    status = request.args.get("status") or None
    m = maps.base_map(s.settings.tile_url)
    ctx = s.context()
    if ctx.service_area:
        version = s.store.layer_version(ctx.service_area)
        maps.add_districts(m, s.store.layer_features(ctx.service_area), version.title)
    recent = s.store.query(status=status, limit=limit)
    drawn = maps.add_requests(m, recent)
    return render_template("index.html", parts=maps.map_parts(m), drawn=drawn,
                           total=s.store.count(), status=status or "any")


@bp.get("/requests/<int:request_id>")
def tracking(request_id: int) -> str:
    """Tracking page: status and history of one request, without personal data."""
    s = state()
    r = s.store.get(request_id)
    history = [e for e in s.store.audit_entries("request", request_id)]
    return render_template("request.html", r=r, history=history)


@bp.get("/layers")
def layer_list() -> str:
    """Boundary layers and their versions."""
    return render_template("layers.html", versions=state().store.layer_versions())


@bp.get("/api/requests/<int:request_id>")
def api_request(request_id: int) -> Response:
    """One request as public JSON."""
    return jsonify(_public(state().store.get(request_id)))


@bp.get("/api/requests/nearby")
def api_nearby() -> Response:
    """Open requests of a service near a point, for the report form to offer before submitting."""
    args = request.args
    try:
        lat, lon = float(args["lat"]), float(args["long"])
        radius_m = float(args.get("radius_m", NEARBY_RADIUS_M))
        limit = int(args.get("limit", NEARBY_LIMIT))
    except KeyError as exc:
        raise InvalidRequest(f"{exc.args[0]} is required") from exc
    except ValueError as exc:
        raise InvalidRequest(f"lat, long, radius_m and limit are expected to be numbers: {exc}") \
            from exc
    if not 0 < radius_m <= 2000 or not 0 < limit <= 50:
        raise InvalidRequest(f"radius_m was {radius_m} and limit {limit} but are expected to "
                             "be within (0, 2000] and (0, 50]")
    code = args.get("service_code") or None
    store = state().store
    nearest: dict[int, float] = {}  # each group once, at its nearest member's distance
    for r, d in store.near(lon, lat, radius_m, service_code=code, status="open", limit=500):
        nearest.setdefault(r.duplicate_of or r.id, d)
    picked = list(nearest)[:limit]
    roots = {r.id: r for r in store.query(ids=picked, limit=limit)}
    return jsonify([{**_public(roots[i]), "distance_m": round(nearest[i], 1)}
                    for i in picked if i in roots])


@bp.get("/healthz")
def health() -> Response:
    """Liveness plus a spatial round trip to the database."""
    s = state()
    return jsonify({"status": "ok", "backend": s.store.dialect, "spatial": s.store.ping()})
