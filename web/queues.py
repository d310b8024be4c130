"""The work queue staff live in: ``/staff/requests``, its saved views, bulk changes and export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as WerkzeugResponse

from geo311.errors import InvalidRequest
from geo311.kpi import defuse_formula, local_day_range
from geo311.model import STATUSES
from geo311.redaction import redact_text
from geo311.store.queues import SLA_STATES, QueueFilter, QueueRow
from geo311_web import state
from geo311_web.auth import actor, role_required
from geo311_web.maps import local_time
from geo311_web.query_values import day

bp = Blueprint("queues", __name__)
QUEUE_ROLES = ("agent", "dispatcher")
#: The query parameters that make a view (kept by saved views, links and the export).
FILTER_KEYS = ("service", "agency", "status", "district", "sla", "channel", "from", "to", "q",
               "assignee", "sort")
#: Channels offered in the filter (``source`` of requests); any other may be typed.
CHANNELS = ("web", "phone", "walk-in", "email", "app", "open311", "import")
SORTS = ("newest", "oldest")
EXPORT_COLUMNS = ("id", "requested", "service_code", "service_name", "agency", "status",
                  "status_notes", "description", "address", "channel", "assignee", "due", "sla",
                  "districts")


def queue_filter(args: MultiDict[str, str]) -> QueueFilter:
    """The filter a query string asks for (dates are local days, ``to`` included)."""
    sla = args.get("sla") or None
    if sla is not None and sla not in SLA_STATES:
        raise InvalidRequest(f"sla was {sla!r} but is expected to be in {SLA_STATES}")
    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status was {status!r} but is expected to be in {STATUSES}")
    start_day, end_day = day(args, "from"), day(args, "to")
    if start_day and end_day and end_day < start_day:
        raise InvalidRequest(f"to was {end_day} but is expected on or after from {start_day}")
    start, end = local_day_range(start_day, end_day, state().settings.zone)
    return QueueFilter(
        services=tuple(s for s in args.getlist("service") if s), agency=args.get("agency") or None,
        status=status, district=args.get("district") or None, sla=sla,
        channel=(args.get("channel") or "").strip() or None, start=start, end=end,
        q=(args.get("q") or "").strip() or None,
        assignee=(args.get("assignee") or "").strip() or None)


def _sort(args: MultiDict[str, str]) -> bool:
    """True when the view lists the oldest requests first."""
    sort = args.get("sort") or "newest"
    if sort not in SORTS:
        raise InvalidRequest(f"sort was {sort!r} but is expected to be in {SORTS}")
    return sort == "oldest"


def _key(args: MultiDict[str, str], name: str) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidRequest(f"{name} was {raw!r} but is expected to be a request id")
    return int(raw)


def view_query(args: MultiDict[str, str]) -> str:
    """The query string of the view's filters alone (no page keys)."""
    return urlencode([(k, v) for k, v in args.items(multi=True) if k in FILTER_KEYS and v])


def _queue_url(query: str, **extra: Any) -> str:
    pairs = [(k, v) for k, v in parse_qsl(query) if k in FILTER_KEYS]
    pairs += [(k, str(v)) for k, v in extra.items() if v is not None]
    base = url_for("queues.request_list")
    return f"{base}?{urlencode(pairs)}" if pairs else base


def _options() -> dict[str, Any]:
    store = state().store
    services = sorted(store.catalogue.services(), key=lambda s: s.name)
    districts = [(f"{layer}:{did}", f"{title}: {name}")
                 for layer, (title, names) in sorted(store.layers.active_district_names().items())
                 for did, name in sorted(names.items(), key=lambda kv: kv[1])]
    return {
        "services": services,
        "agencies": sorted({s.agency for s in services if s.agency}),
        "districts": districts, "statuses": STATUSES, "sla_states": SLA_STATES,
        "channels": CHANNELS,
        "staff_names": [u["username"] for u in store.accounts.users() if u["active"]],
    }


def _render_queue(args: MultiDict[str, str], error: str | None = None,
                  status: int = 200) -> tuple[str, int]:
    store = state().store
    page = store.queues.page(queue_filter(args), after=_key(args, "after"),
                             before=_key(args, "before"), oldest_first=_sort(args))
    query = view_query(args)
    return render_template(
        "work_queue.html", page=page, args=args, query=query, error=error,
        next_url=_queue_url(query, after=page.next_after) if page.next_after else None,
        previous_url=(_queue_url(query, before=page.previous_before)
                      if page.previous_before else None),
        export_url=url_for("queues.export_csv") + (f"?{query}" if query else ""),
        views=store.queues.views(actor()), **_options()), status


@bp.get("/staff/requests")
@role_required(*QUEUE_ROLES)
def request_list() -> tuple[str, int]:
    """Requests filtered, newest first, fifty to a page; saved views; bulk changes."""
    return _render_queue(request.args)


@bp.post("/staff/requests/bulk")
@role_required(*QUEUE_ROLES)
def bulk() -> WerkzeugResponse | tuple[str, int]:
    """Change the status of, assign or unassign the checked requests (each audited)."""
    form = request.form
    back = view_query(MultiDict(parse_qsl(form.get("back", ""))))
    store = state().store
    try:
        ids = [int(i) for i in form.getlist("ids") if i.isdigit()]
        if not ids:
            raise InvalidRequest("tick at least one request first")
        action = form.get("action", "")
        if action == "status":
            done = store.queues.set_status_many(ids, form.get("status", ""),
                                                note=form.get("note", "").strip(),
                                                actor=actor())
            flash(f"{done} requests set to {form.get('status')}")
        elif action == "assign":
            name = form.get("assignee", "").strip()
            if not name:
                raise InvalidRequest("choose a staff user to assign to")
            done = store.queues.assign(ids, name, actor=actor())
            flash(f"{done} requests assigned to {name}")
        elif action == "unassign":
            done = store.queues.assign(ids, None, actor=actor())
            flash(f"{done} requests unassigned")
        else:
            raise InvalidRequest(
                f"action was {action!r} but is expected to be status, assign or unassign")
    except InvalidRequest as exc:
        # the page the form was sent from, with what went wrong
        return _render_queue(MultiDict(parse_qsl(back)), error=exc.message, status=400)
    return redirect(_queue_url(back))


@bp.post("/staff/requests/views")
@role_required(*QUEUE_ROLES)
def save_view() -> WerkzeugResponse | tuple[str, int]:
    """Keep the current filters under a name, for the logged-in user only."""
    query = view_query(MultiDict(parse_qsl(request.form.get("query", ""))))
    try:
        saved = state().store.queues.save_view(actor(), request.form.get("name", ""), query)
    except InvalidRequest as exc:
        return _render_queue(MultiDict(parse_qsl(query)), error=exc.message, status=400)
    flash(f"view {saved.name!r} saved")
    return redirect(_queue_url(saved.query))


@bp.get("/staff/requests/views/<int:view_id>")
@role_required(*QUEUE_ROLES)
def open_view(view_id: int) -> WerkzeugResponse:
    """The queue with one of my saved views' filters."""
    return redirect(_queue_url(state().store.queues.view(actor(), view_id).query))


@bp.post("/staff/requests/views/<int:view_id>/delete")
@role_required(*QUEUE_ROLES)
def delete_view(view_id: int) -> WerkzeugResponse:
    """Delete one of my saved views."""
    store = state().store
    gone = store.queues.view(actor(), view_id)
    store.queues.delete_view(actor(), view_id)
    flash(f"view {gone.name!r} deleted")
    return redirect(url_for("queues.request_list"))


def _csv_line(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


def _export_values(row: QueueRow, zone: Any) -> list[Any]:
    districts = "; ".join(f"{layer}={name}" for layer, name in sorted(row.districts.items()))
    return [row.id, local_time(row.requested_datetime, zone), row.service_code,
            row.service_name, row.agency, row.status, redact_text(row.status_notes),
            redact_text(row.description), row.address, row.channel, row.assignee or "",
            local_time(row.expected_datetime, zone), row.sla, districts]


@bp.get("/staff/requests/export.csv")
@role_required(*QUEUE_ROLES)
def export_csv() -> Response:
    """Every row of the current view as CSV, streamed: no reporter data, formulas defused."""
    f, oldest_first = queue_filter(request.args), _sort(request.args)
    store, zone = state().store, state().settings.zone  # the lines need no request context

    def lines() -> Iterator[str]:
        yield _csv_line(list(EXPORT_COLUMNS))
        for row in store.queues.all_rows(f, oldest_first=oldest_first):
            yield _csv_line([defuse_formula(v) for v in _export_values(row, zone)])

    return Response(lines(), mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="requests.csv"'})
