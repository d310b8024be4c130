"""Legal holds and records queries: which requests a records task is about.

A records query is a TOML file with a ``[query]`` table; other tables are left to the
task that reads the file (a disclosure may add its own), so one file format serves
holds and exports alike::

    [query]
    services = ["SCB"]                      # service codes
    districts = ["wards_2015_2023:12"]      # LAYER:ID (any of one layer, and every layer)
    from = 2012-01-01                       # requested on or after this local day
    to = 2012-12-31                         # requested on or before this local day
    text = "rats"                           # in description, address, status notes, notes
    reporter_email = "resident@example.org" # reporters matched as the desk matches callers
    reporter_phone = "312-555-0100"
    status = "closed"
    ids = [101, 102]

A hold keeps the ids its query found when it was placed, and the query (written in
this format) for the record.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from geo311.errors import InvalidRequest
from geo311.model import STATUSES, LegalHold, RecordQuery
from geo311.store import Store

LOGGER = logging.getLogger(__name__)

#: The keys of a ``[query]`` table.
QUERY_KEYS = ("services", "districts", "from", "to", "text", "reporter_email",
              "reporter_phone", "status", "ids")
_ID = re.compile(r"^\d{1,10}$")


def parse_ids(text: str) -> tuple[int, ...]:
    """Request ids written as ``1,2, 3`` (spaces or commas between them).

    Examples
    --------
    >>> parse_ids("12, 7 40")
    (7, 12, 40)
    """
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    bad = [p for p in parts if not _ID.match(p)]
    if bad:
        raise InvalidRequest(f"ids were {text[:80]!r} but are expected to be request numbers "
                             f"separated by commas ({bad[0][:20]!r} is not one)")
    if not parts:
        raise InvalidRequest("no request ids were given")
    return tuple(sorted({int(p) for p in parts}))


def _day(value: Any, key: str, where: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidRequest(f"{where}: {key} was {str(value)[:40]!r} but is expected to be a "
                             "day as YYYY-MM-DD") from exc


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{where}: {key} is expected to be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def parse_query(data: Mapping[str, Any], where: str = "query") -> RecordQuery:
    """A ``[query]`` table (or form values of the same names) as a ``RecordQuery``.

    Examples
    --------
    >>> parse_query({"services": ["SCB"], "from": "2012-01-01"}).start_day
    datetime.date(2012, 1, 1)
    """
    unknown = sorted(set(data) - set(QUERY_KEYS))
    if unknown:
        raise InvalidRequest(f"{where} has unknown keys {unknown}; known: {list(QUERY_KEYS)}")
    districts = []
    for text in _strings(data.get("districts", []), "districts", where):
        layer, sep, district = text.partition(":")
        if not sep or not layer.strip() or not district.strip():
            raise InvalidRequest(f"{where}: district {text[:60]!r} is expected as LAYER:ID")
        districts.append((layer.strip(), district.strip()))
    start, end = (_day(data.get(k), k, where) for k in ("from", "to"))
    if start and end and end < start:
        raise InvalidRequest(f"{where}: to was {end} but is expected on or after from {start}")
    status = data.get("status") or None
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"{where}: status was {status!r} but is expected to be in "
                             f"{STATUSES}")
    raw_ids = data.get("ids", [])
    if isinstance(raw_ids, str):
        ids = parse_ids(raw_ids) if raw_ids.strip() else ()
    elif isinstance(raw_ids, list) and all(isinstance(i, int) and not isinstance(i, bool)
                                           and i > 0 for i in raw_ids):
        ids = tuple(sorted(set(raw_ids)))
    else:
        raise InvalidRequest(f"{where}: ids is expected to be a list of request numbers")
    texts = {}
    for key in ("text", "reporter_email", "reporter_phone"):
        value = data.get(key, "")
        if not isinstance(value, str):
            raise InvalidRequest(f"{where}: {key} is expected to be a string")
        texts[key] = value.strip()[:200]
    return RecordQuery(ids=ids, services=_strings(data.get("services", []), "services", where),
                       districts=tuple(districts), start_day=start, end_day=end,
                       status=status, **texts)


def read_query_file(path: str | Path) -> RecordQuery:
    """The ``[query]`` table of a records query file; every problem is named."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidRequest(f"query file {str(path)!r} cannot be read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"{path.name} is not TOML: {exc}") from exc
    table = data.get("query")
    if not isinstance(table, dict):
        raise InvalidRequest(f"{path.name} has no [query] table (see `geo311 holds add --help`)")
    return parse_query(table, f"{path.name}: [query]")


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\U{ord(c):08x}" for c in escaped) + '"'


def query_toml(query: RecordQuery) -> str:
    """``query`` written as a query file (what a hold keeps; ``read_query_file`` reads it).

    Examples
    --------
    >>> print(query_toml(RecordQuery(services=("SCB",), text="rats")))
    [query]
    services = ["SCB"]
    text = "rats"
    <BLANKLINE>
    """
    lines = ["[query]"]
    if query.services:
        lines.append("services = [" + ", ".join(_toml_string(s) for s in query.services) + "]")
    if query.districts:
        lines.append("districts = [" + ", ".join(_toml_string(f"{layer}:{d}")
                                                 for layer, d in query.districts) + "]")
    if query.start_day:
        lines.append(f"from = {query.start_day.isoformat()}")
    if query.end_day:
        lines.append(f"to = {query.end_day.isoformat()}")
    for key in ("text", "reporter_email", "reporter_phone"):
        if getattr(query, key):
            lines.append(f"{key} = {_toml_string(getattr(query, key))}")
    if query.status:
        lines.append(f"status = {_toml_string(query.status)}")
    if query.ids:
        lines.append("ids = [" + ", ".join(str(i) for i in query.ids) + "]")
    return "\n".join(lines) + "\n"


def day_bounds(query: RecordQuery, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
    """The query's local days as UTC times: [start of ``from``, start of the day after ``to``)."""
    def start_of(day: date) -> datetime:
        return datetime.combine(day, time(), zone).astimezone(UTC)
    return (start_of(query.start_day) if query.start_day else None,
            start_of(query.end_day + timedelta(days=1)) if query.end_day else None)


def find_requests(store: Store, query: RecordQuery, zone: tzinfo) -> list[int]:
    """Ids of the requests ``query`` takes, ascending (service codes must be known).

    Examples
    --------
    >>> find_requests(store, read_query_file("claim.toml"), ZoneInfo("UTC"))  # doctest: +SKIP
    [3, 17, 40]
    """
    known = store.catalogue.service_names()
    unknown = [s for s in query.services if s not in known]
    if unknown:
        raise InvalidRequest(f"services {unknown} are not in the service catalogue")
    start, end = day_bounds(query, zone)
    return store.holds.matching_ids(query, start=start, end=end)


def place_hold(store: Store, *, reason: str, owner: str, zone: tzinfo,
               ids: Sequence[int] = (), query: RecordQuery | None = None) -> LegalHold:
    """Hold requests by id or by a query (the ids it finds now); audited.

    Examples
    --------
    >>> place_hold(store, reason="Claim 114", owner="rita", zone=UTC, ids=[7])  # doctest: +SKIP
    LegalHold(id=1, ...)
    """
    if (query is None) == (not ids):
        raise InvalidRequest("give either request ids or a query for a hold, not both")
    if query is None:
        return store.holds.place(ids, reason=reason, owner=owner)
    found = find_requests(store, query, zone)
    if not found:
        raise InvalidRequest("the query matched no request, so there is nothing to hold")
    return store.holds.place(found, reason=reason, owner=owner, query=query_toml(query))


def release_hold(store: Store, hold_id: int, *, by: str) -> LegalHold:
    """Release a hold; audited (its requests stay held by any other active hold)."""
    return store.holds.release(hold_id, by=by)


def hold_detail(hold: LegalHold) -> dict[str, Any]:
    """A hold as JSON-ready values (``holds list --json``)."""
    return {"id": hold.id, "reason": hold.reason, "owner": hold.owner,
            "created": hold.created.isoformat(), "requests": hold.request_count,
            "query": hold.query, "active": hold.active,
            "released": hold.released.isoformat() if hold.released else None,
            "released_by": hold.released_by}
