"""Taking in a report: locate it, find its districts, check the service area, store it.

``submit`` is the one path every live report takes (web form, Open311, tests).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from geo311.city import CityProfile, active_profile
from geo311.dedup import cluster_requests, find_duplicate
from geo311.districts import DistrictIndex, assign_by_address
from geo311.errors import InvalidRequest, NotFound, OutsideServiceArea
from geo311.geocoding.cascade import Geocode, Geocoder
from geo311.geocoding.side import AddressGrid
from geo311.geodesy import haversine_m
from geo311.jurisdictions import RoutingTable, routing_path
from geo311.model import (
    OPEN,
    Candidate,
    DuplicateRule,
    DuplicateSearch,
    NewRequest,
    Placement,
    Service,
    ServiceRequest,
)
from geo311.notices import check_suspension
from geo311.referral import Neighbours, load_routing, neighbours_of, refer
from geo311.reports import check_report
from geo311.sla import calendar_of, due_at, target_for

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from geo311.store.addresses import Addresses
    from geo311.store.catalogue import Catalogue
    from geo311.store.duplicates import Duplicates
    from geo311.store.layers import Layers
    from geo311.store.notices import Notices
    from geo311.store.referrals import Referrals
    from geo311.store.requests import Requests

if TYPE_CHECKING:
    from geo311.geocoding.remote import RemoteGeocoder

LOGGER = logging.getLogger(__name__)

class IntakeStore(Protocol):
    """What this module needs of a store."""

    @property
    def addresses(self) -> Addresses:
        """The store's ``addresses``."""

    @property
    def catalogue(self) -> Catalogue:
        """The store's ``catalogue``."""

    @property
    def duplicates(self) -> Duplicates:
        """The store's ``duplicates``."""

    @property
    def layers(self) -> Layers:
        """The store's ``layers``."""

    @property
    def requests(self) -> Requests:
        """The store's ``requests``."""

    @property
    def notices(self) -> Notices:
        """The store's ``notices``."""

    @property
    def referrals(self) -> Referrals:
        """The store's ``referrals``."""

    @property
    def engine(self) -> Engine:
        """The store's ``engine``."""


@dataclass(frozen=True)
class Context:
    """What intake needs besides the store: districts, service area and geocoder.

    Build it with ``Context.from_store``; rebuild when a layer is activated
    (``key`` tells whether the active versions changed) or a geocoding reference is
    loaded (``reference_key``).
    """

    index: DistrictIndex
    service_area: str | None
    key: tuple[int, ...]
    geocoder: Geocoder | None = None
    reference_key: tuple[int, ...] = ()
    remote: RemoteGeocoder | None = None
    grid: AddressGrid | None = None
    #: The city's time zone, for the times a refusal names (a notice's end).
    timezone: str = "UTC"
    #: Who handles what (the city's routing table) and the neighbours it names.
    routing: RoutingTable | None = None
    neighbours: Neighbours | None = None

    @classmethod
    def from_store(
        cls, store: IntakeStore, *, service_area_layer: str = "",
        boundary_tolerance_m: float = 15.0,
        remote_geocoder: str = "", profile: CityProfile | None = None,
        routing_file: Path | None = None,
    ) -> Context:
        """Index every active layer of ``store``; pick the service-area layer.

        The service area is ``service_area_layer`` if given, else the profile's, else
        the active layer whose role is ``service_area``, else the first active layer
        loaded. The geocoder is built over the store's reference layers for the city of
        ``profile`` (default: the active one); ``remote_geocoder`` ("nominatim" or
        "census", default off) adds a web fallback. The profile's numbering rules (or
        none) decide near-edge points from the side of the street. ``routing_file``
        (default: the profile's ``routing.toml``, if any) is the routing table; its
        jurisdiction layer tells which neighbour a point outside the city is in.
        """
        profile = profile or active_profile()
        service_area_layer = service_area_layer or profile.service_area_layer
        versions = store.layers.versions(active_only=True)
        layers = store.layers.active_district_layers()
        index = DistrictIndex(layers, boundary_tolerance_m=boundary_tolerance_m)
        names = [v.layer for v in versions]
        area: str | None = None
        if service_area_layer:
            if service_area_layer not in names:
                raise InvalidRequest(
                    f"GEO311_SERVICE_AREA_LAYER was {service_area_layer!r} but the active "
                    f"layers are {names}"
                )
            area = service_area_layer
        else:
            roles = [v.layer for v in versions if v.role == "service_area"]
            area = next(iter(roles or names), None)
        from geo311.gazetteer import geocoder_for

        geocoder, reference_key = geocoder_for(store, profile)
        remote = None
        if remote_geocoder:
            from geo311.geocoding.remote import RemoteGeocoder

            remote = RemoteGeocoder(remote_geocoder, extent=geocoder.extent,
                                    city=profile.remote_suffix)
        routing = load_routing(routing_file or routing_path(profile.path))
        neighbours = neighbours_of(store, routing.jurisdiction_layer) if routing else None
        # The key: the versions in use, as ``store.addresses.context_key()`` reads them.
        in_use = {v.id for v in versions} | {v.id for v in store.layers.versions()
                                             if v.role == "jurisdiction"}
        return cls(index=index, service_area=area, key=tuple(sorted(in_use)),
                   geocoder=geocoder, reference_key=reference_key, remote=remote,
                   grid=profile.grid, timezone=profile.timezone, routing=routing,
                   neighbours=neighbours)


def check_location(lon: float | None, lat: float | None) -> tuple[float, float]:
    """Validate a lon/lat pair, saying what arrived when it is wrong."""
    if lon is None or lat is None:
        raise InvalidRequest(
            "a location is required: give lat and long, an address or an address_id"
        )
    try:
        lon_f, lat_f = float(lon), float(lat)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"lat {lat!r} and long {lon!r} are expected to be numbers") from exc
    if not (math.isfinite(lon_f) and math.isfinite(lat_f)) or abs(lon_f) > 180 or abs(lat_f) > 90:
        raise InvalidRequest(
            f"lat {lat!r} and long {lon!r} are not a place on Earth "
            "(lat must be within ±90 and long within ±180)"
        )
    return lon_f, lat_f


def place(ctx: Context, lon: float, lat: float, address: str = "",
          match: str = "reported") -> Placement:
    """Find the districts of one point, deciding edge cases from the side of the street.

    A point just outside a layer, within the index's boundary tolerance of it (a
    street on the city line, where geocoders put such addresses), gets the nearest
    district of that layer, flagged as a boundary case; beyond the tolerance it has
    none, and ``outside_by_m`` says how far it is from the service area.
    """
    found = assign_by_address(ctx.index, [lon], [lat], [address], threads=1, grid=ctx.grid)
    tolerance_m = ctx.index.boundary_tolerance_m
    districts: dict[int, tuple[str | None, bool]] = {}
    outside_by_m: float | None = None
    for layer in ctx.index.layers:
        district, boundary = found[layer.name].district_id[0], \
            bool(found[layer.name].boundary_case[0])
        if district is None:
            nearest, metres = ctx.index.nearest(layer.name, [lon], [lat])
            if metres[0] <= tolerance_m:
                district, boundary = nearest[0], True
            elif layer.name == ctx.service_area:
                outside_by_m = float(metres[0])
        districts[layer.version_id] = (district, boundary)
    return Placement(lon=lon, lat=lat, geocode_match=match, districts=districts,
                     outside_service_area=outside_by_m is not None,
                     outside_by_m=outside_by_m)


def submit(store: IntakeStore, ctx: Context, new: NewRequest, *, actor: str = "system",
           join_group: int | None = None) -> ServiceRequest:
    """Take in one live report and store it; the one path every live report takes.

    Raises ``InvalidRequest`` for a bad service or location,
    ``OutsideServiceArea`` for a point outside the city and ``ServiceSuspended`` (with
    the notice's message) for a service an area notice suspends there; nothing is
    stored then.
    ``join_group`` (a call-taker's choice) makes the report a duplicate in that open
    group instead of the one the duplicate rule would pick; ``actor`` is audited.

    Examples
    --------
    >>> submit(store, ctx, NewRequest("SCB", lon=-87.65, lat=41.85))  # doctest: +SKIP
    """
    if not new.service_code:
        raise InvalidRequest("service_code is required")
    service = store.catalogue.service(new.service_code)
    if not service.accepting:
        raise InvalidRequest(f"service_code {service.code!r} ({service.name}) no longer "
                             "accepts requests")
    new = check_report(new, service)
    lon, lat, match, new = locate(store, ctx, new)
    placement = place(ctx, lon, lat, new.address, match)
    if placement.outside_service_area:
        refusal = (f"the location lat {lat}, long {lon} is outside the service area: "
                   f"{distance_words(placement.outside_by_m)} outside the city limit "
                   f"(layer {ctx.service_area!r})")
        referred = refer(store, ctx.routing, ctx.neighbours, service, new, lon, lat, refusal,
                         actor=actor)
        raise referred if referred is not None else OutsideServiceArea(refusal)
    check_suspension(store, service, lon, lat, language=new.reporter.language,
                     zone=ctx.timezone)
    target = target_for(service)
    calendar = calendar_of(service) if target is not None else None

    def due(requested: datetime) -> datetime | None:
        """The SLA clock starts at the stored request time."""
        return None if target is None or calendar is None else due_at(requested, target,
                                                                      calendar)

    search = duplicate_search(store, service, lon, lat)
    if join_group is not None:
        search = chosen_group(store, service, search, lon, lat, join_group)
    stored = store.requests.add(new, placement, due=due, duplicates=search, actor=actor)
    LOGGER.info("took in request #%s (%s) at %.6f, %.6f", stored.id, new.service_code, lon, lat)
    return stored


def distance_words(metres: float | None) -> str:
    """A distance as a resident reads it: "412 m", "3.4 km"."""
    if metres is None or not math.isfinite(metres):
        return "far"
    if metres < 1000:
        return f"{max(1, round(metres))} m"
    return f"{metres / 1000:,.1f} km"


def locate(store: IntakeStore, ctx: Context,
           new: NewRequest) -> tuple[float, float, str, NewRequest]:
    """Where a report is: its lon/lat, else its ``address_id``, else its geocoded address.

    Returns lon, lat, the match type for ``geocode_match`` and the request with its
    address filled in from an address point. Raises ``InvalidRequest`` with the
    geocoder's reason when the address cannot be placed.
    """
    if new.lon is not None or new.lat is not None:
        lon, lat = check_location(new.lon, new.lat)
        return lon, lat, "reported", new
    if new.address_id is not None:
        try:
            address, lon, lat = store.addresses.point(int(new.address_id))
        except (NotFound, TypeError, ValueError) as exc:
            raise InvalidRequest(f"address_id {new.address_id!r} is not a stored address "
                                 "point") from exc
        return lon, lat, "exact", replace(new, address=new.address or address)
    if new.address.strip():
        if ctx.geocoder is None:
            raise InvalidRequest("address geocoding is not set up: give lat and long")
        found = geocode_address(ctx, new.address)
        if not found.found or found.lon is None or found.lat is None:
            raise InvalidRequest(f"the address {new.address[:200]!r} cannot be located: "
                                 f"{found.reason}")
        LOGGER.info("geocoded %r to %.6f, %.6f (%s, score %.2f)", found.address, found.lon,
                    found.lat, found.match, found.score)
        return found.lon, found.lat, found.match, new
    lon, lat = check_location(new.lon, new.lat)
    return lon, lat, "reported", new


def geocode_address(ctx: Context, text: str) -> Geocode:
    """Geocode offline; ask the remote fallback (if switched on) only when that fails."""
    if ctx.geocoder is None:
        raise InvalidRequest("address geocoding is not set up: give lat and long")
    found = ctx.geocoder.geocode(text)
    if found.found or ctx.remote is None or not found.address:
        return found
    remote = ctx.remote.geocode(text)
    if remote.found:
        return remote
    return Geocode(None, None, "none", 0.0, f"{found.reason}; {remote.reason}", found.address)


def duplicate_search(store: IntakeStore, service: Service, lon: float, lat: float
                     ) -> DuplicateSearch:
    """How the store should look for an open request this new one repeats."""
    rule = service.duplicate_rule or DuplicateRule()
    codes: tuple[str, ...] = (service.code,)
    if rule.scope == "group" and service.group:
        codes = tuple(s.code for s in store.catalogue.services() if s.group == service.group)

    def decide(candidates: Sequence[Candidate], requested: datetime) -> tuple[int, float] | None:
        return find_duplicate(lon, lat, service.code, service.group, requested, candidates, rule)

    return DuplicateSearch(codes=codes, radius_m=rule.radius_m, window_days=rule.window_days,
                           decide=decide, only_open=rule.only_open)


def chosen_group(store: IntakeStore, service: Service, search: DuplicateSearch, lon: float,
                 lat: float, request_id: int) -> DuplicateSearch:
    """The duplicate search that puts a new report into the open group of ``request_id``.

    The group must be open and of a service the new one's duplicate rule joins;
    any request of the group names it.
    """
    try:
        found = store.requests.get(int(request_id))
        root = store.requests.get(found.duplicate_of) if found.duplicate_of else found
    except (NotFound, TypeError, ValueError) as exc:
        raise InvalidRequest(f"join_group {request_id!r} is not a stored request") from exc
    if root.service_code not in search.codes:
        raise InvalidRequest(f"request {root.id} is {root.service_name} ({root.service_code}): "
                             f"a report of {service.name} ({service.code}) cannot join its group")
    if root.status != OPEN:
        raise InvalidRequest(f"request {root.id} is {root.status}: its group takes no new "
                             "reports")
    distance_m = 0.0 if root.lon is None or root.lat is None \
        else float(haversine_m(lon, lat, root.lon, root.lat))

    def decide(candidates: Sequence[Candidate], requested: datetime) -> tuple[int, float]:
        return root.id, distance_m

    return replace(search, decide=decide)


def regroup_duplicates(
    store: IntakeStore, *, since: datetime | None = None, actor: str = "system"
) -> tuple[int, int, int]:
    """Recluster stored requests in time order, as live intake would have grouped them.

    With ``since``, requests before it keep their links and only serve as earlier
    requests (within the longest window). Returns (requests, children, changed).
    """
    services = store.catalogue.services()
    rules = {s.code: s.duplicate_rule or DuplicateRule() for s in services}
    groups = {s.code: s.group for s in services}
    context_since = None
    if since is not None:
        longest = max((r.window_days for r in rules.values()), default=DuplicateRule().window_days)
        context_since = since - timedelta(days=longest)
    frame = store.duplicates.frame(since=context_since)
    roots = cluster_requests(frame, rules, groups=groups)
    keep = (frame["requested"] >= since).to_numpy() if since is not None else slice(None)
    ids = frame["id"].to_numpy()[keep]
    parents = [None if pd.isna(p) else int(p) for p in roots.to_numpy()[keep]]
    changed = store.duplicates.set_groups(
        ids, parents, actor=actor, detail={"since": since.isoformat() if since else None})
    children = sum(p is not None for p in parents)
    LOGGER.info("regrouped %s requests: %s duplicates, %s links changed", len(ids), children,
                changed)
    return len(ids), children, changed
