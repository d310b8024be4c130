"""Who handles a report: the routing table of a city, read from TOML, and its pure lookup.

A city keeps ``routing.toml`` next to its profile. It names the agencies (its own
departments and its neighbours' services) with how each takes a report (an Open311
endpoint, an email address, or "refer the resident" with a phone or web page) and the
routes: a neighbour of the jurisdiction layer, or a district of one of the city's
layers, times a service (its code, its group, or ``*``) gives an agency. The most
specific route wins: a service code before a group before ``*``, a named district
before ``*``. Nothing here reads a database or the network.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from geo311.errors import ConfigError

#: The file a city profile's folder may hold: its routing table.
ROUTING_FILE = "routing.toml"
#: How an agency takes a report.
HOWS = ("open311", "email", "refer")
_TOP_KEYS = ("jurisdiction_layer", "forward", "max_attempts", "agencies", "routes")
_AGENCY_KEYS = ("id", "name", "phone", "email", "url", "open311", "refer", "example")
_OPEN311_KEYS = ("endpoint", "api_key_env", "jurisdiction_id", "service_codes")
_ROUTE_KEYS = ("jurisdiction", "layer", "district", "service", "agency")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_ENV = re.compile(r"[A-Z][A-Z0-9_]*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Open311Endpoint:
    """A neighbour's GeoReport v2 endpoint: its base URL, key and service codes.

    ``endpoint`` is the base (``https://host/open311/v2``); ``api_key_env`` names the
    environment variable holding the key; ``service_codes`` maps the city's codes to
    the neighbour's (a code not listed is sent as it is).
    """

    endpoint: str
    api_key_env: str
    jurisdiction_id: str = ""
    service_codes: Mapping[str, str] = field(default_factory=dict)

    def remote_code(self, code: str) -> str:
        """The neighbour's code for the city's service ``code``."""
        return self.service_codes.get(code, code)


@dataclass(frozen=True)
class Agency:
    """Who handles a report, and how the resident or the city reaches them."""

    id: str
    name: str
    phone: str = ""
    email: str = ""
    url: str = ""
    open311: Open311Endpoint | None = None
    refer: bool = False
    example: bool = False

    @property
    def how(self) -> str:
        """``open311`` (forwarded when the city opted in), ``email``, ``refer``, or ``""``.

        ``""`` is one of the city's own departments: a name that routes reports inside
        the city, with no way given to pass a report on.
        """
        if self.open311 is not None:
            return "open311"
        if self.refer:
            return "refer"
        return "email" if self.email else ""

    def named(self, jurisdiction: str) -> str:
        """The agency's name, ``{jurisdiction}`` in it replaced by the neighbour's name."""
        return self.name.replace("{jurisdiction}", jurisdiction)

    def contact(self) -> str:
        """The agency's contact in words: "phone 847-448-4311, https://…" (may be empty)."""
        parts = [f"phone {self.phone}" if self.phone else "", self.email, self.url]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class Route:
    """One line of the table: where (a neighbour, or a district of a layer) and what."""

    agency: str
    service: str = "*"
    jurisdiction: str = ""
    layer: str = ""
    district: str = "*"

    def rank(self, code: str) -> tuple[int, int]:
        """How specific the route is for a service ``code``: (service, district)."""
        return (2 if self.service == code else 0 if self.service == "*" else 1,
                0 if (self.jurisdiction or self.district) == "*" else 1)


@dataclass(frozen=True)
class RoutingTable:
    """A city's routing table (see the module docstring)."""

    path: Path | None
    jurisdiction_layer: str
    forward: bool
    max_attempts: int
    agencies: Mapping[str, Agency]
    routes: tuple[Route, ...]
    digest: str = ""

    def for_neighbour(self, jurisdiction: str, code: str, group: str = "") -> Agency | None:
        """The agency handling service ``code`` (of ``group``) in a neighbour, if any.

        Examples
        --------
        >>> t = parse_routing({"jurisdiction_layer": "j", "agencies": [
        ...     {"id": "n", "name": "North 311", "phone": "555-0100", "refer": True}],
        ...     "routes": [{"jurisdiction": "17", "service": "*", "agency": "n"}]})
        >>> t.for_neighbour("17", "PH").name, t.for_neighbour("18", "PH")
        ('North 311', None)
        """
        found = [r for r in self.routes if r.jurisdiction in (jurisdiction, "*")
                 and r.service in (code, group, "*")]
        return self._best(found, code)

    def for_districts(self, code: str, group: str,
                      districts: Mapping[str, str | None]) -> Agency | None:
        """The agency handling ``code`` at a point of the city with these districts.

        ``districts`` maps a layer name to the point's district there.

        Examples
        --------
        >>> t = parse_routing({"jurisdiction_layer": "j", "agencies": [
        ...     {"id": "s", "name": "Streets North", "refer": True},
        ...     {"id": "a", "name": "Streets", "refer": True}],
        ...     "routes": [{"layer": "wards", "district": "1", "service": "PH", "agency": "s"},
        ...                {"layer": "wards", "district": "*", "service": "PH", "agency": "a"}]})
        >>> t.for_districts("PH", "", {"wards": "1"}).name
        'Streets North'
        >>> t.for_districts("PH", "", {"wards": "2"}).name
        'Streets'
        """
        found = [r for r in self.routes if r.layer and r.layer in districts
                 and districts[r.layer] is not None
                 and r.district in (districts[r.layer], "*")
                 and r.service in (code, group, "*")]
        return self._best(found, code)

    def _best(self, found: list[Route], code: str) -> Agency | None:
        if not found:
            return None
        best = max(found, key=lambda r: r.rank(code))
        return self.agencies[best.agency]


def routing_path(profile_path: Path | None, configured: str = "") -> Path | None:
    """The routing file: ``configured`` (GEO311_ROUTING_FILE), else the profile's, if any."""
    if configured:
        return Path(configured)
    if profile_path is not None and (profile_path.parent / ROUTING_FILE).is_file():
        return profile_path.parent / ROUTING_FILE
    return None


def read_routing(path: str | Path) -> RoutingTable:
    """Read and check a routing file; an error names the file, the entry and the key.

    Examples
    --------
    >>> from geo311.city import CITIES_PATH, default_city
    >>> read_routing(CITIES_PATH / default_city() / "routing.toml").jurisdiction_layer
    'jurisdictions'
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    table = parse_routing(data, where=str(path))
    return RoutingTable(path, table.jurisdiction_layer, table.forward, table.max_attempts,
                        table.agencies, table.routes, hashlib.sha256(raw).hexdigest()[:16])


def parse_routing(data: Mapping[str, Any], where: str = "routing") -> RoutingTable:
    """Check a routing table given as TOML values (see ``read_routing``)."""
    _no_unknown(data, _TOP_KEYS, where)
    layer = data.get("jurisdiction_layer", "")
    if not isinstance(layer, str) or not layer:
        raise ConfigError(f"{where}: 'jurisdiction_layer' was {layer!r} but is expected to "
                          "name the layer whose districts are the neighbours")
    forward = data.get("forward", False)
    if not isinstance(forward, bool):
        raise ConfigError(f"{where}: 'forward' was {forward!r} but is expected to be true "
                          "or false")
    attempts = data.get("max_attempts", 6)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 100:
        raise ConfigError(f"{where}: 'max_attempts' was {attempts!r} but is expected to be "
                          "a whole number from 1 to 100")
    agencies: dict[str, Agency] = {}
    for i, entry in enumerate(_entries(data, "agencies", where)):
        agency = _agency(entry, f"{where}: agencies[{i}]")
        if agency.id in agencies:
            raise ConfigError(f"{where}: agencies[{i}]: id {agency.id!r} is used twice")
        agencies[agency.id] = agency
    routes: list[Route] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for i, entry in enumerate(_entries(data, "routes", where)):
        route = _route(entry, f"{where}: routes[{i}]", agencies)
        key = (route.jurisdiction, route.layer, route.district, route.service)
        if key in seen:
            raise ConfigError(f"{where}: routes[{i}] repeats routes[{seen[key]}] (same place "
                              "and service); keep one")
        seen[key] = i
        routes.append(route)
    return RoutingTable(None, layer, forward, attempts, agencies, tuple(routes))


def _entries(data: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    entries = data.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{where}: '{key}' is expected to be a list of tables ([[{key}]])")
    return entries


def _no_unknown(entry: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    unknown = [k for k in entry if k not in keys]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; the keys are: "
                          f"{', '.join(keys)}")


def _text(entry: Mapping[str, Any], key: str, where: str, required: bool = False) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ConfigError(f"{where}: {key!r} was {value!r} but is expected to be a "
                          f"{'non-empty ' if required else ''}string")
    return value.strip()


def _agency(entry: Mapping[str, Any], where: str) -> Agency:
    _no_unknown(entry, _AGENCY_KEYS, where)
    agency_id = _text(entry, "id", where, required=True)
    if not _ID.fullmatch(agency_id):
        raise ConfigError(f"{where}: 'id' was {agency_id!r} but is expected to be lower case "
                          "letters, digits, '_' or '-'")
    email = _text(entry, "email", where)
    if email and not _EMAIL.fullmatch(email):
        raise ConfigError(f"{where}: 'email' was {email!r} but is expected to be an address "
                          "such as 311@example.org")
    url = _text(entry, "url", where)
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{where}: 'url' was {url!r} but is expected to be an http or "
                          "https address")
    for flag in ("refer", "example"):
        if not isinstance(entry.get(flag, False), bool):
            raise ConfigError(f"{where}: {flag!r} was {entry[flag]!r} but is expected to be "
                              "true or false")
    endpoint = None
    if "open311" in entry:
        endpoint = _open311(entry["open311"], f"{where}: open311")
    agency = Agency(id=agency_id, name=_text(entry, "name", where, required=True),
                    phone=_text(entry, "phone", where), email=email, url=url,
                    open311=endpoint, refer=bool(entry.get("refer", False)),
                    example=bool(entry.get("example", False)))
    return agency


def _open311(entry: Any, where: str) -> Open311Endpoint:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: is expected to be a table with 'endpoint' and "
                          "'api_key_env'")
    _no_unknown(entry, _OPEN311_KEYS, where)
    endpoint = _text(entry, "endpoint", where, required=True).rstrip("/")
    if urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).netloc:
        raise ConfigError(f"{where}: 'endpoint' was {endpoint!r} but is expected to be the "
                          "http or https base of a GeoReport v2 API (…/open311/v2)")
    key_env = _text(entry, "api_key_env", where, required=True)
    if not _ENV.fullmatch(key_env):
        raise ConfigError(f"{where}: 'api_key_env' was {key_env!r} but is expected to name "
                          "an environment variable (upper case letters, digits and _)")
    codes = entry.get("service_codes", {})
    if not isinstance(codes, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                              for k, v in codes.items()):
        raise ConfigError(f"{where}: 'service_codes' is expected to map the city's service "
                          "codes to the neighbour's, as strings")
    return Open311Endpoint(endpoint, key_env, _text(entry, "jurisdiction_id", where),
                           dict(codes))


def _route(entry: Mapping[str, Any], where: str, agencies: Mapping[str, Agency]) -> Route:
    _no_unknown(entry, _ROUTE_KEYS, where)
    agency = _text(entry, "agency", where, required=True)
    if agency not in agencies:
        raise ConfigError(f"{where}: 'agency' was {agency!r} but is expected to be one of "
                          f"the agencies: {sorted(agencies)}")
    service = _text(entry, "service", where, required=True)
    jurisdiction = _text(entry, "jurisdiction", where)
    layer = _text(entry, "layer", where)
    district = _text(entry, "district", where) or "*"
    if bool(jurisdiction) == bool(layer):
        raise ConfigError(f"{where}: give either 'jurisdiction' (a neighbour's id in the "
                          "jurisdiction layer, or '*') or 'layer' (with 'district', a "
                          "district id or '*'), not both and not neither")
    if jurisdiction and "district" in entry:
        raise ConfigError(f"{where}: 'district' goes with 'layer', not with 'jurisdiction'")
    if jurisdiction and not agencies[agency].how:
        raise ConfigError(f"{where}: agency {agency!r} handles reports outside the city but "
                          "gives no way to reach it: give it 'open311', 'email' or "
                          "'refer = true' with a 'phone' or 'url'")
    return Route(agency=agency, service=service, jurisdiction=jurisdiction, layer=layer,
                 district=district)
