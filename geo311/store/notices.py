"""Area notices: store, read, end, and acknowledge the requests of an incident under one."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import shapely
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import Connection, and_, func, insert, or_, select, update

from geo311.errors import NotFound
from geo311.model import OPEN, Notice
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.outbox import enqueue
from geo311.store.rows import now_utc

LOGGER = logging.getLogger(__name__)


class Notices:
    """The notices posted for areas of the city, and the requests acknowledged under them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, *, severity: str, messages: Mapping[str, str], area: Any, area_desc: str,
            starts: datetime, ends: datetime | None, suspended: Sequence[str] = (),
            layer: str = "", districts: Sequence[str] = (), actor: str = "system") -> Notice:
        """Store one checked notice with its messages; audited.

        Examples
        --------
        >>> store.notices.add(severity="Severe", messages={"en": "Flooding"},  # doctest: +SKIP
        ...                   area=polygon, area_desc="drawn", starts=now, ends=None)
        """
        if area.geom_type == "Polygon":
            area = shapely.MultiPolygon([area])
        min_lon, min_lat, max_lon, max_lat = (float(v) for v in area.bounds)
        now = now_utc()
        with self.db.begin() as conn:
            notice_id = conn.execute(insert(t.notices).values(
                severity=severity, area_desc=area_desc, geom=from_shape(area, srid=4326),
                min_lon=min_lon, min_lat=min_lat, max_lon=max_lon, max_lat=max_lat,
                starts=starts, ends=ends, suspended=json.dumps(list(suspended)),
                layer=layer, districts=json.dumps(list(districts)), created=now,
                created_by=actor, ended_by="").returning(t.notices.c.id)).scalar_one()
            conn.execute(insert(t.notice_messages), [
                {"notice_id": notice_id, "language": lang, "text": text}
                for lang, text in sorted(messages.items())])
            write_audit(conn, "posted", "notice", notice_id,
                        {"severity": severity, "area": area_desc, "starts": starts,
                         "ends": ends, "suspended": list(suspended),
                         "languages": sorted(messages)}, actor)
        LOGGER.info("notice #%s posted by %s (%s, %s)", notice_id, actor, severity, area_desc)
        return self.get(notice_id)

    def get(self, notice_id: int) -> Notice:
        """One notice; ``NotFound`` when there is none of that id."""
        with self.db.connect() as conn:
            found = self._read(conn, t.notices.c.id == int(notice_id))
        if not found:
            raise NotFound(f"notice {notice_id} does not exist")
        return found[0]

    def all(self) -> list[Notice]:
        """Every notice, newest first."""
        with self.db.connect() as conn:
            return self._read(conn, None)

    def in_force(self, at: datetime | None = None, *, lon: float | None = None,
                 lat: float | None = None) -> list[Notice]:
        """Notices in force at ``at`` (default now) whose box holds the point, if one is given.

        The box only narrows: whether the point is inside the area is the caller's to
        decide (``geo311.notices.notices_at``).
        """
        n = t.notices.c
        at = at or now_utc()
        where = and_(n.starts <= at, or_(n.ends.is_(None), n.ends > at))
        if lon is not None and lat is not None:
            where = and_(where, n.min_lon <= lon, n.max_lon >= lon, n.min_lat <= lat,
                         n.max_lat >= lat)
        with self.db.connect() as conn:
            return self._read(conn, where)

    def unended(self, at: datetime | None = None) -> list[Notice]:
        """Notices not ended at ``at`` (default now): in force or still to come."""
        n = t.notices.c
        with self.db.connect() as conn:
            return self._read(conn, or_(n.ends.is_(None), n.ends > (at or now_utc())))

    def version(self) -> tuple[str, int, int, str, int]:
        """What changes whenever a notice is posted or ended: a cache of notices checks it.

        The database's URL, how many notices there are, the newest id and creation time,
        and the newest audit entry about a notice (ending one writes it).
        """
        n, a = t.notices.c, t.audit_log.c
        stmt = select(func.count(n.id), func.max(n.id), func.max(n.created),
                      select(func.max(a.id)).where(a.entity == "notice").scalar_subquery())
        with self.db.connect() as conn:
            count, newest, created, audited = conn.execute(stmt).one()
        return (self.db.engine.url.render_as_string(), int(count or 0), int(newest or 0),
                str(created or ""), int(audited or 0))

    def end(self, notice_id: int, *, at: datetime | None = None,
            actor: str = "system") -> Notice:
        """End a notice now (or at ``at``); audited. An ended notice stays listed."""
        current = self.get(notice_id)
        at = at or now_utc()
        with self.db.begin() as conn:
            conn.execute(update(t.notices).where(t.notices.c.id == current.id)
                         .values(ends=at, ended_by=actor))
            write_audit(conn, "ended", "notice", current.id,
                        {"was_to_end": current.ends, "ended": at}, actor)
        LOGGER.info("notice #%s ended by %s", current.id, actor)
        return self.get(current.id)

    def open_requests(self, box: tuple[float, float, float, float], codes: Sequence[str],
                      since: datetime, until: datetime) -> list[tuple[int, float, float]]:
        """Open requests of ``codes`` in a lon/lat box, requested in [since, until].

        Returns (id, lon, lat); the caller keeps those inside the area.
        """
        sr = t.service_requests.c
        stmt = (select(sr.id, func.ST_X(sr.geom), func.ST_Y(sr.geom))
                .where(self.db.dialect.within_box(box))
                .where(sr.status == OPEN).where(sr.service_code.in_(list(codes)))
                .where(sr.requested_datetime >= since).where(sr.requested_datetime <= until)
                .order_by(sr.id))
        with self.db.connect() as conn:
            return [(int(i), float(x), float(y)) for i, x, y in conn.execute(stmt)]

    def acknowledged(self, notice_id: int) -> list[int]:
        """Ids of the requests acknowledged under a notice, in order."""
        nr = t.notice_requests.c
        with self.db.connect() as conn:
            return [int(i) for i in conn.execute(
                select(nr.request_id).where(nr.notice_id == int(notice_id))
                .order_by(nr.request_id)).scalars()]

    def acknowledge(self, notice_id: int, request_ids: Sequence[int], note: str, *,
                    actor: str = "system") -> list[int]:
        """Group open requests under a notice and tell their reporters, in one transaction.

        Each request not yet acknowledged under it gets ``note`` as its public status
        note and among its public notes, an audit entry, and a ``status`` row in the
        outbox for its reporters (as a status change writes one). Requests already
        acknowledged, or closed since they were chosen, are left alone, so running it
        again changes nothing. Returns the ids acknowledged now.
        """
        notice = self.get(notice_id)
        sr, nr = t.service_requests.c, t.notice_requests.c
        wanted = sorted({int(i) for i in request_ids})
        now = now_utc()
        done: list[int] = []
        with self.db.begin() as conn:
            for chunk in _chunks(wanted, self.db.dialect.lookup_chunk):
                had = set(conn.execute(select(nr.request_id).where(
                    nr.notice_id == notice.id, nr.request_id.in_(chunk))).scalars())
                fresh = [int(i) for i in conn.execute(
                    select(sr.id).where(sr.id.in_(chunk), sr.status == OPEN)).scalars()
                    if int(i) not in had]
                if fresh:
                    self._acknowledge_chunk(conn, notice.id, sorted(fresh), note, actor, now)
                    done += sorted(fresh)
            write_audit(conn, "acknowledged_requests", "notice", notice.id,
                        {"count": len(done), "note": note}, actor)
        LOGGER.info("acknowledged %s requests under notice #%s (%s)", len(done), notice.id,
                    actor)
        return done

    def _acknowledge_chunk(self, conn: Connection, notice_id: int, ids: list[int], note: str,
                           actor: str, now: datetime) -> None:
        sr = t.service_requests.c
        conn.execute(insert(t.notice_requests), [
            {"notice_id": notice_id, "request_id": i, "acknowledged": now, "actor": actor}
            for i in ids])
        conn.execute(update(t.service_requests).where(sr.id.in_(ids))
                     .values(status_notes=note, updated_datetime=now))
        conn.execute(insert(t.request_notes), [
            {"request_id": i, "visibility": "public", "body": note, "author": actor,
             "created": now} for i in ids])
        for i in ids:
            write_audit(conn, "acknowledged", "request", i, {"notice": notice_id,
                                                             "note": note}, actor)
            enqueue(conn, "status", i, event=f"notice:{notice_id}",
                    detail={"status": OPEN, "note": note})

    def _read(self, conn: Connection, where: Any) -> list[Notice]:
        n, m = t.notices.c, t.notice_messages.c
        stmt = select(t.notices).order_by(n.id.desc())
        if where is not None:
            stmt = stmt.where(where)
        rows = conn.execute(stmt).mappings().all()
        if not rows:
            return []
        texts: dict[int, dict[str, str]] = {}
        for notice_id, lang, text in conn.execute(
                select(m.notice_id, m.language, m.text)
                .where(m.notice_id.in_([r["id"] for r in rows]))
                .order_by(m.notice_id, m.language)):
            texts.setdefault(int(notice_id), {})[str(lang)] = str(text)
        return [Notice(
            id=int(r["id"]), severity=r["severity"], messages=texts.get(int(r["id"]), {}),
            area=to_shape(r["geom"]), area_desc=r["area_desc"], starts=r["starts"],
            ends=r["ends"], suspended=tuple(json.loads(r["suspended"] or "[]")),
            layer=r["layer"], districts=tuple(json.loads(r["districts"] or "[]")),
            created=r["created"], created_by=r["created_by"], ended_by=r["ended_by"])
            for r in rows]


def _chunks(values: list[int], size: int) -> list[list[int]]:
    return [values[i:i + size] for i in range(0, len(values), size)]
