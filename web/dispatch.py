"""Staff pages and JSON for dispatch: crew map, work orders, suggestions, SLA board, KPIs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd
from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from geo311 import dispatch as core
from geo311 import sla
from geo311.dispatch import Suggestion
from geo311.errors import InvalidRequest, NotFound
from geo311.model import ACTIVE_WORK_STATUSES, TRANSITIONS, Crew, WorkOrder
from geo311_web import maps, state
from geo311_web.auth import actor, role_required

bp = Blueprint("dispatch", __name__)
DISPATCH_ROLES = ("dispatcher",)
MAX_UNASSIGNED_ON_MAP = 3000


@bp.app_template_filter("time_left")
def time_left(seconds: float | None) -> str:
    """Seconds left on an SLA clock in words ("3 days overdue")."""
    return sla.remaining_words(seconds)


@bp.app_template_filter("hours_left")
def hours_left(hours: float | None) -> str:
    """Hours left on an SLA clock in words."""
    return sla.remaining_words(None if hours is None else hours * 3600)


@bp.app_template_filter("local")
def local(when: datetime | None) -> str:
    """A time in the city's time zone, to the minute, with the zone's name."""
    return maps.local_time(when, state().settings.zone)


@bp.app_template_filter("reason")
def reason(code: str) -> str:
    """A pause reason as staff read it."""
    return sla.reason_label(code)


@bp.app_template_filter("sla_state")
def sla_state(code: str) -> str:
    """An SLA state as staff read it."""
    return sla.STATE_LABELS.get(code, code.replace("_", " "))


def _layer() -> str:
    """The dispatch layer: ``?layer=``, else the crews' layer, else a district layer."""
    s = state()
    wanted = request.values.get("layer")
    if wanted:
        s.store.layers.version(wanted)
        return wanted
    versions = s.store.layers.versions(active_only=True)
    active = {v.layer for v in versions}
    crews = [c for c in s.store.dispatch.crews() if c.layer in active]
    if crews:
        return crews[0].layer
    districts = [v.layer for v in versions if v.role == "district"]
    if districts or versions:
        return (districts or [v.layer for v in versions])[0]
    raise NotFound("no boundary layer is active: load one first (geo311 layers load)")


def _day() -> str:
    raw = request.values.get("date")
    if not raw:
        return datetime.now(state().settings.zone).date().isoformat()
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError as exc:
        raise InvalidRequest(f"date was {raw!r} but is expected as YYYY-MM-DD") from exc


def _int(name: str, raw: Any) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{name} was {raw!r} but is expected to be a whole number") from exc


def _order_json(o: WorkOrder) -> dict[str, Any]:
    return {
        "id": o.id, "crew_id": o.crew_id, "status": o.status,
        "scheduled_date": o.scheduled_date, "route_position": o.route_position,
        "request_ids": list(o.request_ids), "resolution": o.resolution,
        "created": o.created.isoformat(), "created_by": o.created_by,
        "updated": o.updated.isoformat(),
        "started": o.started.isoformat() if o.started else None,
        "finished": o.finished.isoformat() if o.finished else None,
        "notes": [{"at": at.isoformat(), "author": a, "text": t} for at, a, t in o.notes],
    }


def _suggestion_json(sg: Suggestion) -> dict[str, Any]:
    return {"request_id": sg.request_id, "crew_id": sg.crew_id,
            "scheduled_date": sg.scheduled_date, "hours_left": sg.hours_left,
            "time_left": hours_left(sg.hours_left),
            "distance_km": sg.distance_km, "reason": sg.reason}


def _crew_json(c: Crew) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "layer": c.layer, "districts": list(c.districts),
            "service_groups": list(c.service_groups), "capacity_per_day": c.capacity_per_day,
            "calendar": c.calendar, "depot": c.depot}


# -- pages ---------------------------------------------------------------------------


@bp.get("/dispatch")
@role_required(*DISPATCH_ROLES)
def dispatch_map() -> str:
    """Crew map: each crew's stops and route in its colour, districts, unassigned, late."""
    s = state()
    layer, day = _layer(), _day()
    store = s.store
    crews = [c for c in store.dispatch.crews() if c.layer == layer]
    colours = {c.id: maps.crew_colour(k) for k, c in enumerate(crews)}
    features = store.layers.features(layer)
    m = maps.base_map(s.settings.tile_url)
    maps.add_districts(m, features, store.layers.version(layer).title)
    orders = store.dispatch.work_orders(status=ACTIVE_WORK_STATUSES, scheduled_date=day)
    roots = [r for o in orders for r in o.request_ids]
    points = store.dispatch.frame(None, unassigned_only=False, ids=roots) if roots else None
    where = ({int(r.id): (float(r.lon), float(r.lat), str(r.service_code))
              for r in points.itertuples()} if points is not None else {})
    states = {st.request_id: st for st in sla.sla_board(store, states=("breached", "at_risk"))}
    late = store.dispatch.frame(None, unassigned_only=False, ids=list(states)) if states else None
    drawn_late = maps.add_sla_states(m, late, states, s.settings.zone) if late is not None else 0
    drawn_stops = 0
    for c in crews:
        mine = sorted((o for o in orders if o.crew_id == c.id),
                      key=lambda o: (o.route_position is None, o.route_position or 0, o.id))
        maps.add_crew_districts(m, features, c, colours[c.id])
        drawn_stops += maps.add_crew_stops(m, c, mine, where, colours[c.id])
    version = store.layers.version(layer)
    unassigned = store.dispatch.frame(version.id)
    most_urgent = unassigned.assign(due=pd.to_datetime(unassigned["expected"], utc=True)) \
        .sort_values(["due", "id"], na_position="last", kind="stable")
    drawn_unassigned = maps.add_unassigned(m, most_urgent.head(MAX_UNASSIGNED_ON_MAP))
    maps.keep_crews_on_top(m)
    maps.add_layer_control(m)
    loads = store.dispatch.crew_loads()
    return render_template(
        "dispatch.html", parts=maps.map_parts(m), crews=crews, colours=colours, loads=loads,
        layer=layer, day=day, drawn_stops=drawn_stops, crew_names={c.id: c.name for c in crews},
        orders=sorted(orders, key=lambda o: (o.crew_id, o.route_position or 10**6, o.id)),
        drawn_unassigned=drawn_unassigned, unassigned_total=len(unassigned),
        drawn_late=drawn_late, breached=sum(v.state == "breached" for v in states.values()),
        at_risk=sum(v.state == "at_risk" for v in states.values()),
        open_days=store.dispatch.open_days(), accepted=request.args.get("accepted"),
    )


@bp.get("/dispatch/crews")
@role_required(*DISPATCH_ROLES)
def crew_list() -> str:
    """Crews and their load, active or not."""
    return _crew_list()


def _crew_list(error: str | None = None, form: Any = None) -> str:
    store = state().store
    return render_template("crews.html", crews=store.dispatch.crews(active_only=False),
                           loads=store.dispatch.crew_loads(), error=error, form=form or {},
                           layers=[v.layer for v in store.layers.versions(active_only=True)])


def _form_crew_fields(f: Any) -> dict[str, Any]:
    """Crew fields from a form: names as the crew has them, lists and depot parsed."""
    depot_lon, depot_lat = (f.get("depot_lon") or "").strip(), (f.get("depot_lat") or "").strip()
    if bool(depot_lon) != bool(depot_lat):
        raise InvalidRequest("give both depot lon and lat, or neither")
    try:
        depot = (float(depot_lon), float(depot_lat)) if depot_lon else None
    except ValueError as exc:
        raise InvalidRequest("depot_lon and depot_lat are expected to be numbers") from exc
    return {
        "name": f.get("name", "").strip(), "layer": f.get("layer", ""),
        "districts": tuple(d.strip() for d in f.get("districts", "").split(",") if d.strip()),
        "service_groups": tuple(g.strip() for g in f.get("service_groups", "").split(",")
                                if g.strip()),
        "capacity_per_day": _int("capacity_per_day", f.get("capacity_per_day", 8)),
        "depot": depot,
    }


@bp.post("/dispatch/crews")
@role_required(*DISPATCH_ROLES)
def crew_create() -> Response | tuple[str, int]:
    """Add a crew from the form; a refusal is shown on the form."""
    try:
        fields = _form_crew_fields(request.form)
        depot = fields.pop("depot")
        crew = Crew(**fields, calendar=request.form.get("calendar") or "",
                    depot_lon=depot[0] if depot else None,
                    depot_lat=depot[1] if depot else None)
        core.create_crew(state().store, crew, actor=actor())
    except InvalidRequest as exc:
        return _crew_list(error=str(exc), form=request.form), 400
    return redirect(url_for("dispatch.crew_list"))


@bp.get("/dispatch/crews/<int:crew_id>")
@role_required(*DISPATCH_ROLES)
def crew_page(crew_id: int) -> str:
    """One crew's edit form and its history."""
    return _crew_form(state().store.dispatch.crew(crew_id))


def _crew_form(crew: Crew, error: str | None = None, form: Any = None) -> str:
    store = state().store
    return render_template("crew.html", crew=crew, error=error, form=form,
                           layers=[v.layer for v in store.layers.versions(active_only=True)],
                           history=store.audit.entries("crew", crew.id))


@bp.post("/dispatch/crews/<int:crew_id>")
@role_required(*DISPATCH_ROLES)
def crew_edit(crew_id: int) -> Response | tuple[str, int]:
    """Save a crew's districts, groups, capacity, calendar, depot and whether active."""
    store = state().store
    crew = store.dispatch.crew(crew_id)
    f = request.form
    try:
        changes = _form_crew_fields(f)
        changes["calendar"] = f.get("calendar") or crew.calendar
        changes["active"] = f.get("active") == "1"
        core.edit_crew(store, crew_id, actor=actor(), **changes)
    except InvalidRequest as exc:
        return _crew_form(crew, error=str(exc), form=f), 400
    return redirect(url_for("dispatch.crew_page", crew_id=crew_id, saved=1))


@bp.get("/dispatch/work-orders")
@role_required(*DISPATCH_ROLES)
def work_order_list() -> str:
    """Work orders, newest day first."""
    store = state().store
    status = request.args.get("status") or None
    orders = store.dispatch.work_orders(status=[status] if status else None)
    return render_template("work_orders.html", orders=list(reversed(orders)),
                           crews={c.id: c for c in store.dispatch.crews(active_only=False)},
                           status=status)


@bp.get("/dispatch/work-orders/<int:order_id>")
@role_required(*DISPATCH_ROLES)
def work_order_page(order_id: int) -> str:
    """One work order: stops, status, notes, history."""
    return _work_order_view(order_id)


def _work_order_view(order_id: int, error: str | None = None, form: Any = None) -> str:
    store = state().store
    order = store.dispatch.work_order(order_id)
    requests = store.requests.query(ids=list(order.request_ids), limit=len(order.request_ids))
    return render_template("work_order.html", o=order, crew=store.dispatch.crew(order.crew_id),
                           requests=requests, crews=store.dispatch.crews(),
                           history=store.audit.entries("work_order", order_id),
                           transitions=TRANSITIONS[order.status], error=error, form=form or {})


@bp.post("/dispatch/work-orders")
@role_required(*DISPATCH_ROLES)
def work_order_create() -> Response:
    """Create a work order for one or more requests (comma-separated ids)."""
    f = request.form
    ids = [_int("request id", x) for x in f.get("request_ids", "").replace(" ", "").split(",")
           if x]
    crew = _int("crew_id", f.get("crew_id"))
    order = core.create_work_order(state().store, crew, ids, scheduled=f.get("date") or None,
                                   actor=actor())
    return redirect(url_for("dispatch.work_order_page", order_id=order.id))


@bp.post("/dispatch/work-orders/<int:order_id>/status")
@role_required(*DISPATCH_ROLES)
def work_order_status(order_id: int) -> Response | tuple[str, int]:
    """Move a work order on (done closes its requests); a refusal is shown on the form."""
    try:
        core.set_work_order_status(state().store, order_id, request.form.get("status", ""),
                                   resolution=request.form.get("resolution", ""),
                                   actor=actor())
    except InvalidRequest as exc:
        return _work_order_view(order_id, error=str(exc), form=request.form), 400
    return redirect(url_for("dispatch.work_order_page", order_id=order_id))


@bp.post("/dispatch/work-orders/<int:order_id>/notes")
@role_required(*DISPATCH_ROLES)
def work_order_note(order_id: int) -> Response:
    """Add a note."""
    core.add_note(state().store, order_id, request.form.get("text", ""), author=actor())
    return redirect(url_for("dispatch.work_order_page", order_id=order_id))


@bp.post("/dispatch/work-orders/<int:order_id>/crew")
@role_required(*DISPATCH_ROLES)
def work_order_reassign(order_id: int) -> Response:
    """Give a work order to another crew."""
    state().store.dispatch.reassign_work_order(order_id,
                                               _int("crew_id", request.form.get("crew_id")),
                                      scheduled_date=request.form.get("date") or None,
                                      actor=actor())
    return redirect(url_for("dispatch.work_order_page", order_id=order_id))


@bp.get("/dispatch/suggestions")
@role_required(*DISPATCH_ROLES)
def suggestions_page() -> str:
    """Suggested crews for open unassigned requests; accept or override each."""
    store = state().store
    layer = _layer()
    district = request.args.get("district") or None
    found = core.suggest(store, layer, district=district)
    shown = found[:500]
    details = {r.id: r for r in store.requests.query(ids=[s.request_id for s in shown], limit=500)}
    return render_template("suggestions.html", suggestions=shown, total=len(found),
                           details=details,
                           crews=[c for c in store.dispatch.crews() if c.layer == layer],
                           layer=layer, district=district)


@bp.post("/dispatch/suggestions")
@role_required(*DISPATCH_ROLES)
def suggestions_accept() -> Response:
    """Create work orders for the ticked suggestions, with the crews as chosen."""
    f = request.form
    picks = []
    for rid in f.getlist("accept"):
        request_id = _int("request id", rid)
        crew_id = _int("crew", f.get(f"crew_{request_id}"))
        day = f.get(f"date_{request_id}") or datetime.now(state().settings.zone).date()
        picks.append((request_id, crew_id, str(day)))
    made = core.accept(state().store, picks, actor=actor())
    first = min((o.scheduled_date for o in made), default=None)
    return redirect(url_for("dispatch.dispatch_map", layer=f.get("layer") or None, date=first,
                            accepted=len(picks) or None))


@bp.post("/dispatch/route")
@role_required(*DISPATCH_ROLES)
def route() -> Response:
    """Order a crew's stops of a day."""
    crew = _int("crew_id", request.form.get("crew_id"))
    core.order_route(state().store, crew, _day(), actor=actor())
    return redirect(url_for("dispatch.dispatch_map", date=_day(),
                            layer=request.form.get("layer") or None))


@bp.get("/dispatch/sla")
@role_required(*DISPATCH_ROLES)
def sla_page() -> str:
    """Breached and at-risk requests, most urgent first, and paused ones."""
    store = state().store
    board = sla.sla_board(store, states=("breached", "at_risk", "paused"))
    details = {r.id: r for r in store.requests.query(ids=[b.request_id for b in board[:1000]],
                                            limit=1000)}
    paused = [b.request_id for b in board[:1000] if b.state == "paused"]
    return render_template("sla.html", board=board[:1000], total=len(board), details=details,
                           reasons=sla.PAUSE_REASONS, paused=store.sla.open_pause_reasons(paused),
                           zone_name=state().settings.timezone)


@bp.post("/dispatch/requests/<int:request_id>/pause")
@role_required(*DISPATCH_ROLES)
def pause(request_id: int) -> Response:
    """Stop a request's SLA clock."""
    sla.pause(state().store, request_id, request.form.get("reason", ""), actor=actor())
    return redirect(request.referrer if _local_referrer() else url_for("dispatch.sla_page"))


@bp.post("/dispatch/requests/<int:request_id>/resume")
@role_required(*DISPATCH_ROLES)
def resume(request_id: int) -> Response:
    """Start a request's SLA clock again."""
    sla.resume(state().store, request_id, actor=actor())
    return redirect(url_for("dispatch.sla_page"))


def _local_referrer() -> bool:
    ref = request.referrer or ""
    return ref.startswith(request.host_url)


# -- JSON ----------------------------------------------------------------------------


@bp.get("/api/dispatch/suggestions")
@role_required(*DISPATCH_ROLES)
def api_suggestions() -> Response:
    """Suggested crews for open unassigned requests of a layer (or one district)."""
    found = core.suggest(state().store, _layer(), district=request.args.get("district") or None)
    return jsonify([_suggestion_json(s) for s in found])


@bp.get("/api/dispatch/crews")
@role_required(*DISPATCH_ROLES)
def api_crews() -> Response:
    """Crews."""
    return jsonify([_crew_json(c) for c in state().store.dispatch.crews()])


@bp.get("/api/dispatch/work-orders")
@role_required(*DISPATCH_ROLES)
def api_work_orders() -> Response:
    """Work orders, optionally of one crew, day or status."""
    a = request.args
    orders = state().store.dispatch.work_orders(
        crew_id=_int("crew_id", a["crew_id"]) if a.get("crew_id") else None,
        status=[a["status"]] if a.get("status") else None,
        scheduled_date=a.get("date") or None)
    return jsonify([_order_json(o) for o in orders])


@bp.post("/api/dispatch/work-orders")
@role_required(*DISPATCH_ROLES)
def api_work_order_create() -> tuple[Response, int]:
    """Create a work order: ``{"crew_id", "request_ids", "date"?}``."""
    body = _json_body()
    ids = body.get("request_ids")
    if not isinstance(ids, list):
        raise InvalidRequest("request_ids is expected to be a list of request ids")
    order = core.create_work_order(state().store, _int("crew_id", body.get("crew_id")),
                                   [_int("request id", i) for i in ids],
                                   scheduled=body.get("date"), actor=actor())
    return jsonify(_order_json(order)), 201


@bp.post("/api/dispatch/work-orders/<int:order_id>/status")
@role_required(*DISPATCH_ROLES)
def api_work_order_status(order_id: int) -> Response:
    """Move a work order on: ``{"status", "resolution"?}``."""
    body = _json_body()
    order = core.set_work_order_status(state().store, order_id, str(body.get("status", "")),
                                       resolution=str(body.get("resolution", "")),
                                       actor=actor())
    return jsonify(_order_json(order))


@bp.get("/api/dispatch/sla")
@role_required(*DISPATCH_ROLES)
def api_sla() -> Response:
    """Breached and at-risk open requests, most urgent first."""
    return jsonify([sla.as_dict(s) for s in sla.sla_board(state().store)])


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise InvalidRequest("the body is expected to be JSON (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("the body is expected to be a JSON object")
    return body
