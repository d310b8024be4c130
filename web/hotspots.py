"""Planner maps: H3 hotspots with Gi* significance, district choropleth, emerging hotspots."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import shapely
from flask import Blueprint, Response, current_app, g, render_template, request

from geo311.caches import ResultCache
from geo311.errors import InvalidRequest
from geo311.hotspot_index import HotspotIndex
from geo311.hotspots import (
    CONFIDENCE,
    EMERGING_LABELS,
    RESOLUTIONS,
    RequestFilter,
    cells_covering,
    count_cells,
    default_emerging_end,
    emerging_hotspots,
    hotspot_cells,
)
from geo311.model import STATUSES
from geo311_web import maps, state

bp = Blueprint("hotspots", __name__)

#: At most this many hexagons or districts go to the browser per layer.
MAX_FEATURES = 5000
DEFAULT_RESOLUTION = 8
DEFAULT_WEEKS = 26
CHOROPLETH_METRICS = {
    "reporters": "reporters", "requests": "requests",
    "median_days": "median days to close", "sla_share": "share closed within SLA",
}


@dataclass(frozen=True)
class HotspotQuery:
    """A planner's view: filters, resolution, district layer and choropleth metric."""

    where: RequestFilter
    resolution: int
    service: str = ""
    group: str = ""
    start: str = ""
    end: str = ""
    status: str = ""
    layer: str = ""
    district: str = ""
    metric: str = "reporters"
    weeks: int = DEFAULT_WEEKS
    args: dict[str, str] = field(default_factory=dict)

    def key(self) -> Hashable:
        """What a cached result depends on, besides the data."""
        return tuple(sorted(self.args.items()))


def _index() -> HotspotIndex:
    return current_app.extensions.setdefault(  # type: ignore[no-any-return]
        "geo311.hotspot_rows", HotspotIndex())


def _requests_in_memory() -> tuple[list[pd.DataFrame], dict[str, int]]:
    return _index().rows(state().store, _last_change())


def _counts(q: HotspotQuery) -> pd.DataFrame:
    """Requests and reporters per cell for a view: in memory, or in SQL for a district."""
    return _index().counts(state().store, _last_change(), q.where, q.resolution)


def _cache() -> ResultCache:
    return current_app.extensions.setdefault("geo311.hotspots", ResultCache())  # type: ignore[no-any-return]


def _per_request(name: str, build: Callable[[], Any]) -> Any:
    """Read something from the store once per HTTP request."""
    memo = g.setdefault("geo311_hotspots", {})
    if name not in memo:
        memo[name] = build()
    return memo[name]


def _services() -> list[Any]:
    return _per_request("services", state().store.catalogue.services)  # type: ignore[no-any-return]


def _active_layers() -> list[Any]:
    return _per_request(  # type: ignore[no-any-return]
        "layers", lambda: state().store.layers.versions(active_only=True))


def _last_change() -> int:
    return _per_request("change", state().store.audit.last_change)  # type: ignore[no-any-return]


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name} was {value!r} but is expected to be a date "
                             "as YYYY-MM-DD") from exc


def parse_query(args: dict[str, str]) -> HotspotQuery:
    """Read and check the filters of a hotspot view from query arguments."""
    s = state()
    known = ("service", "group", "start", "end", "status", "layer", "district", "res", "metric",
             "weeks")
    args = {k: v.strip() for k, v in args.items() if k in known and v.strip()}
    try:
        resolution = int(args.get("res", DEFAULT_RESOLUTION))
        weeks = int(args.get("weeks", DEFAULT_WEEKS))
    except ValueError as exc:
        raise InvalidRequest(f"res and weeks are expected to be whole numbers: {exc}") from exc
    if resolution not in RESOLUTIONS:
        raise InvalidRequest(f"res was {resolution} but is expected to be in {list(RESOLUTIONS)}")
    if not 2 <= weeks <= 260:
        raise InvalidRequest(f"weeks was {weeks} but is expected to be within [2, 260]")
    services = _services()
    codes: tuple[str, ...] = ()
    if "service" in args:
        if args["service"] not in {x.code for x in services}:
            raise InvalidRequest(f"service was {args['service']!r} but is not in the catalogue")
        codes = (args["service"],)
    elif "group" in args:
        codes = tuple(x.code for x in services if x.group == args["group"])
        if not codes:
            raise InvalidRequest(f"group was {args['group']!r} but no service is in it")
    status = args.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status was {status!r} but is expected to be in {list(STATUSES)}")
    zone = s.settings.zone
    start = end = None
    if "start" in args:
        start = datetime.combine(_day(args["start"], "start"), datetime.min.time(), zone)
    if "end" in args:  # the end day is included
        end = datetime.combine(_day(args["end"], "end") + timedelta(days=1),
                               datetime.min.time(), zone)
    if start and end and end <= start:
        raise InvalidRequest(f"start {args['start']} is after end {args['end']}")
    version_id = None
    if "layer" in args:
        active = {v.layer: v for v in _active_layers()}
        if args["layer"] not in active:
            raise InvalidRequest(f"layer was {args['layer']!r} but the active layers are "
                                 f"{sorted(active)}")
        version_id = active[args["layer"]].id
    elif "district" in args:
        raise InvalidRequest("district needs layer: the district of which layer?")
    metric = args.get("metric", "reporters")
    if metric not in CHOROPLETH_METRICS:
        raise InvalidRequest(f"metric was {metric!r} but is expected to be in "
                             f"{list(CHOROPLETH_METRICS)}")
    where = RequestFilter(service_codes=codes, status=status, start=start, end=end,
                          layer_version_id=version_id, district_id=args.get("district"))
    return HotspotQuery(where=where, resolution=resolution, service=args.get("service", ""),
                        group=args.get("group", ""), start=args.get("start", ""),
                        end=args.get("end", ""), status=status or "", layer=args.get("layer", ""),
                        district=args.get("district", ""), metric=metric, weeks=weeks, args=args)


def _study_cells(resolution: int) -> np.ndarray:
    """Cells covering the service area (zeros count in Gi*); cached per layer version."""
    s = state()
    active = _active_layers()
    wanted = s.settings.service_area_layer
    picked = ([v for v in active if v.layer == wanted] or
              [v for v in active if v.role == "service_area"] or active)
    if not picked:
        return np.empty(0, dtype=np.int64)
    version = picked[0]

    def build() -> np.ndarray:
        union = shapely.union_all(s.store.layers.features(version.layer).geometry.values)
        return cells_covering(union, resolution)

    return _cache().get(("study", version.id, resolution), build)  # type: ignore[no-any-return]


def _drawn(cells: pd.DataFrame) -> pd.DataFrame:
    """What the browser gets: cells with requests or significance, at most ``MAX_FEATURES``."""
    shown = cells[(cells["reporters"] > 0) | (cells["confidence"] != 0)]
    if len(shown) > MAX_FEATURES:
        order = np.lexsort((-shown["reporters"].to_numpy(), -np.abs(shown["z"].to_numpy())))
        shown = shown.iloc[order[:MAX_FEATURES]]
    return shown.sort_values("cell")


def hotspot_result(q: HotspotQuery) -> pd.DataFrame:
    """Every cell of the view with counts, z, p and confidence (cached until data change)."""

    def build() -> pd.DataFrame:
        found = _counts(q)
        counts = count_cells(found["cell"].to_numpy(), found["reporters"].to_numpy(),
                             _study_cells(q.resolution))
        result = hotspot_cells(counts)
        requests = found.set_index("cell")["requests"]
        result["requests"] = requests.reindex(result["cell"]).fillna(0).astype(int).to_numpy()
        result["reporters"] = result.pop("count").astype(int)
        return _drawn(result)

    key = ("hot", _last_change(), q.resolution, q.key())
    return _cache().get(key, build)  # type: ignore[no-any-return]


def district_result(q: HotspotQuery) -> tuple[Any, pd.DataFrame] | None:
    """The chosen layer's districts (simplified) and their summary, or None without a layer."""
    if not q.layer or q.where.layer_version_id is None:
        return None
    s = state()
    vid = q.where.layer_version_id
    features = _cache().get(("districts", vid), lambda: _simplified(s.store.layers.features(
        q.layer)))
    where = RequestFilter(**{**q.where.__dict__, "district_id": None})
    summary = _cache().get(("summary", _last_change(), vid, q.key()),
                           lambda: s.store.hotspots.district_summary(vid, where))
    return features, summary


def _simplified(features: Any) -> Any:
    shown = features.copy()
    shown["geometry"] = shown.geometry.simplify(0.0002, preserve_topology=True)
    return shown


def _options() -> dict[str, Any]:
    services = _services()
    return {
        "services": services,
        "groups": sorted({x.group for x in services if x.group}),
        "layers": _active_layers(),
        "resolutions": RESOLUTIONS, "statuses": STATUSES, "metrics": CHOROPLETH_METRICS,
        "confidence": CONFIDENCE,
    }


def _base_parts(q: HotspotQuery, districts: tuple[Any, pd.DataFrame] | None) -> maps.MapParts:
    """The folium part of a page: an empty map, or the district choropleth (cached)."""
    s = state()

    def build() -> maps.MapParts:
        m = maps.base_map(s.settings.tile_url)
        if districts is not None:
            maps.add_choropleth(m, districts[0], districts[1], q.metric,
                                CHOROPLETH_METRICS[q.metric])
        return maps.map_parts(m)

    if districts is None:
        return _cache().get(("base", s.settings.tile_url), build)  # type: ignore[no-any-return]
    return _cache().get(("choropleth", _last_change(), q.key()), build)  # type: ignore[no-any-return]


@bp.get("/hotspots")
def hotspots_page() -> str:
    """Planner hotspot map: H3 cells coloured by FDR-corrected Gi* significance."""
    q = parse_query(request.args.to_dict())
    cells = hotspot_result(q)
    districts = district_result(q)
    data = _cache().get(("hexjson", _last_change(), q.key()),
                        lambda: maps.script_json(maps.hexagon_features(cells)))
    style = maps.script_json({"key": "c", "plain": 0, "name": "hotspots (Gi*)",
                              "colours": {str(k): v for k, v in maps.CONFIDENCE_COLOURS.items()}})
    hot = int((cells["confidence"] > 0).sum())
    cold = int((cells["confidence"] < 0).sum())
    return render_template("hotspots.html", parts=_base_parts(q, districts), cell_data=data,
                           cell_style=style, q=q, drawn=len(cells), hot=hot, cold=cold,
                           reporters=int(cells["reporters"].sum()),
                           districts=None if districts is None else districts[1],
                           export_args=q.args, colours=maps.CONFIDENCE_COLOURS, **_options())


def _export_rows(q: HotspotQuery) -> list[dict[str, Any]]:
    cells = hotspot_result(q)
    lon, lat = maps.cell_centre_columns(cells["cell"])
    return [
        {"h3_cell": format(int(c), "x"), "h3_resolution": q.resolution, "requests": int(n),
         "reporters": int(r), "gi_z": round(float(z), 6), "p_value": float(p),
         "confidence": int(conf), "class": maps.confidence_label(int(conf)),
         "lon": round(float(x), 6), "lat": round(float(y), 6)}
        for c, n, r, z, p, conf, x, y in zip(
            cells["cell"], cells["requests"], cells["reporters"], cells["z"], cells["p"],
            cells["confidence"], lon, lat, strict=True)
    ]


def _export_name(q: HotspotQuery, ext: str) -> str:
    return f"hotspots-r{q.resolution}.{ext}"


@bp.get("/hotspots/export.geojson")
def export_geojson() -> Response:
    """The current view's cells as GeoJSON polygons (same filters as the page)."""
    q = parse_query(request.args.to_dict())
    rows = _export_rows(q)
    rings = maps.hexagon_rings(hotspot_result(q)["cell"])
    body = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {**row, "filters": q.args},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}
        for row, ring in zip(rows, rings, strict=True)]}
    return Response(json.dumps(body), mimetype="application/geo+json", headers={
        "Content-Disposition": f"attachment; filename={_export_name(q, 'geojson')}"})


@bp.get("/hotspots/export.csv")
def export_csv() -> Response:
    """The current view's cells as CSV, one row per cell with its centre."""
    q = parse_query(request.args.to_dict())
    rows = _export_rows(q)
    out = io.StringIO()
    columns = ["h3_cell", "h3_resolution", "requests", "reporters", "gi_z", "p_value",
               "confidence", "class", "lon", "lat"]
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename={_export_name(q, 'csv')}"})


def emerging_result(q: HotspotQuery) -> tuple[pd.DataFrame, datetime, datetime]:
    """Emerging-hotspot labels over ``q.weeks`` weekly bins ending at the view's end."""
    s = state()
    end = q.where.end or _default_end()
    if end is None:
        return pd.DataFrame({"cell": [], "label": []}), datetime.min, datetime.min
    origin = end - timedelta(weeks=q.weeks)
    if q.where.start is not None and q.where.start > origin:
        origin = q.where.start
    weeks = max(int(np.ceil((end - origin) / timedelta(weeks=1))), 2)

    def build() -> pd.DataFrame:
        where = RequestFilter(**{**q.where.__dict__, "start": origin, "end": end})
        weekly = _index().weekly(s.store, _last_change(), where, q.resolution, origin)
        out = emerging_hotspots(weekly["cell"].to_numpy(), weekly["week"].to_numpy(),
                                weekly["reporters"].to_numpy(), _study_cells(q.resolution),
                                n_bins=weeks)
        shown = out[(out["count"] > 0) | (out["label"] != "")]
        if len(shown) > MAX_FEATURES:
            shown = shown.sort_values(["label", "count"], ascending=False).head(MAX_FEATURES)
        return shown.sort_values("cell")

    key = ("emerging", _last_change(), q.resolution, q.key())
    return _cache().get(key, build), origin, end  # type: ignore[no-any-return]


def _default_end() -> datetime | None:
    """The end of the last complete, covered week of the stored requests."""
    s = state()

    def build() -> datetime | None:
        parts, _ = _index().rows(s.store, _last_change())
        requested = np.concatenate([p["requested"].to_numpy(float) for p in parts])
        return default_emerging_end(requested, s.settings.zone)

    return _cache().get(("emerging-end", _last_change()), build)  # type: ignore[no-any-return]


@bp.get("/hotspots/emerging")
def emerging_page() -> str:
    """Emerging hotspots: each cell's Gi* trend over weekly bins, labelled."""
    q = parse_query(request.args.to_dict())
    cells, origin, end = emerging_result(q)
    found = cells["label"].value_counts()
    counts = {label: int(found.get(label, 0)) for label in EMERGING_LABELS}
    style = maps.script_json({"key": "l", "plain": "", "name": "emerging hotspots",
                              "colours": maps.EMERGING_COLOURS})
    return render_template("emerging.html", parts=_base_parts(q, None),
                           cell_data=maps.script_json(maps.emerging_features(cells)),
                           cell_style=style, q=q, drawn=len(cells), counts=counts,
                           origin=origin, end=end, labels=EMERGING_LABELS,
                           one_day=timedelta(days=1), default_end="end" not in request.args,
                           colours=maps.EMERGING_COLOURS, **_options())
