"""Public-records (FOIA) packages: a records request's saved search, answered as one zip.

A records request is a saved search (service codes, districts, request dates, status,
text, ids) with its reference, title, requester and date received. Its package holds
the matching requests (CSV and GeoJSON) with their public history (status changes
from the audit log, public notes), redacted by rule, a redaction log that says what
was withheld or masked where and by which rule (never the values), the query itself,
a human-readable summary and a manifest of SHA-256 checksums. The same query on the
same data gives the same bytes: rows are sorted, zip entries carry the date received,
and nothing inside says when the package was made.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import tomllib
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from geo311 import __version__
from geo311.disclosure_files import (
    FileSet,
    history_csv,
    requests_csv,
    requests_geojson,
    safe_json,
    summary_html,
    utc_text,
)
from geo311.errors import InvalidRequest
from geo311.kpi import local_day_range
from geo311.model import STATUSES
from geo311.privacy import masked_point
from geo311.redaction import MAYBE_IDENTIFIER, TOKENS, find_identifiers
from geo311.store.disclosure import RecordsSearch

if TYPE_CHECKING:
    from geo311.store import Store

LOGGER = logging.getLogger(__name__)

#: Keys of a records request file, and of its ``[search]`` table.
QUERY_KEYS = ("reference", "title", "requester", "received", "search")
SEARCH_KEYS = ("services", "districts", "from", "to", "status", "text", "ids")
MAX_REFERENCE = 100
MAX_TEXT = 200
MAX_IDS = 10_000
#: Requests read and redacted at a time.
CHUNK = 2000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Text without a digit, "@" or "at" holds no identifier (``geo311.redaction``).
_MAYBE = re.compile(MAYBE_IDENTIFIER)

#: Every redaction rule: its id, what it does and to what (the log and summary say so).
RULES = {
    "reporter-contact": "Reporter name, email, phone, device id and account id: withheld "
                        "from every file (the request keeps only its reporter count).",
    "internal-note": "Staff-only notes: withheld (only public notes are released).",
    "staff-reason": "Reasons staff gave for a change (reopen, forward, merge): withheld.",
    "staff-name": "Who acted on a request: withheld (history entries say \"City staff\").",
    "phone-in-free-text": "Phone numbers typed into free text: replaced by "
                          "\"[phone removed]\".",
    "email-in-free-text": "Email addresses typed into free text: replaced by "
                          "\"[email removed]\".",
    "id-number-in-free-text": "Social security and card numbers typed into free text: "
                              "replaced by \"[number removed]\".",
    "sensitive-service": "Requests of a sensitive service: location moved to the centre of "
                         "its H3 cell (about 170 m), address, description and photo withheld.",
    "media-link": "Media links that are not plain http(s) web links, or that hold an "
                  "identifier: withheld.",
}
_FINDING_RULES = {"phone": "phone-in-free-text", "email": "email-in-free-text",
                  "ssn": "id-number-in-free-text", "card": "id-number-in-free-text"}
#: Files each kind of field is released in.
REQUEST_FILES = ("requests.csv", "requests.geojson")
HISTORY_FILES = ("history.csv", "requests.geojson")
#: Audit details a history entry may show, by action (the rest is staff's).
PUBLIC_DETAIL = {"created": (), "status": ("from", "to", "note"), "merged": ("into", "from"),
                 "unmerged": ("from",), "forwarded": ("from", "to"), "groups_merged": ()}


@dataclass(frozen=True)
class RecordsQuery:
    """A records request: who asked, when, and the saved search that answers it."""

    reference: str
    received: date
    title: str = ""
    requester: str = ""
    services: tuple[str, ...] = ()
    districts: tuple[tuple[str, str], ...] = ()
    start: date | None = None
    end: date | None = None
    status: str | None = None
    text: str = ""
    ids: tuple[int, ...] = ()

    def search(self, zone: ZoneInfo) -> RecordsSearch:
        """The store's search: local days (``to`` included) as times in ``zone``."""
        start, end = local_day_range(self.start, self.end, zone)
        return RecordsSearch(service_codes=self.services, districts=self.districts,
                             start=start, end=end, status=self.status, text=self.text,
                             ids=self.ids)


@dataclass
class PackageSummary:
    """What a package holds: counts, redactions by rule, its files and checksum."""

    reference: str
    requests: int
    history_events: int
    redactions: dict[str, int]
    files: list[dict[str, Any]]
    sha256: str = ""
    bytes: int = 0

    def lines(self) -> list[str]:
        """The summary a command prints."""
        out = [f"records request {self.reference}: {self.requests} requests, "
               f"{self.history_events} history entries",
               "redactions by rule: " + (", ".join(f"{rule} {n}" for rule, n in
                                                   sorted(self.redactions.items()) if n)
                                         or "none")]
        out += [f"  {f['name']:<22} {f['bytes']:>12,} bytes  sha256 {f['sha256']}"
                for f in self.files]
        return out


# -- the query -------------------------------------------------------------------------


def _text(name: str, value: object, most: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} was {value!r} but is expected to be text")
    value = value.strip()
    if _CONTROL.search(value):
        raise InvalidRequest(f"{name} holds a control character")
    if len(value) > most:
        raise InvalidRequest(f"{name} has {len(value)} characters; at most {most} are allowed")
    return value


def _day(name: str, value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise InvalidRequest(f"{name} was {value!r} but is expected to be a date "
                             "(YYYY-MM-DD)") from exc


def _list(name: str, value: object) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[,\s]+", value) if v.strip()]
    if not isinstance(value, list):
        raise InvalidRequest(f"{name} was {value!r} but is expected to be a list")
    return value


def _district(value: object) -> tuple[str, str]:
    text = _text("a district", value)
    layer, sep, district = text.partition(":")
    if not sep or not layer.strip() or not district.strip():
        raise InvalidRequest(f"district was {text!r} but is expected as LAYER:ID "
                             "(wards_2015_2023:27)")
    return layer.strip(), district.strip()


def _id(value: object) -> int:
    try:
        number = int(str(value).strip().lstrip("#"))
    except ValueError as exc:
        raise InvalidRequest(f"an id was {value!r} but is expected to be a request number") \
            from exc
    if number < 1:
        raise InvalidRequest(f"an id was {value!r} but is expected to be a request number")
    return number


def make_query(fields: Mapping[str, Any]) -> RecordsQuery:
    """A records request from its fields (a parsed file's or a form's), checked.

    ``services``, ``districts`` and ``ids`` are lists, or text separated by commas or
    spaces; ``received``, ``from`` and ``to`` are dates (or ``YYYY-MM-DD`` text).

    Examples
    --------
    >>> make_query({"reference": "R-1", "received": "2026-11-30", "ids": "7, 9"}).ids
    (7, 9)
    """
    reference = _text("reference", fields.get("reference", ""), MAX_REFERENCE)
    if not reference:
        raise InvalidRequest("reference is required: the number of the records request")
    received = _day("received", fields.get("received"))
    if received is None:
        raise InvalidRequest("received is required: the date the records request arrived")
    start, end = _day("from", fields.get("from")), _day("to", fields.get("to"))
    if start and end and end < start:
        raise InvalidRequest(f"to was {end} but is expected on or after from {start}")
    status = _text("status", fields.get("status") or "") or None
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"status was {status!r} but is expected to be in {STATUSES}")
    ids = tuple(sorted({_id(v) for v in _list("ids", fields.get("ids"))}))
    if len(ids) > MAX_IDS:
        raise InvalidRequest(f"ids has {len(ids)} request numbers; at most {MAX_IDS}")
    services = tuple(sorted({_text("a service code", v, 64)
                             for v in _list("services", fields.get("services"))}))
    districts = tuple(sorted({_district(v) for v in _list("districts",
                                                           fields.get("districts"))}))
    return RecordsQuery(
        reference=reference, received=received, title=_text("title", fields.get("title", "")),
        requester=_text("requester", fields.get("requester", "")), services=services,
        districts=districts, start=start, end=end, status=status,
        text=_text("text", fields.get("text") or ""), ids=ids)


def parse_query(text: str, source: str = "the query") -> RecordsQuery:
    r"""A records request from its TOML text; an unknown key or bad value names itself.

    Examples
    --------
    >>> parse_query('reference = "R-1"\nreceived = 2026-11-30\n[search]\nstatus = "open"'
    ...             ).status
    'open'
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest(f"{source} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(QUERY_KEYS))
    search = data.get("search", {})
    if not isinstance(search, dict):
        raise InvalidRequest(f"{source}: search is expected to be a table ([search])")
    unknown += [f"search.{k}" for k in sorted(set(search) - set(SEARCH_KEYS))]
    if unknown:
        raise InvalidRequest(f"{source}: unknown keys {unknown}; a records request has "
                             f"{list(QUERY_KEYS[:-1])} and [search] {list(SEARCH_KEYS)}")
    return make_query({**{k: v for k, v in data.items() if k != "search"}, **search})


def read_query(path: str | Path) -> RecordsQuery:
    """A records request from a TOML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"{path} cannot be read as a UTF-8 text file: {exc}") from exc
    return parse_query(text, str(path))


def _toml_string(value: str) -> str:
    # JSON's string escapes are TOML's (basic strings), with non-ASCII kept as written.
    return json.dumps(value, ensure_ascii=False)


def query_toml(query: RecordsQuery) -> str:
    """The query as the TOML file that reads back to it (written the same way every time)."""
    lines = [f"reference = {_toml_string(query.reference)}",
             f"title = {_toml_string(query.title)}",
             f"requester = {_toml_string(query.requester)}",
             f"received = {query.received.isoformat()}", "", "[search]"]
    if query.services:
        lines.append("services = [" + ", ".join(_toml_string(s) for s in query.services) + "]")
    if query.districts:
        lines.append("districts = [" + ", ".join(_toml_string(f"{layer}:{d}")
                                                 for layer, d in query.districts) + "]")
    if query.start:
        lines.append(f"from = {query.start.isoformat()}")
    if query.end:
        lines.append(f"to = {query.end.isoformat()}")
    if query.status:
        lines.append(f"status = {_toml_string(query.status)}")
    if query.text:
        lines.append(f"text = {_toml_string(query.text)}")
    if query.ids:
        lines.append("ids = [" + ", ".join(str(i) for i in query.ids) + "]")
    return "\n".join(lines) + "\n"


def check_query(store: Store, query: RecordsQuery) -> None:
    """Refuse service codes the catalogue does not hold (a typo would match nothing)."""
    known = store.catalogue.service_names()
    missing = [code for code in query.services if code not in known]
    if missing:
        raise InvalidRequest(f"services {missing} are not in the service catalogue")


def count_matching(store: Store, query: RecordsQuery, zone: ZoneInfo) -> int:
    """How many requests the query covers (what the staff page previews)."""
    check_query(store, query)
    return store.disclosure.count(query.search(zone))


# -- redaction -------------------------------------------------------------------------


@dataclass
class Redactions:
    """The redaction log being written: one entry per request, field and rule."""

    entries: dict[tuple[int, str, str], dict[str, Any]] = field(default_factory=dict)
    by_rule: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))

    def add(self, request_id: int, fld: str, rule: str, files: Sequence[str],
            count: int = 1) -> None:
        """Log ``count`` applications of ``rule`` to a field of a request."""
        key = (request_id, fld, rule)
        entry = self.entries.setdefault(key, {"request": request_id, "field": fld,
                                              "rule": rule, "files": list(files), "count": 0})
        entry["count"] += count
        self.by_rule[rule] += count

    def text(self, request_id: int, fld: str, value: str | None, files: Sequence[str]) -> str:
        """``value`` with identifiers replaced by tokens, each logged by its rule."""
        value = value or ""
        found = find_identifiers(value) if _MAYBE.search(value) else []
        if not found:
            return value
        parts, last = [], 0
        for f in found:
            parts += [value[last:f.start], TOKENS[f.kind]]
            last = f.end
            self.add(request_id, fld, _FINDING_RULES[f.kind], files)
        return "".join(parts + [value[last:]])

    def log(self, query: RecordsQuery) -> dict[str, Any]:
        """The redaction log document: rules with counts, then entries in request order."""
        return {"reference": query.reference,
                "rules": [{"rule": rule, "what": what, "count": self.by_rule[rule]}
                          for rule, what in RULES.items()],
                "entries": [self.entries[k] for k in sorted(self.entries)]}


def _media(red: Redactions, rid: int, url: str) -> str:
    url = (url or "").strip()
    if not url:
        return ""
    if not url.lower().startswith(("https://", "http://")) or find_identifiers(url) \
            or _CONTROL.search(url) or any(c in url for c in "<>\"' "):
        red.add(rid, "media_url", "media-link", REQUEST_FILES)
        return ""
    return url


def _public_request(red: Redactions, row: dict[str, Any], districts: dict[str, str],
                    reporters: dict[str, int], internal: int) -> dict[str, Any]:
    """One stored request as the package releases it, its redactions logged."""
    rid = int(row["id"])
    lon, lat = row["lon"], row["lat"]
    out = {k: row[k] for k in ("external_id", "service_code", "service_name", "agency",
                               "status", "zipcode", "duplicate_of", "reporter_count")}
    out["id"] = rid
    for k in ("requested_datetime", "updated_datetime", "closed_datetime",
              "expected_datetime"):
        out[k] = utc_text(row[k])
    if row["sensitive"]:
        if lon is not None and lat is not None:
            lon, lat = masked_point(float(lon), float(lat))
        withheld = [f for f in ("address", "description", "media_url") if row[f]]
        for fld in withheld or ["location"]:
            red.add(rid, fld, "sensitive-service", REQUEST_FILES)
        out.update(address="", description="", media_url="")
    else:
        out["address"] = red.text(rid, "address", row["address"], REQUEST_FILES)
        out["description"] = red.text(rid, "description", row["description"], REQUEST_FILES)
        out["media_url"] = _media(red, rid, row["media_url"])
    out["status_notes"] = red.text(rid, "status_notes", row["status_notes"], REQUEST_FILES)
    out["long"] = None if lon is None else round(float(lon), 7)
    out["lat"] = None if lat is None else round(float(lat), 7)
    out["districts"] = districts
    for fld, n in sorted(reporters.items()):
        red.add(rid, f"reporter.{fld}", "reporter-contact", REQUEST_FILES, n)
    if internal:
        red.add(rid, "notes", "internal-note", HISTORY_FILES, internal)
    return out


def _public_history(red: Redactions, entries: list[dict[str, Any]],
                    notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit entries and public notes as history events, staff names and reasons withheld."""
    events = []
    for e in entries:
        rid, detail = e["request_id"], e["detail"]
        if "why" in detail:
            red.add(rid, f"history.{e['action']}", "staff-reason", HISTORY_FILES)
        red.add(rid, "history.actor", "staff-name", HISTORY_FILES)
        shown = {k: detail.get(k) for k in PUBLIC_DETAIL.get(e["action"], ())}
        if e["action"] == "groups_merged":
            shown = {"from": detail.get("folded")}
        note = red.text(rid, f"history.{e['action']}.note", str(shown.pop("note", "") or ""),
                        HISTORY_FILES)
        events.append({"request_id": rid, "at": utc_text(e["at"]), "order": (0, e["entry"]),
                       "event": e["action"], "from": _plain(shown.get("from")),
                       "to": _plain(shown.get("to") or shown.get("into")), "note": note,
                       "by": "City staff"})
    for n in notes:
        rid = n["request_id"]
        red.add(rid, "history.public_note.actor", "staff-name", HISTORY_FILES)
        events.append({"request_id": rid, "at": utc_text(n["at"]), "order": (1, n["note"]),
                       "event": "public_note", "from": "", "to": "",
                       "note": red.text(rid, "history.public_note", n["body"], HISTORY_FILES),
                       "by": "City staff"})
    events.sort(key=lambda ev: (ev["request_id"], ev["at"], ev["order"]))
    for ev in events:
        del ev["order"]
    return events


def _plain(value: object) -> str:
    return "" if value is None else str(value)


# -- the package -----------------------------------------------------------------------


def _read(store: Store, query: RecordsQuery, zone: ZoneInfo,
          progress: Callable[[int], object] | None
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Redactions, list[str]]:
    """Every matching request and history event, redacted, a chunk at a time."""
    ids = store.disclosure.matching_ids(query.search(zone))
    active = store.disclosure.active_layers()
    red = Redactions()
    requests: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        districts = store.disclosure.districts(chunk, active)
        reporters = store.disclosure.reporter_fields(chunk)
        internal = store.disclosure.internal_note_counts(chunk)
        for row in store.disclosure.rows(chunk):
            rid = int(row["id"])
            requests.append(_public_request(red, row, districts.get(rid, {}),
                                            reporters.get(rid, {}), internal.get(rid, 0)))
        history += _public_history(red, store.disclosure.history(chunk),
                                   store.disclosure.public_notes(chunk))
        if progress is not None:
            progress(len(chunk))
    return requests, history, red, sorted(active)


def _zip_bytes(files: FileSet, received: date) -> bytes:
    """The files as a zip whose bytes depend on nothing but their names and contents."""
    stamp = ((received.year, received.month, received.day, 0, 0, 0)
             if received.year >= 1980 else (1980, 1, 1, 0, 0, 0))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def build_package(store: Store, query: RecordsQuery, path: str | Path, *, zone: ZoneInfo,
                  progress: Callable[[int], object] | None = None,
                  actor: str = "system") -> PackageSummary:
    """Answer a records request: write its package to ``path`` (a zip), audited.

    Building it twice on the same data gives the same bytes. Returns what it holds.

    Examples
    --------
    >>> query = read_query("foia-2026-0142.toml")  # doctest: +SKIP
    >>> build_package(store, query, "foia-2026-0142.zip", zone=zone).requests  # doctest: +SKIP
    118
    """
    check_query(store, query)
    requests, history, red, layers = _read(store, query, zone, progress)
    files = package_files(query, requests, history, red, layers, zone)
    data = _zip_bytes(files, query.received)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)
    summary = PackageSummary(query.reference, len(requests), len(history), dict(red.by_rule),
                             json.loads(files["manifest.json"])["files"],
                             hashlib.sha256(data).hexdigest(), len(data))
    store.audit.add("disclosure_exported", "disclosure", query.reference,
                    {"requests": summary.requests, "sha256": summary.sha256,
                     "bytes": summary.bytes, "query": query_toml(query)}, actor)
    LOGGER.info("records package %s: %s requests, %s bytes", query.reference,
                summary.requests, summary.bytes)
    return summary


def package_files(query: RecordsQuery, requests: list[dict[str, Any]],
                  history: list[dict[str, Any]], red: Redactions, layers: list[str],
                  zone: ZoneInfo) -> FileSet:
    """Every file of the package by name, the manifest last (it checksums the others)."""
    files: FileSet = {}
    files["requests.csv"] = requests_csv(requests, layers)
    files["history.csv"] = history_csv(history)
    files["requests.geojson"] = requests_geojson(requests, history)
    files["redaction_log.json"] = safe_json(red.log(query))
    files["query.toml"] = query_toml(query).encode("utf-8")
    search = query.search(zone)
    described = {
        "reference": query.reference, "title": query.title, "requester": query.requester,
        "received": query.received.isoformat(), "generator": f"geo311 {__version__}",
        "time_zone": str(zone), "query_file": "query.toml",
        "search": {"services": list(query.services),
                   "districts": [f"{layer}:{d}" for layer, d in query.districts],
                   "requested_from": utc_text(search.start) or None,
                   "requested_before": utc_text(search.end) or None,
                   "status": query.status, "text": query.text, "ids": list(query.ids)},
        "counts": {"requests": len(requests), "history_events": len(history),
                   "redactions": {rule: n for rule, n in red.by_rule.items()}},
        "district_layers": layers,
    }
    files["summary.html"] = summary_html(described, requests, files, RULES)
    listed = [{"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
              for name, data in files.items()]
    files["manifest.json"] = safe_json({**described, "files": listed,
                                          "note": "checksums of every other file of the "
                                                  "package (SHA-256)"})
    return files
