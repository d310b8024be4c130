"""Open311 GeoReport v2: parameters in, response documents out, as plain data.

The specification is http://wiki.open311.org/GeoReport_v2 with Service Discovery
(http://wiki.open311.org/Service_Discovery). This module reads and checks what clients
send, builds the documents they get (lists and dicts), and writes them as XML or JSON.
It knows nothing of HTTP; ``web/open311.py`` adapts it.

geo311 is strict by default: the 90-day window, the 1,000-request cap, the
``status`` filter and the no-HTML rule for descriptions are enforced, and every
record carries every field the specification lists (null where unknown). The
filters clients commonly send beyond the specification (paging, ``bbox``,
``lat``/``long``/``radius``, update times, ``client_request_id``) are applied whether or
not ``extensions=true`` is given; ``extensions=true`` adds the ``extended_attributes``
(districts, duplicates). Parameters nobody defined are ignored; malformed values of
known ones are refused, saying what arrived.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import orjson

from geo311.errors import InvalidRequest
from geo311.model import NewRequest, Reporter, Service, ServiceRequest
from geo311.reports import (
    MAX_ADDRESS,
    REPORTER_LIMITS,
    check_answers,
    check_description,
    check_line,
    check_media_url,
    check_reporter,
)

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
BULK_SPECIFICATION = "http://wiki.open311.org/GeoReport_Bulk_v1"
FORMATS = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
MAX_WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
#: Query parameters beyond the specification; applied with or without ``extensions=true``.
EXTENSION_PARAMETERS = ("page", "page_size", "bbox", "lat", "long", "radius",
                        "updated_after", "updated_before")
#: What geo311 adds to GeoReport v2, as announced in discovery. The parameters work
#: without ``extensions=true``; the ``extended_attributes`` are shown only with it.
EXTENSIONS = {
    "page": "GET requests: page number, from 1 (with page_size)",
    "page_size": f"GET requests: requests per page, 1 to {MAX_REQUESTS} (default {MAX_REQUESTS})",
    "bbox": "GET requests: min_long,min_lat,max_long,max_lat (WGS84); sensitive services "
            "are matched at the point shown",
    "lat,long,radius": "GET requests: within radius metres (at most 5000) of lat/long; "
                       "sensitive services are matched at the point shown",
    "updated_after": "GET requests: updated_datetime on or after (w3 format)",
    "updated_before": "GET requests: updated_datetime on or before (w3 format)",
    "extended_attributes.duplicate": "requests: true when it repeats an earlier open request",
    "extended_attributes.parent_service_request_id": "requests: the request it repeats",
    "extended_attributes.reporter_count": "requests: how many reports the request gathers",
    "extended_attributes.districts": "requests: the district of every active boundary layer",
    "client_request_id": "POST requests: the client's own id; the same id with the same "
                         "api_key returns the first request instead of making another",
    "satisfaction": "GET satisfaction.json: survey ratings (1-5) by district, service, agency",
    "media": "POST requests: a photo file (multipart); media_url links its stripped copy",
}
#: The longest parameter value read as a number; longer ones are refused unread.
MAX_NUMBER_CHARS = 40
MAX_RADIUS_M = 5000.0
#: The fields of a request in GET requests, in the specification's order; every record
#: has them all, null where unknown.
REQUEST_FIELDS = ("service_request_id", "status", "status_notes", "service_name",
                  "service_code", "description", "agency_responsible", "service_notice",
                  "requested_datetime", "updated_datetime", "expected_datetime", "address",
                  "address_id", "zipcode", "lat", "long", "media_url")
#: The fields of POST requests' answer (``token`` only stands in for a missing id).
POST_FIELDS = ("service_request_id", "service_notice", "account_id")

# Element names for the members of each list, so XML follows the specification.
_ITEM = {"services": "service", "attributes": "attribute", "values": "value",
         "service_requests": "request", "endpoints": "endpoint", "formats": "format",
         "errors": "error", "districts": "district", "extensions": "extension"}
_ATTRIBUTE_KEY = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?")


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for an error message, cut short when long (it says how long)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


# -- dates ---------------------------------------------------------------------------------

def format_datetime(value: datetime | None, zone: tzinfo) -> str | None:
    """A W3C date-time in the city's time zone, with its offset (None stays None).

    Examples
    --------
    >>> from zoneinfo import ZoneInfo
    >>> format_datetime(datetime(2021, 1, 1, 6, tzinfo=UTC), ZoneInfo("America/New_York"))
    '2021-01-01T01:00:00-05:00'
    """
    if value is None:
        return None
    return value.astimezone(zone).replace(microsecond=0).isoformat()


def parse_datetime(text: str, name: str, zone: tzinfo) -> datetime:
    """Read a W3C date or date-time; a time must carry its zone (``Z`` or ``±HH:MM``).

    A bare date (``2021-01-01``) is midnight in the city's time zone.
    """
    text = text.strip()
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        try:
            value = datetime.combine(date.fromisoformat(text), time(), zone)
        except ValueError as exc:
            raise InvalidRequest(f"{name} was {text!r}, which is not a date") from exc
        return _in_calendar(value, text, name)
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}"
                        r"(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})", text):
        raise InvalidRequest(
            f"{name} was {shown(text)} but is expected in w3 format with a time zone, "
            "e.g. 2010-01-01T00:00:00Z or 2010-01-01T00:00:00-06:00")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"{name} was {text!r}, which is not a date-time") from exc
    return _in_calendar(value, text, name)


#: The dates read: the calendar less 91 days at each end, room for the 90-day window.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=91)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=91)


def _in_calendar(value: datetime, text: str, name: str) -> datetime:
    """``value``, when it and 90 days either side of it exist in UTC; otherwise refused.

    ``0001-01-01T00:00:00+14:00`` is a valid date-time whose UTC instant is in year 0,
    which no date type holds (comparing aware times converts nothing, so it is safe).
    """
    if not _EARLIEST <= value <= _LATEST:
        raise InvalidRequest(
            f"{name} was {text!r}, which is too close to the end of the calendar: dates "
            f"from {_EARLIEST.date().isoformat()} to {_LATEST.date().isoformat()} (UTC) are read")
    return value


# -- parameters ----------------------------------------------------------------------------

Params = Mapping[str, Sequence[str]]


def single_value(params: Params, name: str) -> str:
    """A single-valued parameter's value (empty if absent); given twice is refused.

    Examples
    --------
    >>> single_value({"service_code": ["PHF"]}, "service_code")
    'PHF'
    """
    return _one(params, name)


def _one(params: Params, name: str) -> str:
    """A parameter's value; empty means absent ("Optional Arguments" in the spec)."""
    values = [v for v in params.get(name, []) if v.strip() != ""]
    if len(values) > 1:
        raise InvalidRequest(f"{name} was given {len(values)} times but is expected once")
    return values[0].strip() if values else ""


def _csv(params: Params, name: str) -> list[str]:
    """A parameter that may be comma delimited and repeated."""
    return [p.strip() for v in params.get(name, []) for p in v.split(",") if p.strip()]


def wants_extensions(params: Params) -> bool:
    """True when the client asked for extensions (``extensions=true``)."""
    value = _one(params, "extensions").lower()
    if value not in ("", "true", "false"):
        raise InvalidRequest(f"extensions was {shown(value)} but is expected to be true or "
                             "false")
    return value == "true"


@dataclass(frozen=True)
class RequestQuery:
    """A checked GET requests query."""

    ids: tuple[int, ...] | None = None  # overrides everything else
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    extensions: bool = False
    page: int = 1
    page_size: int = MAX_REQUESTS
    bbox: tuple[float, float, float, float] | None = None
    near: tuple[float, float, float] | None = None  # lon, lat, radius_m
    updated_after: datetime | None = None
    updated_before: datetime | None = None


def parse_request_query(params: Params, now: datetime, zone: tzinfo) -> RequestQuery:
    """Check GET requests parameters as the specification and the extensions define them.

    ``service_request_id`` overrides every other argument. Without dates the window is
    the last 90 days; with one date it extends 90 days from it; two dates may not be
    more than 90 days apart. Paging, ``bbox``, ``lat``/``long``/``radius`` and the
    update-time filters apply with or without ``extensions=true``.

    Examples
    --------
    >>> q = parse_request_query({"status": ["open"]}, now, zone)  # doctest: +SKIP
    """
    extensions = wants_extensions(params)
    ids_text = _csv(params, "service_request_id")
    if ids_text:
        bad = [i for i in ids_text if not re.fullmatch(r"[0-9]{1,30}", i)]
        if bad:
            raise InvalidRequest(f"service_request_id {', '.join(shown(b) for b in bad[:5])} "
                                 "are not request ids (numbers)")
        if len(ids_text) > MAX_REQUESTS:
            raise InvalidRequest(f"service_request_id lists {len(ids_text)} ids but at most "
                                 f"{MAX_REQUESTS} are returned")
        return RequestQuery(ids=tuple(dict.fromkeys(int(i) for i in ids_text)),
                            extensions=extensions)
    statuses = tuple(dict.fromkeys(_csv(params, "status")))
    bad = [s for s in statuses if s not in ("open", "closed")]
    if bad:
        raise InvalidRequest(f"status was {', '.join(shown(b) for b in bad[:5])} but is "
                             "expected to be open and/or closed")
    if len(statuses) == 2:
        statuses = ()
    start_text, end_text = _one(params, "start_date"), _one(params, "end_date")
    start = parse_datetime(start_text, "start_date", zone) if start_text else None
    end = parse_datetime(end_text, "end_date", zone) if end_text else None
    if start is None and end is None:
        start, end = now - MAX_WINDOW, now
    elif start is None:
        assert end is not None
        start = end - MAX_WINDOW  # parse_datetime left room for it
    elif end is None:
        end = start + MAX_WINDOW
    if end < start:
        raise InvalidRequest(f"end_date {end_text} is before start_date {start_text}")
    if end - start > MAX_WINDOW:
        raise InvalidRequest(
            f"start_date {start_text} and end_date {end_text} are {(end - start).days} days "
            "apart but may not span more than 90 days")
    page = _integer(params, "page", 1, 1, 10**9)
    page_size = _integer(params, "page_size", MAX_REQUESTS, 1, MAX_REQUESTS)
    bbox = _bbox(_one(params, "bbox")) if _one(params, "bbox") else None
    near = _near(params)
    after, before = _one(params, "updated_after"), _one(params, "updated_before")
    return RequestQuery(
        service_codes=tuple(dict.fromkeys(_csv(params, "service_code"))), statuses=statuses,
        start=start, end=end, extensions=extensions, page=page, page_size=page_size,
        bbox=bbox, near=near,
        updated_after=parse_datetime(after, "updated_after", zone) if after else None,
        updated_before=parse_datetime(before, "updated_before", zone) if before else None)


def _integer(params: Params, name: str, default: int, low: int, high: int) -> int:
    text = _one(params, name)
    if not text:
        return default
    # The length is checked before int(), which refuses over 4,300 digits with a ValueError.
    if not re.fullmatch(r"[0-9]{1,12}", text) or not low <= int(text) <= high:
        raise InvalidRequest(f"{name} was {shown(text)} but is expected to be a whole number "
                             f"from {low} to {high}")
    return int(text)


def _number(text: str, name: str) -> float:
    """A decimal number as clients write it (no ``nan``, ``inf``, ``1_000`` or 5,000 digits)."""
    text = text.strip()
    if len(text) > MAX_NUMBER_CHARS or not _DECIMAL.fullmatch(text):
        raise InvalidRequest(f"{name} was {shown(text)} but is expected to be a number")
    value = float(text)
    if not math.isfinite(value):
        raise InvalidRequest(f"{name} was {text!r} but is expected to be a finite number")
    return value


def _bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    if len(parts) != 4:
        raise InvalidRequest(f"bbox was {shown(text)} but is expected to be "
                             "min_long,min_lat,max_long,max_lat")
    x0, y0, x1, y1 = (_number(p, "bbox") for p in parts)
    if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
        raise InvalidRequest(f"bbox was {shown(text)}: expected min_long < max_long within "
                             "±180 and min_lat < max_lat within ±90")
    return x0, y0, x1, y1


def _near(params: Params) -> tuple[float, float, float] | None:
    lat, lon, radius = _one(params, "lat"), _one(params, "long"), _one(params, "radius")
    if not (lat or lon or radius):
        return None
    if not (lat and lon and radius):
        raise InvalidRequest("lat, long and radius go together (radius in metres)")
    lat_f, lon_f, r = _number(lat, "lat"), _number(lon, "long"), _number(radius, "radius")
    if abs(lat_f) > 90 or abs(lon_f) > 180:
        raise InvalidRequest(f"lat {lat} and long {lon} are not a place on Earth")
    if not 0 < r <= MAX_RADIUS_M:
        raise InvalidRequest(f"radius was {radius!r} but is expected to be metres in "
                             f"(0, {MAX_RADIUS_M:.0f}]")
    return lon_f, lat_f, r


# -- submissions ----------------------------------------------------------------------------

def parse_submission(form: Params, service: Service, *, source: str = "open311") -> NewRequest:
    """A POST service request as a ``NewRequest``: location, answers, reporter, checked.

    The location is ``lat`` and ``long``, or ``address_string``, or ``address_id``.
    ``description`` may have line breaks but no HTML and at most 4,000 characters.
    """
    lat, lon = _one(form, "lat"), _one(form, "long")
    address, address_id = _one(form, "address_string"), _one(form, "address_id")
    if bool(lat) != bool(lon):
        raise InvalidRequest("lat and long must both be sent")
    if not (lat or address or address_id):
        raise InvalidRequest("a location is required: lat and long, address_string or "
                             "address_id")
    if address_id and not re.fullmatch(r"[0-9]{1,30}", address_id):
        raise InvalidRequest(f"address_id was {shown(address_id)} but is expected to be a "
                             "number")
    description = _one(form, "description")
    check_description(description)
    media_url = _one(form, "media_url")
    if media_url:
        check_media_url(media_url)
    check_line("address_string", address, MAX_ADDRESS)
    return NewRequest(
        service_code=service.code,
        lon=_number(lon, "long") if lon else None, lat=_number(lat, "lat") if lat else None,
        address=address, address_id=int(address_id) if address_id else None,
        description=description, media_url=media_url, reporter=parse_reporter(form),
        attributes=check_answers(service, parse_answers(form)), source=source)


def parse_reporter(form: Params) -> Reporter:
    """The submitter's personal data, checked; stored, never shown publicly."""
    reporter = Reporter(**{name: _one(form, name) for name in REPORTER_LIMITS})
    check_reporter(reporter)
    return reporter


def parse_answers(form: Params) -> dict[str, list[str]]:
    """``attribute[code]=v`` and ``attribute[code][]=v1&attribute[code][]=v2`` as lists."""
    answers: dict[str, list[str]] = {}
    for key, values in form.items():
        found = _ATTRIBUTE_KEY.match(key)
        if found:
            answers.setdefault(found.group(1), []).extend(v for v in values if v != "")
        elif key.startswith("attribute"):
            raise InvalidRequest(f"{key!r} is expected as attribute[code] or attribute[code][]")
    return answers


# -- documents ------------------------------------------------------------------------------

def service_list(services: Sequence[Service]) -> list[dict[str, Any]]:
    """GET services: every service with its metadata flag and type (all realtime).

    Empty text is null, as in every other document, so XML and JSON agree.
    """
    return [
        {"service_code": s.code, "service_name": s.name, "description": s.description or None,
         "metadata": bool(s.attributes), "type": "realtime", "keywords": s.keywords or None,
         "group": s.group or None}
        for s in services
    ]


def service_definition(service: Service) -> dict[str, Any]:
    """GET service definition: the service's questions in order."""
    return {
        "service_code": service.code,
        "attributes": [
            {"variable": a.variable, "code": a.code, "datatype": a.datatype,
             "required": a.required, "datatype_description": a.datatype_description or None,
             "order": a.order, "description": a.description or None,
             **({"values": [{"key": k, "name": n} for k, n in a.values]}
                if a.values else {})}
            for a in sorted(service.attributes, key=lambda a: a.order)
        ],
    }


def request_record(r: ServiceRequest, zone: tzinfo, *, extensions: bool = False,
                   agency: str = "") -> dict[str, Any]:
    """One request as GET requests returns it (public fields only, never the reporter)."""
    return public_record(
        r.id, r.status, r.status_notes, r.service_name, r.service_code, r.description,
        agency, format_datetime(r.requested_datetime, zone),
        format_datetime(r.updated_datetime, zone), format_datetime(r.expected_datetime, zone),
        r.address, r.zipcode, r.lat, r.lon, r.media_url, r.duplicate_of, r.reporter_count,
        r.districts, extensions=extensions)


def public_record(
    request_id: int, status: str, status_notes: str | None, service_name: str,
    service_code: str, description: str | None, agency: str | None, requested: str | None,
    updated: str | None, expected: str | None, address: str | None, zipcode: str | None,
    lat: float | None, lon: float | None, media_url: str | None, duplicate_of: int | None,
    reporter_count: int, districts: Mapping[str, str | None], *, extensions: bool = False,
) -> dict[str, Any]:
    """The record of ``request_record`` from stored values, times already written.

    Stores call it straight from their rows, so a page of 1,000 records skips building
    1,000 ``ServiceRequest`` objects. Every field GeoReport v2 lists is present, in its
    order; empty text becomes null, as the examples in the specification show. A
    request here is never located by an ``address_id`` it keeps, nor given a notice
    after it is made, so those two are null.
    """
    record: dict[str, Any] = {
        "service_request_id": str(request_id), "status": status,
        "status_notes": status_notes or None, "service_name": service_name,
        "service_code": service_code, "description": description or None,
        "agency_responsible": agency or None, "service_notice": None,
        "requested_datetime": requested, "updated_datetime": updated,
        "expected_datetime": expected, "address": address or None, "address_id": None,
        "zipcode": zipcode or None, "lat": lat, "long": lon, "media_url": media_url or None,
    }
    if extensions:
        record["extended_attributes"] = {
            "duplicate": duplicate_of is not None,
            "parent_service_request_id": None if duplicate_of is None else str(duplicate_of),
            "reporter_count": reporter_count,
            "districts": [{"layer": layer, "id": district}
                          for layer, district in sorted(districts.items())],
        }
    return record


#: Fields of a record that only ``extensions=true`` shows (the rest are GeoReport v2's).
EXTENSION_FIELDS = frozenset({"extended_attributes"})


def strict_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """An extended record with only the fields GeoReport v2 itself defines, in order."""
    return {k: v for k, v in record.items() if k not in EXTENSION_FIELDS}


def post_response(stored: ServiceRequest, service: Service, *, extensions: bool = False
                  ) -> list[dict[str, Any]]:
    """POST requests: the new id, and a notice saying whether it joined an earlier request."""
    if stored.duplicate_of is not None:
        notice = (f"This problem is already reported as request {stored.duplicate_of}; "
                  f"your report {stored.id} was added to it. Follow request "
                  f"{stored.duplicate_of} for progress.")
    elif service.sla_days:
        days = math.ceil(service.sla_days)
        notice = (f"{service.agency or 'The city'} expects to handle this within "
                  f"{days} day{'s' if days != 1 else ''}.")
    else:
        notice = None
    record: dict[str, Any] = {"service_request_id": stored.service_request_id,
                              "service_notice": notice, "account_id": None}
    if extensions:
        record["extended_attributes"] = {
            "duplicate": stored.duplicate_of is not None,
            "parent_service_request_id": (None if stored.duplicate_of is None
                                          else str(stored.duplicate_of)),
        }
    return [record]


def discovery(base_url: str, *, changeset: datetime | None, contact: str, key_service: str,
              zone: tzinfo) -> dict[str, Any]:
    """Service Discovery: where the v2 and bulk endpoints are and what they speak."""
    stamp = format_datetime(changeset or datetime(2021, 1, 1, tzinfo=UTC), zone)
    return {
        "changeset": stamp, "contact": contact, "key_service": key_service,
        "endpoints": [
            {"specification": SPECIFICATION, "url": f"{base_url}/open311/v2",
             "changeset": stamp, "type": "production",
             "formats": ["text/xml", "application/json"],
             "extensions": [{"name": k, "description": v} for k, v in EXTENSIONS.items()]},
            {"specification": BULK_SPECIFICATION, "url": f"{base_url}/open311/bulk",
             "changeset": stamp, "type": "production",
             "formats": ["text/csv", "application/json"]},
        ],
    }


def errors_document(status: int, description: str) -> list[dict[str, Any]]:
    """The error list the specification defines."""
    return [{"code": status, "description": description}]


#: Columns of the GeoReport Bulk export, in order.
BULK_FIELDS = ("service_request_id", "requested_datetime", "updated_datetime", "closed_date",
               "status_description", "status_notes", "service_name", "description",
               "agency_responsible", "address", "lat", "long")


def bulk_record(row: Mapping[str, Any], zone: tzinfo, agency: str) -> dict[str, Any]:
    """One GeoReport Bulk record from a public export row."""

    def stamp(v: Any) -> str | None:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        try:
            return format_datetime(v.to_pydatetime() if hasattr(v, "to_pydatetime") else v,
                                   zone)
        except (TypeError, ValueError):  # NaT
            return None

    def number(v: Any) -> float | None:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    return {
        "service_request_id": str(row["service_request_id"]),
        "requested_datetime": stamp(row["requested_datetime"]),
        "updated_datetime": stamp(row["updated_datetime"]),
        "closed_date": stamp(row["closed_datetime"]),
        "status_description": row["status"], "status_notes": row["status_notes"] or None,
        "service_name": row["service_name"], "description": row["description"] or None,
        "agency_responsible": agency or None, "address": row["address"] or None,
        "lat": number(row["lat"]), "long": number(row["long"]),
    }


# -- serialisation --------------------------------------------------------------------------

def to_json(document: Any) -> bytes:
    """JSON as the specification shows it (UTF-8, top-level array or object).

    orjson writes a page of 1,000 records about ten times faster than ``json``.
    """
    return orjson.dumps(document)


def to_xml(root: str, document: Any) -> bytes:
    r"""XML with the declaration, no namespace, list members named as the specification does.

    Written as text rather than through ElementTree, which took 60 ms for a page of
    1,000 records; the output is the same, byte for byte (a property test checks),
    except that a CR is written ``&#13;``, so a parser reads back the ``\r\n`` that JSON
    carries. Null and empty text are both an empty element, as null is in JSON.

    Examples
    --------
    >>> to_xml("services", [{"service_code": "SCB"}])[:38]
    b'<?xml version="1.0" encoding="utf-8"?>'
    """
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n']
    _write(parts, root, root, document)
    return "".join(parts).encode("utf-8")


def _write(parts: list[str], tag: str, name: str, value: Any) -> None:
    """Append ``<tag>value</tag>``; ``name`` chooses the element name of list members."""
    if isinstance(value, dict):
        if not value:
            parts.append(f"<{tag} />")
            return
        parts.append(f"<{tag}>")
        for key, child in value.items():
            _write(parts, key, key, child)
        parts.append(f"</{tag}>")
    elif isinstance(value, list | tuple):
        if not value:
            parts.append(f"<{tag} />")
            return
        item = _ITEM.get(name, "item")
        parts.append(f"<{tag}>")
        for child in value:
            _write(parts, item, item, child)
        parts.append(f"</{tag}>")
    else:
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif value is None:
            text = ""
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = _NOT_XML.sub("\ufffd", str(value))
            if "&" in text or "<" in text or ">" in text:
                text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            if "\r" in text:  # a parser reads a literal CR (or CR LF) as LF
                text = text.replace("\r", "&#13;")
        parts.append(f"<{tag}>{text}</{tag}>" if text else f"<{tag} />")


# Characters XML 1.0 cannot carry (imported text may hold them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
