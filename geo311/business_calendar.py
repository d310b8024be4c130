"""Business calendars: working days, hours and holidays of a city, and clock arithmetic.

A calendar is read from a TOML file (the shipped ones live in ``geo311/calendars/``) or
made from a city profile (``geo311.city``): the public holidays of the city's state, as
the ``holidays`` library knows them, plus the city's own closure dates.
The clock functions count time of one unit on a calendar:

- ``business_days``: whole business days (weekdays that are not holidays), counted
  on the local wall clock, so one business day is always the same local time on the
  next business day, even across a daylight-saving change;
- ``business_hours``: the calendar's business hours (e.g. 08:30–16:30) on business days;
- ``days``: every calendar day, on the local wall clock;
- ``hours``: real elapsed hours, day and night.

Time that arrives outside the counted time starts counting when counted time next
begins. SLA bookkeeping (targets, pauses, due times of stored requests) is in
``geo311.sla``; this module knows nothing of requests.
"""

from __future__ import annotations

import calendar as _calendar
import functools
import logging
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as _public_holidays

from geo311.errors import InvalidRequest, NotFound

LOGGER = logging.getLogger(__name__)

CALENDARS_PATH = Path(__file__).resolve().parent / "calendars"
#: The calendar name meaning "the active city's" (its profile's calendar).
DEFAULT_CALENDAR = ""
#: The units a clock counts in.
UNITS = ("business_days", "business_hours", "days", "hours")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
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
    state_holidays: str = ""  # a US state's two letters: its public holidays are kept too

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidRequest(
                f"calendar {self.name!r}: timezone was {self.timezone!r} but is expected to "
                "be an IANA time zone such as 'America/New_York'") from exc
        if self.day_end <= self.day_start:
            raise InvalidRequest(
                f"calendar {self.name!r}: hours {self.day_start}–{self.day_end} end before "
                "they start")

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return ZoneInfo(self.timezone)

    def holidays(self, year: int) -> dict[date, str]:
        """The holidays kept in ``year``, by date (kept per calendar: SLA clocks ask often)."""
        years: dict[int, dict[date, str]] = self.__dict__.setdefault("_years", {})
        if year not in years:
            years[year] = _holidays(self.holiday_rules, self.dates, year, self.state_holidays)
        return years[year]

    def is_business_day(self, d: date) -> bool:
        """True for a working weekday that is not a holiday."""
        # A 1 January on a Saturday is kept on 31 December of the year before.
        return (d.weekday() in self.workdays and d not in self.holidays(d.year)
                and d not in self.holidays(d.year + 1))


@functools.lru_cache(maxsize=512)
def _holidays(rules: tuple[HolidayRule, ...], extra: frozenset[date], year: int,
              state: str = "") -> dict[date, str]:
    out: dict[date, str] = {}
    if state:
        # Federal holidays and the state's own (Patriots' Day in MA, Cesar Chavez Day
        # in CA...), observed on a weekday where the state observes them so.
        found = _public_holidays.country_holidays("US", subdiv=state, years=year)
        for day, name in sorted(found.items()):
            out.setdefault(day, name)
            # Kept on the Friday before when on a Saturday, the Monday after when on a
            # Sunday, as the federal schedule (and HolidayRule) keeps fixed dates.
            if "observed" not in name.lower() and day.weekday() in (5, 6):
                kept = day + timedelta(days=-1 if day.weekday() == 5 else 1)
                out.setdefault(kept, f"{name} (observed)")
    out.update({d: "closure" for d in extra if d.year == year})
    for rule in rules:
        d = rule.date_in(year)
        if d is not None:
            out[d] = rule.name
    return out


def read_calendar(path: str | Path) -> BusinessCalendar:
    """Read a calendar TOML file (see the files in ``geo311/calendars/``).

    ``state = "MA"`` in the file keeps that state's public holidays as well.

    Examples
    --------
    >>> read_calendar(next(CALENDARS_PATH.glob("*.toml"))).timezone.startswith("America/")
    True
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
        state = str(raw.get("state", "")).upper()
        if state and state not in _public_holidays.US.subdivisions:
            raise ValueError(f"state was {raw['state']!r} but is expected to be a US state's "
                             "two letters")
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
                            title=str(raw.get("title", name)), state_holidays=state)


def load_calendar(name: str = DEFAULT_CALENDAR) -> BusinessCalendar:
    """A shipped calendar by name or a calendar TOML file by path; empty: the city's own.

    The city's own is the calendar of the active city profile (``GEO311_CITY``).
    """
    if not name:
        from geo311.city import active_profile

        return active_profile().calendar()
    return _load_calendar(name)


@functools.lru_cache(maxsize=32)
def _load_calendar(name: str) -> BusinessCalendar:
    shipped = CALENDARS_PATH / f"{name}.toml"
    if shipped.exists():
        return read_calendar(shipped)
    if name.endswith(".toml") and Path(name).exists():
        return read_calendar(name)
    known = sorted(p.stem for p in CALENDARS_PATH.glob("*.toml"))
    raise NotFound(f"calendar {name!r} is neither a shipped calendar {known} nor a TOML file")


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
    >>> cal = BusinessCalendar("springfield", "America/New_York", state_holidays="MA")
    >>> fri = datetime(2026, 4, 17, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    >>> add_clock(fri, 86400, "business_days", cal).isoformat()  # Patriots' Day: 20 April
    '2026-04-21T14:00:00+00:00'
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


def remaining_seconds(due: datetime, now: datetime, unit: str, cal: BusinessCalendar) -> float:
    """Clock time left until ``due``; negative real seconds once it has passed."""
    if due <= now:
        return (due - now).total_seconds()
    return clock_seconds(now, due, unit, cal)
