"""The service catalogue: what residents can report, who handles it, what is asked.

A city keeps its catalogue in a TOML (or JSON) file; ``geo311 services load FILE``
checks it and upserts it. Shipped catalogues are in ``catalogues/``; a city profile names
its own.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geo311.errors import InvalidRequest
from geo311.model import (
    DATATYPES,
    RETENTION_KINDS,
    Attribute,
    DuplicateRule,
    RetentionRule,
    Service,
)
from geo311.store import Store

LOGGER = logging.getLogger(__name__)

CATALOGUES = Path(__file__).parent / "catalogues"
_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_LISTS = ("singlevaluelist", "multivaluelist")
_SERVICE_KEYS = {"code", "name", "group", "description", "keywords", "sla_days", "agency",
                 "duplicates", "attributes", "accepting", "retention"}
_ATTRIBUTE_KEYS = {"code", "datatype", "description", "required", "variable", "order",
                   "datatype_description", "values"}
_RULE_KEYS = {"radius_m", "window_days", "scope", "only_open"}
_RETENTION_KEYS = {f"{kind}_years" for kind in RETENTION_KINDS}
#: What a retention key says to keep a kind of data for ever (overriding the default).
KEEP = "never"


def catalogue_path(name_or_path: str | Path) -> Path:
    """A shipped catalogue by name (a file stem in ``catalogues/``), else a file path."""
    shipped = CATALOGUES / f"{name_or_path}.toml"
    if isinstance(name_or_path, str) and "/" not in name_or_path and shipped.exists():
        return shipped
    path = Path(name_or_path)
    if not path.exists():
        names = sorted(p.stem for p in CATALOGUES.glob("*.toml"))
        raise InvalidRequest(f"catalogue {str(name_or_path)!r} is neither a file nor one of "
                             f"the shipped catalogues {names}")
    return path


def read_catalogue(name_or_path: str | Path) -> list[Service]:
    """Read and check a catalogue file (TOML or JSON); every problem is named.

    Examples
    --------
    >>> [s.code for s in read_catalogue("catalogue.toml")][:3]  # doctest: +SKIP
    ['311IOC', 'AAD', 'AAE']
    """
    path = catalogue_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise InvalidRequest(f"{path.name} cannot be read: {exc}") from exc
    entries = data.get("services") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise InvalidRequest(f"{path.name} has no [[services]] entries")
    default = parse_retention(data.get("retention", {}), f"{path.name}: [retention]")
    services = [parse_service(e, f"{path.name}: service {i + 1}", retention=default)
                for i, e in enumerate(entries)]
    codes = [s.code for s in services]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise InvalidRequest(f"{path.name}: service codes {repeated} appear more than once")
    return services


def parse_retention(entry: Any, where: str, default: RetentionRule | None = None
                    ) -> RetentionRule:
    """A retention table (``contact_years``, ``text_years``, ``media_years``) over ``default``.

    A key left out keeps the default's years; ``"never"`` keeps that data for ever.

    Examples
    --------
    >>> parse_retention({"text_years": "never"}, "x", RetentionRule(2, 5, 3))
    RetentionRule(contact_years=2.0, text_years=None, media_years=3.0)
    """
    if not isinstance(entry, dict):
        raise InvalidRequest(f"{where} is expected to be a table")
    unknown = sorted(set(entry) - _RETENTION_KEYS)
    if unknown:
        raise InvalidRequest(f"{where} has unknown keys {unknown}; known: "
                             f"{sorted(_RETENTION_KEYS)}")
    years = {key: getattr(default, key) if default else None for key in _RETENTION_KEYS}
    for key, value in entry.items():
        years[key] = None if value == KEEP else value
    try:
        return RetentionRule(**years)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc.message}") from exc


def parse_service(entry: Any, where: str, *, retention: RetentionRule | None = None
                  ) -> Service:
    """One catalogue entry as a ``Service``; ``where`` prefixes error messages.

    ``retention`` is the catalogue's default rule, which the entry's own overrides.
    """
    if not isinstance(entry, dict):
        raise InvalidRequest(f"{where} is expected to be a table")
    unknown = sorted(set(entry) - _SERVICE_KEYS)
    if unknown:
        raise InvalidRequest(f"{where} has unknown keys {unknown}; known: {sorted(_SERVICE_KEYS)}")
    code = str(entry.get("code", ""))
    if not _CODE.match(code):
        raise InvalidRequest(f"{where}: code {code!r} must be 1-64 letters, digits, _ . -")
    where = f"{where} ({code})"
    name = str(entry.get("name", "")).strip()
    if not name:
        raise InvalidRequest(f"{where} has no name")
    sla = entry.get("sla_days")
    if sla is not None and (not isinstance(sla, int | float) or sla <= 0):
        raise InvalidRequest(f"{where}: sla_days was {sla!r} but is expected to be > 0")
    accepting = entry.get("accepting", True)
    if not isinstance(accepting, bool):
        raise InvalidRequest(f"{where}: accepting was {accepting!r} but is expected to be "
                             "true or false")
    rule = None
    if "duplicates" in entry:
        d = entry["duplicates"]
        if not isinstance(d, dict) or set(d) - _RULE_KEYS:
            raise InvalidRequest(f"{where}: duplicates takes only {sorted(_RULE_KEYS)}")
        try:
            rule = DuplicateRule(**d)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"{where}: duplicates: {exc}") from exc
    raw = entry.get("attributes", [])
    if not isinstance(raw, list):
        raise InvalidRequest(f"{where}: attributes is expected to be a list")
    attributes = tuple(sorted((parse_attribute(a, f"{where} attribute {i + 1}")
                               for i, a in enumerate(raw)), key=lambda a: a.order))
    for label, items in (("codes", [a.code for a in attributes]),
                         ("orders", [a.order for a in attributes])):
        if len(set(items)) != len(items):
            raise InvalidRequest(f"{where}: attribute {label} must be unique, got {items}")
    rule_of_service = parse_retention(entry.get("retention", {}), f"{where}: retention",
                                      retention)
    return Service(code=code, name=name, group=str(entry.get("group", "")),
                   description=str(entry.get("description", "")),
                   keywords=str(entry.get("keywords", "")),
                   sla_days=None if sla is None else float(sla), duplicate_rule=rule,
                   agency=str(entry.get("agency", "")), attributes=attributes,
                   accepting=accepting, retention=rule_of_service)


def parse_attribute(entry: Any, where: str) -> Attribute:
    """One question of a service, checked: datatype, order, and values for lists."""
    if not isinstance(entry, dict):
        raise InvalidRequest(f"{where} is expected to be a table")
    unknown = sorted(set(entry) - _ATTRIBUTE_KEYS)
    if unknown:
        raise InvalidRequest(f"{where} has unknown keys {unknown}; known: "
                             f"{sorted(_ATTRIBUTE_KEYS)}")
    code = str(entry.get("code", ""))
    if not _CODE.match(code):
        raise InvalidRequest(f"{where}: code {code!r} must be 1-64 letters, digits, _ . -")
    datatype = entry.get("datatype")
    if datatype not in DATATYPES:
        raise InvalidRequest(f"{where} ({code}): datatype was {datatype!r} but is expected "
                             f"to be in {list(DATATYPES)}")
    order = entry.get("order", 1)
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise InvalidRequest(f"{where} ({code}): order was {order!r} but is expected to be "
                             "a positive integer")
    values = entry.get("values", [])
    pairs: list[tuple[str, str]] = []
    for v in values if isinstance(values, list) else [None]:
        if not (isinstance(v, dict) and "key" in v and "name" in v):
            raise InvalidRequest(f"{where} ({code}): each value needs a key and a name")
        pairs.append((str(v["key"]), str(v["name"])))
    if datatype in _LISTS and not pairs:
        raise InvalidRequest(f"{where} ({code}): a {datatype} needs values")
    if datatype not in _LISTS and pairs:
        raise InvalidRequest(f"{where} ({code}): only list datatypes take values")
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise InvalidRequest(f"{where} ({code}): value keys must be unique, got {keys}")
    description = str(entry.get("description", "")).strip()
    if not description:
        raise InvalidRequest(f"{where} ({code}) has no description")
    variable = bool(entry.get("variable", True))
    required = bool(entry.get("required", False))
    if required and not variable:
        raise InvalidRequest(f"{where} ({code}): an attribute that is not variable "
                             "cannot be required")
    return Attribute(code=code, datatype=datatype, description=description,
                     required=required, variable=variable, order=order,
                     datatype_description=str(entry.get("datatype_description", "")),
                     values=tuple(pairs))


def load_catalogue(store: Store, services: Sequence[Service], *, source: str = "",
                   actor: str = "system") -> tuple[int, int]:
    """Upsert ``services`` into the catalogue; audited. Returns (added, updated)."""
    added = store.catalogue.upsert(services)
    store.kb.reindex()  # services are searchable with the knowledge base
    store.audit.add("catalogue_loaded", "service", source,
                {"services": len(services), "added": added}, actor)
    LOGGER.info("loaded %s services from %s (%s new)", len(services), source, added)
    return added, len(services) - added
