"""Address search for the report form: geocode one address, suggest completions."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from geo311.errors import InvalidRequest
from geo311.geocoding.cascade import Geocoder
from geo311.intake import geocode_address
from geo311_web import state
from geo311_web.query_values import point

bp = Blueprint("geocoding", __name__)

MAX_SUGGESTIONS = 20


def _geocoder() -> Geocoder:
    geocoder = state().context().geocoder
    if geocoder is None:
        raise InvalidRequest("address geocoding is not set up")
    return geocoder


def _query() -> str:
    q = request.args.get("q", "")
    if not q.strip():
        raise InvalidRequest("q is required: the address or intersection to look up")
    return q


@bp.get("/api/geocode")
def geocode() -> Response:
    """One result for ``q``: lat, long, match, score, reason, address ("none" if not found)."""
    _geocoder()
    g = geocode_address(state().context(), _query())
    return jsonify({"lat": g.lat, "long": g.lon, "match": g.match, "score": g.score,
                    "reason": g.reason, "address": g.address, "address_id": g.address_id})


@bp.get("/api/geocode/suggest")
def suggest() -> Response:
    """Up to ``limit`` (default 5, at most 20) placed completions of a partly typed ``q``."""
    raw = request.args.get("limit", "5")
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidRequest(f"limit {raw[:20]!r} is expected to be a whole number") from None
    if not 1 <= limit <= MAX_SUGGESTIONS:
        raise InvalidRequest(f"limit was {limit} but is expected to be within 1..{MAX_SUGGESTIONS}")
    found = _geocoder().suggest(_query(), limit)
    return jsonify([{"address": s.address, "lat": s.lat, "long": s.lon, "match": s.match,
                     "score": s.score} for s in found])


@bp.get("/api/geocode/reverse")
def reverse() -> Response:
    """The nearest known address and street to ``lat``/``long``, with distances in metres."""
    lon, lat = point(request.args)
    r = _geocoder().reverse(lon, lat)
    return jsonify({"address": r.address, "address_distance_m": r.address_distance_m,
                    "street": r.street, "street_distance_m": r.street_distance_m,
                    "lat": r.lat, "long": r.lon, "address_id": r.address_id})
