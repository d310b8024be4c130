"""Reading what a public-records (FOIA) package may hold: matching requests and their history.

A records request names its requests by a saved search; this repository finds them and
reads, for a chunk of them, the public columns, their districts of active layers, the
status changes of the audit log and their public notes. What must never reach a package
is not read at all: internal notes and reporters are only counted (and which reporter
fields are filled), never their text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from geo311.errors import InvalidRequest
from geo311.model import STATUSES
from geo311.store import tables as t
from geo311.store.database import Database
from geo311.store.rows import stored_ids

#: Audit actions on a request that belong to its public history.
PUBLIC_ACTIONS = ("created", "status", "merged", "unmerged", "forwarded", "groups_merged")
#: Request ids a statement names at a time.
ID_CHUNK = 5000
#: Reporter fields a package withholds (counted per request, never read).
REPORTER_FIELDS = ("first_name", "last_name", "email", "phone", "device_id", "account_id")


@dataclass(frozen=True)
class RecordsSearch:
    """Which requests a records request covers; every field left empty does not narrow.

    ``districts`` are ``(layer, district id)`` of active layers (several of one layer
    are alternatives, layers all apply); ``start``/``end`` bound the request time (end
    excluded); ``text`` is found in the description or the address; ``ids`` narrow too.
    """

    service_codes: tuple[str, ...] = ()
    districts: tuple[tuple[str, str], ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    status: str | None = None
    text: str = ""
    ids: tuple[int, ...] = ()


def _like_pattern(words: str) -> str:
    escaped = words.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class Disclosures:
    """The reads of a public-records package, a chunk of requests at a time."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def active_layers(self) -> dict[str, int]:
        """Active layer name -> its active version id, by name."""
        lv, ly = t.layer_versions.c, t.layers.c
        with self.db.connect() as conn:
            rows = conn.execute(
                select(ly.name, lv.id).select_from(t.layer_versions.join(t.layers,
                                                                          ly.id == lv.layer_id))
                .where(lv.status == "active").order_by(ly.name)).all()
        return {str(name): int(version) for name, version in rows}

    def _where(self, stmt: Any, search: RecordsSearch) -> Any:
        """``stmt`` narrowed by every filter of ``search`` but its districts."""
        sr = t.service_requests.c
        if search.status is not None and search.status not in STATUSES:
            raise InvalidRequest(f"status was {search.status!r} but is expected to be in "
                                 f"{STATUSES}")
        if search.ids:
            stmt = stmt.where(sr.id.in_(stored_ids(search.ids)))
        if search.service_codes:
            stmt = stmt.where(sr.service_code.in_(list(search.service_codes)))
        if search.status is not None:
            stmt = stmt.where(sr.status == search.status)
        if search.start is not None:
            stmt = stmt.where(sr.requested_datetime >= search.start)
        if search.end is not None:
            stmt = stmt.where(sr.requested_datetime < search.end)
        if search.text.strip():
            pattern = _like_pattern(search.text.strip())
            stmt = stmt.where(or_(sr.description.ilike(pattern, escape="!"),
                                  sr.address.ilike(pattern, escape="!")))
        return stmt

    def _in_districts(self, conn: Connection, search: RecordsSearch) -> list[int] | None:
        """The requests in the search's districts (None: it names none), ascending.

        Read by the districts' index first, layer by layer: joined into the main query
        instead, a planner without statistics on a freshly loaded table walked every
        request of a service against the district (1.7 s for 123 requests of 60,000).
        """
        if not search.districts:
            return None
        active = self.active_layers()
        by_layer: dict[str, list[str]] = {}
        for layer, district in search.districts:
            if layer not in active:
                raise InvalidRequest(f"district layer was {layer!r} but is expected to be an "
                                     f"active layer: {sorted(active)}")
            by_layer.setdefault(layer, []).append(district)
        rd = t.request_districts.c
        inside: set[int] | None = None
        for layer, districts in sorted(by_layer.items()):
            found = {int(i) for i in conn.execute(select(rd.request_id).where(
                rd.layer_version_id == active[layer], rd.district_id.in_(sorted(districts))))
                .scalars()}
            inside = found if inside is None else inside & found
        return sorted(inside or ())

    def matching_ids(self, search: RecordsSearch) -> list[int]:
        """The ids of the requests ``search`` covers, ascending."""
        sr = t.service_requests.c
        with self.db.connect() as conn:
            inside = self._in_districts(conn, search)
            stmt = self._where(select(sr.id), search).order_by(sr.id)
            if inside is None:
                return [int(i) for i in conn.execute(stmt).scalars()]
            found: list[int] = []
            for start in range(0, len(inside), ID_CHUNK):
                chunk = inside[start:start + ID_CHUNK]
                found += [int(i) for i in conn.execute(
                    stmt.where(self.db.dialect.one_of(sr.id, chunk))).scalars()]
            return found

    def count(self, search: RecordsSearch) -> int:
        """How many requests ``search`` covers (the staff page's preview)."""
        if search.districts:
            return len(self.matching_ids(search))
        sr = t.service_requests.c
        with self.db.connect() as conn:
            return int(conn.execute(self._where(select(func.count(sr.id)), search))
                       .scalar_one())

    def rows(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The stored public columns of ``ids`` (with service name, agency, sensitivity)."""
        sr, sv = t.service_requests.c, t.services.c
        stmt = (select(sr.id, sr.external_id, sr.service_code, sv.name.label("service_name"),
                       sv.agency, sv.sensitive, sr.source, sr.status, sr.status_notes,
                       sr.description, sr.address, sr.zipcode, sr.media_url,
                       func.ST_X(sr.geom).label("lon"), func.ST_Y(sr.geom).label("lat"),
                       sr.requested_datetime, sr.updated_datetime, sr.closed_datetime,
                       sr.expected_datetime, sr.duplicate_of, sr.reporter_count)
                .select_from(t.service_requests.join(t.services, sv.code == sr.service_code))
                .where(self.db.dialect.one_of(sr.id, [int(i) for i in ids])).order_by(sr.id))
        with self.db.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings().all()]

    def districts(self, ids: Sequence[int], active: dict[str, int]
                  ) -> dict[int, dict[str, str]]:
        """Each request's district id in each active layer (by layer name)."""
        if not active:
            return {}
        rd = t.request_districts.c
        names = {version: layer for layer, version in active.items()}
        stmt = (select(rd.request_id, rd.layer_version_id, rd.district_id)
                .where(rd.layer_version_id.in_(sorted(names)))
                .where(self.db.dialect.one_of(rd.request_id, [int(i) for i in ids])))
        out: dict[int, dict[str, str]] = {}
        with self.db.connect() as conn:
            for rid, version, district in conn.execute(stmt).all():
                if district is not None:
                    out.setdefault(int(rid), {})[names[int(version)]] = str(district)
        return out

    def history(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The audit entries of ``ids`` that belong to a public history, oldest first.

        Each is ``request_id, at, action, detail`` (the detail parsed); who acted is not read.
        """
        a = t.audit_log.c
        stmt = (select(a.id, a.entity_id, a.at, a.action, a.detail)
                .where(a.entity == "request").where(a.action.in_(PUBLIC_ACTIONS))
                .where(self.db.dialect.one_of(a.entity_id, [str(int(i)) for i in ids]))
                .order_by(a.id))
        with self.db.connect() as conn:
            return [{"request_id": int(entity_id), "at": at, "action": str(action),
                     "detail": json.loads(detail or "{}"), "entry": int(entry)}
                    for entry, entity_id, at, action, detail in conn.execute(stmt).all()]

    def public_notes(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The public notes of ``ids`` (``request_id, note, at, body``), oldest first."""
        n = t.request_notes.c
        stmt = (select(n.id, n.request_id, n.created, n.body)
                .where(n.visibility == "public")
                .where(self.db.dialect.one_of(n.request_id, [int(i) for i in ids]))
                .order_by(n.id))
        with self.db.connect() as conn:
            return [{"request_id": int(rid), "note": int(note), "at": at, "body": str(body)}
                    for note, rid, at, body in conn.execute(stmt).all()]

    def internal_note_counts(self, ids: Sequence[int]) -> dict[int, int]:
        """How many internal notes each request has (their text is never read)."""
        n = t.request_notes.c
        stmt = (select(n.request_id, func.count(n.id)).where(n.visibility != "public")
                .where(self.db.dialect.one_of(n.request_id, [int(i) for i in ids]))
                .group_by(n.request_id))
        with self.db.connect() as conn:
            return {int(rid): int(k) for rid, k in conn.execute(stmt).all()}

    def reporter_fields(self, ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """Per request, how many reporters filled each personal field (values never read)."""
        rp = t.reporters.c
        filled = [func.sum(case((and_(rp[f].isnot(None), rp[f] != ""), 1), else_=0)).label(f)
                  for f in REPORTER_FIELDS]
        stmt = (select(rp.request_id, *filled)
                .where(self.db.dialect.one_of(rp.request_id, [int(i) for i in ids]))
                .group_by(rp.request_id))
        out: dict[int, dict[str, int]] = {}
        with self.db.connect() as conn:
            for row in conn.execute(stmt).mappings().all():
                counts = {f: int(row[f] or 0) for f in REPORTER_FIELDS if row[f]}
                if counts:
                    out[int(row["request_id"])] = counts
        return out
