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
