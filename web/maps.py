"""Folium maps for the pages, with Leaflet served from ``web/static`` (no CDN)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from flask import url_for
from folium.elements import MacroElement
from jinja2 import Template

from geo311.hotspots import cell_boundaries, cell_centres
from geo311.model import ServiceRequest

#: Where a map opens when neither the city profile nor a service area says: (lat, lon).
NO_CENTRE = (0.0, 0.0)
STATUS_COLOURS = {"open": "#d7301f", "closed": "#737373"}


@dataclass(frozen=True)
class MapParts:
    """The three pieces of a folium figure that a Jinja page embeds."""

    header: str
    html: str
    script: str


def map_view() -> tuple[tuple[float, float], int]:
    """Where maps open: the city profile's centre and zoom, else the service area's centre."""
    from geo311_web import state

    s = state()
    profile = s.settings.profile
    if profile.map_centre is not None:
        return profile.map_centre, profile.map_zoom
    ctx = s.context()
    area = [layer for layer in ctx.index.layers if layer.name == ctx.service_area]
    if area and len(area[0].geometries):
        minx, miny, maxx, maxy = shapely.total_bounds(list(area[0].geometries))
        return ((miny + maxy) / 2, (minx + maxx) / 2), profile.map_zoom
    return NO_CENTRE, 2


def base_map(tile_url: str = "", *, zoom_start: int | None = None) -> folium.Map:
    """An empty map using local Leaflet; tiles only when a tile URL is configured.

    It opens on ``map_view()``; ``zoom_start`` overrides the zoom.
    """
    centre, zoom = map_view()
    m = folium.Map(location=centre, zoom_start=zoom if zoom_start is None else zoom_start,
                   tiles=None,
                   prefer_canvas=True, control_scale=True)
    m.default_js = [("leaflet", url_for("static", filename="vendor/leaflet/leaflet.js"))]
    m.default_css = [("leaflet_css", url_for("static", filename="vendor/leaflet/leaflet.css"))]
    if tile_url:
        folium.TileLayer(tiles=tile_url, attr="configured tiles", name="base").add_to(m)
    return m


def add_districts(m: folium.Map, features: gpd.GeoDataFrame, layer_title: str) -> None:
    """District outlines with an escaped tooltip of id and name."""
    shown = features.copy()
    shown["geometry"] = shown.geometry.simplify(0.0001, preserve_topology=True)
    shown["label"] = [
        html.escape(f"{d}" + (f" — {n}" if n else "")) for d, n in
        zip(shown["district_id"], shown["name"], strict=True)
    ]
    folium.GeoJson(
        shown[["label", "geometry"]].to_json(),
        name=html.escape(layer_title),
        style_function=lambda _f: {"color": "#3182bd", "weight": 1.2, "fillOpacity": 0.03},
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
    ).add_to(m)
    minx, miny, maxx, maxy = features.total_bounds
    m.fit_bounds([(miny, minx), (maxy, maxx)])


def add_requests(m: folium.Map, requests: Sequence[ServiceRequest]) -> int:
    """Requests as one GeoJSON layer of canvas circles; returns how many were drawn.

    Popup text is escaped here and travels as data (JSON), never as script source.
    """
    features = []
    for r in requests:
        if r.lon is None or r.lat is None:
            continue
        popup = (
            f"<b>#{r.id}</b> {html.escape(r.service_name)}<br>{html.escape(r.address)}<br>"
            f"{html.escape(r.status)} — {r.requested_datetime:%Y-%m-%d}<br>"
            f"{html.escape(r.description[:200])}<br><a href='/requests/{r.id}'>details</a>"
        )
        features.append({
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
            "properties": {"id": r.id, "status": r.status, "popup": popup},
        })
    if features:
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name="requests",
            marker=folium.CircleMarker(radius=4, weight=1, fill=True, fill_opacity=0.7),
            style_function=lambda f: {
                "color": STATUS_COLOURS.get(f["properties"]["status"], "#000"),
                "fillColor": STATUS_COLOURS.get(f["properties"]["status"], "#000"),
            },
            popup=folium.GeoJsonPopup(fields=["popup"], labels=False),
        ).add_to(m)
    return len(features)


def map_parts(m: folium.Map) -> MapParts:
    """Render a map into header, body and script for embedding in a page."""
    figure = m.get_root()
    figure.render()
    # folium's own viewport tag forbids zooming (user-scalable=no, WCAG 1.4.4); the page's
    # base template already declares one that lets residents zoom.
    header = re.sub(r"<meta name=\"viewport\"[^>]*>", "", figure.header.render())
    return MapParts(header=header, html=figure.html.render(), script=figure.script.render())


# --- dispatch: the crew map -----------------------------------------------------------

CREW_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                "#a6761d", "#1f78b4", "#b15928", "#6a3d9a", "#33a02c", "#fb9a99")
SLA_COLOURS = {"breached": "#b2182b", "at_risk": "#f46d43"}


def crew_colour(index: int) -> str:
    """The colour of the ``index``-th crew on the map."""
    return CREW_COLOURS[index % len(CREW_COLOURS)]


def _points_layer(m: folium.Map, features: list[dict[str, object]], name: str, colour: str,
                  radius: int, *, dashed: bool = False) -> None:
    folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=html.escape(name),
        marker=folium.CircleMarker(radius=radius, weight=2, fill=True, fill_opacity=0.8),
        style_function=lambda _f: {"color": colour, "fillColor": colour,
                                   "dashArray": "3" if dashed else None},
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False),
    ).add_to(m)


def add_crew_districts(m: folium.Map, features: gpd.GeoDataFrame, crew: object,
                       colour: str) -> None:
    """A crew's home districts outlined in its colour."""
    home = set(getattr(crew, "districts", ()))
    shown = features[features["district_id"].astype(str).isin(home)] if home else features[:0]
    if shown.empty:
        return
    shown = shown.copy()
    shown["geometry"] = shown.geometry.simplify(0.0001, preserve_topology=True)
    shown["label"] = [html.escape(f"{getattr(crew, 'name', '')}: district {d}")
                      for d in shown["district_id"]]
    folium.GeoJson(
        shown[["label", "geometry"]].to_json(),
        name=html.escape(f"{getattr(crew, 'name', '')} districts"),
        style_function=lambda _f: {"color": colour, "weight": 3, "fillOpacity": 0.06,
                                   "fillColor": colour},
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
    ).add_to(m)


def add_crew_stops(m: folium.Map, crew: object, orders: Sequence[object],
                   where: dict[int, tuple[float, float, str]], colour: str) -> int:
    """A crew's stops of the day in its colour, with its route line; returns stops drawn."""
    name = str(getattr(crew, "name", ""))
    features, line = [], []
    depot = getattr(crew, "depot", None)
    if depot is not None:
        line.append([depot[0], depot[1]])
    routed = any(o.route_position is not None for o in orders)  # type: ignore[attr-defined]
    for o in orders:
        for root in o.request_ids:  # type: ignore[attr-defined]
            if root not in where:
                continue
            lon, lat, code = where[root]
            pos = len(features) + 1 if routed else None
            popup = (f"<b>{html.escape(name)}</b> stop {pos if pos is not None else '–'}<br>"
                     f"work order <a href='/dispatch/work-orders/{o.id}'>{o.id}</a> "  # type: ignore[attr-defined]
                     f"({html.escape(o.status)})<br>request #{root} {html.escape(code)}")  # type: ignore[attr-defined]
            features.append({"type": "Feature", "geometry": {"type": "Point",
                                                             "coordinates": [lon, lat]},
                             "properties": {"kind": "stop", "crew": name, "order": o.id,  # type: ignore[attr-defined]
                                            "position": pos, "popup": popup}})
            line.append([lon, lat])
    if not features:
        return 0
    if len(line) > 1:
        folium.GeoJson(
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
             "properties": {"kind": "route", "crew": name}},
            name=html.escape(f"{name} route"),
            style_function=lambda _f: {"color": colour, "weight": 2, "opacity": 0.8},
        ).add_to(m)
    _points_layer(m, features, f"{name} stops", colour, 7)
    return len(features)


def add_unassigned(m: folium.Map, frame: object) -> int:
    """Open group roots no crew has yet, as small dark circles; returns how many."""
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
         "properties": {"kind": "unassigned", "id": int(r.id),
                        "popup": f"unassigned request <a href='/requests/{int(r.id)}'>"
                                 f"#{int(r.id)}</a> {html.escape(str(r.service_code))}<br>"
                                 f"district {html.escape(str(r.district_id))}"}}
        for r in frame.itertuples()  # type: ignore[attr-defined]
    ]
    if features:
        _points_layer(m, features, "unassigned", "#252525", 3)
    return len(features)


SLA_LAYER_NAME = "Late and at risk (SLA)"


class _CrewsOnTop(MacroElement):
    """Brings routes and stops back to the front whenever a layer is switched on."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.on("overlayadd", function () {
            {{ this._parent.get_name() }}.eachLayer(function (layer) {
                var kind = layer.feature && layer.feature.properties.kind;
                if ((kind === "route" || kind === "stop") && layer.bringToFront) {
                    layer.bringToFront();
                }
            });
        });
        {% endmacro %}
    """)


def keep_crews_on_top(m: folium.Map) -> None:
    """Keep crews' routes and stops above late rings, even after toggling the rings.

    Rings are drawn before routes and stops; a layer switched on again is drawn last,
    so this puts routes, then stops, back on top.
    """
    _CrewsOnTop().add_to(m)


def add_sla_states(m: folium.Map, frame: object, states: dict[int, object],
                   zone: Any = None) -> int:
    """Breached and at-risk requests as rings (red, orange); returns how many.

    The rings are one layer the layer control switches on and off. Draw them before
    routes and stops and call ``keep_crews_on_top``, so they never hide a crew's day
    however many there are, even when switched off and on again.
    Due times are shown in ``zone`` (the city's time zone) when given.
    """
    group = folium.FeatureGroup(name=SLA_LAYER_NAME, show=True)
    drawn = 0
    for state_name, colour in SLA_COLOURS.items():
        features = []
        for r in frame.itertuples():  # type: ignore[attr-defined]
            st = states.get(int(r.id))
            if st is None or getattr(st, "state", "") != state_name:
                continue
            due = getattr(st, "due", None)
            due_text = f"<br>due {local_time(due, zone)}" if due else ""
            popup = (f"<b>{state_name.replace('_', ' ')}</b> request "
                     f"<a href='/requests/{int(r.id)}'>#{int(r.id)}</a> "
                     f"{html.escape(str(r.service_code))}{due_text}")
            features.append({
                "type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
                "properties": {"kind": state_name, "id": int(r.id), "popup": popup}})
        if features:
            folium.GeoJson(
                {"type": "FeatureCollection", "features": features},
                name=html.escape(state_name.replace("_", " ")), control=False,
                marker=folium.CircleMarker(radius=10, weight=2, fill=True, fill_opacity=0.25),
                style_function=lambda _f, c=colour: {"color": c, "fillColor": c,
                                                     "dashArray": "3"},
                popup=folium.GeoJsonPopup(fields=["popup"], labels=False),
            ).add_to(group)
            drawn += len(features)
    group.add_to(m)
    return drawn


def local_time(when: Any, zone: Any = None) -> str:
    """A time as staff read it: in the city's zone, to the minute, with the zone's name."""
    if when is None:
        return ""
    if zone is not None:
        when = when.astimezone(zone)
    return f"{when:%Y-%m-%d %H:%M} {when.tzname() or ''}".strip()


def add_layer_control(m: folium.Map) -> None:
    """A switch for each layer of the map."""
    folium.LayerControl(collapsed=True).add_to(m)
# --- hotspot maps ---

#: Fill colours of Gi* classes: hot (red) and cold (blue) at 99/95/90 %, and none.
CONFIDENCE_COLOURS = {
    99: "#b2182b", 95: "#ef8a62", 90: "#fddbc7", 0: "#bdbdbd",
    -90: "#d1e5f0", -95: "#67a9cf", -99: "#2166ac",
}
#: One hue per pattern, so no two classes read alike; cold patterns in blues and teals.
EMERGING_COLOURS = {
    "new": "#ffd700", "consecutive": "#ff8c00", "intensifying": "#b2182b",
    "persistent": "#e7298a", "diminishing": "#f4a582", "sporadic": "#8c510a",
    "oscillating": "#66a61e", "historical": "#762a83",
    "new cold": "#c6dbef", "consecutive cold": "#6baed6", "intensifying cold": "#08306b",
    "persistent cold": "#2171b5", "diminishing cold": "#9ecae1", "sporadic cold": "#35978f",
    "oscillating cold": "#01665e", "historical cold": "#80cdc1", "": "#bdbdbd",
}
#: Districts in purples: never mistaken for the red hot and blue cold spots drawn over them.
CHOROPLETH_COLOURS = ("#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f")


def confidence_label(level: int) -> str:
    """Words for a signed confidence level: "hot 99%", "cold 90%", "not significant"."""
    if level == 0:
        return "not significant"
    return f"{'hot' if level > 0 else 'cold'} {abs(level)}%"


def hexagon_rings(cells: Sequence[int] | Any) -> list[list[tuple[float, float]]]:
    """Closed lon/lat rings of H3 cells."""
    return cell_boundaries(cells)


def cell_centre_columns(cells: Sequence[int] | Any) -> tuple[Any, Any]:
    """Centre lon and lat arrays of H3 cells."""
    return cell_centres(cells)


def _compact(features: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return {"type": "FeatureCollection", "name": name, "features": features}


def hexagon_features(cells: Any) -> dict[str, Any]:
    """H3 cells as GeoJSON with Gi* class ``c``, reporters ``r`` and tooltip ``tip``.

    The tooltip is built here from numbers and fixed words only.
    """
    features = []
    for c, ring, n, r, z, conf in zip(
        cells["cell"].tolist(), hexagon_rings(cells["cell"]), cells["requests"].tolist(),
        cells["reporters"].tolist(), cells["z"].tolist(), cells["confidence"].tolist(),
        strict=True,
    ):
        features.append({
            "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {
                "c": int(conf), "r": int(r),
                "tip": f"{int(r)} reporters, {int(n)} requests<br>Gi* z = {z:.2f}, "
                       f"{confidence_label(int(conf))}<br>cell {int(c):x}",
            },
        })
    return _compact(features, "hexagons")


def emerging_features(cells: Any) -> dict[str, Any]:
    """Cells with their emerging-hotspot label (``l``) and a tooltip (``tip``)."""
    features = []
    for ring, n, label, hot, cold, tz, cz in zip(
        hexagon_rings(cells["cell"]), cells["count"].tolist(), cells["label"].tolist(),
        cells["hot_bins"].tolist(), cells["cold_bins"].tolist(), cells["trend_z"].tolist(),
        cells["count_trend_z"].tolist(), strict=True,
    ):
        features.append({
            "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {
                "l": str(label),
                "tip": f"{html.escape(str(label) or 'no pattern')}: {int(n)} reporters, "
                       f"hot in {int(hot)}, cold in {int(cold)} weeks<br>"
                       f"trend of Gi* z: {tz:+.2f}, of counts: {cz:+.2f}",
            },
        })
    return _compact(features, "emerging")


def script_json(data: Any) -> str:
    """JSON safe to place inside a ``<script type="application/json">`` element."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def choropleth_values(summary: Any, metric: str) -> dict[str, float | None]:
    """Each district's value of a choropleth metric (None where it does not exist)."""
    out: dict[str, float | None] = {}
    for row in summary.itertuples(index=False):
        if metric == "median_days":
            value = None if row.median_hours_to_close is None or row.median_hours_to_close != \
                row.median_hours_to_close else row.median_hours_to_close / 24.0
        elif metric == "sla_share":
            value = row.sla_met / row.sla_due if row.sla_due else None
        else:
            value = float(getattr(row, metric))
        out[str(row.district_id)] = value
    return out


def add_choropleth(m: folium.Map, features: gpd.GeoDataFrame, summary: Any, metric: str,
                   title: str) -> list[float]:
    """Districts shaded by a metric in five quantile classes; returns the class breaks.

    District names are escaped here: they come from uploaded layers.
    """
    values = choropleth_values(summary, metric)
    present = sorted(v for v in values.values() if v is not None)
    breaks = list(np.quantile(present, [0.2, 0.4, 0.6, 0.8])) if present else []
    by_id = summary.set_index(summary["district_id"].astype(str))
    shown = features.copy()
    colours, tips = [], []
    for d, n in zip(shown["district_id"], shown["name"], strict=True):
        v = values.get(str(d))
        colours.append("#ffffff" if v is None else
                       CHOROPLETH_COLOURS[int(np.searchsorted(breaks, v, side="right"))])
        name = html.escape(f"{d}" + (f" — {n}" if n else ""))
        if str(d) in by_id.index:
            row = by_id.loc[str(d)]
            median = row["median_hours_to_close"]
            sla = (f"{row['sla_met'] / row['sla_due']:.0%} of {int(row['sla_due'])}"
                   if row["sla_due"] else "no SLA data")
            tips.append(f"{name}<br>{int(row['requests'])} requests, {int(row['reporters'])} "
                        f"reporters<br>median to close: "
                        f"{'—' if median is None or median != median else f'{median / 24:.1f} d'}"
                        f"<br>SLA: {sla}")
        else:
            tips.append(f"{name}<br>no requests")
    shown["fill"] = colours
    shown["tip"] = tips
    folium.GeoJson(
        shown[["fill", "tip", "geometry"]].to_json(), name=html.escape(f"districts: {title}"),
        style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#3182bd",
                                  "weight": 1, "fillOpacity": 0.55},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False),
    ).add_to(m)
    minx, miny, maxx, maxy = features.total_bounds
    m.fit_bounds([(miny, minx), (maxy, maxx)])
    return [float(b) for b in breaks]
def add_points(m: folium.Map, items: Sequence[dict[str, object]], name: str,
               colour: str) -> int:
    """Report findings (``lon``, ``lat``, ``label``) as circles with escaped popups."""
    features = [
        {"type": "Feature",
         "geometry": {"type": "Point", "coordinates": [item["lon"], item["lat"]]},
         "properties": {"popup": html.escape(str(item["label"]))}}
        for item in items if item.get("lon") is not None and item.get("lat") is not None
    ]
    if features:
        folium.GeoJson(
            {"type": "FeatureCollection", "features": features},
            name=html.escape(name),
            marker=folium.CircleMarker(radius=7, weight=2, fill=True, fill_opacity=0.5),
            style_function=lambda _f: {"color": colour, "fillColor": colour},
            popup=folium.GeoJsonPopup(fields=["popup"], labels=False),
        ).add_to(m)
    return len(features)
