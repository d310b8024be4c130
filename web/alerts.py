"""Area alerts: subscribe an address to a district or a drawn area (``/alerts``)."""

from __future__ import annotations

from itertools import groupby

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from geo311.area_alerts import subscribe
from geo311.errors import InvalidRequest
from geo311_web import maps, state
from geo311_web.languages import reader_language

bp = Blueprint("alerts", __name__)


def _page(status: int = 200, *, error: str = "", asked: bool = False) -> tuple[str, int]:
    s = state()
    m = maps.base_map(s.settings.tile_url)
    ctx = s.context()
    if ctx.service_area:
        version = s.store.layers.version(ctx.service_area)
        maps.add_districts(m, s.store.layers.features(ctx.service_area), version.title)
    districts = [(layer, title, sorted(names.items(), key=lambda kv: _order(kv[0])))
                 for layer, (title, names) in sorted(s.store.layers.active_district_names()
                                                     .items())]
    services = [sv for sv in s.store.catalogue.services() if sv.accepting]
    groups = groupby(sorted(services, key=lambda sv: (sv.group or "Other", sv.name)),
                     key=lambda sv: sv.group or "Other")
    return render_template("alerts.html", parts=maps.map_parts(m), districts=districts,
                           departments=[(g, list(members)) for g, members in groups],
                           error=error, asked=asked,
                           form=request.form if error else MultiDict()), status


def _order(district_id: str) -> tuple[int, str]:
    """Numbers in numeric order (ward 2 before ward 10), then names."""
    return (int(district_id), "") if district_id.isdigit() else (10**9, district_id)


@bp.get("/alerts")
def alerts() -> tuple[str, int]:
    """The form: an address, a district or a drawn area, and the services to hear of."""
    return _page(asked=request.args.get("asked") == "1")


@bp.post("/alerts")
def ask() -> Response | tuple[str, int]:
    """Queue the confirmation; say the same whatever the address's state."""
    form = request.form
    try:
        subscribe(state().store, form.get("email", ""), reader_language(),
                  district=form.get("district", "").strip(), area=form.get("area", "").strip(),
                  services=tuple(form.getlist("services")))
    except InvalidRequest as exc:
        return _page(400, error=exc.message)
    return redirect(url_for("alerts.alerts", asked="1") + "#alerts-asked")
