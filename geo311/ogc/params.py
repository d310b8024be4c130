"""OGC API - Features query parameters: limits, offsets, bbox, datetime, and the collections.

Each parser refuses a bad value with ``InvalidRequest`` naming what arrived (shown
shortened and escaped), so every 400 of ``/ogc`` is decided here, without HTTP.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from geo311.errors import InvalidRequest
from geo311.model import STATUSES

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
#: H3 resolutions served as collections: about 5 km², 0.7 km² and 0.1 km² cells.
H3_RESOLUTIONS = (7, 8, 9)
REQUESTS = "requests"
_COMMON_PARAMS = ("f", "limit", "offset", "bbox", "bbox-crs")
#: Request ids are a 32-bit integer column on PostgreSQL; larger ids cannot exist.
MAX_REQUEST_ID = 2**31 - 1
#: Offsets are served from Python once past the matches, but never held as huge ints.
MAX_OFFSET = 2**63 - 1
#: The calendar's ends as UTC instants: an interval end beyond them is open.
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
#: What ``parse_datetime`` answers for times wholly outside the calendar: matches nothing.
NEVER = (LATEST, EARLIEST)
#: More service codes than any catalogue holds is a malformed query, not a filter.
MAX_SERVICE_CODES = 1000
_WHOLE = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Collection:
    """One collection: ``kind`` is ``requests``, ``layer`` or ``h3``."""

    id: str
    title: str
    description: str
    kind: str
    bbox: tuple[float, float, float, float] | None
    interval: tuple[datetime | None, datetime | None] | None = None
    h3_resolution: int | None = None

    @property
    def params(self) -> tuple[str, ...]:
        """The query parameters its items accept (others are refused with 400)."""
        if self.kind == "requests":
            return (*_COMMON_PARAMS, "datetime", "status", "service_code")
        return (*_COMMON_PARAMS, "datetime")


# --- parameters ----------------------------------------------------------------------------


def shown(text: str) -> str:
    """``text`` as quoted in an error message, cut short when it is long."""
    if len(text) <= 60:
        return repr(text)
    return f"{text[:40]!r}… ({len(text):,} characters)"


def check_params(args: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    """Refuse query parameters this resource does not define (OGC: 400, not ignored)."""
    unknown = sorted(k for k in args if k not in allowed)
    if unknown:
        quoted = [k if len(k) <= 60 else shown(k) for k in unknown[:10]]
        raise InvalidRequest(
            f"unknown query parameter(s) {quoted}; this resource takes {list(allowed)}")


def query_args(args: Mapping[str, Sequence[str]], allowed: tuple[str, ...]) -> dict[str, str]:
    """Every parameter once: unknown ones and ones given twice are refused with 400.

    ``args`` maps each name to every value it came with, as a query string holds them.

    Examples
    --------
    >>> query_args({"limit": ["5"]}, ("limit",))
    {'limit': '5'}
    """
    check_params(args, allowed)
    for name, values in args.items():
        if len(values) > 1:
            quoted = [shown(v) for v in values[:3]]
            raise InvalidRequest(
                f"{name} was given {len(values)} times ({', '.join(quoted)}"
                f"{', …' if len(values) > 3 else ''}) but takes one value")
    return {name: values[0] for name, values in args.items() if values}


def parse_limit(text: str | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """``limit``: a whole number from 1; values above ``maximum`` are served as ``maximum``.

    Examples
    --------
    >>> parse_limit("50"), parse_limit(None), parse_limit("99999")
    (50, 100, 10000)
    """
    if text is None or text == "":
        return default
    return _whole_number("limit", text, 1, "at least 1", maximum)


def parse_offset(text: str | None) -> int:
    """``offset``: a whole number from 0 (how many matching features to skip).

    Offsets beyond ``MAX_OFFSET`` are served as ``MAX_OFFSET``: past every match
    either way, so the page is empty and ``numberMatched`` still counts them all.
    """
    if text is None or text == "":
        return 0
    return _whole_number("offset", text, 0, "0 or more", MAX_OFFSET)


def _whole_number(name: str, text: str, least: int, wording: str, most: int) -> int:
    """Digits only (ASCII, optional minus), read without ever parsing a huge string."""
    if not _WHOLE.fullmatch(text):
        raise InvalidRequest(f"{name} was {shown(text)} but is expected to be a whole number")
    digits = text.lstrip("-").lstrip("0") or "0"
    if text.startswith("-") and digits != "0":
        raise InvalidRequest(f"{name} was {shown(text)} but is expected to be {wording}")
    if len(digits) > len(str(most)):
        return most
    value = int(digits)
    if value < least:
        raise InvalidRequest(f"{name} was {shown(text)} but is expected to be {wording}")
    return min(value, most)


def parse_bbox(
    text: str | None, crs: str | None = None
) -> tuple[float, float, float, float] | None:
    """``bbox=minlon,minlat,maxlon,maxlat`` (or six numbers with heights) in CRS84.

    ``minlon > maxlon`` is a box across the antimeridian (``bbox_parts`` splits it).

    Examples
    --------
    >>> parse_bbox("-87.7,41.8,-87.6,41.9")
    (-87.7, 41.8, -87.6, 41.9)
    >>> parse_bbox("170,-10,-170,10")
    (170.0, -10.0, -170.0, 10.0)
    """
    if crs not in (None, "", CRS84):
        raise InvalidRequest(f"bbox-crs was {shown(crs)} but only {CRS84} is supported")
    if text is None or text == "":
        return None
    wanted = "4 numbers: minlon,minlat,maxlon,maxlat (or 6 with heights)"
    parts = text.split(",")
    if len(parts) not in (4, 6):
        raise InvalidRequest(f"bbox was {shown(text)} but is expected to be {wanted}")
    try:
        values = [float(v) for v in parts]
    except ValueError as exc:
        raise InvalidRequest(f"bbox was {shown(text)} but is expected to be {wanted}") from exc
    if not all(math.isfinite(v) for v in values):
        raise InvalidRequest(f"bbox was {shown(text)} but is expected to be {wanted}")
    if len(values) == 6:
        if values[2] > values[5]:
            raise InvalidRequest(f"bbox was {shown(text)}: the lower height is above the upper")
        values = [values[0], values[1], values[3], values[4]]
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidRequest(
            f"bbox was {shown(text)}: longitudes must be within ±180, latitudes within ±90 "
            "and minlat <= maxlat")
    return minx, miny, maxx, maxy


def bbox_parts(
    bbox: tuple[float, float, float, float],
) -> list[tuple[float, float, float, float]]:
    """A bbox as boxes that do not cross the antimeridian: itself, or its two halves.

    Examples
    --------
    >>> bbox_parts((170, -10, -170, 10))
    [(170, -10, 180.0, 10), (-180.0, -10, -170, 10)]
    """
    minx, miny, maxx, maxy = bbox
    if minx <= maxx:
        return [bbox]
    return [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]


def parse_datetime(text: str | None) -> tuple[datetime | None, datetime | None]:
    """``datetime``: an RFC 3339 instant, or an interval ``start/end`` with ``..`` open ends.

    Times without an offset are refused (RFC 3339 requires one). Times beyond the
    calendar (before 0001-01-01 or after 9999-12-31 in UTC, as ``+14:00`` and
    ``-14:00`` offsets can make them) are applied, not refused: a start before the
    calendar or an end after it is an open end; an instant, a start after it or an
    end before it matches nothing and comes back as ``NEVER`` (start after end).
    ``../..`` is every time.

    Examples
    --------
    >>> parse_datetime("2021-01-01T00:00:00Z/..")[0].isoformat()
    '2021-01-01T00:00:00+00:00'
    >>> parse_datetime("0001-01-01T00:00:00+14:00/..")
    (None, None)
    """
    if text is None or text == "":
        return None, None
    if "/" not in text:
        side, instant = _instant(text, text)
        return NEVER if side else (instant, instant)
    first, _, second = text.partition("/")
    start = None if first in ("", "..") else _instant(first, text)
    end = None if second in ("", "..") else _instant(second, text)
    if start is not None and end is not None and start > end:  # sides order the ends too
        raise InvalidRequest(f"datetime was {shown(text)}: the start is after the end")
    if (start is not None and start[0] > 0) or (end is not None and end[0] < 0):
        return NEVER
    return (None if start is None or start[0] < 0 else start[1],
            None if end is None or end[0] > 0 else end[1])


def _instant(value: str, whole: str) -> tuple[int, datetime]:
    """``(0, the time in UTC)``, or ``(-1, EARLIEST)``/``(1, LATEST)`` beyond the calendar."""
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise InvalidRequest(
            f"datetime was {shown(whole)} but is expected to be RFC 3339, e.g. "
            "2021-01-01T00:00:00Z or 2021-01-01T00:00:00Z/2021-01-02T00:00:00Z") from exc
    if parsed.tzinfo is None:
        if len(value) == 10:  # a bare date: the whole UTC day's start
            return 0, parsed.replace(tzinfo=UTC)
        raise InvalidRequest(f"datetime was {shown(whole)}: give a UTC offset, e.g. Z or -06:00")
    try:
        return 0, parsed.astimezone(UTC)
    except OverflowError:  # only within a day of the calendar's ends
        return (-1, EARLIEST) if parsed.year == 1 else (1, LATEST)


@dataclass(frozen=True)
class ItemQuery:
    """Parsed ``items`` parameters."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    bbox: tuple[float, float, float, float] | None = None
    start: datetime | None = None
    end: datetime | None = None
    status: str | None = None
    service_codes: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: Mapping[str, str], collection: Collection) -> ItemQuery:
        """Check and parse query parameters for ``collection``'s items."""
        check_params(args, collection.params)
        start, end = parse_datetime(args.get("datetime"))
        status = args.get("status") or None
        if status is not None and status not in STATUSES:
            raise InvalidRequest(
                f"status was {shown(status)} but is expected to be in {STATUSES}")
        text = args.get("service_code") or ""
        codes = tuple(c for c in text.split(",") if c)
        if len(codes) > MAX_SERVICE_CODES or "\x00" in text:
            raise InvalidRequest(f"service_code was {shown(text)} but is expected to be at "
                                 f"most {MAX_SERVICE_CODES} service codes, comma separated")
        return cls(limit=parse_limit(args.get("limit")), offset=parse_offset(args.get("offset")),
                   bbox=parse_bbox(args.get("bbox"), args.get("bbox-crs")), start=start,
                   end=end, status=status, service_codes=codes)
