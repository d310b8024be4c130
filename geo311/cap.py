"""Area notices as the Common Alerting Protocol (CAP 1.2) and Atom write them.

Each notice is one CAP alert (an ``info`` per language, its area as CAP polygons); the
CAP index is an Atom feed linking each notice's alert, as alerting hubs read them; the
notice feed is an Atom feed people's feed readers show. Every text is written through
ElementTree, which escapes it, after characters XML 1.0 cannot carry are dropped, so
whatever a message holds the documents stay well formed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import shapely

from geo311.model import Notice

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
#: The media type of a CAP document (RFC 7303 style, as alerting hubs expect it).
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
#: A CAP polygon with more vertices than this is simplified (about 10 m) for readers.
CAP_MAX_VERTICES = 5000
#: Characters XML 1.0 allows; everything else is dropped from text written.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: What a CAP identifier or sender may not contain (spaces, commas, ``<`` and ``&``).
_NOT_IN_IDENTIFIER = re.compile(r"[\s,<&]+")
HEADLINE_CHARS = 140


@dataclass(frozen=True)
class Publisher:
    """Who publishes the notices and where: the CAP sender, names, base URL, zone.

    ``tags`` maps a message's language code to the tag documents declare (``zh`` is
    written ``zh-Hans``); ``default`` is the language listed first.
    """

    sender: str
    name: str
    base_url: str
    zone: str = "UTC"
    event: str = "City service notice"
    default: str = "en"
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def clean_sender(self) -> str:
        """The sender as CAP allows it: no spaces, commas, ``<`` or ``&``."""
        return _NOT_IN_IDENTIFIER.sub("-", _clean(self.sender)) or "geo311"


def cap_time(moment: datetime, zone: str) -> str:
    """A time as CAP writes it: seconds and a numeric offset, never ``Z``.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> cap_time(datetime(2026, 12, 8, 18, 0, tzinfo=UTC), "America/Denver")
    '2026-12-08T11:00:00-07:00'
    """
    local = moment.astimezone(ZoneInfo(zone)).replace(microsecond=0)
    text = local.isoformat()
    return text if text[-6] in "+-" else f"{text}+00:00"


def identifier(notice: Notice, publisher: Publisher, *, cancel: bool = False) -> str:
    """The notice's CAP identifier, unique for its sender."""
    return f"{publisher.clean_sender}.notice.{notice.id}{'.cancel' if cancel else ''}"


def cancelled(notice: Notice, now: datetime) -> bool:
    """Whether the notice was ended by hand before its time (its alert is then a Cancel)."""
    return bool(notice.ended_by) and notice.ends is not None and notice.ends <= now


def urgency(notice: Notice, now: datetime) -> str:
    """CAP urgency: Immediate while in force, Future before, Past after."""
    if now < notice.starts:
        return "Future"
    return "Immediate" if notice.active(now) else "Past"


def polygons(area: Any) -> list[str]:
    """The area as CAP polygons: one ``lat,lon`` ring per part, closed, holes left out.

    Examples
    --------
    >>> polygons(shapely.box(-87.7, 41.8, -87.6, 41.9))
    ['41.8,-87.6 41.9,-87.6 41.9,-87.7 41.8,-87.7 41.8,-87.6']
    """
    if shapely.get_num_coordinates(area) > CAP_MAX_VERTICES:
        area = area.simplify(0.0001, preserve_topology=True)
    rings = []
    for part in shapely.get_parts(area):
        if part.geom_type != "Polygon" or part.is_empty:
            continue
        coords = list(part.exterior.coords)
        if coords[0] != coords[-1]:
            coords.append(coords[0])
        rings.append(" ".join(f"{_number(y)},{_number(x)}" for x, y in coords))
    return rings


def alert(notice: Notice, publisher: Publisher, now: datetime) -> bytes:
    """The notice as a CAP 1.2 alert: one ``info`` per language, its area as polygons.

    A notice ended by hand is a ``Cancel`` of its alert, referencing it.

    Examples
    --------
    >>> alert(notice, publisher, now)[:38]  # doctest: +SKIP
    b'<?xml version="1.0" encoding="utf-8"?>'
    """
    cancel = cancelled(notice, now)
    root = ET.Element("alert", xmlns=CAP_NS)
    sent = notice.created or notice.starts
    _sub(root, "identifier", identifier(notice, publisher, cancel=cancel))
    _sub(root, "sender", publisher.clean_sender)
    _sub(root, "sent", cap_time(notice.ends if cancel and notice.ends else sent,
                                publisher.zone))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", "Cancel" if cancel else "Alert")
    _sub(root, "scope", "Public")
    if cancel:
        _sub(root, "note", "The notice was ended.")
        _sub(root, "references", f"{publisher.clean_sender},{identifier(notice, publisher)},"
                                 f"{cap_time(sent, publisher.zone)}")
    for language in _languages(notice, publisher):
        _info(root, notice, publisher, language, now)
    return _document(root)


def _info(root: ET.Element, notice: Notice, publisher: Publisher, language: str,
          now: datetime) -> None:
    text = _clean(notice.messages[language])
    info = _sub(root, "info")
    _sub(info, "language", publisher.tags.get(language, language))
    _sub(info, "category", "Other")
    _sub(info, "event", publisher.event)
    _sub(info, "urgency", urgency(notice, now))
    _sub(info, "severity", notice.severity)
    _sub(info, "certainty", "Observed")
    _sub(info, "effective", cap_time(notice.starts, publisher.zone))
    _sub(info, "onset", cap_time(notice.starts, publisher.zone))
    if notice.ends is not None:
        _sub(info, "expires", cap_time(notice.ends, publisher.zone))
    _sub(info, "senderName", publisher.name)
    _sub(info, "headline", headline(text))
    _sub(info, "description", text)
    _sub(info, "web", f"{publisher.base_url}/")
    if notice.suspended:
        parameter = _sub(info, "parameter")
        _sub(parameter, "valueName", "suspendedServiceCodes")
        _sub(parameter, "value", " ".join(notice.suspended))
    area = _sub(info, "area")
    _sub(area, "areaDesc", notice.area_desc or "the area drawn on the notice")
    for ring in polygons(notice.area):
        _sub(area, "polygon", ring)


def headline(text: str) -> str:
    """A message's first line, cut at a word near 140 characters."""
    first = (text.strip().splitlines() or [""])[0].strip()
    if len(first) <= HEADLINE_CHARS:
        return first
    cut = first[:HEADLINE_CHARS].rsplit(" ", 1)[0]
    return f"{cut}…"


def alert_index(notices: Sequence[Notice], publisher: Publisher, now: datetime) -> bytes:
    """The CAP index: an Atom feed with one entry per notice, linking its CAP alert."""
    feed = _feed(publisher, f"{publisher.base_url}/cap.xml",
                 f"{publisher.name} — CAP alerts", notices, now)
    for notice in notices:
        entry = _entry(feed, notice, publisher, publisher.default,
                       f"{publisher.base_url}/cap/{notice.id}.xml")
        _atom(entry, "link", rel="alternate", type=CAP_MEDIA_TYPE,
              href=f"{publisher.base_url}/cap/{notice.id}.xml")
    return _document(feed)


def notice_feed(notices: Sequence[Notice], publisher: Publisher, now: datetime,
                language: str) -> bytes:
    """The notices as an Atom feed for people: each message in ``language`` where written."""
    feed = _feed(publisher, f"{publisher.base_url}/notices.atom",
                 f"{publisher.name} — area notices", notices, now)
    for notice in notices:
        entry = _entry(feed, notice, publisher, language,
                       f"{publisher.base_url}/notices.atom#notice-{notice.id}")
        _atom(entry, "link", rel="alternate", type="text/html", href=f"{publisher.base_url}/")
        _atom(entry, "link", rel="related", type=CAP_MEDIA_TYPE,
              href=f"{publisher.base_url}/cap/{notice.id}.xml")
    return _document(feed)


def _feed(publisher: Publisher, self_url: str, title: str, notices: Sequence[Notice],
          now: datetime) -> ET.Element:
    feed = ET.Element("feed", xmlns=ATOM_NS)
    _atom(feed, "id", self_url)
    _atom(feed, "title", title)
    _atom(feed, "updated", cap_time(max((_updated(n) for n in notices), default=now),
                                    publisher.zone))
    author = _atom(feed, "author")
    _atom(author, "name", publisher.name)
    _atom(feed, "link", rel="self", href=self_url)
    return feed


def _entry(feed: ET.Element, notice: Notice, publisher: Publisher, language: str,
           entry_id: str) -> ET.Element:
    text = _clean(notice.message(language, publisher.default))
    shown = language if language in notice.messages else \
        (publisher.default if publisher.default in notice.messages else
         next(iter(notice.messages), publisher.default))
    entry = _atom(feed, "entry")
    entry.set("{http://www.w3.org/XML/1998/namespace}lang", publisher.tags.get(shown, shown))
    _atom(entry, "id", entry_id)
    _atom(entry, "title", f"{notice.severity}: {headline(text)}")
    _atom(entry, "updated", cap_time(_updated(notice), publisher.zone))
    _atom(entry, "published", cap_time(notice.created or notice.starts, publisher.zone))
    _atom(entry, "category", term=notice.severity, label=f"severity {notice.severity}")
    _atom(entry, "summary", text, type="text")
    return entry


def _updated(notice: Notice) -> datetime:
    moments = [m for m in (notice.created, notice.starts) if m is not None]
    if notice.ended_by and notice.ends is not None:
        moments.append(notice.ends)
    return max(moments)


def _languages(notice: Notice, publisher: Publisher) -> list[str]:
    return sorted(notice.messages, key=lambda lang: (lang != publisher.default, lang))


def _sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, name)
    if text is not None:
        child.text = _clean(text)
    return child


def _atom(parent: ET.Element, name: str, text: str | None = None,
          **attributes: str) -> ET.Element:
    child = ET.SubElement(parent, name,
                          {k: _clean(v) for k, v in attributes.items()})
    if text is not None:
        child.text = _clean(text)
    return child


def _document(root: ET.Element) -> bytes:
    """The document with its declaration; the root's ``xmlns`` puts every element in it."""
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _clean(text: str) -> str:
    """Text XML 1.0 can carry: characters it forbids (NUL, other controls) dropped."""
    return _NOT_XML.sub("", str(text))


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")
