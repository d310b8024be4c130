"""Area notices: the emergency managers' page, the public notice API, CAP and Atom feeds."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from shapely.geometry import mapping
from werkzeug.datastructures import MultiDict
from werkzeug.utils import secure_filename

from geo311 import cap
from geo311.errors import Geo311Error, InvalidRequest
from geo311.model import SEVERITIES, Notice
from geo311.notices import (
    AREA_SUFFIXES,
    LANGUAGES,
    Area,
    acknowledge_requests,
    area_from_districts,
    area_from_file,
    area_from_geojson,
    end_notice,
    notices_at,
    parse_time,
    post_notice,
)
from geo311.notifications import DECLARED_TAGS
from geo311.store.outbox import DEFAULT_LANGUAGE
from geo311.store.rows import now_utc
from geo311_web import maps, state
from geo311_web.auth import actor, role_required
from geo311_web.languages import reader_language
from geo311_web.query_values import point

bp = Blueprint("notices", __name__)
NOTICE_ROLES = ("emergency",)
#: Each language a notice may be written in, named in itself, for the form.
LANGUAGE_NAMES = {"en": "English", "es": "Español", "pl": "Polski", "zh": "中文"}
#: How long an ended notice stays in the Atom feed.
FEED_DAYS = 30


@bp.get("/staff/notices")
@role_required(*NOTICE_ROLES)
def staff_page(status: int = 200, error: str = "",
               form: MultiDict[str, str] | None = None) -> tuple[str, int]:
    """Notices in force, upcoming and ended; post, end, acknowledge requests under one."""
    s = state()
    (lat, lon), zoom = maps.map_view()
    now = now_utc()
    notices = s.store.notices.all()
    services = sorted(s.store.catalogue.services(), key=lambda sv: (sv.group or "Other", sv.name))
    layers = s.store.layers.versions(active_only=True)
    return render_template(
        "notices.html", now=now, severities=SEVERITIES, languages=LANGUAGE_NAMES,
        in_force=[n for n in notices if n.active(now)],
        upcoming=[n for n in notices if n.starts > now],
        ended=[n for n in notices if n.ends is not None and n.ends <= now],
        acknowledged={n.id: len(s.store.notices.acknowledged(n.id)) for n in notices
                      if n.active(now)},
        services=services, layers=layers, suffixes=", ".join(AREA_SUFFIXES),
        centre={"lat": lat, "lon": lon, "zoom": zoom, "tiles": s.settings.tile_url},
        error=error, form=form or MultiDict()), status


@bp.post("/staff/notices")
@role_required(*NOTICE_ROLES)
def add() -> Response | tuple[str, int]:
    """Post a notice from the form: messages, severity, times, suspended services, area."""
    form = request.form
    s = state()
    try:
        zone = s.settings.timezone
        starts = parse_time(form["starts"], zone, name="start") if form.get("starts") else None
        ends = parse_time(form["ends"], zone, name="end") if form.get("ends") else None
        notice = post_notice(
            s.store, messages={lang: form.get(f"message_{lang}", "") for lang in LANGUAGES},
            severity=form.get("severity", ""), area=_area(form), starts=starts, ends=ends,
            suspend=form.getlist("suspend"), actor=actor())
    except Geo311Error as exc:
        return staff_page(exc.status, exc.message, form)
    flash(f"Notice {notice.id} posted ({notice.severity}, {notice.area_desc}).")
    return redirect(url_for("notices.staff_page"), code=303)


def _area(form: MultiDict[str, str]) -> Area:
    """The area the form chose: drawn on the map, uploaded, or districts of a layer."""
    source = form.get("area_source", "draw")
    if source == "districts":
        return area_from_districts(state().store, form.get("layer", ""),
                                   form.get("districts", "").split(","))
    if source == "file":
        sent = request.files.get("area_file")
        if sent is None or not sent.filename:
            raise InvalidRequest("choose a GeoJSON or KML file for the area (field area_file)")
        filename = secure_filename(sent.filename) or "area"
        with tempfile.TemporaryDirectory(prefix="geo311-notice-") as folder:
            path = Path(folder) / filename
            sent.save(path)
            return area_from_file(path, shown=sent.filename[:200])
    if source == "draw":
        drawn = form.get("area_geojson", "").strip()
        if not drawn:
            raise InvalidRequest("draw the area on the map (three corners at least), paste its "
                                 "GeoJSON, upload a file or choose districts")
        return area_from_geojson(drawn)
    raise InvalidRequest(f"area_source was {source[:20]!r} but is expected to be draw, file "
                         "or districts")


@bp.post("/staff/notices/<int:notice_id>/end")
@role_required(*NOTICE_ROLES)
def end(notice_id: int) -> Response | tuple[str, int]:
    """End a notice now."""
    try:
        notice = end_notice(state().store, notice_id, actor=actor())
    except InvalidRequest as exc:
        return staff_page(exc.status, exc.message)
    flash(f"Notice {notice.id} ended.")
    return redirect(url_for("notices.staff_page"), code=303)


@bp.post("/staff/notices/<int:notice_id>/acknowledge")
@role_required(*NOTICE_ROLES)
def acknowledge(notice_id: int) -> Response | tuple[str, int]:
    """Acknowledge the open requests of chosen services in a notice's area and window."""
    form = request.form
    try:
        done = acknowledge_requests(state().store, notice_id, form.getlist("services"),
                                    form.get("note", ""), actor=actor())
    except InvalidRequest as exc:
        return staff_page(exc.status, exc.message, form)
    flash(done.line[0].upper() + done.line[1:] + "; their reporters are told by mail.")
    return redirect(url_for("notices.staff_page"), code=303)


# --- public: the notices at a place, CAP and Atom -------------------------------------------


def _language() -> str:
    asked = request.args.get("lang", "")
    return asked if asked in LANGUAGES else (reader_language() or DEFAULT_LANGUAGE)


def notice_json(notice: Notice, language: str) -> dict[str, Any]:
    """What a page shows of a notice, in ``language`` where it was written in it."""
    s = state()
    shown = language if language in notice.messages else DEFAULT_LANGUAGE
    zone = s.settings.zone
    names = {sv.code: sv.name for sv in s.store.catalogue.services()} if notice.suspended \
        else {}
    return {"id": notice.id, "severity": notice.severity,
            "message": notice.message(language), "lang": DECLARED_TAGS.get(shown, shown),
            "area": notice.area_desc, "starts": notice.starts.isoformat(),
            "ends": notice.ends.isoformat() if notice.ends else None,
            "starts_local": maps.local_time(notice.starts, zone),
            "ends_local": maps.local_time(notice.ends, zone) if notice.ends else None,
            "suspended": [{"code": c, "name": names.get(c, c)} for c in notice.suspended],
            "cap": url_for("notices.cap_alert", notice_id=notice.id)}


def notices_here(lon: float | None, lat: float | None) -> list[dict[str, Any]]:
    """The notices in force at a point, as pages show them (none without a point)."""
    if lon is None or lat is None:
        return []
    language = _language()
    return [notice_json(n, language) for n in notices_at(state().store, lon, lat)]


@bp.get("/api/notices")
def api_notices() -> Response:
    """Notices in force as GeoJSON; with ``lat`` and ``long``, those whose area holds the point."""
    s = state()
    language = _language()
    if "lat" in request.args or "long" in request.args:
        lon, lat = point(request.args)
        found = notices_at(s.store, lon, lat)
    else:
        found = s.store.notices.in_force()
    return jsonify({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": n.id, "geometry": mapping(n.area),
         "properties": notice_json(n, language)} for n in found]})


def publisher() -> cap.Publisher:
    """Who the feeds are from: the city's name and mail sender, this server's address."""
    s = state()
    profile = s.settings.profile
    name = profile.branding.name or profile.title or profile.name or "geo311"
    host = request.host.split(":")[0] or "localhost"
    sender = s.settings.mail_from.split("<")[-1].strip(" >") or f"311@{host}"
    base = (s.settings.public_url or request.url_root).rstrip("/")
    return cap.Publisher(sender=sender, name=name, base_url=base, zone=s.settings.timezone,
                         event=f"{name} service notice", default=DEFAULT_LANGUAGE,
                         tags=DECLARED_TAGS)


def _xml(document: bytes, media_type: str) -> Response:
    return Response(document, content_type=f"{media_type}; charset=utf-8")


@bp.get("/cap.xml")
def cap_index() -> Response:
    """An Atom index of the CAP alerts of the notices in force."""
    now = now_utc()
    return _xml(cap.alert_index(state().store.notices.in_force(now), publisher(), now),
                cap.ATOM_MEDIA_TYPE)


@bp.get("/cap/<int:notice_id>.xml")
def cap_alert(notice_id: int) -> Response:
    """One notice as a CAP 1.2 alert (a Cancel once it was ended by hand)."""
    return _xml(cap.alert(state().store.notices.get(notice_id), publisher(), now_utc()),
                cap.CAP_MEDIA_TYPE)


@bp.get("/notices.atom")
def atom_feed() -> Response:
    """Notices in force, upcoming, and ended in the last 30 days, for feed readers."""
    now = now_utc()
    recent = [n for n in state().store.notices.all()
              if n.ends is None or (now - n.ends).days < FEED_DAYS]
    return _xml(cap.notice_feed(recent, publisher(), now, _language()), cap.ATOM_MEDIA_TYPE)
