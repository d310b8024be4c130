"""Service level agreements: targets, due times, pauses, breached and at-risk.

A target is an amount of *clock time* that must pass before a request is due; which
time counts depends on the unit, counted on a business calendar
(``geo311.business_calendar``: business days, business hours, days or hours).

A request that arrives outside the counted time starts its clock when counted time
next begins. While a request is paused (waiting for the resident, on hold) its clock
stands still; the due time moves on by the counted time the pause covered.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from geo311.business_calendar import (
    DEFAULT_CALENDAR,
    UNITS,
    BusinessCalendar,
    add_clock,
    clock_seconds,
    load_calendar,
    remaining_seconds,
)
from geo311.errors import InvalidRequest
from geo311.model import Service

if TYPE_CHECKING:
    from geo311.store import Store

LOGGER = logging.getLogger(__name__)

CLOCKS = ("business", "24x7")
#: Reasons a request's clock may stand still.
PAUSE_REASONS = ("waiting_for_resident", "on_hold", "waiting_for_other_agency")
#: The reasons as staff read them.
PAUSE_REASON_LABELS = {"waiting_for_resident": "Waiting for resident", "on_hold": "On hold",
                       "waiting_for_other_agency": "Waiting for another agency"}
#: The states as staff read them.
STATE_LABELS = {"breached": "Breached", "at_risk": "At risk", "on_track": "On track",
                "paused": "Paused", "none": "No SLA"}
#: An open request is at risk when less than this share of its target is left.
AT_RISK_SHARE = 0.25
_DAY_S = 86_400.0


@dataclass(frozen=True)
class Target:
    """An SLA target: ``amount`` of ``unit`` (one of ``UNITS``)."""

    amount: float
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise InvalidRequest(f"SLA unit was {self.unit!r} but is expected to be in {UNITS}")
        if not self.amount > 0:
            raise InvalidRequest(f"SLA amount was {self.amount} but is expected to be > 0")

    @property
    def seconds(self) -> float:
        """The target in clock seconds of its unit."""
        return self.amount * (_DAY_S if self.unit in ("business_days", "days") else 3600.0)


def target_for(service: Service) -> Target | None:
    """The SLA target of a service, or None when it has none."""
    business = (service.sla_clock or "business") == "business"
    if service.sla_hours:
        return Target(service.sla_hours, "business_hours" if business else "hours")
    if service.sla_days:
        return Target(service.sla_days, "business_days" if business else "days")
    return None


Pause = tuple[datetime, datetime | None]


def due_at(requested: datetime, target: Target, cal: BusinessCalendar,
           pauses: Sequence[Pause] = ()) -> datetime | None:
    """When a request is due: ``requested`` plus the target, plus the time spent paused.

    None while a pause is open (the clock stands still, so no due time is known).

    Examples
    --------
    >>> from zoneinfo import ZoneInfo
    >>> cal = BusinessCalendar("springfield", "America/New_York", state_holidays="MA")
    >>> mon = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    >>> due_at(mon, Target(3, "business_days"), cal).astimezone(cal.zone).date()
    datetime.date(2026, 11, 27)
    """
    if any(end is None for _, end in pauses):
        return None
    paused = sum(clock_seconds(max(s, requested), e, target.unit, cal)
                 for s, e in pauses if e is not None)
    return add_clock(requested, target.seconds + paused, target.unit, cal)


@dataclass(frozen=True)
class SlaState:
    """Where one open request stands against its SLA."""

    request_id: int
    service_code: str
    due: datetime | None
    state: str  # "breached", "at_risk", "on_track", "paused" or "none"
    remaining_s: float | None  # clock time left (negative: real seconds overdue)
    share_left: float | None


def classify(request_id: int, service_code: str, due: datetime | None, paused: bool,
             target: Target | None, cal: BusinessCalendar, now: datetime) -> SlaState:
    """Breached, at risk (less than ``AT_RISK_SHARE`` of the target left), on track, paused."""
    if paused:
        return SlaState(request_id, service_code, due, "paused", None, None)
    if target is None or due is None:  # no SLA, or no due time computed yet
        return SlaState(request_id, service_code, due, "none", None, None)
    left = remaining_seconds(due, now, target.unit, cal)
    share = left / target.seconds
    state = "breached" if left <= 0 else "at_risk" if share < AT_RISK_SHARE else "on_track"
    return SlaState(request_id, service_code, due, state, left, share)


# -- applying SLAs to stored requests --------------------------------------------------


def calendar_of(service: Service, default: str = DEFAULT_CALENDAR) -> BusinessCalendar:
    """The calendar a service's clock runs on."""
    return load_calendar(service.sla_calendar or default)


def fill_expected(store: Store, *, codes: Sequence[str] | None = None,
                  recompute: bool = False, default_calendar: str = DEFAULT_CALENDAR,
                  ids: Sequence[int] | None = None) -> int:
    """Write ``expected_datetime`` of requests whose service has an SLA; return how many.

    Without ``recompute`` only requests that have none are filled (after an import).
    Pauses are taken into account; a request paused now gets none.
    """
    services = {s.code: s for s in store.catalogue.services()}
    with_sla = [c for c, s in services.items() if target_for(s) is not None
                and (codes is None or c in codes)]
    if codes is not None and recompute:
        with_sla = list(codes)  # a service that lost its SLA loses its due times
    if not with_sla:
        return 0
    rows = store.sla.rows(with_sla, missing_only=not recompute, ids=ids)
    if not rows:
        return 0
    pauses = store.sla.pauses_of([r[0] for r in rows])
    values: list[datetime | None] = []
    for request_id, code, requested in rows:
        service = services.get(code)
        target = target_for(service) if service else None
        if service is None or target is None:
            values.append(None)
            continue
        values.append(due_at(requested, target, calendar_of(service, default_calendar),
                             pauses.get(request_id, [])))
    store.sla.set_expected([r[0] for r in rows], values)
    LOGGER.info("expected times set on %s requests of %s services", len(rows), len(with_sla))
    return len(rows)


def set_target(store: Store, service_code: str, unit: str, amount: float, *,
               calendar: str = "", actor: str = "system") -> tuple[Service, int]:
    """Give a service an SLA target and recompute its requests' due times; audited.

    ``unit`` is one of ``UNITS``; ``calendar`` names a calendar (or TOML file) to count
    on, else the service keeps its own. Returns the updated service and how many
    requests got a due time.

    Examples
    --------
    >>> service, n = set_target(store, "SCB", "business_days", 3)  # doctest: +SKIP
    >>> describe_target(service)  # doctest: +SKIP
    '3 business days (springfield)'
    """
    if unit not in UNITS:
        raise InvalidRequest(f"unit was {unit!r} but is expected to be in {UNITS}")
    service = store.catalogue.service(service_code)
    if calendar:
        load_calendar(calendar)
    updated = replace(
        service, sla_days=amount if unit in ("business_days", "days") else None,
        sla_hours=amount if unit in ("business_hours", "hours") else None,
        sla_clock="business" if unit.startswith("business") else "24x7",
        sla_calendar=calendar or service.sla_calendar)
    target_for(updated)  # validates the amount
    store.catalogue.upsert([updated])
    store.audit.add("sla_set", "service", service_code, {"unit": unit, "amount": amount}, actor)
    return updated, fill_expected(store, codes=[service_code], recompute=True)


def expected_for(store: Store, request_id: int, *,
                 default_calendar: str = DEFAULT_CALENDAR) -> datetime | None:
    """Compute and store the due time of one request (after intake, pause or resume)."""
    fill_expected(store, ids=[request_id], recompute=True, default_calendar=default_calendar,
                  codes=[store.requests.get(request_id).service_code])
    return store.requests.get(request_id).expected_datetime


def pause(store: Store, request_id: int, reason: str, *, actor: str = "system",
          now: datetime | None = None) -> None:
    """Stop a request's clock (waiting for the resident, on hold); audited."""
    if reason not in PAUSE_REASONS:
        raise InvalidRequest(f"reason was {reason!r} but is expected to be in {PAUSE_REASONS}")
    r = store.requests.get(request_id)
    if r.status != "open":
        raise InvalidRequest(f"request {request_id} is {r.status}; only open requests pause")
    store.sla.start_pause(request_id, reason, now or datetime.now(UTC), actor=actor)
    expected_for(store, request_id)


def resume(store: Store, request_id: int, *, actor: str = "system",
           now: datetime | None = None,
           default_calendar: str = DEFAULT_CALENDAR) -> datetime | None:
    """Start a paused request's clock again; returns the new due time. Audited."""
    store.sla.end_pause(request_id, now or datetime.now(UTC), actor=actor)
    return expected_for(store, request_id, default_calendar=default_calendar)


def sla_board(store: Store, *, now: datetime | None = None,
              default_calendar: str = DEFAULT_CALENDAR,
              states: Sequence[str] = ("breached", "at_risk")) -> list[SlaState]:
    """Open group roots in the given states, most urgent first (breached longest first)."""
    now = now or datetime.now(UTC)
    services = {s.code: s for s in store.catalogue.services()}
    out = []
    for request_id, code, due, paused in store.sla.open_rows():
        service = services.get(code)
        if service is None:
            continue
        st = classify(request_id, code, due, paused, target_for(service),
                      calendar_of(service, default_calendar), now)
        if st.state in states:
            out.append(st)
    out.sort(key=lambda s: (s.remaining_s if s.remaining_s is not None else float("inf"),
                            s.request_id))
    return out


def remaining_words(seconds: float | None) -> str:
    """Time left on a clock in words: "3 days overdue", "5 hours left", "no SLA".

    Whole units, rounded down, so "3 days overdue" is at least three days late;
    under two days it counts hours, under an hour minutes.

    Examples
    --------
    >>> remaining_words(-135306.94 * 3600)
    '5637 days overdue'
    >>> remaining_words(5.4 * 3600)
    '5 hours left'
    """
    if seconds is None or math.isnan(seconds):
        return "no SLA"
    late, left = seconds < 0, abs(seconds)
    if left < 3600:
        n, unit = int(left // 60), "minute"
    elif left < 2 * _DAY_S:
        n, unit = int(left // 3600), "hour"
    else:
        n, unit = int(left // _DAY_S), "day"
    if n == 0:
        return "due now"
    return f"{n} {unit}{'' if n == 1 else 's'} {'overdue' if late else 'left'}"


def reason_label(reason: str) -> str:
    """A pause reason as staff read it ("Waiting for resident")."""
    return PAUSE_REASON_LABELS.get(reason, reason.replace("_", " ").capitalize())


def describe_target(service: Service) -> str:
    """A target in words, e.g. '3 business days'."""
    target = target_for(service)
    if target is None:
        return "no SLA"
    return f"{target.amount:g} {target.unit.replace('_', ' ')}"


def as_dict(state: SlaState) -> dict[str, Any]:
    """A JSON-ready SLA state."""
    return {"request_id": state.request_id, "service_code": state.service_code,
            "due": state.due.isoformat() if state.due else None, "state": state.state,
            "remaining_hours": None if state.remaining_s is None
            else round(state.remaining_s / 3600, 2),
            "share_left": None if state.share_left is None else round(state.share_left, 3)}
