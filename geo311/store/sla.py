"""SLA bookkeeping: due times and pauses of requests' clocks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update

from geo311.errors import InvalidRequest
from geo311.model import (
    OPEN,
)
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database

LOGGER = logging.getLogger(__name__)


class SlaClocks:
    """Due times and pauses as stored."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def rows(self, codes: Sequence[str], *, missing_only: bool = False,
                 ids: Sequence[int] | None = None) -> list[tuple[int, str, datetime]]:
        """Id, service code and request time of requests of these services."""
        sr = t.service_requests.c
        stmt = select(sr.id, sr.service_code, sr.requested_datetime).where(
            sr.service_code.in_(list(codes))).order_by(sr.id)
        if missing_only:
            stmt = stmt.where(sr.expected_datetime.is_(None))
        if ids is not None:
            stmt = stmt.where(sr.id.in_([int(i) for i in ids]))
        with self.db.connect() as conn:
            return [(int(a), str(b), c) for a, b, c in conn.execute(stmt).all()]

    def set_expected(self, ids: Sequence[int],
                               values: Sequence[datetime | None]) -> None:
        """Write due times (``expected_datetime``) of many requests in one transaction."""
        if not len(ids):
            return
        sr = t.service_requests.c
        with self.db.begin() as conn:  # one statement, many parameter sets (executemany)
            conn.execute(update(t.service_requests).where(sr.id == bindparam("rid"))
                         .values(expected_datetime=bindparam("due", type_=t.UTCDateTime)),
                         [{"rid": int(i), "due": v} for i, v in zip(ids, values, strict=True)])

    def pauses_of(self, ids: Sequence[int]
                      ) -> dict[int, list[tuple[datetime, datetime | None]]]:
        """Pauses of these requests, oldest first, as (started, ended or None)."""
        p = t.sla_pauses.c
        out: dict[int, list[tuple[datetime, datetime | None]]] = {}
        with self.db.connect() as conn:
            for start in range(0, len(ids), 5000):
                chunk = [int(i) for i in ids[start:start + 5000]]
                for rid, s, e in conn.execute(
                        select(p.request_id, p.started, p.ended)
                        .where(p.request_id.in_(chunk)).order_by(p.id)):
                    out.setdefault(int(rid), []).append((s, e))
        return out

    def start_pause(self, request_id: int, reason: str, at: datetime, *,
                        actor: str = "system") -> None:
        """Open a pause of a request's clock; one at a time."""
        p = t.sla_pauses.c
        with self.db.begin() as conn:
            if conn.execute(select(p.id).where(p.request_id == request_id)
                            .where(p.ended.is_(None))).first():
                raise InvalidRequest(f"request {request_id} is paused already")
            conn.execute(insert(t.sla_pauses).values(request_id=request_id, reason=reason,
                                                     started=at, started_by=actor))
            write_audit(conn, "sla_paused", "request", request_id, {"reason": reason}, actor)

    def end_pause(self, request_id: int, at: datetime, *, actor: str = "system") -> None:
        """Close the open pause of a request's clock."""
        p = t.sla_pauses.c
        with self.db.begin() as conn:
            pause_id = conn.execute(select(p.id).where(p.request_id == request_id)
                                    .where(p.ended.is_(None))).scalar()
            if pause_id is None:
                raise InvalidRequest(f"request {request_id} is not paused")
            conn.execute(update(t.sla_pauses).where(p.id == pause_id)
                         .values(ended=at, ended_by=actor))
            write_audit(conn, "sla_resumed", "request", request_id, {}, actor)

    def open_pause_reasons(self, ids: Sequence[int]) -> dict[int, str]:
        """Why each of these requests' clocks stands still now (running ones left out)."""
        p = t.sla_pauses.c
        out: dict[int, str] = {}
        with self.db.connect() as conn:
            for start in range(0, len(ids), 5000):
                chunk = [int(i) for i in ids[start:start + 5000]]
                for rid, reason in conn.execute(select(p.request_id, p.reason).where(
                        p.request_id.in_(chunk)).where(p.ended.is_(None))):
                    out[int(rid)] = str(reason)
        return out

    def open_rows(self) -> list[tuple[int, str, datetime | None, bool]]:
        """Open group roots: id, service code, due time and whether paused now."""
        sr, p = t.service_requests.c, t.sla_pauses.c
        paused = select(p.request_id).where(p.ended.is_(None))
        stmt = select(sr.id, sr.service_code, sr.expected_datetime,
                      sr.id.in_(paused).label("paused")).where(sr.status == OPEN).where(
            sr.duplicate_of.is_(None)).order_by(sr.id)
        with self.db.connect() as conn:
            return [(int(a), str(b), c, bool(d)) for a, b, c, d in conn.execute(stmt).all()]
