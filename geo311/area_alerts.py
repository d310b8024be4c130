"""Area alerts for block clubs and aldermen's offices: a daily digest of an area's requests.

Anyone may subscribe an address to a district of any active layer or to an area they
draw, for all services or some. As with following a request, the address first gets
one message to confirm (double opt-in). ``queue_digests`` (``geo311 notify digest``,
run daily from cron) writes one digest per confirmed subscription and local day that
had requests received or closed in its area; the notification worker sends them.
Sensitive services never appear in a digest: it is mail to the public.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import shapely
from babel.dates import format_date
from email_validator import EmailNotValidError, validate_email
from jinja2 import Environment
from pyproj import Geod
from shapely.geometry import shape

from geo311.errors import InvalidRequest
from geo311.mail_words import AREA_PHRASES, DECLARED_TAGS
from geo311.notifications import (
    DeliveryPolicy,
    DeliverySummary,
    Mailer,
    deliver_due,
    envelope,
    language_of,
    read_signed_id,
    sign_id,
)
from geo311.store.areas import AreaAlerts, AreaSubscription
from geo311.store.catalogue import Catalogue
from geo311.store.layers import Layers
from geo311.store.outbox import Outbox

LOGGER = logging.getLogger(__name__)

CONFIRM_SALT = "geo311.area.confirm"
STOP_SALT = "geo311.area.stop"
#: The largest area one may draw (a big city's ward is 5-30 km2).
MAX_AREA_KM2 = 150.0
MAX_AREA_CHARS = 100_000
#: Requests listed per section of a digest; the rest are counted.
DIGEST_LINES = 50
_GEOD = Geod(ellps="WGS84")

_TEXT = Environment(autoescape=False, keep_trailing_newline=True).from_string(
    "{{ lead }}\n"
    "{% for title, lines, more in sections %}{% if lines %}\n{{ title }}\n"
    "{% for line, url in lines %}- {{ line }}\n  {{ url }}\n{% endfor %}"
    "{% if more %}{{ more }}\n{% endif %}{% endif %}{% endfor %}"
    "{% if confirm_url %}\n{{ confirm_label }}\n{{ confirm_url }}\n{% endif %}"
    "\n-- \n{{ stop_label }}\n{{ stop_url }}\n"
)
_HTML = Environment(autoescape=True).from_string(
    '<!doctype html>\n<html lang="{{ lang }}"><head><meta charset="utf-8">'
    "<title>{{ subject }}</title></head><body>\n<p>{{ lead }}</p>\n"
    "{% for title, lines, more in sections %}{% if lines %}<h2>{{ title }}</h2><ul>\n"
    '{% for line, url in lines %}<li><a href="{{ url }}">{{ line }}</a></li>\n{% endfor %}'
    "</ul>{% if more %}<p>{{ more }}</p>{% endif %}\n{% endif %}{% endfor %}"
    '{% if confirm_url %}<p>{{ confirm_label }} <a href="{{ confirm_url }}">{{ confirm_url }}'
    "</a></p>\n{% endif %}"
    '<hr><p><small>{{ stop_label }} <a href="{{ stop_url }}">{{ stop_url }}</a></small></p>\n'
    "</body></html>\n"
)


class AlertStore(Protocol):
    """What area alerts need of the store."""

    areas: AreaAlerts
    area_outbox: Outbox
    layers: Layers
    catalogue: Catalogue


def subscribe(store: AlertStore, email: str, language: str = "", *, district: str = "",
              area: str = "", services: list[str] | tuple[str, ...] = ()) -> bool:
    """Ask for a daily digest of a district (``LAYER:ID``) or a drawn ``area`` (GeoJSON).

    Checks everything and queues the confirmation; returns whether mail was queued
    (a page says the same either way). Raises ``InvalidRequest`` saying what arrived.

    Examples
    --------
    >>> subscribe(store, "club@example.org", district="wards:42", services=["PHF"])
    ... # doctest: +SKIP
    True
    """
    try:
        address = validate_email(email.strip()[:300], check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidRequest(f"email is not an address mail can be sent to: {exc}") from exc
    if bool(district) == bool(area):
        raise InvalidRequest("choose a district or draw an area (one of the two)")
    known = {s.code for s in store.catalogue.services()}
    unknown = sorted(set(services) - known)
    if unknown:
        raise InvalidRequest(f"services {unknown} are not in the catalogue")
    layer = district_id = geojson = None
    if district:
        layer, _, district_id = district.partition(":")
        names = store.layers.active_district_names().get(layer)
        if names is None or district_id not in names[1]:
            raise InvalidRequest(f"district was {district[:80]!r} but is expected as LAYER:ID "
                                 "of an active layer")
        label = f"{names[0]} {names[1][district_id] or district_id}"
    else:
        geojson = _checked_area(area)
        label = "the area drawn"
    return store.areas.subscribe(address, language_of(language), label=label, layer=layer,
                                 district_id=district_id, area=geojson,
                                 services=tuple(services))


def _checked_area(text: str) -> str:
    """A drawn area as stored: a valid Polygon or MultiPolygon in WGS84, not too large."""
    if len(text) > MAX_AREA_CHARS:
        raise InvalidRequest(f"the area has more than {MAX_AREA_CHARS:,} characters")
    try:
        data = json.loads(text)
        geom = shape(data.get("geometry", data) if isinstance(data, dict) else data)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InvalidRequest(f"the area is not a GeoJSON polygon: {exc}") from exc
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise InvalidRequest(f"the area is a {geom.geom_type} but is expected to be a polygon")
    x0, y0, x1, y1 = geom.bounds
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InvalidRequest("the area's coordinates are not longitude, latitude (WGS84)")
    if not geom.is_valid:
        raise InvalidRequest(f"the area is not a valid polygon: {shapely.is_valid_reason(geom)}")
    km2 = abs(_GEOD.geometry_area_perimeter(geom)[0]) / 1e6
    if km2 > MAX_AREA_KM2:
        raise InvalidRequest(f"the area covers {km2:,.0f} km2 but at most {MAX_AREA_KM2:g} "
                             "km2 may be drawn: choose a district instead")
    return json.dumps(shapely.geometry.mapping(geom))


def confirm_url(mailer: Mailer, subscription_id: int) -> str:
    """The link that confirms an area subscription."""
    token = sign_id(subscription_id, mailer.secret, CONFIRM_SALT)
    return f"{mailer.public_url}/alerts/confirm/{token}"


def stop_url(mailer: Mailer, subscription_id: int) -> str:
    """The link that ends an area subscription (in every message of it)."""
    token = sign_id(subscription_id, mailer.secret, STOP_SALT)
    return f"{mailer.public_url}/alerts/stop/{token}"


def subscription_of(store: AlertStore, token: str, secret: str, *,
                    stop: bool) -> AreaSubscription:
    """The subscription a confirm (or ``stop``) link names."""
    salt, link = (STOP_SALT, "stop") if stop else (CONFIRM_SALT, "confirmation")
    return store.areas.get(read_signed_id(token, secret, salt, link))


def set_subscription(store: AlertStore, token: str, secret: str, *,
                     stop: bool) -> AreaSubscription:
    """Confirm the subscription a link names, or end it (``stop``); a repeat changes nothing."""
    found = subscription_of(store, token, secret, stop=stop)
    return store.areas.set_status(found.id, "ended" if stop else "confirmed")


@dataclass
class DigestSummary:
    """What one ``queue_digests`` did."""

    subscriptions: int = 0
    queued: int = 0
    quiet: int = 0
    already: int = 0

    def line(self) -> str:
        """One line for the end of ``geo311 notify digest``."""
        return (f"{self.subscriptions} subscriptions: {self.queued} digests queued, "
                f"{self.quiet} with nothing that day, {self.already} queued before")


def queue_digests(store: AlertStore, day: date, zone: ZoneInfo, *,
                  progress: Callable[[int], object] | None = None) -> DigestSummary:
    """Queue the digest of ``day`` (a local day) for every confirmed subscription.

    Idempotent: a day already queued for a subscription is not queued again.
    """
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = start + timedelta(days=1)
    hidden = sorted(store.catalogue.sensitive_codes())
    summary = DigestSummary()
    versions: dict[str, int] = {}
    for sub in store.areas.confirmed():
        summary.subscriptions += 1
        if sub.layer is not None:
            if sub.layer not in versions:
                versions[sub.layer] = store.layers.version(sub.layer).id
            found = store.areas.activity(start, end, layer_version_id=versions[sub.layer],
                                         services=sub.services, hidden=hidden)
            found = found[found["district"] == sub.district_id]
        else:
            geom = shape(json.loads(sub.area or "{}"))
            found = store.areas.activity(start, end, box=geom.bounds, services=sub.services,
                                         hidden=hidden)
            found = found[shapely.contains_xy(geom, found["lon"].to_numpy(float),
                                              found["lat"].to_numpy(float))]
        if found.empty:
            summary.quiet += 1
        else:
            def listed(rows: Any) -> list[list[Any]]:
                return [[int(r.id), str(r.service_name), str(r.address or ""), str(r.status)]
                        for r in rows.itertuples()]
            got, done = found[found["received"]], found[found["closed"]]
            detail = {"day": day.isoformat(), "received": listed(got.head(DIGEST_LINES)),
                      "closed": listed(done.head(DIGEST_LINES)),
                      "received_n": len(got), "closed_n": len(done)}
            if store.areas.queue_digest(sub, day.isoformat(), detail):
                summary.queued += 1
            else:
                summary.already += 1
        if progress is not None:
            progress(1)
    LOGGER.info("area digests of %s: %s", day, summary.line())
    return summary


def composer(store: AlertStore, mailer: Mailer) -> Callable[[dict[str, Any], datetime],
                                                          EmailMessage]:
    """Make the message of an ``area_mail`` row (a confirmation or a digest)."""
    def make(row: dict[str, Any], at: datetime) -> EmailMessage:
        sub = store.areas.get(int(row["subscription_id"]))
        lang = language_of(row.get("language"))
        words = AREA_PHRASES[lang]
        tag = DECLARED_TAGS.get(lang, lang)
        values: dict[str, Any] = {"area": sub.label}
        sections: list[tuple[str, list[tuple[str, str]], str]] = []
        if row["kind"] == "confirm":
            subject = words["confirm_subject"].format(**values)
            lead = words["confirm_lead"].format(**values)
            confirm = confirm_url(mailer, sub.id)
        else:
            detail = json.loads(row.get("detail") or "{}")
            values["day"] = format_date(date.fromisoformat(detail["day"]), "EEEE d MMMM",
                                        locale=tag.replace("-", "_"))
            values.update(received=detail["received_n"], closed=detail["closed_n"])
            subject = words["digest_subject"].format(**values)
            lead = words["digest_lead"].format(**values)
            confirm = ""
            for key in ("received", "closed"):
                lines = [(f"#{i} {name}" + (f", {address}" if address else ""),
                          f"{mailer.public_url}/requests/{i}")
                         for i, name, address, _status in detail[key]]
                rest = detail[f"{key}_n"] - len(lines)
                sections.append((words[key], lines, words["more"].format(n=rest) if rest > 0
                                 else ""))
        link = stop_url(mailer, sub.id)
        parts = {"lang": tag, "subject": subject, "lead": lead, "sections": sections,
                 "confirm_label": words["confirm"], "confirm_url": confirm,
                 "stop_label": words["stop"], "stop_url": link}
        return envelope(mailer, row, subject, _TEXT.render(parts), _HTML.render(parts), tag,
                        link, at, kind="area")

    return make


def deliver_area_mail(store: Any, mailer: Mailer, policy: DeliveryPolicy | None = None, *,
                      now: datetime | None = None,
                      progress: Callable[[int], object] | None = None) -> DeliverySummary:
    """Send the due area-alert mail (confirmations and digests), as ``deliver_due`` does."""
    return deliver_due(store, mailer, policy, now=now, progress=progress,
                       outbox=store.area_outbox, composer=composer(store, mailer))
