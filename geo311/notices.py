"""Area notices: what emergency managers tell the residents of an area while it lasts.

A notice has an area (a polygon drawn or uploaded, or districts of an active layer), a
message per language, a CAP severity, a start and an end, and optionally services
suspended inside the area. While it is in force, public pages show it for places inside
the area, and ``intake.submit`` answers a report of a suspended service inside it with
the notice instead of a ticket, on every channel alike. Under a notice, staff acknowledge
the flood of open requests it explains in one action, each reporter told by mail.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import shapely
from shapely.geometry import shape

from geo311.boundaries.files import locate_dataset, read_frame
from geo311.errors import InvalidRequest, LayerError, NotFound, ServiceSuspended
from geo311.model import SEVERITIES, Notice, Service
from geo311.store.outbox import DEFAULT_LANGUAGE
from geo311.store.rows import now_utc

if TYPE_CHECKING:
    from geo311.store.catalogue import Catalogue
    from geo311.store.layers import Layers
    from geo311.store.notices import Notices

LOGGER = logging.getLogger(__name__)

#: The languages a notice may be written in: those public pages and mail speak.
LANGUAGES = ("en", "es", "pl", "zh")
#: The longest message, per language.
MAX_MESSAGE_CHARS = 2000
#: The longest public note of a bulk acknowledgement.
MAX_NOTE_CHARS = 2000
#: Files an area may be uploaded as.
AREA_SUFFIXES = (".geojson", ".json", ".kml")
#: Most vertices an area may have (a CAP polygon is meant for a reader, not a survey).
MAX_VERTICES = 20_000
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


class NoticeStore(Protocol):
    """What this module needs of a store."""

    @property
    def notices(self) -> Notices:
        """The store's ``notices``."""

    @property
    def catalogue(self) -> Catalogue:
        """The store's ``catalogue``."""

    @property
    def layers(self) -> Layers:
        """The store's ``layers``."""


@dataclass(frozen=True)
class Area:
    """An area checked for a notice: its (multi)polygon and where it is, in words."""

    geometry: Any
    desc: str
    layer: str = ""
    districts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Acknowledgement:
    """What a bulk acknowledgement found in the area and window, and what it did."""

    notice_id: int
    found: int
    acknowledged: list[int]

    @property
    def line(self) -> str:
        """One line for a page or a terminal."""
        already = self.found - len(self.acknowledged)
        return (f"notice {self.notice_id}: {len(self.acknowledged)} open request(s) "
                f"acknowledged" + (f", {already} already were" if already else ""))


# --- reading what staff give ------------------------------------------------------------


def parse_time(text: str, zone: str, *, name: str = "time") -> datetime:
    """A time as staff write it (ISO 8601; a date alone is its midnight), local unless zoned.

    Examples
    --------
    >>> parse_time("2026-12-08 18:00", "America/New_York").isoformat()
    '2026-12-08T23:00:00+00:00'
    """
    value = (text or "").strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name} was {value[:40]!r} but is expected to be a date and "
                             "time such as '2026-12-08 18:00' (the city's time unless a zone "
                             "is given)") from exc
    if len(value) == 10:  # a date alone
        parsed = datetime.combine(parsed.date(), time())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.astimezone(UTC)


def check_message(language: str, text: str) -> str:
    """One language's message: trimmed, at most 2,000 characters, no control characters."""
    text = (text or "").strip()
    if language not in LANGUAGES:
        raise InvalidRequest(f"message language was {language[:20]!r} but is expected to be "
                             f"in {list(LANGUAGES)}")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidRequest(f"the {language} message has {len(text)} characters but at most "
                             f"{MAX_MESSAGE_CHARS} are allowed")
    found = _CONTROL.search(text)
    if found:
        raise InvalidRequest(f"the {language} message contains a control character "
                             f"(U+{ord(found.group(0)):04X})")
    return text


def check_area(geometry: Any, what: str) -> Any:
    """A usable notice area: polygons only, valid, not empty, on Earth, not too detailed."""
    if geometry is None or geometry.is_empty:
        raise InvalidRequest(f"{what} holds no area")
    parts = [g for g in shapely.get_parts(geometry)
             if g.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        raise InvalidRequest(f"{what} is a {geometry.geom_type}, not a polygon: draw or upload "
                             "an area")
    area = shapely.force_2d(shapely.union_all(parts))
    if not area.is_valid:
        area = shapely.make_valid(area)
        area = shapely.union_all([g for g in shapely.get_parts(area)
                                  if g.geom_type in ("Polygon", "MultiPolygon")])
    minx, miny, maxx, maxy = area.bounds if not area.is_empty else (0, 0, 0, 0)
    if area.is_empty or area.area <= 0:
        raise InvalidRequest(f"{what} has no area (its polygon has no inside)")
    if min(minx, maxx) < -180 or max(minx, maxx) > 180 or min(miny, maxy) < -90 \
            or max(miny, maxy) > 90:
        raise InvalidRequest(f"{what} reaches ({minx:g}, {miny:g})-({maxx:g}, {maxy:g}), not "
                             "longitudes and latitudes: give it in EPSG:4326")
    vertices = shapely.get_num_coordinates(area)
    if vertices > MAX_VERTICES:
        raise InvalidRequest(f"{what} has {vertices:,} vertices; at most {MAX_VERTICES:,} are "
                             "allowed (simplify it)")
    return area


def area_from_geojson(text: str, *, what: str = "the drawn area") -> Area:
    """An area from GeoJSON text: a geometry, a feature or a feature collection.

    Examples
    --------
    >>> area_from_geojson('{"type": "Polygon", "coordinates": '
    ...                   '[[[0, 0], [1, 0], [1, 1], [0, 0]]]}').geometry.area
    0.5
    """
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{what} is not GeoJSON: {exc}") from exc
    geometries: list[Any] = []
    try:
        for g in _geojson_geometries(data):
            geometries.append(shape(g))
    except (AttributeError, KeyError, TypeError, ValueError, IndexError,
            shapely.errors.GEOSException) as exc:
        raise InvalidRequest(f"{what} is not a GeoJSON geometry: {exc}") from exc
    if not geometries:
        raise InvalidRequest(f"{what} holds no geometry")
    return Area(check_area(shapely.union_all(geometries), what), "drawn area")


def _geojson_geometries(data: Any) -> Iterable[Any]:
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "FeatureCollection":
        for feature in data.get("features") or []:
            yield from _geojson_geometries(feature)
    elif kind == "Feature":
        if data.get("geometry"):
            yield data["geometry"]
    elif kind in ("Polygon", "MultiPolygon", "GeometryCollection", "Point", "LineString",
                  "MultiPoint", "MultiLineString"):
        yield data
    else:
        raise ValueError(f"type was {str(kind)[:40]!r}; expected a GeoJSON geometry, Feature "
                         "or FeatureCollection")


def area_from_file(path: str | Path, *, shown: str = "") -> Area:
    """An area from an uploaded GeoJSON or KML file (every polygon in it, joined).

    Examples
    --------
    >>> area_from_file("flood.kml").desc  # doctest: +SKIP
    'flood.kml'
    """
    path = Path(path)
    name = shown or path.name
    if path.suffix.lower() not in AREA_SUFFIXES:
        raise InvalidRequest(f"{name!r} has extension {path.suffix or 'none'!r} but an area "
                             f"is read from {', '.join(AREA_SUFFIXES)}")
    try:
        with ExitStack() as stack:
            dataset, layer = locate_dataset(path, None, True, 0, stack)
            frame = read_frame(Path(name), dataset, layer)
    except LayerError as exc:
        raise InvalidRequest(exc.message.replace(str(path), name)) from exc
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    return Area(check_area(shapely.union_all(frame.geometry.to_numpy()), name), name)


def area_from_districts(store: NoticeStore, layer: str, district_ids: Sequence[str]) -> Area:
    """An area made of districts of an active layer, named by their ids."""
    wanted = [d.strip() for d in district_ids if d and d.strip()]
    if not wanted:
        raise InvalidRequest(f"no districts of {layer!r} were given (e.g. --districts 1,2)")
    version = store.layers.version(layer)
    if version.status != "active":
        raise InvalidRequest(f"layer {layer!r} is not active: a notice covers districts of an "
                             "active layer")
    features = store.layers.features(layer)
    known = dict(zip(features["district_id"].astype(str), features.index, strict=True))
    missing = [d for d in wanted if d not in known]
    if missing:
        listed = ", ".join(sorted(known, key=_natural)[:30])
        raise InvalidRequest(f"layer {layer!r} has no district {missing[0]!r}; it has "
                             f"{listed}{' …' if len(known) > 30 else ''}")
    chosen = features.loc[[known[d] for d in wanted]]
    names = [str(n) if n else str(d) for d, n in zip(chosen["district_id"], chosen["name"],
                                                    strict=True)]
    desc = f"{version.title or layer}: {', '.join(names)}"
    return Area(check_area(shapely.union_all(chosen.geometry.to_numpy()), f"districts of "
                           f"{layer!r}"), desc, layer=layer, districts=tuple(wanted))


def _natural(text: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


# --- posting, ending, finding -------------------------------------------------------------


def post_notice(store: NoticeStore, *, messages: Mapping[str, str], severity: str, area: Area,
                starts: datetime | None = None, ends: datetime | None = None,
                suspend: Sequence[str] = (), actor: str = "system") -> Notice:
    """Check and store a notice; audited.

    The message in the city's default language is required; the other public languages
    may be added. Suspended services must exist in the catalogue.

    Examples
    --------
    >>> post_notice(store, messages={"en": "Flooding: stay away"}, severity="Severe",
    ...             area=area_from_geojson(drawn), suspend=["SDR"])  # doctest: +SKIP
    """
    if severity not in SEVERITIES:
        raise InvalidRequest(f"severity was {severity[:20]!r} but is expected to be in "
                             f"{list(SEVERITIES)} (CAP 1.2)")
    texts = {lang: check_message(lang, text) for lang, text in messages.items()}
    texts = {lang: text for lang, text in texts.items() if text}
    if not texts.get(DEFAULT_LANGUAGE):
        raise InvalidRequest(f"a message in the city's default language ({DEFAULT_LANGUAGE}) "
                             "is required")
    now = now_utc()
    starts = starts or now
    if ends is not None and ends <= starts:
        raise InvalidRequest(f"the end ({ends.isoformat()}) is expected to be after the start "
                             f"({starts.isoformat()})")
    if ends is not None and ends <= now:
        raise InvalidRequest(f"the end ({ends.isoformat()}) has already passed")
    codes = []
    for code in dict.fromkeys(c.strip() for c in suspend if c and c.strip()):
        try:
            codes.append(store.catalogue.service(code).code)
        except NotFound as exc:
            raise InvalidRequest(f"suspended service_code {code[:64]!r} is not in the "
                                 "catalogue") from exc
    return store.notices.add(severity=severity, messages=texts, area=area.geometry,
                             area_desc=area.desc, starts=starts, ends=ends, suspended=codes,
                             layer=area.layer, districts=area.districts, actor=actor)


def end_notice(store: NoticeStore, notice_id: int, *, actor: str = "system") -> Notice:
    """End a notice now; refused when it has already ended."""
    notice = store.notices.get(notice_id)
    now = now_utc()
    if notice.ends is not None and notice.ends <= now:
        raise InvalidRequest(f"notice {notice.id} already ended ({notice.ends.isoformat()})")
    return store.notices.end(notice.id, at=now, actor=actor)


#: The notices not yet ended, per database, with the ``store.notices.version()`` they were
#: read at; their areas are prepared for fast point tests (see ``geo311.caches``).
_UNENDED: dict[str, tuple[tuple[Any, ...], list[Notice]]] = {}
_UNENDED_LOCK = threading.Lock()


def unended_notices(store: NoticeStore) -> list[Notice]:
    """The notices not yet ended (in force or to come), read again when one is posted or ended.

    Every page with a place and every report asks, so they are kept per database.
    """
    key = store.notices.version()
    with _UNENDED_LOCK:
        kept = _UNENDED.get(key[0])
    if kept is not None and kept[0] == key:
        return kept[1]
    notices = store.notices.unended()
    for n in notices:
        shapely.prepare(n.area)
    with _UNENDED_LOCK:
        _UNENDED[key[0]] = (key, notices)
    return notices


def notices_at(store: NoticeStore, lon: float, lat: float,
               at: datetime | None = None) -> list[Notice]:
    """The notices in force at ``at`` (now or later) whose area holds the point, most severe first.

    A point on the area's edge is inside.

    Examples
    --------
    >>> [n.id for n in notices_at(store, -87.63, 41.88)]  # doctest: +SKIP
    [3]
    """
    at = at or now_utc()
    found = []
    for n in unended_notices(store):
        minx, miny, maxx, maxy = n.area.bounds
        if n.active(at) and minx <= lon <= maxx and miny <= lat <= maxy \
                and shapely.intersects_xy(n.area, lon, lat):
            found.append(n)
    return sorted(found, key=lambda n: (SEVERITIES.index(n.severity), -n.id))


def check_suspension(store: NoticeStore, service: Service, lon: float, lat: float, *,
                     language: str = "", zone: str = "UTC") -> None:
    """Refuse a new report of a service a notice suspends where it is, with the notice.

    Called by ``intake.submit``, so the web form, the desk and Open311 refuse alike.
    """
    for notice in notices_at(store, lon, lat):
        if service.code in notice.suspended:
            until = ("until further notice" if notice.ends is None
                     else f"until {local_words(notice.ends, zone)}")
            raise ServiceSuspended(
                f"service_code {service.code!r} ({service.name}) is suspended at this location "
                f"{until} by notice {notice.id} ({notice.severity}): "
                f"{notice.message(_language(language))}")


def local_words(moment: datetime, zone: str) -> str:
    """A time in the city's zone, as a notice says it: "2026-12-08 18:00 CST"."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".strip()


def _language(tag: str) -> str:
    base = (tag or "").split("-")[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def acknowledge_requests(store: NoticeStore, notice_id: int, codes: Sequence[str], note: str, *,
                         since: datetime | None = None, actor: str = "system") -> Acknowledgement:
    """Acknowledge every open request of ``codes`` inside a notice's area and window.

    The window runs from the notice's start (or ``since``) to its end or now. Each request
    gets ``note`` as a public note and status note and its reporters a mail (through the
    outbox); each is grouped under the notice once, so a second run changes nothing.

    Examples
    --------
    >>> acknowledge_requests(store, 3, ["SDR"], "Known: crews are on it",  # doctest: +SKIP
    ...                      actor="em").line
    'notice 3: 41 open request(s) acknowledged'
    """
    notice = store.notices.get(notice_id)
    text = (note or "").strip()
    if not text:
        raise InvalidRequest("a public note is required: it is what every reporter reads")
    if len(text) > MAX_NOTE_CHARS:
        raise InvalidRequest(f"the public note has {len(text)} characters but at most "
                             f"{MAX_NOTE_CHARS} are allowed")
    if _CONTROL.search(text):
        raise InvalidRequest("the public note contains a control character")
    chosen = [c.strip() for c in codes if c and c.strip()]
    if not chosen:
        raise InvalidRequest("choose the services whose open requests to acknowledge")
    for code in chosen:
        try:
            store.catalogue.service(code)
        except NotFound as exc:
            raise InvalidRequest(f"service_code {code[:64]!r} is not in the catalogue") from exc
    now = now_utc()
    until = min(notice.ends, now) if notice.ends is not None else now
    rows = store.notices.open_requests(notice.area.bounds, chosen, since or notice.starts,
                                       until)
    ids = [i for i, _, _ in rows]
    hit = shapely.intersects_xy(notice.area, [x for _, x, _ in rows], [y for _, _, y in rows])
    inside = [i for i, keep in zip(ids, hit.tolist() if rows else [], strict=True) if keep]
    done = store.notices.acknowledge(notice.id, inside, text, actor=actor)
    return Acknowledgement(notice.id, len(inside), done)
