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


def add_requests(m: folium.Map, requests: Sequence[ServiceRequest]) -> int:
    """Requests as canvas circle markers with escaped popups; returns how many were drawn."""
    group = folium.FeatureGroup(name="requests")
    drawn = 0
    for r in requests:
        if r.lon is None or r.lat is None:
            continue
        popup = (
            f"<b>#{r.id}</b> {html.escape(r.service_name)}<br>"
            f"{html.escape(r.address)}<br>{html.escape(r.status)}"
            f" — {r.requested_datetime:%Y-%m-%d}<br>{html.escape(r.description[:200])}"
            f"<br><a href='/requests/{r.id}'>details</a>"
        )
        folium.CircleMarker(
            location=(r.lat, r.lon), radius=4, weight=1,
            color=STATUS_COLOURS.get(r.status, "#000"), fill=True, fill_opacity=0.7,
            popup=folium.Popup(popup, max_width=300),
        ).add_to(group)
        drawn += 1
    group.add_to(m)
    return drawn


def map_parts(m: folium.Map) -> MapParts:
    """Render a map into header, body and script for embedding in a page."""
    figure = m.get_root()
    figure.render()
    return MapParts(
        header=figure.header.render(), html=figure.html.render(), script=figure.script.render()
    )
