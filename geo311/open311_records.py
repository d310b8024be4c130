"""Open311's record cache: GET requests reads a page of stored records instead of building each.

A request's record is its extended Open311 record (``open311.public_record``, free
text redacted and a sensitive service masked, ``geo311.privacy``), stored as JSON by
``store.public_records`` with stamps that tell a current record from a stale one,
whichever code path made it stale: a reader builds a stale record again from the rows
and stores it for the next reader.
Nothing has to remember to invalidate.

A page of 1,000 stored records is one indexed query and a string join; building them
costs a districts query and 1,000 Python dicts more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection

from geo311 import open311
from geo311.jurisdictions import RoutingTable
from geo311.privacy import mask_record, redact_record
from geo311.store.public_records import REFRESH_BATCH, Built, PublicRecords


class RecordStore(Protocol):
    """What the record cache needs of a store."""

    @property
    def public_records(self) -> PublicRecords:
        """The store's ``public_records``."""

    @property
    def engine(self) -> Any:
        """The store's ``engine``."""


@dataclass(frozen=True)
class RecordPage:
    """A page of requests' public records, each the extended record as JSON text."""

    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def documents(self, *, extensions: bool) -> list[dict[str, Any]]:
        """The records as dicts; without ``extensions``, the strict GeoReport v2 fields."""
        records: list[dict[str, Any]] = orjson.loads("[" + ",".join(self.texts) + "]")
        if extensions:
            return records
        return [open311.strict_record(r) for r in records]

    def json(self, *, extensions: bool) -> bytes:
        """The page as the JSON document GET requests returns."""
        if extensions:  # the stored texts are the answer: no parsing, no writing
            return ("[" + ",".join(self.texts) + "]").encode("utf-8")
        return open311.to_json(self.documents(extensions=False))


#: The shape of a record; raised when its fields change, so older stored records are stale.
#: 3: descriptions and status notes are redacted (``geo311.privacy.redact_record``).
RECORD_FORMAT = 3


def stamp_tail(zone: tzinfo, routing: RoutingTable | None = None) -> str:
    """What follows the generation in a current record's stamp: zone and record format.

    A routing table that names agencies inside the city (``agency_responsible``) adds
    its digest, so editing it makes the records it changes stale.
    """
    tail = f"{zone_key(zone)}|{RECORD_FORMAT}"
    return f"{tail}|{routing.digest}" if routing is not None and routes_inside(routing) \
        else tail


def routes_inside(routing: RoutingTable | None) -> bool:
    """Whether ``routing`` has routes by district of the city (records show them)."""
    return routing is not None and any(r.layer for r in routing.routes)


def zone_key(zone: tzinfo) -> str:
    """The name a stamp gives ``zone`` (records keep the times they were written in)."""
    return str(getattr(zone, "key", None) or zone)


def request_page(store: RecordStore, zone: tzinfo, *, limit: int = 1000, offset: int = 0,
                 routing: RoutingTable | None = None, **filters: Any) -> RecordPage:
    """The public records of the requests ``store.search.find`` finds, newest first.

    Stored records are used while current; missing or stale ones are built from the
    rows, returned, and stored for the next reader.

    Examples
    --------
    >>> page = request_page(store, ZoneInfo("America/New_York"), bbox=box)  # doctest: +SKIP
    >>> page.json(extensions=True)  # doctest: +SKIP
    b'[{"service_request_id":"7",...}]'
    """
    found = store.public_records.page(stamp_tail(zone, routing), limit=limit, offset=offset,
                                      **filters)
    missing = [rid for rid, text in found if text is None]
    built: Built = {}
    if missing:  # built from the rows as they are now, after the page was read
        with store.engine.connect() as conn:
            built = build_records(store, conn, missing, zone, routing)
        store.public_records.save(built)
    return RecordPage([text if text is not None else built[rid][2] for rid, text in found])


def request_documents(
    store: RecordStore, zone: tzinfo, *, extensions: bool, limit: int = 1000, offset: int = 0,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Open311 records of the requests ``store.search.find`` finds, newest first.

    Public fields only, sensitive services masked; read from the stored records
    (``request_page``), which the web layer also writes out as JSON directly.
    """
    return request_page(store, zone, limit=limit, offset=offset,
                        **filters).documents(extensions=extensions)


def build_records(store: RecordStore, conn: Connection, ids: Sequence[int], zone: tzinfo,
                  routing: RoutingTable | None = None) -> Built:
    """Build the records of ``ids``: id -> (revision, stamp, JSON text).

    ``agency_responsible`` is the routing table's agency at the request's districts,
    else the catalogue's.
    """
    rows, districts, db_times = store.public_records.record_rows(
        conn, ids, getattr(zone, "key", None))
    out: Built = {}
    record_of = open311.public_record
    stamp_zone = stamp_tail(zone, routing)
    inside = routing if routes_inside(routing) else None
    for (rid, status, notes, name, code, description, agency, requested, updated,
         expected, address, zipcode, lat, lon, media_url, duplicate_of, reporters,
         sensitive, revision, generation, group) in rows:
        if inside is not None and agency:  # a withdrawn service keeps no agency
            routed = inside.for_districts(code, group or "", districts.get(rid, {}))
            agency = routed.name if routed is not None else agency
        if not db_times:
            requested, updated, expected = (open311.format_datetime(v, zone)
                                            for v in (requested, updated, expected))
        record = record_of(rid, status, notes, name, code, description, agency,
                           requested, updated, expected, address, zipcode, lat, lon,
                           media_url, duplicate_of, reporters, districts.get(rid, {}),
                           extensions=True)
        record = mask_record(record) if sensitive else redact_record(record)
        out[rid] = (revision, f"{generation}|{stamp_zone}",
                    orjson.dumps(record).decode("utf-8"))
    return out


def save_records(store: RecordStore, built: Built) -> int:
    """Store built records for the next reader; return how many were written."""
    return store.public_records.save(built)


def refresh_records(store: RecordStore, zone: tzinfo, routing: RoutingTable | None = None
                    ) -> tuple[int, int]:
    """Build and store every missing or stale record; return (built, already current).

    Readers do this lazily; running it after a bulk import, a layer activation or a
    catalogue change keeps the first readers of each area from paying for it.
    """
    stale, total = store.public_records.stale(stamp_tail(zone, routing))
    built = 0
    for start in range(0, len(stale), REFRESH_BATCH):
        with store.engine.connect() as conn:
            done = build_records(store, conn, stale[start:start + REFRESH_BATCH], zone,
                                 routing)
        built += store.public_records.save(done)
    return built, total - len(stale)
