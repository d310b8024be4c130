"""Service level agreements: business calendars, due times, pauses, breached and at-risk.

A target is an amount of *clock time* that must pass before a request is due. Which
time counts depends on the unit:

- ``business_days``: whole business days (weekdays that are not holidays), counted
  on the local wall clock, so one business day is always the same local time on the
  next business day, even across a daylight-saving change;
- ``business_hours``: the calendar's business hours (e.g. 08:30–16:30) on business days;
- ``days``: every calendar day, on the local wall clock;
- ``hours``: real elapsed hours, day and night.

A request that arrives outside the counted time starts its clock when counted time
next begins. While a request is paused (waiting for the resident, on hold) its clock
stands still; the due time moves on by the counted time the pause covered.
"""

from __future__ import annotations

import calendar as _calendar
import functools
import logging
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geo311.errors import InvalidRequest, NotFound
from geo311.model import Service

if TYPE_CHECKING:
    from geo311.store.sql import SQLStore

LOGGER = logging.getLogger(__name__)

CALENDARS_PATH = Path(__file__).resolve().parent / "calendars"
DEFAULT_CALENDAR = "chicago"
UNITS = ("business_days", "business_hours", "days", "hours")
CLOCKS = ("business", "24x7")
#: Reasons a request's clock may stand still.
PAUSE_REASONS = ("waiting_for_resident", "on_hold", "waiting_for_other_agency")
#: An open request is at risk when less than this share of its target is left.
AT_RISK_SHARE = 0.25
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_S = 86_400.0
_MAX_DAYS = 366 * 20  # no target runs longer; guards the day-by-day walk


@dataclass(frozen=True)
class HolidayRule:
    """A yearly holiday: a fixed date (observed on the nearest weekday) or the nth weekday.

    ``nth`` is 1–5 from the start of the month or -1 for the last one.
    """

    name: str
    month: int
    day: int | None = None
    weekday: int | None = None
    nth: int | None = None
    observed: bool = True
    from_year: int | None = None

    def date_in(self, year: int) -> date | None:
        """The date this holiday is kept in ``year`` (None before ``from_year``)."""
        if self.from_year is not None and year < self.from_year:
            return None
        if self.day is not None:
            d = date(year, self.month, self.day)
            if self.observed and d.weekday() == 5:
                return d - timedelta(days=1)
            if self.observed and d.weekday() == 6:
                return d + timedelta(days=1)
            return d
        assert self.weekday is not None and self.nth is not None
        days = [d for d in _calendar.Calendar().itermonthdates(year, self.month)
                if d.month == self.month and d.weekday() == self.weekday]
        return days[self.nth - 1] if self.nth > 0 else days[self.nth]


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and hours of a city, in its time zone."""

    name: str
    timezone: str
    workdays: frozenset[int] = frozenset(range(5))  # 0 = Monday
    day_start: time = time(8, 30)
    day_end: time = time(16, 30)
    holiday_rules: tuple[HolidayRule, ...] = ()
    dates: frozenset[date] = frozenset()  # one-off closures
    title: str = ""

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidRequest(
                f"calendar {self.name!r}: timezone was {self.timezone!r} but is expected to "
                "be an IANA time zone such as 'America/Chicago'") from exc
        if self.day_end <= self.day_start:
            raise InvalidRequest(
                f"calendar {self.name!r}: hours {self.day_start}–{self.day_end} end before "
                "they start")

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return ZoneInfo(self.timezone)

    def holidays(self, year: int) -> dict[date, str]:
        """The holidays kept in ``year``, by date."""
        return _holidays(self.holiday_rules, self.dates, year)

    def is_business_day(self, d: date) -> bool:
        """True for a working weekday that is not a holiday."""
        # A 1 January on a Saturday is kept on 31 December of the year before.
        return (d.weekday() in self.workdays and d not in self.holidays(d.year)
                and d not in self.holidays(d.year + 1))


@functools.lru_cache(maxsize=512)
def _holidays(rules: tuple[HolidayRule, ...], extra: frozenset[date], year: int
              ) -> dict[date, str]:
    out = {d: "closure" for d in extra if d.year == year}
    for rule in rules:
        d = rule.date_in(year)
        if d is not None:
            out[d] = rule.name
    return out


def read_calendar(path: str | Path) -> BusinessCalendar:
    """Read a calendar TOML file (see ``geo311/calendars/chicago.toml``).

    Examples
    --------
    >>> read_calendar(CALENDARS_PATH / "chicago.toml").timezone
    'America/Chicago'
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequest(f"calendar file {path} cannot be read: {exc}") from exc
    name = str(raw.get("name", path.stem))
    try:
        workdays = frozenset(WEEKDAYS.index(d.lower()[:3]) for d in raw.get(
            "workdays", WEEKDAYS[:5]))
        start, end = (time.fromisoformat(h) for h in raw.get("hours", ["08:30", "16:30"]))
        rules = tuple(
            HolidayRule(
                name=str(h["name"]), month=int(h["month"]), day=h.get("day"),
                weekday=WEEKDAYS.index(h["weekday"].lower()[:3]) if "weekday" in h else None,
                nth=h.get("nth"), observed=bool(h.get("observed", True)),
                from_year=h.get("from_year"),
            )
            for h in raw.get("holidays", [])
        )
        dates = frozenset(date.fromisoformat(str(d)) for d in raw.get("dates", []))
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"calendar file {path}: {exc!r}") from exc
    for r in rules:
        if (r.day is None) == (r.weekday is None or r.nth is None):
            raise InvalidRequest(
                f"calendar file {path}: holiday {r.name!r} needs either day or weekday and nth")
    if "timezone" not in raw:
        raise InvalidRequest(f"calendar file {path} has no timezone")
    return BusinessCalendar(name=name, timezone=str(raw["timezone"]), workdays=workdays,
                            day_start=start, day_end=end, holiday_rules=rules, dates=dates,
                            title=str(raw.get("title", name)))


@functools.lru_cache(maxsize=32)
def load_calendar(name: str = DEFAULT_CALENDAR) -> BusinessCalendar:
    """A shipped calendar by name (``chicago``) or a calendar TOML file by path."""
    shipped = CALENDARS_PATH / f"{name}.toml"
    if shipped.exists():
        return read_calendar(shipped)
    if name.endswith(".toml") and Path(name).exists():
        return read_calendar(name)
    known = sorted(p.stem for p in CALENDARS_PATH.glob("*.toml"))
    raise NotFound(f"calendar {name!r} is neither a shipped calendar {known} nor a TOML file")


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


def _local(t: datetime, zone: ZoneInfo) -> datetime:
    if t.tzinfo is None:
        raise InvalidRequest(f"naive datetime {t.isoformat()} given to an SLA clock")
    return t.astimezone(zone).replace(tzinfo=None)


def _aware(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)


def _segments(cal: BusinessCalendar, unit: str, first: date) -> Iterator[tuple[datetime, datetime]]:
    """Local wall-clock stretches during which the clock runs, from ``first`` on."""
    d = first
    for _ in range(_MAX_DAYS):
        if unit == "days" or cal.is_business_day(d):
            if unit == "business_hours":
                yield datetime.combine(d, cal.day_start), datetime.combine(d, cal.day_end)
            else:
                yield datetime.combine(d, time()), datetime.combine(d + timedelta(days=1), time())
        d += timedelta(days=1)
    raise InvalidRequest(f"an SLA clock ran past {_MAX_DAYS} days on calendar {cal.name!r}")


def add_clock(start: datetime, seconds: float, unit: str, cal: BusinessCalendar) -> datetime:
    """The time at which ``seconds`` of ``unit`` clock time have passed since ``start``.

    Examples
    --------
    >>> from zoneinfo import ZoneInfo
    >>> cal = load_calendar("chicago")
    >>> fri = datetime(2026, 3, 6, 10, 0, tzinfo=ZoneInfo("America/Chicago"))
    >>> add_clock(fri, 86400, "business_days", cal).astimezone(cal.zone).isoformat()
    '2026-03-09T10:00:00-05:00'
    """
    if unit == "hours":
        return start.astimezone(UTC) + timedelta(seconds=seconds)
    zone = cal.zone
    at = _local(start, zone)
    left = float(seconds)
    for seg_start, seg_end in _segments(cal, unit, at.date()):
        begin = max(seg_start, at)
        if begin >= seg_end:
            continue
        span = (seg_end - begin).total_seconds()
        if left <= span:
            return _aware(begin + timedelta(seconds=left), zone)
        left -= span
    raise AssertionError("unreachable")  # pragma: no cover - _segments raises first


def clock_seconds(start: datetime, end: datetime, unit: str, cal: BusinessCalendar) -> float:
    """How much ``unit`` clock time passes from ``start`` to ``end`` (0 if end <= start)."""
    if end <= start:
        return 0.0
    if unit == "hours":
        return (end - start).total_seconds()
    zone = cal.zone
    a, b = _local(start, zone), _local(end, zone)
    total = 0.0
    for seg_start, seg_end in _segments(cal, unit, a.date()):
        if seg_start >= b:
            break
        lo, hi = max(seg_start, a), min(seg_end, b)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total


Pause = tuple[datetime, datetime | None]


def due_at(requested: datetime, target: Target, cal: BusinessCalendar,
           pauses: Sequence[Pause] = ()) -> datetime | None:
    """When a request is due: ``requested`` plus the target, plus the time spent paused.

    None while a pause is open (the clock stands still, so no due time is known).

    Examples
    --------
    >>> from zoneinfo import ZoneInfo
    >>> cal = load_calendar("chicago")
    >>> mon = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
    >>> due_at(mon, Target(3, "business_days"), cal).astimezone(cal.zone).date()
    datetime.date(2026, 11, 30)
    """
    if any(end is None for _, end in pauses):
        return None
    paused = sum(clock_seconds(max(s, requested), e, target.unit, cal)
                 for s, e in pauses if e is not None)
    return add_clock(requested, target.seconds + paused, target.unit, cal)


def remaining_seconds(due: datetime, now: datetime, unit: str, cal: BusinessCalendar) -> float:
    """Clock time left until ``due``; negative real seconds once it has passed."""
    if due <= now:
        return (due - now).total_seconds()
    return clock_seconds(now, due, unit, cal)


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


def fill_expected(store: SQLStore, *, codes: Sequence[str] | None = None,
                  recompute: bool = False, default_calendar: str = DEFAULT_CALENDAR,
                  ids: Sequence[int] | None = None) -> int:
    """Write ``expected_datetime`` of requests whose service has an SLA; return how many.

    Without ``recompute`` only requests that have none are filled (after an import).
    Pauses are taken into account; a request paused now gets none.
    """
    services = {s.code: s for s in store.services()}
    with_sla = [c for c, s in services.items() if target_for(s) is not None
                and (codes is None or c in codes)]
    if codes is not None and recompute:
        with_sla = list(codes)  # a service that lost its SLA loses its due times
    if not with_sla:
        return 0
    rows = store.sla_rows(with_sla, missing_only=not recompute, ids=ids)
    if not rows:
        return 0
    pauses = store.sla_pauses_of([r[0] for r in rows])
    values: list[datetime | None] = []
    for request_id, code, requested in rows:
        service = services.get(code)
        target = target_for(service) if service else None
        if service is None or target is None:
            values.append(None)
            continue
        values.append(due_at(requested, target, calendar_of(service, default_calendar),
                             pauses.get(request_id, [])))
    store.set_expected_datetimes([r[0] for r in rows], values)
    LOGGER.info("expected times set on %s requests of %s services", len(rows), len(with_sla))
    return len(rows)


def set_target(store: SQLStore, service_code: str, unit: str, amount: float, *,
               calendar: str = "", actor: str = "system") -> tuple[Service, int]:
    """Give a service an SLA target and recompute its requests' due times; audited.

    ``unit`` is one of ``UNITS``; ``calendar`` names a calendar (or TOML file) to count
    on, else the service keeps its own. Returns the updated service and how many
    requests got a due time.

    Examples
    --------
    >>> service, n = set_target(store, "SCB", "business_days", 3)  # doctest: +SKIP
    >>> describe_target(service)  # doctest: +SKIP
    '3 business days (chicago)'
    """
    if unit not in UNITS:
        raise InvalidRequest(f"unit was {unit!r} but is expected to be in {UNITS}")
    service = store.service(service_code)
    if calendar:
        load_calendar(calendar)
    updated = replace(
        service, sla_days=amount if unit in ("business_days", "days") else None,
        sla_hours=amount if unit in ("business_hours", "hours") else None,
        sla_clock="business" if unit.startswith("business") else "24x7",
        sla_calendar=calendar or service.sla_calendar)
    target_for(updated)  # validates the amount
    store.upsert_services([updated])
    store.audit("sla_set", "service", service_code, {"unit": unit, "amount": amount}, actor)
    return updated, fill_expected(store, codes=[service_code], recompute=True)


def expected_for(store: SQLStore, request_id: int, *,
                 default_calendar: str = DEFAULT_CALENDAR) -> datetime | None:
    """Compute and store the due time of one request (after intake, pause or resume)."""
    fill_expected(store, ids=[request_id], recompute=True, default_calendar=default_calendar,
                  codes=[store.get(request_id).service_code])
    return store.get(request_id).expected_datetime


def pause(store: SQLStore, request_id: int, reason: str, *, actor: str = "system",
          now: datetime | None = None) -> None:
    """Stop a request's clock (waiting for the resident, on hold); audited."""
    if reason not in PAUSE_REASONS:
        raise InvalidRequest(f"reason was {reason!r} but is expected to be in {PAUSE_REASONS}")
    r = store.get(request_id)
    if r.status != "open":
        raise InvalidRequest(f"request {request_id} is {r.status}; only open requests pause")
    store.start_sla_pause(request_id, reason, now or datetime.now(UTC), actor=actor)
    expected_for(store, request_id)


def resume(store: SQLStore, request_id: int, *, actor: str = "system",
           now: datetime | None = None,
           default_calendar: str = DEFAULT_CALENDAR) -> datetime | None:
    """Start a paused request's clock again; returns the new due time. Audited."""
    store.end_sla_pause(request_id, now or datetime.now(UTC), actor=actor)
    return expected_for(store, request_id, default_calendar=default_calendar)


def sla_board(store: SQLStore, *, now: datetime | None = None,
              default_calendar: str = DEFAULT_CALENDAR,
              states: Sequence[str] = ("breached", "at_risk")) -> list[SlaState]:
    """Open group roots in the given states, most urgent first (breached longest first)."""
    now = now or datetime.now(UTC)
    services = {s.code: s for s in store.services()}
    out = []
    for request_id, code, due, paused in store.open_sla_rows():
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
