"""Public pages and the small public JSON API: citizen map, report form, tracking page."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from itertools import groupby
from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from geo311.errors import Geo311Error, InvalidRequest, NotFound
from geo311.following import ask_to_follow
from geo311.intake import submit
from geo311.media import NAME as MEDIA_NAME
from geo311.media import kept_photo, thumbnail_of
from geo311.model import NewRequest, Reporter, Service, ServiceRequest
from geo311.nearby import joinable_group, open_groups_near, open_requests_around
from geo311.open311 import parse_answers
from geo311.privacy import mask_request
from geo311.redaction import redact_text
from geo311.referral import responsible_agency
from geo311_web import maps, state
from geo311_web.languages import reader_language
from geo311_web.local_time import when_words
from geo311_web.notices import notices_here

bp = Blueprint("pages", __name__)


@bp.app_template_filter("when")
def when(moment: datetime | None) -> str:
    """A time in the city's zone and in words, for residents."""
    return when_words(moment, state().settings.zone)
MAX_MAP_REQUESTS = 2000
NEARBY_RADIUS_M = 250.0
NEARBY_LIMIT = 5
#: The citizen map's "open requests around here": default radius and most points drawn.
AROUND_RADIUS_M = 400.0
AROUND_MAX = 5000
WITHHELD = "withheld: the location of this service is shown only approximately"


def _public(r: ServiceRequest, sensitive: set[str]) -> dict[str, object]:
    """The fields of a request anyone may see."""
    r = mask_request(r, sensitive)
    return {
        "service_request_id": r.service_request_id, "external_id": r.external_id,
        "service_code": r.service_code, "service_name": r.service_name, "status": r.status,
        "status_notes": r.status_notes, "description": r.description, "address": r.address,
        "lat": r.lat, "long": r.lon, "requested_datetime": r.requested_datetime.isoformat(),
        "updated_datetime": r.updated_datetime.isoformat(),
        "closed_datetime": r.closed_datetime.isoformat() if r.closed_datetime else None,
        "geocode_match": r.geocode_match, "duplicate_of": r.duplicate_of,
        "reporter_count": r.reporter_count, "districts": r.districts,
        "location_masked": r.service_code in sensitive,
    }


def _index(status_code: int = 200, **extra: object) -> tuple[str, int]:
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
        version = s.store.layers.version(ctx.service_area)
        maps.add_districts(m, s.store.layers.features(ctx.service_area), version.title)
    sensitive = s.store.catalogue.sensitive_codes()
    recent = [mask_request(r, sensitive)
              for r in s.store.requests.query(status=status, limit=limit)]
    drawn = maps.add_requests(m, recent)
    form = extra.pop("form", {})
    # Only services taking requests are offered, by department then name.
    services = [sv for sv in s.store.catalogue.services() if sv.accepting]
    chosen = next((sv for sv in services if sv.code == form.get("service_code")), None)
    departments = groupby(sorted(services, key=lambda sv: (sv.group or "Other", sv.name)),
                          key=lambda sv: sv.group or "Other")
    questions = sorted((a for a in chosen.attributes if a.variable),
                       key=lambda a: a.order) if chosen else []
    lon, lat = _form_point(form)
    return render_template("index.html", parts=maps.map_parts(m), drawn=drawn,
                           total=s.store.requests.count(), status=status or "any",
                           departments=[(d, list(g)) for d, g in departments],
                           questions=questions, radius_m=AROUND_RADIUS_M,
                           geocode_available=any(rule.rule == "/api/geocode" for rule in
                                                 current_app.url_map.iter_rules()),
                           form=form, notices=notices_here(lon, lat), **extra), status_code


def _form_point(form: Any) -> tuple[float | None, float | None]:
    """The place a form chose (``lat`` and ``long``), if it holds a valid one."""
    try:
        lat, lon = float(form.get("lat", "")), float(form.get("long", ""))
    except (TypeError, ValueError):
        return None, None
    return (lon, lat) if abs(lat) <= 90 and abs(lon) <= 180 else (None, None)


@bp.get("/")
def index() -> tuple[str, int]:
    """Citizen map: recent requests, open requests around a clicked point, the report form.

    ``?service_code=`` chooses the service (a help page links here).
    """
    return _index(form=request.args)


@bp.post("/report")
def report() -> tuple[str, int]:
    """Take a resident's report through intake; say so when it joins an existing one."""
    form = request.form
    try:
        lat = float(form.get("lat", "")) if form.get("lat") else None
        lon = float(form.get("long", "")) if form.get("long") else None
    except ValueError:
        return _index(400, error=f"lat {form.get('lat')!r} and long {form.get('long')!r} are "
                                 "expected to be numbers: click the map to place the report",
                      form=form)
    s = state()
    try:
        # The same rules as every channel (geo311.reports, applied by submit): nothing
        # is cut short or let through here that Open311 would refuse.
        new = NewRequest(
            service_code=form.get("service_code", ""), lon=lon, lat=lat,
            address=form.get("address", "").strip(), description=form.get("description", ""),
            reporter=Reporter(first_name=form.get("name", "").strip(),
                              email=form.get("email", "").strip(),
                              language=reader_language()),
            attributes={code: tuple(values) for code, values in
                        parse_answers(form.to_dict(flat=False)).items()},
        )
        join = form.get("join_group", "").strip()
        if join and not join.isdigit():
            raise InvalidRequest(f"join_group was {join[:20]!r} but is expected to be a "
                                 "request number")
        chosen = joinable_group(s.store, lon, lat, new.service_code, int(join)) \
            if join and lon is not None and lat is not None else None
        upload = request.files.get("photo")
        with kept_photo(s.photo(upload.read() if upload else None, request.host_url)) as url:
            stored = submit(s.store, s.context(), replace(new, media_url=url) if url else new,
                            join_group=chosen)
    except Geo311Error as exc:
        return _index(exc.status, error=exc.message, form=form)
    parent = s.store.requests.get(stored.duplicate_of) if stored.duplicate_of else None
    return render_template("reported.html", r=stored, parent=parent), 200


@bp.get("/requests/<int:request_id>")
def tracking(request_id: int) -> tuple[str, int]:
    """Tracking page: status and history of one request, without personal data."""
    return _tracking(request_id, followed=request.args.get("follow") == "asked")


@bp.post("/requests/<int:request_id>/follow")
def follow(request_id: int) -> Response | tuple[str, int]:
    """Follow by email: mail a confirmation link, then say so whatever the address's state."""
    email = request.form.get("email", "")
    try:
        ask_to_follow(state().store, request_id, email, reader_language())
    except InvalidRequest as exc:
        return _tracking(request_id, follow_error=exc.message, follow_email=email, status=400)
    # The same answer whether or not a message went: it must not tell who follows what.
    return redirect(url_for("pages.tracking", request_id=request_id, follow="asked") +
                    "#follow")


def _tracking(request_id: int, *, followed: bool = False, follow_error: str = "",
              follow_email: str = "", status: int = 200) -> tuple[str, int]:
    s = state()
    r = s.store.requests.get(request_id)
    sensitive = s.store.catalogue.sensitive_codes()
    history = [e for e in s.store.audit.entries("request", request_id)
               if e["detail"].get("visibility") != "internal"
               and e["action"] not in RESIDENTS_OWN_ACTIONS]
    # Public notes only, redacted like the description; staff names stay off the page.
    notes = [(n.created, redact_text(n.body)) for n in s.store.notes.public_of(request_id)]
    shown = mask_request(r, sensitive)  # a sensitive request is placed at its cell's centre
    try:
        service: Service | None = s.store.catalogue.service(r.service_code)
    except NotFound:  # a service retired from the catalogue keeps its requests
        service = None
    agency = responsible_agency(s.context().routing, service, r.districts) if service else ""
    media = _shown_media(r, sensitive)
    return render_template("request.html", r=shown, history=history,
                           notes=notes, notices_here=notices_here(shown.lon, shown.lat),
                           agency=agency,
                           districts=district_lines(r),
                           import_note=_import_note(r),
                           media_url=media, thumbnail=thumbnail_of(media),
                           withheld=WITHHELD if r.service_code in sensitive else "",
                           followed=followed, follow_error=follow_error,
                           follow_email=follow_email), status


#: History a public page leaves out: they would tell who follows or rated a request.
RESIDENTS_OWN_ACTIONS = ("follow_asked", "follow_confirmed", "survey_answered")

#: What an import flag says to a reader of the tracking page.
IMPORT_FLAG_WORDS = {
    "date_before_earliest": "the date recorded is before the imported records begin "
                            "(it may be a placeholder)",
    "date_in_future": "the date recorded lies in the future",
}


#: Media links a page may follow; any other scheme (``javascript:``) is shown as text.
MEDIA_SCHEMES = ("https://", "http://")


def web_link(url: str) -> str:
    """``url`` if a page may link it (http or https), else ""."""
    url = url.strip()
    return url if url.lower().startswith(MEDIA_SCHEMES) else ""


def _shown_media(r: ServiceRequest, sensitive: set[str]) -> str:
    """The photo's address if it is a web link and the service is not a sensitive one."""
    return "" if r.service_code in sensitive else web_link(r.media_url)


def _import_note(r: ServiceRequest) -> str:
    """Why a reader should doubt a date or a point the source system recorded."""
    notes = [IMPORT_FLAG_WORDS.get(r.import_flags, r.import_flags)] if r.import_flags else []
    if r.outside_service_area:
        notes.append("the location recorded lies outside the city's service area")
    return "; ".join(notes)


def district_lines(r: ServiceRequest) -> list[tuple[str, str | None]]:
    """(layer title, district name) for the active layers only: retired maps mislead."""
    lines = []
    for layer, (title, names) in sorted(state().store.layers.active_district_names().items()):
        if layer in r.districts:
            district = r.districts[layer]
            lines.append((title, names.get(district, district) if district else None))
    return lines


@bp.get("/media/<name>")
def media(name: str) -> Response:
    """A kept photo (stripped of metadata): named by its content, so cached for ever."""
    if not MEDIA_NAME.fullmatch(name):
        raise NotFound(f"no photo is called {name[:80]!r}")
    data = state().media.get(name)
    if data is None:
        raise NotFound(f"no photo is called {name!r}")
    response = Response(data, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["Content-Disposition"] = "inline"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/layers")
def layer_list() -> str:
    """The active boundary layers; staff uploads stay off the public page until activated."""
    return render_template("layers.html",
                           versions=state().store.layers.versions(active_only=True))


@bp.get("/api/requests/<int:request_id>")
def api_request(request_id: int) -> Response:
    """One request as public JSON."""
    store = state().store
    return jsonify(_public(store.requests.get(request_id), store.catalogue.sensitive_codes()))


def _point_args(default_radius_m: float, max_radius_m: float, default_limit: int,
                max_limit: int) -> tuple[float, float, float, int]:
    args = request.args
    try:
        lat, lon = float(args["lat"]), float(args["long"])
        radius_m = float(args.get("radius_m", default_radius_m))
        limit = int(args.get("limit", default_limit))
    except KeyError as exc:
        raise InvalidRequest(f"{exc.args[0]} is required") from exc
    except ValueError as exc:
        raise InvalidRequest(f"lat, long, radius_m and limit are expected to be numbers: {exc}") \
            from exc
    if not 0 < radius_m <= max_radius_m or not 0 < limit <= max_limit:
        raise InvalidRequest(f"radius_m was {radius_m} and limit {limit} but are expected to "
                             f"be within (0, {max_radius_m:g}] and (0, {max_limit}]")
    return lon, lat, radius_m, limit


@bp.get("/api/requests/nearby")
def api_nearby() -> Response:
    """Open requests of a service near a point, for the report form to offer before submitting.

    Sensitive services are matched on their masked location, as on the citizen map.
    """
    lon, lat, radius_m, limit = _point_args(NEARBY_RADIUS_M, 2000, NEARBY_LIMIT, 50)
    store = state().store
    sensitive = store.catalogue.sensitive_codes()
    found = open_groups_near(store, lon, lat, radius_m, sensitive,
                             service_code=request.args.get("service_code") or None, limit=limit)
    return jsonify([{**_public(r, sensitive), "distance_m": d} for r, d in found])


@bp.get("/api/requests/around")
def api_around() -> Response:
    """Open requests (one per group) within a radius of a point, for the citizen map.

    Sensitive services are matched on their masked location, so moving the search
    circle cannot narrow down where they really are.
    """
    lon, lat, radius_m, limit = _point_args(AROUND_RADIUS_M, 3000, AROUND_MAX, AROUND_MAX)
    store = state().store
    sensitive = store.catalogue.sensitive_codes()
    found = open_requests_around(store, lon, lat, radius_m, sensitive, limit=limit)
    return jsonify([{**_public(r, sensitive), "distance_m": d} for r, d in found])


@bp.get("/healthz")
def health() -> Response:
    """Liveness plus a spatial round trip to the database."""
    s = state()
    return jsonify({"status": "ok", "backend": s.store.backend, "spatial": s.store.db.ping()})
