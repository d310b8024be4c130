"""Crews, work orders, assignment suggestions and a crew's route for the day.

A work order holds one or more stops; a stop is a duplicate group (its root
request). Closing a work order closes every open request of its groups with the
resolution as status note, through the store's audited status change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import replace as dc_replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geo311.business_calendar import load_calendar
from geo311.errors import InvalidRequest
from geo311.geodesy import haversine_m
from geo311.model import ACTIVE_WORK_STATUSES, TRANSITIONS, WORK_STATUSES, Crew, WorkOrder
from geo311.routing import route_order

if TYPE_CHECKING:
    from geo311.store import Store

LOGGER = logging.getLogger(__name__)

#: How much one kilometre from the depot weighs against a full day of load.
DISTANCE_WEIGHT_PER_KM = 0.02


def create_crew(store: Store, crew: Crew, *, actor: str = "system") -> Crew:
    """Check a crew's layer, districts and capacity against the store, then save it.

    Examples
    --------
    >>> create_crew(store, Crew("Streets North", "wards_2015_2023", ("40", "47")))
    ... # doctest: +SKIP
    """
    _check_crew(store, crew)
    return store.dispatch.add_crew(crew, actor=actor)


#: What ``edit_crew`` may change.
CREW_FIELDS = ("name", "layer", "districts", "service_groups", "capacity_per_day", "calendar",
               "depot", "active")


def edit_crew(store: Store, crew: int | str, *, actor: str = "system",
              **changes: Any) -> Crew:
    """Change a crew (id or name): any of ``CREW_FIELDS``; audited with old and new values.

    ``depot`` is ``(lon, lat)`` or None (no depot). Checked as a new crew is: districts
    must be on the crew's layer, capacity at least 1, the calendar known.

    Examples
    --------
    >>> edit_crew(store, "Streets North", districts=("40", "47", "48"), capacity_per_day=10)
    ... # doctest: +SKIP
    """
    unknown = sorted(set(changes) - set(CREW_FIELDS))
    if unknown:
        raise InvalidRequest(f"crew fields {unknown} are not in {list(CREW_FIELDS)}")
    found = store.dispatch.crew(crew)
    values = dict(changes)
    if "depot" in values:
        depot = values.pop("depot")
        values["depot_lon"], values["depot_lat"] = depot if depot is not None else (None, None)
    for key in ("districts", "service_groups"):
        if key in values:
            values[key] = tuple(str(v).strip() for v in values[key] if str(v).strip())
    if "name" in values:
        values["name"] = str(values["name"]).strip()
    _check_crew(store, dc_replace(found, **values))
    assert found.id is not None
    return store.dispatch.update_crew(found.id, values, actor=actor)


def _check_crew(store: Store, crew: Crew) -> None:
    if not crew.name.strip():
        raise InvalidRequest("a crew needs a name")
    if crew.capacity_per_day < 1:
        raise InvalidRequest(
            f"capacity_per_day was {crew.capacity_per_day} but is expected to be >= 1")
    features = store.layers.features(crew.layer)
    known = set(features["district_id"].astype(str))
    unknown = sorted(set(crew.districts) - known)
    if unknown:
        raise InvalidRequest(f"districts {unknown} are not in layer {crew.layer!r}")
    if crew.depot is not None:
        lon, lat = crew.depot
        x0, y0, x1, y1 = features.total_bounds
        if not (x0 - 0.25 <= lon <= x1 + 0.25 and y0 - 0.25 <= lat <= y1 + 0.25):
            raise InvalidRequest(
                f"depot lon {lon}, lat {lat} lies far outside layer {crew.layer!r} (lon "
                f"{x0:.2f} to {x1:.2f}, lat {y0:.2f} to {y1:.2f}); were latitude and "
                "longitude swapped?")
    load_calendar(crew.calendar)


def create_work_order(store: Store, crew: int | str, request_ids: Sequence[int], *,
                      scheduled: date | str | None = None, actor: str = "system") -> WorkOrder:
    """Put the groups of ``request_ids`` on a new work order of ``crew`` (id or name)."""
    found = store.dispatch.crew(crew)
    assert found.id is not None
    day = _day(scheduled, found)
    return store.dispatch.add_work_order(found.id, request_ids, day, actor=actor)


def _day(scheduled: date | str | None, crew: Crew | None) -> str:
    if scheduled is None:
        if crew is None:
            raise InvalidRequest("a day is needed (YYYY-MM-DD)")
        return datetime.now(load_calendar(crew.calendar).zone).date().isoformat()
    if isinstance(scheduled, date):
        return scheduled.isoformat()
    try:
        return date.fromisoformat(scheduled).isoformat()
    except ValueError as exc:
        raise InvalidRequest(f"date was {scheduled!r} but is expected as YYYY-MM-DD") from exc


def set_work_order_status(store: Store, order_id: int, status: str, *,
                          resolution: str = "", actor: str = "system") -> WorkOrder:
    """Move a work order on; ``done`` closes its requests with ``resolution`` as note."""
    if status not in WORK_STATUSES:
        raise InvalidRequest(f"status was {status!r} but is expected to be in {WORK_STATUSES}")
    order = store.dispatch.work_order(order_id)
    if status not in TRANSITIONS[order.status]:
        raise InvalidRequest(
            f"work order {order_id} is {order.status} and cannot become {status} "
            f"(allowed: {list(TRANSITIONS[order.status]) or 'none'})")
    if status == "done" and not resolution.strip():
        raise InvalidRequest("closing a work order needs a resolution note")
    if len(resolution) > 2000:
        raise InvalidRequest(f"resolution has {len(resolution)} characters; at most 2000")
    updated = store.dispatch.set_work_order_status(order_id, status, resolution=resolution,
                                                   actor=actor)
    if status == "done":
        members = store.duplicates.group_members(list(order.request_ids))
        for request_id in members:
            store.requests.set_status(request_id, "closed", note=resolution, actor=actor)
        LOGGER.info("work order %s done: closed requests %s", order_id, members)
    return updated


def add_note(store: Store, order_id: int, text: str, *, author: str) -> WorkOrder:
    """Append a note to a work order."""
    if not text.strip():
        raise InvalidRequest("a note cannot be empty")
    if len(text) > 2000:
        raise InvalidRequest(f"note has {len(text)} characters; at most 2000 are allowed")
    store.dispatch.add_work_order_note(order_id, text, author=author)
    return store.dispatch.work_order(order_id)


# -- suggestions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """One stop and the crew suggested for it (None: no crew can take it)."""

    request_id: int
    crew_id: int | None
    scheduled_date: str | None
    hours_left: float | None  # real hours to the SLA due time (negative: overdue)
    distance_km: float | None  # from the crew's depot
    reason: str


def suggest_crews(requests: pd.DataFrame, crews: Sequence[Crew], loads: Mapping[int, int],
                  now: datetime, *, horizon_days: int = 5,
                  business_days: Mapping[int, Sequence[str]] | None = None
                  ) -> list[Suggestion]:
    """Suggest a crew for each open unassigned stop, most urgent first.

    ``requests`` has the columns of ``Store.dispatch_frame`` (id, group, lon, lat,
    expected, paused, requested, district_id). Stops are taken in order of urgency
    (least time left on the SLA, paused and SLA-less last, then oldest, then id).
    Each goes to the eligible crew (service group and home district match, capacity
    left within ``horizon_days`` business days) with the lowest score: its load as a
    share of its capacity plus ``DISTANCE_WEIGHT_PER_KM`` per kilometre from its depot,
    ties broken by crew id. The same input always gives the same suggestions.
    ``business_days`` maps a crew id to its next business days (ISO dates).
    """
    if requests.empty:
        return []
    frame = requests.reset_index(drop=True)
    expected = pd.to_datetime(frame["expected"], utc=True)
    hours = ((expected - pd.Timestamp(now)).dt.total_seconds() / 3600.0).to_numpy()
    no_clock = np.isnan(hours) | frame["paused"].to_numpy(dtype=bool)
    requested = pd.to_datetime(frame["requested"], utc=True).astype("int64").to_numpy()
    order = np.lexsort((frame["id"].to_numpy(), requested,
                        np.where(no_clock, np.inf, hours), no_clock))
    crew_list = sorted((c for c in crews if c.id is not None and c.active),
                       key=lambda c: int(c.id or 0))
    if not crew_list:
        return [Suggestion(int(frame["id"][i]), None, None, _f(hours[i]), None, "no crews")
                for i in order]
    ids = np.array([c.id for c in crew_list], dtype=np.int64)
    capacity = np.array([c.capacity_per_day for c in crew_list], dtype=float)
    load = np.array([loads.get(int(c.id or 0), 0) for c in crew_list], dtype=float)
    limit = capacity * horizon_days
    depot_lon = np.array([np.nan if c.depot is None else c.depot[0] for c in crew_list])
    depot_lat = np.array([np.nan if c.depot is None else c.depot[1] for c in crew_list])
    groups = [set(c.service_groups) for c in crew_list]
    homes = [set(c.districts) for c in crew_list]
    days = business_days or {}
    today = now.date().isoformat()
    lon, lat = frame["lon"].to_numpy(float), frame["lat"].to_numpy(float)
    group_col, district_col = frame["group"].tolist(), frame["district_id"].tolist()
    out = []
    for i in order:
        g, d = group_col[i], district_col[i]
        fits = np.array([(not gs or g in gs) and (not hs or d in hs)
                         for gs, hs in zip(groups, homes, strict=True)])
        free = fits & (load < limit)
        rid, left = int(frame["id"][i]), _f(hours[i])
        if not free.any():
            why = ("every crew serving it is full for the horizon" if fits.any() else
                   f"no crew serves group {g!r} in district {d!r}")
            out.append(Suggestion(rid, None, None, left, None, why))
            continue
        km = haversine_m(depot_lon, depot_lat, lon[i], lat[i]) / 1000.0
        km = np.where(np.isnan(km), 0.0, km)
        score = np.where(free, load / capacity + DISTANCE_WEIGHT_PER_KM * km, np.inf)
        k = int(np.lexsort((ids, score))[0])
        day_index = int(load[k] // capacity[k])
        crew_days = days.get(int(ids[k]))
        when = (crew_days[day_index] if crew_days and day_index < len(crew_days) else
                (now.date() + timedelta(days=day_index)).isoformat() if day_index else today)
        load[k] += 1
        dist = None if np.isnan(depot_lon[k]) else round(float(km[k]), 2)
        out.append(Suggestion(rid, int(ids[k]), when, left, dist,
                              f"load {int(load[k]) - 1}/{int(capacity[k])} per day"))
    return out


def _f(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 2)


def crew_business_days(crew: Crew, start: date, count: int) -> list[str]:
    """The crew's next ``count`` working days from ``start`` on its calendar."""
    cal = load_calendar(crew.calendar)
    out: list[str] = []
    d = start
    while len(out) < count and (d - start).days < 366:
        if cal.is_business_day(d):
            out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def suggest(store: Store, layer: str, *, district: str | None = None,
            now: datetime | None = None, horizon_days: int = 5) -> list[Suggestion]:
    """Suggestions for the open unassigned stops of ``layer`` (one district or all)."""
    now = now or datetime.now(UTC)
    version = store.layers.version(layer)
    if version.status != "active":
        active = [v.layer for v in store.layers.versions(active_only=True)]
        raise InvalidRequest(f"layer {layer!r} has no active version (it is {version.status}); "
                             f"active layers: {active}")
    frame = store.dispatch.frame(version.id, district=district)
    crews = [c for c in store.dispatch.crews() if c.layer == layer]
    days = {int(c.id or 0): crew_business_days(c, now.date(), horizon_days) for c in crews}
    return suggest_crews(frame, crews, store.dispatch.crew_loads(), now, horizon_days=horizon_days,
                         business_days=days)


def accept(store: Store, picks: Sequence[tuple[int, int, str]], *,
           actor: str = "system") -> list[WorkOrder]:
    """Put accepted (or overridden) ``(request_id, crew_id, date)`` picks on work orders.

    One work order per crew and day: picks of the same crew and day share one, and
    join that crew's assigned work order of the day when there is one (its stops are
    appended). Returns the work orders made or extended, by crew then day.
    """
    days: dict[tuple[int, str], list[int]] = {}
    for request_id, crew_id, day in picks:
        days.setdefault((int(crew_id), _day(day, None)), []).append(int(request_id))
    out = []
    for (crew_id, day), ids in sorted(days.items()):
        same_day = store.dispatch.work_orders(crew_id=crew_id, status=("assigned",),
                                              scheduled_date=day)
        if same_day:
            out.append(store.dispatch.add_stops(same_day[0].id, ids, actor=actor))
        else:
            out.append(store.dispatch.add_work_order(crew_id, ids, day, actor=actor))
    LOGGER.info("accepted %s suggestions onto %s work orders", len(picks), len(out))
    return out


# -- routes --------------------------------------------------------------------------


def order_route(store: Store, crew: int | str, scheduled: date | str | None = None, *,
                search: str = "greedy_descent", actor: str = "system") -> list[WorkOrder]:
    """Order every stop of a crew's open work orders of one day and store the positions.

    A work order's position is that of its first stop on the route; each stop keeps
    its own place, so a work order with several stops is visited stop by stop.
    """
    found = store.dispatch.crew(crew)
    day = _day(scheduled, found)
    orders = store.dispatch.work_orders(crew_id=found.id, status=ACTIVE_WORK_STATUSES,
                                        scheduled_date=day)
    if not orders:
        return []
    stops = [(o.id, r) for o in orders for r in o.request_ids]
    points = store.dispatch.frame(None, unassigned_only=False, ids=[r for _o, r in stops])
    where = {int(r.id): (float(r.lon), float(r.lat)) for r in points.itertuples()}
    located = [(o, r) for o, r in stops if r in where]
    if not located:
        return orders
    order = route_order([where[r][0] for _o, r in located], [where[r][1] for _o, r in located],
                        found.depot, search=search)
    stop_positions = {located[k]: pos + 1 for pos, k in enumerate(order)}
    first: dict[int, int] = {}
    for (order_id, _r), pos in stop_positions.items():
        first[order_id] = min(pos, first.get(order_id, pos))
    store.dispatch.set_route_positions(first, stops=stop_positions, actor=actor)
    LOGGER.info("routed %s stops of crew %s on %s", len(order), found.name, day)
    return store.dispatch.work_orders(crew_id=found.id, status=ACTIVE_WORK_STATUSES,
                                      scheduled_date=day)
