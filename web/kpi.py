"""The CitiStat page: KPIs by district and service, trends, the previous period, exports.

Tables are cached per view and per audited change (``ResultCache``), so a planner
paging through a meeting waits on the database once, not on every click.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from babel.dates import format_timedelta
from flask import Blueprint, Response, current_app, render_template, request

from geo311.caches import ResultCache
from geo311.centre_kpi import FIRST_ACTIONS, agent_table, centre_summary, channel_table
from geo311.errors import InvalidRequest, NotFound
from geo311.kpi import (
    PERIODS,
    compare_tables,
    defuse_formula,
    kpi_table,
    local_day_range,
    previous_period,
    satisfaction_table,
    trend_table,
)
from geo311.kpi_index import KpiIndex, kpi_frame
from geo311_web import state
from geo311_web.auth import role_required
from geo311_web.local_time import DEFAULT_LOCALE
from geo311_web.query_values import day

bp = Blueprint("kpi", __name__)
KPI_ROLES = ("planner", "dispatcher")
TABLES = ("district", "service", "trend", "channel", "agent", "satisfaction")
#: An open request becomes judged for the SLA when its due time passes, so a cached
#: table also expires after this many seconds even when nothing is written.
JUDGED_NOW_S = 300
CHART_W, CHART_H = 640, 160


@dataclass(frozen=True)
class KpiView:
    """What a KPI page shows, read and checked from the query string."""

    layer: str
    start: date | None
    end: date | None
    period: str

    @property
    def compared(self) -> bool:
        """The previous period is shown when the view has both ends."""
        return self.start is not None and self.end is not None


@bp.app_template_filter("hours_words")
def hours_words(hours: float) -> str:
    """A duration in hours as words ("3 hours", "2 days")."""
    return format_timedelta(timedelta(hours=hours), locale=DEFAULT_LOCALE)


def _view() -> KpiView:
    store = state().store
    versions = store.layers.versions(active_only=True)
    layer = request.args.get("layer") or next(
        (v.layer for v in versions if v.role == "district"), versions[0].layer if versions else "")
    if not layer:
        raise NotFound("no boundary layer is active: load one first (geo311 layers load)")
    store.layers.version(layer)  # a clear 404 for a layer that does not exist
    period = request.args.get("period", "week")
    if period not in PERIODS:
        raise InvalidRequest(f"period was {period!r} but is expected to be in {PERIODS}")
    start, end = day(request.args, "start"), day(request.args, "end")
    if start and end and end < start:
        raise InvalidRequest(f"end was {end} but is expected on or after start {start}")
    return KpiView(layer, start, end, period)


def _cache() -> ResultCache:
    return current_app.extensions.setdefault("geo311.kpi", ResultCache(32))  # type: ignore[no-any-return]


def _index() -> KpiIndex:
    return current_app.extensions.setdefault("geo311.kpi_rows", KpiIndex())  # type: ignore[no-any-return]


def tables(view: KpiView) -> dict[str, Any]:
    """The view's tables, from the cache while no audited change was made."""
    s = state()
    store, zone = s.store, s.settings.zone
    version_id = store.layers.version(view.layer).id
    key = (version_id, view.start, view.end, view.period, store.audit.last_change(),
           int(time.time() // JUDGED_NOW_S))

    def build() -> dict[str, Any]:
        now = datetime.now(UTC)
        start, end = local_day_range(view.start, view.end, zone)
        frame = kpi_frame(store, _index(), version_id, start=start, end=end)
        names = store.layers.active_district_names().get(view.layer, ("", {}))[1]
        by_district = kpi_table(frame, "district", now)
        by_service = kpi_table(frame, "service", now)
        if view.compared and start is not None and end is not None:
            before = previous_period(start.date(), end.date())
            b_start, b_end = local_day_range(before[0], before[1] - timedelta(days=1), zone)
            earlier = kpi_frame(store, _index(), version_id, start=b_start, end=b_end)
            by_district = compare_tables(by_district, kpi_table(earlier, "district", now),
                                         "district")
            by_service = compare_tables(by_service, kpi_table(earlier, "service", now),
                                        "service")
        by_district.insert(1, "name", [names.get(d, "" if d in ("all", "(none)") else d)
                                       for d in by_district["district"]])
        trend = trend_table(frame, view.period, zone)
        centre = store.contacts.centre_frames(start, end, FIRST_ACTIONS)
        return {"district": by_district, "service": by_service, "trend": trend,
                "chart": chart(trend),
                "channel": channel_table(centre["contacts"], centre["channels"]),
                "agent": agent_table(centre["contacts"]),
                "satisfaction": satisfaction_table(store.surveys.frame(version_id, start, end)),
                "centre": centre_summary(centre["contacts"], centre["first_actions"],
                                         int(centre["roots"]["requests"].iloc[0]))}

    return _cache().get(key, build)  # type: ignore[no-any-return]


def chart(trend: pd.DataFrame) -> dict[str, Any]:
    """Bars of requests received and a line of requests closed, as SVG coordinates."""
    n = len(trend)
    if n == 0:
        return {"bars": [], "line": "", "top": 0, "w": CHART_W, "h": CHART_H}
    top = int(max(trend["received"].max(), trend["closed"].max(), 1))
    step = CHART_W / n
    bars = [{"x": round(i * step + step * 0.1, 1), "w": round(step * 0.8, 1),
             "h": round(CHART_H * r / top, 1), "y": round(CHART_H - CHART_H * r / top, 1),
             "label": f"{p}: {r} received, {c} closed"}
            for i, (p, r, c) in enumerate(zip(trend["period"], trend["received"],
                                              trend["closed"], strict=True))]
    line = " ".join(f"{round(i * step + step / 2, 1)},{round(CHART_H - CHART_H * c / top, 1)}"
                    for i, c in enumerate(trend["closed"]))
    return {"bars": bars, "line": line, "top": top, "w": CHART_W, "h": CHART_H}


@bp.get("/kpi")
@role_required(*KPI_ROLES)
def kpi() -> str:
    """Volume, time to close, SLA share and backlog per district and service, with trends."""
    view = _view()
    store = state().store
    layers = [(v.layer, v.title) for v in store.layers.versions(active_only=True)]
    return render_template("kpi.html", view=view, layers=layers, periods=PERIODS,
                           args=_view_args(), **tables(view))


def _view_args() -> dict[str, str]:
    """The query arguments that make a view, for links to its exports."""
    return {k: v for k, v in request.args.items() if k in ("layer", "start", "end", "period")}


def _export_frame(view: KpiView, table: str) -> pd.DataFrame:
    if table not in TABLES:
        raise InvalidRequest(f"table was {table!r} but is expected to be in {TABLES}")
    frame: pd.DataFrame = tables(view)[table].copy()
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            frame[col] = frame[col].map(defuse_formula)
    return frame


def _filename(view: KpiView, ext: str, table: str = "") -> str:
    span = f"{view.start or 'all'}_{view.end or 'all'}"
    return f"kpi_{view.layer}_{table + '_' if table else ''}{span}.{ext}"


@bp.get("/kpi/export.csv")
@role_required(*KPI_ROLES)
def export_csv() -> Response:
    """One KPI table (``table=district|service|trend|channel|agent|satisfaction``) as CSV."""
    view = _view()
    table = request.args.get("table", "district")
    body = _export_frame(view, table).to_csv(index=False)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{_filename(view, "csv", table)}"'})


@bp.get("/kpi/export.xlsx")
@role_required(*KPI_ROLES)
def export_xlsx() -> Response:
    """Every KPI table of the view as one workbook, a sheet per table."""
    view = _view()
    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="openpyxl") as book:
        for table in TABLES:
            _export_frame(view, table).to_excel(book, sheet_name=table, index=False)
    return Response(out.getvalue(), headers={
        "Content-Disposition": f'attachment; filename="{_filename(view, "xlsx")}"'},
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
