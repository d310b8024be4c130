"""The call-taker desk: one contact, answered from the knowledge base or made a request.

A phone call or a visit at the counter is a *contact*. Some only need an answer (the
knowledge base's article, a transfer, a referral): they are logged with their topic
and outcome and make no ticket. Others become a service request through
``intake.submit``, the one path every report takes, so the service's questions are
enforced with the words Open311 uses; the contact then points at its request. Both
kinds are audited with the agent's name, so the centre's statistics can be counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from geo311.errors import InvalidRequest
from geo311.geocoding.reverse import ReverseGeocode
from geo311.intake import Context, duplicate_search, submit
from geo311.knowledge import search_kb
from geo311.media import PhotoUpload, kept_photo
from geo311.model import (
    CALLBACKS,
    CHANNELS,
    OPEN,
    OUTCOMES,
    CallerRequest,
    Candidate,
    Contact,
    KbHit,
    NewRequest,
    Service,
    ServiceRequest,
)
from geo311.reports import check_line
from geo311.store import Store
from geo311.store.rows import now_utc

LOGGER = logging.getLogger(__name__)

#: A clicked point takes the address of the nearest address point this close, else none.
REVERSE_WITHIN_M = 100.0
#: Groups are suggested this far at least (a caller places a problem roughly), or as far
#: as the service's duplicate rule reaches when that is further.
SUGGEST_RADIUS_M = 250.0
MAX_TOPIC = 200


@dataclass(frozen=True)
class GroupSuggestion:
    """An open group the new report may repeat.

    ``request`` is the group's first request; ``automatic`` tells whether intake would
    put the report there by itself.
    """

    request: ServiceRequest
    distance_m: float
    automatic: bool


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    """One of a fixed list of words, said back when it is not."""
    if value not in allowed:
        raise InvalidRequest(f"{name} was {value[:40]!r} but is expected to be in "
                             f"{list(allowed)}")
    return value


def desk_search(store: Store, query: str, limit: int = 10) -> list[KbHit]:
    """Knowledge-base hits for a call-taker: internal articles too, open services only.

    A service that takes no new requests is never offered.

    Examples
    --------
    >>> [h.service_code for h in desk_search(store, "rats", 3)]  # doctest: +SKIP
    ['SGA', 'SGA', 'SFA']
    """
    accepting = {s.code for s in store.catalogue.services() if s.accepting}
    return [h for h in search_kb(store, query, limit, public_only=False)
            if h.kind != "service" or h.service_code in accepting]


def accepting_service(store: Store, code: str) -> Service:
    """The service of ``code`` if it takes new requests; else ``InvalidRequest``."""
    service = store.catalogue.service(code)
    if not service.accepting:
        raise InvalidRequest(f"service_code {service.code!r} ({service.name}) no longer "
                             "accepts requests")
    return service


def caller_history(store: Store, *, phone: str = "", email: str = "") -> list[CallerRequest]:
    """A caller's earlier requests by phone number or email, newest first (staff only).

    Examples
    --------
    >>> [r.id for r in caller_history(store, phone="312-555-0100")]  # doctest: +SKIP
    [42, 7]
    """
    check_line("phone", phone, 40)
    check_line("email", email, 254)
    return store.contacts.caller_requests(phone=phone, email=email)


def nearest_address(ctx: Context, lon: float, lat: float,
                    within_m: float = REVERSE_WITHIN_M) -> ReverseGeocode | None:
    """The nearest address point within ``within_m`` of a clicked point, or None.

    Examples
    --------
    >>> nearest_address(ctx, -87.712901, 41.931853).address  # doctest: +SKIP
    '3415 W DIVERSEY AVE'
    """
    if ctx.geocoder is None:
        raise InvalidRequest("address geocoding is not set up: no address points are loaded")
    found = ctx.geocoder.reverse(lon, lat, max_distance_m=within_m)
    if not found.address or found.address_distance_m is None \
            or found.address_distance_m > within_m:
        return None
    return found


def duplicate_suggestions(store: Store, service: Service, lon: float, lat: float,
                          limit: int = 5) -> list[GroupSuggestion]:
    """Open groups a report at a point may repeat, nearest first.

    The services and window are those of the duplicate rule ``submit`` applies; the
    radius is the rule's or ``SUGGEST_RADIUS_M``, the larger. ``automatic`` marks the
    group ``submit`` would join without being told.
    """
    search = duplicate_search(store, service, lon, lat)
    now = now_utc()
    since = now - timedelta(days=search.window_days)
    groups = {s.code: s.group for s in store.catalogue.services()}
    found = [(r, d) for code in search.codes
             for r, d in store.requests.near(lon, lat, max(search.radius_m, SUGGEST_RADIUS_M),
                                             service_code=code,
                                             status=OPEN, limit=500)
             if r.requested_datetime >= since]
    nearest: dict[int, float] = {}
    for r, d in sorted(found, key=lambda x: (x[1], x[0].id)):
        nearest.setdefault(r.duplicate_of or r.id, d)
    candidates = [Candidate(r.id, r.lon, r.lat, r.service_code, groups.get(r.service_code, ""),
                            r.requested_datetime, r.closed_datetime, r.duplicate_of)
                  for r, _ in found if r.lon is not None and r.lat is not None]
    picked = search.decide(candidates, now) if candidates else None
    out = []
    for root_id in list(nearest)[:limit]:
        root = store.requests.get(root_id)
        if root.status != OPEN:
            continue
        out.append(GroupSuggestion(root, round(nearest[root_id], 1),
                                   picked is not None and picked[0] == root_id))
    return out


def log_information(store: Store, *, agent: str, channel: str, topic: str, outcome: str,
                    callback: str = "none") -> Contact:
    """Log a contact that needed only an answer: no location, no ticket.

    Examples
    --------
    >>> log_information(store, agent="ana", channel="phone", topic="Property tax bills",
    ...                 outcome="referred elsewhere").kind  # doctest: +SKIP
    'info'
    """
    check_choice("channel", channel, CHANNELS)
    check_choice("outcome", outcome, OUTCOMES)
    check_choice("callback", callback, CALLBACKS)
    topic = topic.strip()
    if not topic:
        raise InvalidRequest("topic is required: the article or service the caller asked about")
    check_line("topic", topic, MAX_TOPIC)
    return store.contacts.add(agent=agent, channel=channel, kind="info", topic=topic,
                              outcome=outcome, callback=callback)


def take_request(store: Store, ctx: Context, new: NewRequest, *, agent: str, channel: str,
                 callback: str = "none", topic: str = "",
                 join_group: int | None = None,
                 photo: PhotoUpload | None = None) -> tuple[ServiceRequest, Contact]:
    """Make a caller's report a request through ``intake.submit``, and log the contact.

    The channel becomes the request's ``source`` and the caller its reporter; with
    ``join_group`` the report joins that open group as a duplicate. The callback
    preference needs the matching contact detail.
    """
    check_choice("channel", channel, CHANNELS)
    check_choice("callback", callback, CALLBACKS)
    if callback == "phone" and not new.reporter.phone.strip():
        raise InvalidRequest("a phone callback needs the caller's phone number")
    if callback == "email" and not new.reporter.email.strip():
        raise InvalidRequest("an email callback needs the caller's email")
    check_line("topic", topic, MAX_TOPIC)
    with kept_photo(photo) as url:  # a photo the caller mailed in, attached by the agent
        stored = submit(store, ctx, replace(new, source=channel, media_url=url or new.media_url),
                        actor=agent, join_group=join_group)
    contact = store.contacts.add(agent=agent, channel=channel, kind="request",
                                 topic=topic.strip() or stored.service_name,
                                 outcome="request made", request_id=stored.id,
                                 callback=callback)
    LOGGER.info("desk: %s took request #%s by %s", agent, stored.id, channel)
    return stored, contact
