"""Folium maps for the pages, with Leaflet served from ``web/static`` (no CDN)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import folium
import geopandas as gpd
from flask import url_for

from geo311.model import ServiceRequest

CHICAGO_CENTRE = (41.8358, -87.6877)  # lat, lon as Leaflet wants them
STATUS_COLOURS = {"open": "#d7301f", "closed": "#737373"}


@dataclass(frozen=True)
class MapParts:
    """The three pieces of a folium figure that a Jinja page embeds."""

    header: str
    html: str
    script: str


def base_map(tile_url: str = "", *, zoom_start: int = 11) -> folium.Map:
    """An empty map using local Leaflet; tiles only when a tile URL is configured."""
    m = folium.Map(location=CHICAGO_CENTRE, zoom_start=zoom_start, tiles=None,
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
    return MapParts(
        header=figure.header.render(), html=figure.html.render(), script=figure.script.render()
    )


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
    for o in orders:
        root = o.request_ids[0]  # type: ignore[attr-defined]
        if root not in where:
            continue
        lon, lat, code = where[root]
        pos = o.route_position  # type: ignore[attr-defined]
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


def add_sla_states(m: folium.Map, frame: object, states: dict[int, object]) -> int:
    """Breached and at-risk requests as rings (red, orange); returns how many."""
    drawn = 0
    for state_name, colour in SLA_COLOURS.items():
        features = []
        for r in frame.itertuples():  # type: ignore[attr-defined]
            st = states.get(int(r.id))
            if st is None or getattr(st, "state", "") != state_name:
                continue
            due = getattr(st, "due", None)
            due_text = f"<br>due {due:%Y-%m-%d %H:%M} UTC" if due else ""
            popup = (f"<b>{state_name.replace('_', ' ')}</b> request "
                     f"<a href='/requests/{int(r.id)}'>#{int(r.id)}</a> "
                     f"{html.escape(str(r.service_code))}{due_text}")
            features.append({
                "type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
                "properties": {"kind": state_name, "id": int(r.id), "popup": popup}})
        if features:
            _points_layer(m, features, state_name.replace("_", " "), colour, 10, dashed=True)
            drawn += len(features)
    return drawn


def add_layer_control(m: folium.Map) -> None:
    """A switch for each layer of the map."""
    folium.LayerControl(collapsed=True).add_to(m)
