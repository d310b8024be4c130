"""The call-taker desk: one screen for a phone or walk-in contact, and its staff JSON."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Blueprint, jsonify, render_template, request
from werkzeug.wrappers import Response

from geo311 import contacts
from geo311.errors import InvalidRequest
from geo311.model import CALLBACKS, CHANNELS, OUTCOMES, NewRequest, Reporter
from geo311_web import maps, state
from geo311_web.auth import actor, role_required
from geo311_web.knowledge import blocks
from geo311_web.query_values import point

bp = Blueprint("desk", __name__)
DESK_ROLES = ("agent", "dispatcher")
API = "/api/staff/intake"
KB_LIMIT = 10


@bp.get("/staff/intake")
@role_required(*DESK_ROLES)
def desk() -> str:
    """The desk: caller, knowledge base, service, questions, location, duplicates, contact."""
    (lat, lon), zoom = maps.map_view()
    s = state()
    return render_template(
        "desk.html", channels=CHANNELS, outcomes=OUTCOMES, callbacks=CALLBACKS,
        languages=LANGUAGES,
        recent=s.store.contacts.recent(agent=actor(), limit=10),
        centre={"lat": lat, "lon": lon, "zoom": zoom, "tiles": s.settings.tile_url},
        geocode_available=s.context().geocoder is not None)


@bp.get(f"{API}/callers")
@role_required(*DESK_ROLES)
def callers() -> Response:
    """A caller's earlier requests by ``phone`` or ``email`` (personal data: staff only)."""
    found = contacts.caller_history(state().store, phone=request.args.get("phone", ""),
                                    email=request.args.get("email", ""))
    return jsonify([{"id": r.id, "service_code": r.service_code,
                     "service_name": r.service_name, "status": r.status,
                     "requested": maps.local_time(r.requested_datetime, state().settings.zone),
                     "address": r.address, "duplicate_of": r.duplicate_of} for r in found])


@bp.get(f"{API}/kb")
@role_required(*DESK_ROLES)
def kb_search() -> Response:
    """Articles (internal ones too) and services that take requests, for the caller's words."""
    query = request.args.get("q", "").strip()
    if not query:
        raise InvalidRequest("q is required: the caller's words")
    hits = contacts.desk_search(state().store, query, KB_LIMIT)
    return jsonify([h.as_json() for h in hits])


@bp.get(f"{API}/kb/<slug>")
@role_required(*DESK_ROLES)
def kb_article(slug: str) -> Response:
    """One article with its call-taker script; its service when that takes requests."""
    store = state().store
    a = store.kb.article(slug)
    service = None
    if a.service_code:
        found = store.catalogue.service(a.service_code)
        if found.accepting:
            service = {"code": found.code, "name": found.name}
    return jsonify({"slug": a.slug, "title": a.title, "script": a.script, "public": a.public,
                    "blocks": [{"kind": k, "lines": lines} for k, lines in blocks(a.body)],
                    "service": service})


@bp.get(f"{API}/services/<code>")
@role_required(*DESK_ROLES)
def service_questions(code: str) -> Response:
    """A service that takes requests, the questions Open311 asks of it, and its notes."""
    service = contacts.accepting_service(state().store, code)
    asked = sorted((a for a in service.attributes if a.variable), key=lambda a: a.order)
    notes = [a.description for a in sorted(service.attributes, key=lambda a: a.order)
             if not a.variable]
    return jsonify({"code": service.code, "name": service.name, "group": service.group,
                    "notes": notes,
                    "questions": [{"code": a.code, "datatype": a.datatype,
                                   "description": a.description, "required": a.required,
                                   "values": [{"key": k, "name": n} for k, n in a.values]}
                                  for a in asked]})


@bp.get(f"{API}/reverse")
@role_required(*DESK_ROLES)
def reverse() -> Response:
    """The nearest address point within 100 m of a clicked point (address null if none)."""
    lon, lat = point(request.args)
    found = contacts.nearest_address(state().context(), lon, lat)
    if found is None:
        return jsonify({"address": None, "address_id": None, "distance_m": None,
                        "within_m": contacts.REVERSE_WITHIN_M})
    return jsonify({"address": found.address, "address_id": found.address_id,
                    "distance_m": round(found.address_distance_m or 0.0, 1),
                    "lat": found.lat, "long": found.lon, "within_m": contacts.REVERSE_WITHIN_M})


@bp.get(f"{API}/duplicates")
@role_required(*DESK_ROLES)
def duplicates() -> Response:
    """Open groups a report of ``service_code`` at ``lat``/``long`` may repeat."""
    lon, lat = point(request.args)
    store = state().store
    service = contacts.accepting_service(store, request.args.get("service_code", ""))
    found = contacts.duplicate_suggestions(store, service, lon, lat)
    return jsonify([{"id": g.request.id, "service_name": g.request.service_name,
                     "status": g.request.status, "address": g.request.address,
                     "description": g.request.description[:200],
                     "requested": maps.local_time(g.request.requested_datetime,
                                                  state().settings.zone),
                     "reporter_count": g.request.reporter_count, "distance_m": g.distance_m,
                     "lat": g.request.lat, "long": g.request.lon,
                     "automatic": g.automatic} for g in found])


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("the body is expected to be a JSON object")
    return body


#: The languages mail is written in, each named in itself, for the desk's choice.
LANGUAGES = (("en", "English"), ("es", "Español"), ("pl", "Polski"), ("zh", "中文"))


def _language(body: dict[str, Any]) -> str:
    value = _text(body, "language")
    if value and value not in dict(LANGUAGES):
        raise InvalidRequest(f"language was {value[:20]!r} but is expected to be one of "
                             f"{[code for code, _ in LANGUAGES]} or empty")
    return value


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"{key} is expected to be text")
    return value.strip()


@bp.post(f"{API}/info")
@role_required(*DESK_ROLES)
def log_info() -> tuple[Response, int]:
    """Log an information-only contact: topic and outcome, no location, no ticket."""
    body = _body()
    contact = contacts.log_information(
        state().store, agent=actor(), channel=_text(body, "channel"),
        topic=_text(body, "topic"), outcome=_text(body, "outcome"),
        callback=_text(body, "callback") or "none")
    return jsonify({"contact_id": contact.id, "kind": contact.kind}), 201


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{key} was {str(value)[:40]!r} but is expected to be a "
                             "number") from None


def _answers(body: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    raw = body.get("answers") or {}
    if not isinstance(raw, dict):
        raise InvalidRequest("answers are expected to be an object of code: [values]")
    out = {}
    for code, values in raw.items():
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidRequest(f"attribute[{str(code)[:40]}] is expected to be text")
        out[str(code)] = tuple(values)
    return out


def _photo(body: dict[str, Any]) -> bytes | None:
    """The bytes of a ``photo`` sent as a base64 ``data:`` URL, or None."""
    text = body.get("photo")
    if text in (None, ""):
        return None
    if not isinstance(text, str) or not text.startswith("data:") or ";base64," not in text:
        raise InvalidRequest("photo is expected to be a data: URL with base64 content")
    try:
        return base64.b64decode(text.split(";base64,", 1)[1], validate=True)
    except binascii.Error as exc:
        raise InvalidRequest("photo's base64 content is damaged") from exc


@bp.post(f"{API}/request")
@role_required(*DESK_ROLES)
def make_request() -> tuple[Response, int]:
    """Make the caller's report a request (or join a chosen group); read back its number."""
    body = _body()
    join = body.get("join_group")
    if join not in (None, "") and not (isinstance(join, int) or str(join).isdigit()):
        raise InvalidRequest(f"join_group was {str(join)[:40]!r} but is expected to be a "
                             "request number")
    s = state()
    new = NewRequest(
        service_code=_text(body, "service_code"), lon=_number(body, "long"),
        lat=_number(body, "lat"), address=_text(body, "address"),
        description=_text(body, "description"),
        reporter=Reporter(first_name=_text(body, "name"), phone=_text(body, "phone"),
                          email=_text(body, "email"), language=_language(body)),
        attributes=_answers(body))
    stored, contact = contacts.take_request(
        s.store, s.context(), new, agent=actor(), channel=_text(body, "channel"),
        callback=_text(body, "callback") or "none", topic=_text(body, "topic"),
        join_group=int(join) if join not in (None, "") else None,
        photo=s.photo(_photo(body), request.host_url))
    return jsonify({"id": stored.id, "url": f"/staff/requests/{stored.id}",
                    "service_name": stored.service_name, "duplicate_of": stored.duplicate_of,
                    "contact_id": contact.id}), 201
