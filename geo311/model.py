"""Domain values: services, requests, reporters, duplicate rules, crews and work orders.

Public fields and personal data are kept in different types so that a public
view can never carry a reporter by accident. Every other part of geo311 builds on
these values, so this module imports nothing of geo311 but its exception types
(a value refuses a bad field at construction, with the status an adapter shows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from numbers import Real
from typing import Any

import numpy as np

from geo311.errors import InvalidRequest

OPEN = "open"
CLOSED = "closed"
STATUSES = (OPEN, CLOSED)


#: What a duplicate rule's ``scope`` may be: the same service code, or the same group.
SCOPES = ("service", "group")
_US_PER_DAY = 86_400_000_000

WORK_STATUSES = ("assigned", "in_progress", "done", "cancelled")
ACTIVE_WORK_STATUSES = ("assigned", "in_progress")
#: Allowed moves of a work order's status.
TRANSITIONS = {
    "assigned": ("in_progress", "done", "cancelled"),
    "in_progress": ("assigned", "done", "cancelled"),
    "done": (),
    "cancelled": (),
}

#: The kinds of answer a service's question can take.
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")


@dataclass(frozen=True)
class Attribute:
    """A question the city asks about one service, with its allowed answers.

    ``values`` holds ``(key, name)`` pairs for list datatypes. ``variable`` False
    marks text shown to the resident, not a question.
    """

    code: str
    datatype: str
    description: str
    required: bool = False
    variable: bool = True
    order: int = 1
    datatype_description: str = ""
    values: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, object]:
        """Plain data for storage (JSON)."""
        return {"code": self.code, "datatype": self.datatype, "description": self.description,
                "required": self.required, "variable": self.variable, "order": self.order,
                "datatype_description": self.datatype_description,
                "values": [list(v) for v in self.values]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attribute:
        """The inverse of ``as_dict``."""
        return cls(code=d["code"], datatype=d["datatype"], description=d["description"],
                   required=bool(d["required"]), variable=bool(d["variable"]),
                   order=int(d["order"]), datatype_description=d["datatype_description"],
                   values=tuple((str(k), str(n)) for k, n in d["values"]))


@dataclass(frozen=True)
class DuplicateRule:
    """When a new request counts as a repeat of an earlier one.

    ``radius_m`` is a great-circle distance (0 means the very same point, as
    a geocoder gives one address). ``window_days`` looks back from the new
    request's time. With ``only_open`` the earlier request must still be open
    when the new one comes in, which is how a city's 311 system flags them.

    Examples
    --------
    >>> DuplicateRule(radius_m=25, window_days=3).scope
    'service'
    """

    radius_m: float = 50.0
    window_days: float = 30.0
    scope: str = "service"
    only_open: bool = True

    def __post_init__(self) -> None:
        for name in ("radius_m", "window_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise InvalidRequest(f"{name} was {value!r} but is expected to be a number")
            if not math.isfinite(value) or value < 0:
                raise InvalidRequest(f"{name} was {value!r} but is expected to be >= 0")
        if self.scope not in SCOPES:
            raise InvalidRequest(
                f"scope was {self.scope!r} but is expected to be in {list(SCOPES)}"
            )
        if not isinstance(self.only_open, bool | np.bool_):
            raise InvalidRequest(
                f"only_open was {self.only_open!r} but is expected to be True or False"
            )

    @property
    def window_us(self) -> int:
        """The window in whole microseconds, the unit both paths compare times in."""
        return round(self.window_days * _US_PER_DAY)


@dataclass(frozen=True)
class Candidate:
    """An earlier request a new one might duplicate, as the store hands it over.

    ``duplicate_of`` is the root of the group it already belongs to (None for
    a root). ``group`` is its service group ("" when the service has none).
    """

    id: int
    lon: float
    lat: float
    service_code: str
    group: str
    requested: datetime
    closed: datetime | None
    duplicate_of: int | None


#: What a retention rule removes once its years after close have passed: the reporter's
#: contact details, the free text, the media. The request and its location stay.
RETENTION_KINDS = ("contact", "text", "media")


@dataclass(frozen=True)
class RetentionRule:
    """Years after a request closes before each kind of its data goes (None: kept).

    Examples
    --------
    >>> RetentionRule(contact_years=2).years("contact")
    2.0
    """

    contact_years: float | None = None
    text_years: float | None = None
    media_years: float | None = None

    def __post_init__(self) -> None:
        for kind in RETENTION_KINDS:
            value = getattr(self, f"{kind}_years")
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(
                    value) or value < 0:
                raise InvalidRequest(f"{kind}_years was {value!r} but is expected to be a "
                                     "number of years >= 0 (or \"never\")")
            object.__setattr__(self, f"{kind}_years", float(value))

    def years(self, kind: str) -> float | None:
        """The years after close of one kind (``contact``, ``text``, ``media``)."""
        if kind not in RETENTION_KINDS:
            raise InvalidRequest(f"kind was {kind!r} but is expected to be in {RETENTION_KINDS}")
        return getattr(self, f"{kind}_years")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Service:
    """An entry of the service catalogue."""

    code: str
    name: str
    group: str = ""
    description: str = ""
    keywords: str = ""
    sla_days: float | None = None
    duplicate_rule: DuplicateRule | None = None  # None: the default rule
    sla_hours: float | None = None  # an SLA in hours instead of days
    sla_clock: str = "business"  # "business": on the calendar; "24x7": every hour counts
    sla_calendar: str = ""  # a shipped calendar name or a TOML path; "" = the default
    agency: str = ""  # the department responsible
    attributes: tuple[Attribute, ...] = ()  # questions asked when reporting
    accepting: bool = True  # False: kept for its stored requests, no longer offered
    #: How long after close the request keeps its reporter, free text and media.
    retention: RetentionRule = field(default_factory=RetentionRule)


@dataclass(frozen=True)
class Reporter:
    """Personal data of the person who reported; never shown publicly."""

    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    device_id: str = ""
    account_id: str = ""
    #: The language the reporter wrote in (a tag such as ``es``): mail to them uses it.
    language: str = ""

    def is_empty(self) -> bool:
        """True when nothing personal was given (an anonymous report)."""
        return not any(
            (self.first_name, self.last_name, self.email, self.phone, self.device_id,
             self.account_id)
        )


@dataclass(frozen=True)
class NewRequest:
    """A report as it arrives, before geocoding, districts and storage."""

    service_code: str
    lon: float | None = None
    lat: float | None = None
    address: str = ""
    description: str = ""
    requested_datetime: datetime | None = None
    reporter: Reporter = field(default_factory=Reporter)
    media_url: str = ""
    external_id: str | None = None
    source: str = "web"
    address_id: int | None = None
    #: Answers to the service's questions: attribute code -> values (several for a
    #: multi-value list).
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceRequest:
    """A stored request as the public may see it (no personal data)."""

    id: int
    external_id: str | None
    service_code: str
    service_name: str
    status: str
    status_notes: str
    description: str
    address: str
    lon: float | None
    lat: float | None
    requested_datetime: datetime
    updated_datetime: datetime
    closed_datetime: datetime | None
    expected_datetime: datetime | None
    geocode_match: str
    duplicate_of: int | None
    reporter_count: int
    outside_service_area: bool
    media_url: str = ""
    districts: dict[str, str | None] = field(default_factory=dict)
    zipcode: str = ""
    #: Why an import found the request's date implausible ("" when it did not).
    import_flags: str = ""

    @property
    def service_request_id(self) -> str:
        """The tracking number residents quote: the request id as text."""
        return str(self.id)


#: Who may read a note on a request: residents too ("public") or staff only ("internal").
NOTE_VISIBILITIES = ("public", "internal")


@dataclass(frozen=True)
class RequestNote:
    """A note staff wrote on a request; ``author`` is for staff eyes only."""

    id: int
    request_id: int
    visibility: str  # one of NOTE_VISIBILITIES
    body: str
    author: str
    created: datetime


@dataclass(frozen=True)
class Placement:
    """Where a request landed: its point, how it was found, and its districts.

    ``districts`` maps a layer version id to ``(district_id, boundary_case)``.
    """

    lon: float | None
    lat: float | None
    geocode_match: str = "none"
    districts: dict[int, tuple[str | None, bool]] = field(default_factory=dict)
    outside_service_area: bool = False
    outside_by_m: float | None = None  # distance from the service area, when outside


@dataclass(frozen=True)
class LayerVersion:
    """One load of a boundary layer."""

    id: int
    layer: str
    title: str
    role: str
    version: int
    status: str
    source_file: str
    source_crs: str
    checksum: str
    feature_count: int
    loaded_by: str
    loaded_at: datetime
    report: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class BulkResult:
    """What a bulk write did."""

    stored: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class DuplicateSearch:
    """What the store looks up, under a lock, before a new request is stored.

    ``decide(candidates, requested)`` gets the earlier requests of ``codes`` within
    ``radius_m`` and ``window_days`` and the new request's time, and returns
    ``(root_id, distance_m)`` or None. A live report's time is read after the lock
    is taken, so time order and commit order agree.
    """

    codes: tuple[str, ...]
    radius_m: float
    window_days: float
    decide: Callable[[Sequence[Candidate], datetime], tuple[int, float] | None]
    only_open: bool = False  # True: requests closed by then cannot win, so skip them


@dataclass(frozen=True)
class Crew:
    """A field crew: what it fixes, where it works, how much a day."""

    name: str
    layer: str  # the dispatch layer its home districts belong to
    districts: tuple[str, ...] = ()  # empty: every district of the layer
    service_groups: tuple[str, ...] = ()  # empty: every service group
    capacity_per_day: int = 8  # stops
    calendar: str = ""  # a shipped calendar name or a TOML path; "" = the city's own
    depot_lon: float | None = None
    depot_lat: float | None = None
    active: bool = True
    id: int | None = None

    @property
    def depot(self) -> tuple[float, float] | None:
        """The yard the crew starts from, if known (lon, lat)."""
        if self.depot_lon is None or self.depot_lat is None:
            return None
        return (self.depot_lon, self.depot_lat)


@dataclass(frozen=True)
class WorkOrder:
    """A job for one crew on one day: one or more stops (group roots)."""

    id: int
    crew_id: int
    status: str
    scheduled_date: str
    request_ids: tuple[int, ...]
    created: datetime
    updated: datetime
    created_by: str = "system"
    route_position: int | None = None
    resolution: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    notes: tuple[tuple[datetime, str, str], ...] = field(default_factory=tuple)


#: What a knowledge-base search result is: a service of the catalogue or an article.
KB_KINDS = ("service", "article")


@dataclass(frozen=True)
class Article:
    """A knowledge-base article: what residents and call-takers are told about a topic.

    ``service_code`` is empty for a general article (hours, where to go instead);
    ``script`` is what a call-taker says and is never shown publicly.
    """

    slug: str
    title: str
    body: str = ""
    service_code: str = ""
    owner: str = ""
    public: bool = False
    review_by: date = date(1970, 1, 1)
    keywords: str = ""
    script: str = ""
    version: int = 1

    def content(self) -> tuple[object, ...]:
        """What a new version changes (everything but the version number)."""
        return (self.title, self.body, self.service_code, self.owner, self.public,
                self.review_by, self.keywords, self.script)


@dataclass(frozen=True)
class KbDocument:
    """One searchable entry of the knowledge-base index: a service or an article."""

    id: int
    kind: str
    ref: str  # the article's slug or the service's code
    title: str
    keywords: str = ""
    body: str = ""
    service_code: str = ""
    grouping: str = ""  # the department, for services


@dataclass(frozen=True)
class KbHit:
    """A ranked search result."""

    kind: str
    ref: str
    title: str
    service_code: str
    score: float
    grouping: str = ""

    def as_json(self) -> dict[str, object]:
        """The search contract: ``kind``, ``title`` and ``service_code`` where there is one."""
        out: dict[str, object] = {"kind": self.kind, "title": self.title}
        if self.service_code:
            out["service_code"] = self.service_code
        if self.kind == "article":
            out["slug"] = self.ref
        if self.grouping:
            out["group"] = self.grouping
        out["score"] = round(self.score, 4)
        return out


#: How a contact reached the centre (a request's ``source``), what it was, how it ended,
#: and how the caller wants to hear back.
CHANNELS = ("phone", "walk-in", "email", "web", "app", "open311")
CONTACT_KINDS = ("info", "request")
OUTCOMES = ("answered", "transferred", "referred elsewhere")
CALLBACKS = ("phone", "email", "none")


@dataclass(frozen=True)
class Contact:
    """One contact a call-taker handled; ``request_id`` is set for a ``request`` contact."""

    id: int
    created: datetime
    agent: str
    channel: str
    kind: str
    topic: str
    outcome: str
    request_id: int | None
    callback: str


@dataclass(frozen=True)
class CallerRequest:
    """An earlier request of a caller, as the desk lists it (staff only)."""

    id: int
    service_code: str
    service_name: str
    status: str
    requested_datetime: datetime
    address: str
    duplicate_of: int | None


#: Severities of an area notice, as the Common Alerting Protocol (CAP 1.2) names them.
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")


@dataclass(frozen=True)
class Notice:
    """A notice to the residents of an area, from ``starts`` until ``ends`` (None: ended by hand).

    ``area`` is a shapely polygon or multipolygon in EPSG:4326 and ``area_desc`` says in
    words where it is; ``messages`` maps a language code (``en``, ``es``) to the text in it;
    ``suspended`` lists the service codes whose new reports are refused inside the area
    while the notice is active. ``layer`` and ``districts`` name the districts it was drawn
    from, when it was.
    """

    id: int
    severity: str
    messages: dict[str, str]
    area: Any
    area_desc: str
    starts: datetime
    ends: datetime | None = None
    suspended: tuple[str, ...] = ()
    layer: str = ""
    districts: tuple[str, ...] = ()
    created: datetime | None = None
    created_by: str = ""
    ended_by: str = ""

    def active(self, at: datetime) -> bool:
        """Whether the notice is in force at ``at``."""
        return self.starts <= at and (self.ends is None or at < self.ends)

    def message(self, language: str, default: str = "en") -> str:
        """The message in ``language``, else in ``default``, else in the first one written."""
        return (self.messages.get(language) or self.messages.get(default)
                or next(iter(self.messages.values()), ""))


# --- records: retention rules, legal holds and the queries that select requests -----------

@dataclass(frozen=True)
class RecordQuery:
    """Which requests a records task (a legal hold, a disclosure) is about.

    Every field given must match (districts: any of one layer, every layer given);
    ``start_day``/``end_day`` are local days of the request, both included; ``text`` is
    found in the description, address, status notes or notes; the reporter's email
    and phone are matched as the desk matches a caller's.
    """

    ids: tuple[int, ...] = ()
    services: tuple[str, ...] = ()
    districts: tuple[tuple[str, str], ...] = ()  # (layer, district id)
    start_day: date | None = None
    end_day: date | None = None
    text: str = ""
    reporter_email: str = ""
    reporter_phone: str = ""
    status: str | None = None

    def is_empty(self) -> bool:
        """True when nothing narrows the query (it would take every request)."""
        return not (self.ids or self.services or self.districts or self.start_day
                    or self.end_day or self.text or self.reporter_email or self.reporter_phone
                    or self.status)


@dataclass(frozen=True)
class LegalHold:
    """A legal hold: requests kept from retention and deletion until it is released."""

    id: int
    reason: str
    owner: str
    created: datetime
    query: str  # the query file's text ("" for a hold by ids)
    request_count: int
    released: datetime | None = None
    released_by: str | None = None

    @property
    def active(self) -> bool:
        """Whether the hold still holds its requests."""
        return self.released is None
