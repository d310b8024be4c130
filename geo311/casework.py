"""Casework on one request at the 311 centre: status, notes, forwarding, duplicate groups.

Each function takes the store, the request id, the staff member acting and what they
typed; it checks everything before writing anything, so a refusal (``InvalidRequest``,
shown on the form) leaves the request as it was. Every change is audited with who did
it and why.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from geo311 import sla
from geo311.errors import InvalidRequest, NotFound
from geo311.model import CLOSED, NOTE_VISIBILITIES, OPEN, STATUSES, RequestNote, ServiceRequest

if TYPE_CHECKING:
    from geo311.store import Store

LOGGER = logging.getLogger(__name__)

#: The longest note, resolution or reason staff may write.
MAX_TEXT_CHARS = 2000


def _text(name: str, value: str, *, required: bool) -> str:
    """A free-text field, trimmed; refused when required and blank, or too long."""
    value = (value or "").strip()
    if required and not value:
        raise InvalidRequest(f"{name} is required")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidRequest(f"{name} has {len(value)} characters; at most {MAX_TEXT_CHARS} "
                             "are allowed")
    return value


def _other(store: Store, raw: object, name: str) -> ServiceRequest:
    """Another request named on a form, by id; a wrong id is the form's error, not a 404."""
    try:
        other_id = int(str(raw).strip().lstrip("#"))
    except ValueError as exc:
        raise InvalidRequest(f"{name} was {raw!r} but is expected to be a request number") \
            from exc
    try:
        return store.requests.get(other_id)
    except NotFound as exc:
        raise InvalidRequest(f"{name}: request {other_id} does not exist") from exc


def _close_group(store: Store, r: ServiceRequest, resolution: str, actor: str,
                 why: str = "") -> ServiceRequest:
    """Close a request and, when it leads a group, the group's open duplicates with it."""
    members = store.duplicates.group_members([r.id]) if r.duplicate_of is None else [r.id]
    for member in [r.id, *(m for m in members if m != r.id)]:
        store.requests.set_status(member, CLOSED, note=resolution, actor=actor, why=why)
    LOGGER.info("%s closed #%s (%s requests)", actor, r.id, len(members) or 1)
    return store.requests.get(r.id)


def change_status(store: Store, request_id: int, status: str, *, actor: str,
                  public_note: str = "", internal_note: str = "") -> ServiceRequest:
    """Set a request's status, with a note for the resident and/or one for staff.

    The public note becomes the request's ``status_notes`` (Open311 shows it) and is
    kept among its public notes; closing needs one, as it is the resolution.

    Examples
    --------
    >>> change_status(store, 7, "closed", actor="ana",  # doctest: +SKIP
    ...               public_note="Cart replaced")
    """
    r = store.requests.get(request_id)
    if status not in STATUSES:
        raise InvalidRequest(f"status was {status!r} but is expected to be in {STATUSES}")
    public = _text("the public note", public_note, required=False)
    internal = _text("the internal note", internal_note, required=False)
    if status == r.status:
        raise InvalidRequest(f"request {r.id} is {r.status} already")
    if status == CLOSED and not public:
        raise InvalidRequest("closing a request needs a public note: the resolution the "
                             "resident reads")
    if public:
        store.notes.add(r.id, "public", public, author=actor)
    if internal:
        store.notes.add(r.id, "internal", internal, author=actor)
    if status == CLOSED:
        return _close_group(store, r, public, actor)
    return store.requests.set_status(r.id, status, note=public, actor=actor)


def add_note(store: Store, request_id: int, body: str, *, visibility: str,
             actor: str) -> RequestNote:
    """Add a public (the resident reads it, unsigned) or internal (staff only) note."""
    r = store.requests.get(request_id)
    if visibility not in NOTE_VISIBILITIES:
        raise InvalidRequest(f"visibility was {visibility!r} but is expected to be in "
                             f"{NOTE_VISIBILITIES}")
    return store.notes.add(r.id, visibility, _text("the note", body, required=True),
                           author=actor)


def forward(store: Store, request_id: int, service_code: str, *, actor: str,
            reason: str) -> ServiceRequest:
    """Give a request to another service, hence its department, and restart its SLA target.

    The due time is recomputed from the request's time with the new service's target
    (none when it has none). A duplicate is first taken out of its group (a group holds
    one service's reports); a group's lead takes its duplicates along.

    Examples
    --------
    >>> forward(store, 7, "SDR", actor="ana", reason="a dead rat, not garbage")  # doctest: +SKIP
    """
    r = store.requests.get(request_id)
    why = _text("the reason", reason, required=True)
    code = (service_code or "").strip()
    if not code:
        raise InvalidRequest("choose the service to forward to")
    try:
        service = store.catalogue.service(code)
    except NotFound as exc:
        raise InvalidRequest(f"service {code!r} is not in the service catalogue") from exc
    if service.code == r.service_code:
        raise InvalidRequest(f"request {r.id} is a {service.name} request already")
    if not service.accepting:
        raise InvalidRequest(f"service {service.code!r} ({service.name}) no longer accepts "
                             "requests")
    if r.duplicate_of is not None:
        store.duplicates.unmerge(r.id, actor=actor, why=f"forwarded to {service.code}: {why}")
        moving = [r.id]
    else:
        moving = store.duplicates.members(r.id)
    for member in moving:
        store.requests.set_service(member, service.code, actor=actor, why=why)
        sla.expected_for(store, member)
    LOGGER.info("%s forwarded #%s (%s requests) to %s", actor, r.id, len(moving), service.code)
    return store.requests.get(r.id)


def unmerge(store: Store, request_id: int, *, actor: str, reason: str) -> ServiceRequest:
    """Take a request out of its duplicate group: it becomes a group of its own."""
    r = store.requests.get(request_id)
    why = _text("the reason", reason, required=True)
    if r.duplicate_of is None:
        raise InvalidRequest(f"request {r.id} is not a duplicate of another request")
    store.duplicates.unmerge(r.id, actor=actor, why=why)
    return store.requests.get(r.id)


def move_to_group(store: Store, request_id: int, into: object, *, actor: str,
                  reason: str) -> ServiceRequest:
    """Move a request into the group of another request (``into``, a request number)."""
    r = store.requests.get(request_id)
    why = _text("the reason", reason, required=True)
    other = _other(store, into, "the group to move into")
    store.duplicates.mark(r.id, other.id, actor=actor, why=why)
    return store.requests.get(r.id)


def merge_group(store: Store, request_id: int, other: object, *, actor: str,
                reason: str) -> int:
    """Join another request's group with this one's, under the older lead; returns it."""
    r = store.requests.get(request_id)
    why = _text("the reason", reason, required=True)
    found = _other(store, other, "the group to merge")
    return store.duplicates.merge_groups(r.id, found.id, actor=actor, why=why)


def close(store: Store, request_id: int, resolution: str, *, actor: str) -> ServiceRequest:
    """Close a request (and its group's open duplicates) with a resolution the public reads."""
    r = store.requests.get(request_id)
    text = _text("the resolution", resolution, required=True)
    if r.status == CLOSED:
        raise InvalidRequest(f"request {r.id} is closed already")
    store.notes.add(r.id, "public", text, author=actor)
    return _close_group(store, r, text, actor)


def reopen(store: Store, request_id: int, reason: str, *, actor: str) -> ServiceRequest:
    """Open a closed request again; the reason is for staff (kept in its history)."""
    r = store.requests.get(request_id)
    why = _text("the reason", reason, required=True)
    if r.status != CLOSED:
        raise InvalidRequest(f"request {r.id} is {r.status}; only a closed request reopens")
    return store.requests.set_status(r.id, OPEN, actor=actor, why=why)
