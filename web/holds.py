"""Legal holds for records staff: ``/staff/holds`` lists, places (by ids or search) and releases."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from geo311.errors import InvalidRequest, NotFound
from geo311.holds import find_requests, parse_ids, parse_query, place_hold, release_hold
from geo311.model import STATUSES, RecordQuery
from geo311_web import state
from geo311_web.auth import actor, role_required

bp = Blueprint("holds", __name__)
HOLD_ROLES = ("records",)
#: Request ids a hold's page lists (a hold may hold many more).
SHOWN_IDS = 500


def search_query(form: MultiDict[str, str]) -> RecordQuery:
    """The records query the search form asks for (same keys as a query file)."""
    return parse_query({
        "services": [s for s in form.getlist("services") if s],
        "districts": form.get("districts", ""), "from": form.get("from", ""),
        "to": form.get("to", ""), "text": form.get("text", ""),
        "reporter_email": form.get("reporter_email", ""),
        "reporter_phone": form.get("reporter_phone", ""),
        "status": form.get("status", ""),
    }, "search")


def _render(form: MultiDict[str, str] | None = None, *, error: str | None = None,
            preview: int | None = None, status: int = 200) -> tuple[str, int]:
    store = state().store
    services = sorted(store.catalogue.services(), key=lambda s: s.name)
    return render_template(
        "holds.html", holds=store.holds.holds(), held=store.holds.held_count(),
        services=services, statuses=STATUSES, form=form or MultiDict(), error=error,
        preview=preview), status


@bp.get("/staff/holds")
@role_required(*HOLD_ROLES)
def hold_list() -> tuple[str, int]:
    """Every hold, newest first, and the forms that place one."""
    return _render()


@bp.post("/staff/holds")
@role_required(*HOLD_ROLES)
def add() -> Response | tuple[str, int]:
    """Place a hold on typed ids, or on what a search finds (``preview`` only counts)."""
    form = request.form
    s = state()
    try:
        kind = form.get("by", "")
        if kind == "ids":
            hold = place_hold(s.store, reason=form.get("reason", ""), owner=actor(),
                              zone=s.settings.zone, ids=parse_ids(form.get("ids", "")))
        elif kind == "search":
            query = search_query(form)
            if form.get("action") == "preview":
                found = find_requests(s.store, query, s.settings.zone)
                return _render(form, preview=len(found))
            hold = place_hold(s.store, reason=form.get("reason", ""), owner=actor(),
                              zone=s.settings.zone, query=query)
        else:
            raise InvalidRequest(f"by was {kind[:20]!r} but is expected to be ids or search")
    except (InvalidRequest, NotFound) as exc:  # the form again, with what went wrong
        return _render(form, error=exc.message, status=exc.status)
    flash(f"hold {hold.id} placed on {hold.request_count} requests")
    return redirect(url_for("holds.hold_page", hold_id=hold.id))


@bp.get("/staff/holds/<int:hold_id>")
@role_required(*HOLD_ROLES)
def hold_page(hold_id: int) -> str:
    """One hold: its reason, owner, dates, query and requests."""
    store = state().store
    ids = store.holds.requests_of(hold_id)
    return render_template("hold.html", hold=store.holds.get(hold_id), ids=ids[:SHOWN_IDS],
                           more=max(0, len(ids) - SHOWN_IDS))


@bp.post("/staff/holds/<int:hold_id>/release")
@role_required(*HOLD_ROLES)
def release(hold_id: int) -> Response:
    """Release a hold (audited)."""
    hold = release_hold(state().store, hold_id, by=actor())
    flash(f"hold {hold.id} released")
    return redirect(url_for("holds.hold_list"))
