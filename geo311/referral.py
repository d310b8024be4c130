"""Referral across jurisdictions and departments: who handles a report, and passing it on.

A report outside the city that falls in a neighbour of the jurisdiction layer is not just
refused: ``refer`` finds who handles it there (the city's routing table,
``geo311.jurisdictions``), records the referral (``store.referrals``) and returns the
refusal that tells the resident, with the agency's contact. Where the neighbour has an
Open311 endpoint and the city opted in (``forward = true``), the referral waits in the
referrals outbox and ``forward_due`` posts it (GeoReport v2 ``requests.json``), retried
with exponential backoff and flagged for staff after the table's ``max_attempts``.
Inside the city, ``responsible_agency`` names the agency of a service at a request's
districts (the catalogue's agency where no route matches).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from geo311.districts import DistrictIndex, DistrictLayer
from geo311.errors import ConfigError, Referred
from geo311.jurisdictions import ROUTING_FILE, Agency, RoutingTable, read_routing
from geo311.media import MEDIA_PATH
from geo311.model import NewRequest, Service
from geo311.store.rows import now_utc

if TYPE_CHECKING:
    from geo311.store.layers import Layers
    from geo311.store.referrals import Referrals

LOGGER = logging.getLogger(__name__)

class ReferralStore(Protocol):
    """What referrals need of a store."""

    @property
    def layers(self) -> Layers:
        """The store's ``layers``."""

    @property
    def referrals(self) -> Referrals:
        """The store's ``referrals``."""


@dataclass(frozen=True)
class Neighbours:
    """The jurisdiction layer's newest version, indexed: which neighbour a point is in."""

    layer: str
    version_id: int
    index: DistrictIndex
    names: Mapping[str, str]

    def at(self, lon: float, lat: float) -> tuple[str, str] | None:
        """``(id, name)`` of the neighbour holding the point, or None."""
        found, _boundary = self.index.assign_one(lon, lat)[self.layer]
        if found is None:
            return None
        return found, self.names.get(found) or found


def neighbours_of(store: ReferralStore, layer: str) -> Neighbours | None:
    """Index the newest version of the jurisdiction layer ``layer``; None if not loaded.

    Examples
    --------
    >>> neighbours_of(store, "jurisdictions").at(-87.69, 42.05)  # doctest: +SKIP
    ('1724582', 'Evanston')
    """
    versions = store.layers.versions(layer)
    if not versions:
        LOGGER.info("the routing table names jurisdiction layer %r, which is not loaded",
                       layer)
        return None
    newest = versions[-1]
    features = store.layers.features(layer, newest.version)
    ids = [str(i) for i in features["district_id"]]
    index = DistrictIndex([DistrictLayer(layer, newest.id, ids,
                                         list(features.geometry.values))],
                          boundary_tolerance_m=0.0)
    names = {i: (n if isinstance(n, str) and n else i) for i, n in zip(ids, features["name"],
                                                                      strict=True)}
    return Neighbours(layer, newest.id, index, names)


_TABLES: dict[tuple[str, int], RoutingTable] = {}
_TABLES_LOCK = threading.Lock()


def load_routing(path: Path | None) -> RoutingTable | None:
    """The routing table at ``path`` (None: none), read again when the file changes.

    Cached by path and modification time: intake asks for it on every report outside
    the city and every page that names an agency.
    """
    if path is None:
        return None
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError as exc:
        raise ConfigError(f"the routing file {path} (GEO311_ROUTING_FILE, or the city "
                          f"profile's {ROUTING_FILE}) cannot be read: {exc.strerror}") from exc
    with _TABLES_LOCK:
        found = _TABLES.get(key)
        if found is None:
            found = read_routing(path)
            _TABLES.clear()
            _TABLES[key] = found
        return found


def responsible_agency(routing: RoutingTable | None, service: Service,
                       districts: Mapping[str, str | None]) -> str:
    """The agency handling ``service`` at a request with these districts (layer -> id).

    The routing table's most specific route, else the catalogue's agency.

    Examples
    --------
    >>> responsible_agency(None, Service("PH", "Pothole", agency="Streets"), {})
    'Streets'
    """
    if routing is None:
        return service.agency
    found = routing.for_districts(service.code, service.group, districts)
    return found.name if found is not None else service.agency


def refer(store: ReferralStore, routing: RoutingTable | None, neighbours: Neighbours | None,
          service: Service, new: NewRequest, lon: float, lat: float, refusal: str, *,
          actor: str = "system") -> Referred | None:
    """The refusal telling a resident who handles a report outside the city, if known.

    ``refusal`` is what the resident would be told without a referral ("412 m outside
    the city limit"). A point in a neighbour with a route for the service is recorded as
    a referral: forwarded later (``pending``) when the agency has an Open311 endpoint
    and the city opted in, else told only (``referred``). None when the point is in no
    known neighbour (the plain refusal stands).
    """
    if routing is None or neighbours is None:
        return None
    found = neighbours.at(lon, lat)
    if found is None:
        return None
    jurisdiction, place = found
    agency = routing.for_neighbour(jurisdiction, service.code, service.group)
    if agency is None:
        return Referred(f"{refusal}, in {place}. Report it to {place} directly.",
                        jurisdiction=place)
    forward = routing.forward and agency.open311 is not None
    values: dict[str, Any] = {
        "status": "pending" if forward else "referred", "channel": new.source,
        "service_code": service.code, "service_name": service.name,
        "jurisdiction_id": jurisdiction, "jurisdiction_name": place,
        "agency_id": agency.id, "agency_name": agency.named(place), "how": agency.how,
        "lon": lon, "lat": lat}
    if forward:  # only what the neighbour needs; never the reporter's contact
        # A photo uploaded here is not kept for a refused report, so its link would
        # lead nowhere; a link the client gave (its own photo host) is passed on.
        media_url = "" if MEDIA_PATH in new.media_url else new.media_url
        values.update(address=new.address, description=new.description,
                      media_url=media_url,
                      attributes={k: list(v) for k, v in new.attributes.items()})
    row = store.referrals.add(values, actor=actor)
    return Referred(referral_words(refusal, place, agency, row["reference"] if forward else ""),
                    jurisdiction=place, agency=agency.named(place), contact=agency.contact(),
                    reference=row["reference"] if forward else "")


def referral_words(refusal: str, place: str, agency: Agency, reference: str) -> str:
    """What the resident reads: where the point is, who handles it, how to reach them.

    Examples
    --------
    >>> from geo311.jurisdictions import Agency
    >>> words = referral_words("1.2 km outside the city limit", "Evanston",
    ...                        Agency("e", "Evanston 311", phone="847-448-4311", refer=True), "")
    >>> words.split(". ")[1]
    'Reports there are handled by Evanston 311 (phone 847-448-4311): please report it to them.'
    """
    who = agency.named(place)
    contact = agency.contact()
    told = f"{refusal}, in {place}. Reports there are handled by {who}"
    told += f" ({contact})" if contact else ""
    if reference:
        return (f"{told}. Your report has been passed on to them: referral reference "
                f"{reference}.")
    return f"{told}: please report it to them."


# --- forwarding ---------------------------------------------------------------------


@dataclass(frozen=True)
class ForwardPolicy:
    """How referrals are forwarded: tries, backoff, a stopped worker's claim, timeout."""

    max_attempts: int = 6
    backoff_s: float = 60.0  # the wait after the first failure; doubled after each next
    max_backoff_s: float = 6 * 3600.0
    stopped_after: timedelta = timedelta(minutes=10)
    timeout_s: float = 10.0
    batch: int = 50

    def wait_after(self, attempts: int) -> timedelta:
        """The wait before the next try after ``attempts`` failed ones."""
        return timedelta(seconds=min(self.max_backoff_s,
                                     self.backoff_s * 2 ** max(0, attempts - 1)))


@dataclass
class ForwardSummary:
    """What one pass did."""

    forwarded: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The pass in one line, for the command."""
        return (f"referrals: {self.forwarded} forwarded, {self.retried} to retry, "
                f"{self.failed} failed (flagged for staff)")


class ForwardError(Exception):
    """A post that failed; ``permanent`` when sending it again cannot help."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


#: Posts one form to a URL and returns the JSON answer: ``(url, fields, timeout_s)``.
Poster = Callable[[str, Sequence[tuple[str, str]], float], Any]


def post_form(url: str, fields: Sequence[tuple[str, str]], timeout_s: float) -> Any:
    """POST ``fields`` form-encoded to ``url``; the parsed JSON answer.

    Raises ``ForwardError``: permanent for a 4xx answer (but 408 and 429), else temporary.
    """
    body = urllib.parse.urlencode(fields).encode("utf-8")
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
        "User-Agent": "geo311-referrals"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as answer:  # noqa: S310
            return json.loads(answer.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        text = exc.read()[:500].decode("utf-8", "replace")
        raise ForwardError(f"HTTP {exc.code} from {url}: {text}",
                           permanent=400 <= exc.code < 500 and exc.code not in (408, 429)
                           ) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ForwardError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from exc
    except ValueError as exc:
        raise ForwardError(f"{url} answered with something that is not JSON: {exc}") from exc


def open311_fields(row: Mapping[str, Any], agency: Agency, api_key: str
                   ) -> list[tuple[str, str]]:
    """The GeoReport v2 POST of a referral: service, place, text, answers, our reference.

    A list of form fields, since a multi-value answer repeats its name.
    """
    if agency.open311 is None:
        raise ForwardError(f"agency {agency.id!r} has no Open311 endpoint", permanent=True)
    fields = [("api_key", api_key),
              ("service_code", agency.open311.remote_code(row["service_code"])),
              ("lat", repr(float(row["lat"]))), ("long", repr(float(row["lon"]))),
              ("client_request_id", row["reference"])]
    if agency.open311.jurisdiction_id:
        fields.append(("jurisdiction_id", agency.open311.jurisdiction_id))
    for key, name in (("address", "address_string"), ("description", "description"),
                      ("media_url", "media_url")):
        if row.get(key):
            fields.append((name, str(row[key])))
    for code, values in (row.get("attributes") or {}).items():
        name = f"attribute[{code}][]" if len(values) > 1 else f"attribute[{code}]"
        fields += [(name, str(v)) for v in values]
    return fields


def remote_id_of(answer: Any) -> str:
    """The neighbour's ``service_request_id`` (or ``token``) from a POST answer."""
    first = answer[0] if isinstance(answer, list) and answer else answer
    if isinstance(first, Mapping):
        found = first.get("service_request_id") or first.get("token")
        if found not in (None, ""):
            return str(found)
    raise ForwardError(f"the answer names no service_request_id or token: {str(answer)[:200]}",
                       permanent=True)


def forward_due(store: ReferralStore, routing: RoutingTable | None, policy: ForwardPolicy, *,
                now: datetime | None = None, environ: Mapping[str, str] | None = None,
                post: Poster = post_form, progress: Callable[[int], Any] | None = None,
                ) -> ForwardSummary:
    """Forward every due referral once: forwarded, retried later, or failed (flagged).

    ``environ`` holds the API keys the routing table names (default: the process's).

    Examples
    --------
    >>> forward_due(store, table, ForwardPolicy()).line()  # doctest: +SKIP
    'referrals: 1 forwarded, 0 to retry, 0 failed (flagged for staff)'
    """
    env = os.environ if environ is None else environ
    now = now or now_utc()
    summary = ForwardSummary()
    for row in store.referrals.claim(now, limit=policy.batch,
                                     stopped_after=policy.stopped_after):
        agency = routing.agencies.get(row["agency_id"]) if routing is not None else None
        try:
            if agency is None or agency.open311 is None:
                raise ForwardError(f"agency {row['agency_id']!r} has no Open311 endpoint in "
                                   "the routing table any more", permanent=True)
            key = env.get(agency.open311.api_key_env, "")
            if not key:
                raise ForwardError(f"{agency.open311.api_key_env} (the API key for "
                                   f"{agency.name}) is not set")
            url = f"{agency.open311.endpoint}/requests.json"
            remote = remote_id_of(post(url, open311_fields(row, agency, key), policy.timeout_s))
        except ForwardError as exc:
            message = str(exc)
            summary.errors.append(f"{row['reference']}: {message}")
            if exc.permanent or row["attempts"] >= policy.max_attempts:
                store.referrals.mark_failed(row["id"], message)
                summary.failed += 1
                LOGGER.warning("referral %s failed after %s attempts: %s", row["reference"],
                               row["attempts"], message)
            else:
                store.referrals.mark_retry(row["id"], message,
                                           now + policy.wait_after(row["attempts"]))
                summary.retried += 1
        else:
            store.referrals.mark_forwarded(row["id"], remote, now_utc())
            summary.forwarded += 1
            LOGGER.info("referral %s forwarded to %s as request %s", row["reference"],
                        agency.name, remote)
        if progress is not None:
            progress(1)
    return summary


def run_worker(store: ReferralStore, routing: Callable[[], RoutingTable | None],
               policy: ForwardPolicy, *, poll_s: float, stop: threading.Event,
               report: Callable[[ForwardSummary], Any] | None = None,
               post: Poster = post_form, environ: Mapping[str, str] | None = None) -> None:
    """Forward due referrals every ``poll_s`` seconds until ``stop`` is set.

    A pass that fails (the database went away) is logged and the next one tries again.
    """
    while not stop.is_set():
        try:
            summary = forward_due(store, routing(), policy, post=post, environ=environ)
            if report is not None and (summary.forwarded or summary.retried
                                       or summary.failed):
                report(summary)
        except Exception:  # noqa: BLE001 - the worker outlives one bad pass
            LOGGER.exception("a referrals pass failed; trying again in %s s", poll_s)
        stop.wait(poll_s)
