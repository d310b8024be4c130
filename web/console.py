"""The staff console for one request: everything about it, and the 311 centre's actions.

Call-takers (``agent``) and dispatchers use it (admin too); each action is a POST form
whose refusal is shown on that form. The work queue and the intake desk link here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from geo311 import casework, sla
from geo311.errors import InvalidRequest, NotFound
from geo311.model import CLOSED, NOTE_VISIBILITIES, STATUSES, ServiceRequest
from geo311_web import state
from geo311_web.auth import actor, role_required
from geo311_web.pages import district_lines, web_link

bp = Blueprint("console", __name__)
CONSOLE_ROLES = ("agent", "dispatcher")
def _clock(r: ServiceRequest) -> dict[str, Any]:
    """The request's SLA clock: due time, state, time left in words, the target."""
    store = state().store
    try:
        service = store.catalogue.service(r.service_code)
    except NotFound:  # a request of a service since withdrawn has no clock
        return {"state": "none", "label": sla.STATE_LABELS["none"], "words": "no SLA",
                "target": "no SLA", "due": r.expected_datetime, "paused": ""}
    paused = store.sla.open_pause_reasons([r.id]).get(r.id, "")
    st = sla.classify(r.id, r.service_code, r.expected_datetime, bool(paused),
                      sla.target_for(service), sla.calendar_of(service), datetime.now(UTC))
    words = sla.remaining_words(st.remaining_s)
    state_label = sla.STATE_LABELS.get(st.state, st.state)
    if r.status == CLOSED:
        met = r.expected_datetime is None or (r.closed_datetime or r.updated_datetime) \
            <= r.expected_datetime
        state_label = "Closed " + ("within its target" if met else "after its due time")
        words = ""
    elif st.state == "paused":
        words = sla.reason_label(paused)
    return {"state": st.state, "label": state_label, "words": words, "due": st.due,
            "target": sla.describe_target(service), "paused": paused}


def _view(request_id: int, *, error: str | None = None, failed: str | None = None,
          status: int = 200) -> tuple[str, int]:
    """The console page; ``error`` is shown on the form named ``failed``."""
    store = state().store
    r = store.requests.get(request_id)
    root = r.duplicate_of or r.id
    members = store.duplicates.members(root)
    group = store.requests.query(ids=members, limit=len(members)) if len(members) > 1 else []
    services = store.catalogue.services()
    service = next((s for s in services if s.code == r.service_code), None)
    media = web_link(r.media_url)
    return render_template(
        "console.html", r=r, service=service, reporters=store.requests.reporters_of(r.id),
        answers=store.requests.answers(r.id), districts=district_lines(r), clock=_clock(r),
        root=root, group=sorted(group, key=lambda g: g.id), notes=store.notes.of(r.id),
        surveys=store.surveys.of_request(r.id), followers=store.followers.of_request(r.id),
        history=store.audit.entries("request", r.id), media_link=media,
        services=[s for s in services if s.accepting and s.code != r.service_code],
        statuses=STATUSES, visibilities=NOTE_VISIBILITIES, error=error, failed=failed,
        form=request.form if error else {},
    ), status


def _act(request_id: int, name: str, action: Any) -> Response | tuple[str, int]:
    """Run one action; back to the console, or the console with the form's error (400)."""
    try:
        action()
    except InvalidRequest as exc:
        return _view(request_id, error=exc.message, failed=name, status=400)
    return redirect(url_for("console.request_console", request_id=request_id, done=name)
                    + f"#{name}-form")


@bp.get("/staff/requests/<int:request_id>")
@role_required(*CONSOLE_ROLES)
def request_console(request_id: int) -> tuple[str, int]:
    """One request as the 311 centre sees it, with its actions."""
    return _view(request_id)


@bp.post("/staff/requests/<int:request_id>/status")
@role_required(*CONSOLE_ROLES)
def change_status(request_id: int) -> Response | tuple[str, int]:
    """Set the status, with a public and/or an internal note."""
    f = request.form
    return _act(request_id, "status", lambda: casework.change_status(
        state().store, request_id, f.get("status", ""), actor=actor(),
        public_note=f.get("public_note", ""), internal_note=f.get("internal_note", "")))


@bp.post("/staff/requests/<int:request_id>/notes")
@role_required(*CONSOLE_ROLES)
def add_note(request_id: int) -> Response | tuple[str, int]:
    """Add a public or internal note."""
    f = request.form
    return _act(request_id, "note", lambda: casework.add_note(
        state().store, request_id, f.get("body", ""), visibility=f.get("visibility", ""),
        actor=actor()))


@bp.post("/staff/requests/<int:request_id>/forward")
@role_required(*CONSOLE_ROLES)
def forward(request_id: int) -> Response | tuple[str, int]:
    """Give the request to another service (and department); its due time follows."""
    f = request.form
    return _act(request_id, "forward", lambda: casework.forward(
        state().store, request_id, f.get("service_code", ""), actor=actor(),
        reason=f.get("reason", "")))


@bp.post("/staff/requests/<int:request_id>/unmerge")
@role_required(*CONSOLE_ROLES)
def unmerge(request_id: int) -> Response | tuple[str, int]:
    """Take the request out of its duplicate group."""
    return _act(request_id, "unmerge", lambda: casework.unmerge(
        state().store, request_id, actor=actor(), reason=request.form.get("reason", "")))


@bp.post("/staff/requests/<int:request_id>/move")
@role_required(*CONSOLE_ROLES)
def move(request_id: int) -> Response | tuple[str, int]:
    """Move the request into another request's group."""
    f = request.form
    return _act(request_id, "move", lambda: casework.move_to_group(
        state().store, request_id, f.get("into", ""), actor=actor(),
        reason=f.get("reason", "")))


@bp.post("/staff/requests/<int:request_id>/merge")
@role_required(*CONSOLE_ROLES)
def merge(request_id: int) -> Response | tuple[str, int]:
    """Merge another request's group with this one's."""
    f = request.form
    return _act(request_id, "merge", lambda: casework.merge_group(
        state().store, request_id, f.get("other", ""), actor=actor(),
        reason=f.get("reason", "")))


@bp.post("/staff/requests/<int:request_id>/close")
@role_required(*CONSOLE_ROLES)
def close(request_id: int) -> Response | tuple[str, int]:
    """Close with a resolution the resident reads."""
    return _act(request_id, "close", lambda: casework.close(
        state().store, request_id, request.form.get("resolution", ""), actor=actor()))


@bp.post("/staff/requests/<int:request_id>/reopen")
@role_required(*CONSOLE_ROLES)
def reopen(request_id: int) -> Response | tuple[str, int]:
    """Open a closed request again, saying why."""
    return _act(request_id, "reopen", lambda: casework.reopen(
        state().store, request_id, request.form.get("reason", ""), actor=actor()))
