"""Crews and work orders as stored, and the open work dispatch plans from."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    func,
    insert,
    select,
    text,
    update,
)

from geo311.errors import InvalidRequest, NotFound
from geo311.model import (
    ACTIVE_WORK_STATUSES,
    OPEN,
    Crew,
    WorkOrder,
)
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.rows import now_utc, to_frame

LOGGER = logging.getLogger(__name__)


class Dispatch:
    """Crews, work orders and their notes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_crew(self, crew: Crew, *, actor: str = "system") -> Crew:
        """Store a new crew; raise ``InvalidRequest`` if the name is taken."""
        c = t.crews.c
        with self.db.begin() as conn:
            if conn.execute(select(c.id).where(c.name == crew.name)).first():
                raise InvalidRequest(f"crew {crew.name!r} exists already")
            crew_id = conn.execute(insert(t.crews).values(
                name=crew.name, service_groups=json.dumps(list(crew.service_groups)),
                layer=crew.layer, districts=json.dumps(list(crew.districts)),
                capacity_per_day=crew.capacity_per_day, calendar=crew.calendar,
                depot_lon=crew.depot_lon, depot_lat=crew.depot_lat, active=True,
                created=now_utc()).returning(c.id)).scalar_one()
            write_audit(conn, "crew_created", "crew", crew_id,
                        {"name": crew.name, "districts": list(crew.districts),
                         "service_groups": list(crew.service_groups)}, actor)
        return self.crew(int(crew_id))

    def crews(self, *, active_only: bool = True) -> list[Crew]:
        """Crews by id."""
        stmt = select(t.crews).order_by(t.crews.c.id)
        if active_only:
            stmt = stmt.where(t.crews.c.active)
        with self.db.connect() as conn:
            return [_crew_from_row(r) for r in conn.execute(stmt).mappings().all()]

    def crew(self, key: int | str) -> Crew:
        """One crew by id or name; raise ``NotFound``."""
        c = t.crews.c
        cond = c.id == key if isinstance(key, int) else c.name == key
        with self.db.connect() as conn:
            row = conn.execute(select(t.crews).where(cond)).mappings().first()
        if row is None:
            raise NotFound(f"crew {key!r} does not exist")
        return _crew_from_row(row)

    def set_crew_active(self, crew_id: int, active: bool, *, actor: str = "system") -> None:
        """Retire a crew (or bring it back); audited."""
        with self.db.begin() as conn:
            conn.execute(update(t.crews).where(t.crews.c.id == crew_id).values(active=active))
            write_audit(conn, "crew_enabled" if active else "crew_disabled", "crew", crew_id,
                        {}, actor)

    def update_crew(self, crew_id: int, changes: dict[str, Any], *,
                    actor: str = "system") -> Crew:
        """Change a crew's fields; audited with their old and new values.

        ``changes`` may name name, layer, districts, service_groups, capacity_per_day,
        calendar, depot_lon, depot_lat and active.
        """
        before = self.crew(int(crew_id))
        c = t.crews.c
        values: dict[str, Any] = {}
        changed: dict[str, Any] = {}
        for key, value in changes.items():
            old = getattr(before, key)
            if key in ("districts", "service_groups"):
                value, old = list(value), list(old)
                values[key] = json.dumps(value)
            else:
                values[key] = value
            if value != old:
                changed[key] = {"from": old, "to": value}
        if not changed:
            return before
        with self.db.begin() as conn:
            if "name" in changed and conn.execute(select(c.id).where(
                    c.name == values["name"]).where(c.id != before.id)).first():
                raise InvalidRequest(f"crew {values['name']!r} exists already")
            conn.execute(update(t.crews).where(c.id == before.id).values(**values))
            write_audit(conn, "crew_edited", "crew", before.id, changed, actor)
        LOGGER.info("crew %s edited: %s", before.name, sorted(changed))
        return self.crew(int(crew_id))

    def _open_roots(self, conn: Any, request_ids: Sequence[int]) -> list[int]:
        """The open group roots of ``request_ids``, none on an open work order already."""
        sr, wr, wo = t.service_requests.c, t.work_order_requests.c, t.work_orders.c
        if not request_ids:
            raise InvalidRequest("a work order needs at least one request")
        rows = conn.execute(select(sr.id, sr.status, sr.duplicate_of).where(
            sr.id.in_([int(i) for i in request_ids]))).all()
        missing = sorted(set(int(i) for i in request_ids) - {r.id for r in rows})
        if missing:
            raise NotFound(f"service requests {missing} do not exist")
        roots = sorted({r.duplicate_of or r.id for r in rows})
        states = dict(conn.execute(select(sr.id, sr.status).where(sr.id.in_(roots))).all())
        closed = [i for i in roots if states.get(i) != OPEN]
        if closed:
            raise InvalidRequest(f"requests {closed} are not open")
        taken = conn.execute(
            select(wr.request_id, wr.work_order_id).select_from(
                t.work_order_requests.join(t.work_orders, wo.id == wr.work_order_id))
            .where(wr.request_id.in_(roots)).where(wo.status.in_(ACTIVE_WORK_STATUSES))
        ).all()
        if taken:
            raise InvalidRequest(
                "requests already on an open work order: "
                + ", ".join(f"#{r} (work order {w})" for r, w in taken))
        return roots

    def add_work_order(self, crew_id: int, request_ids: Sequence[int], scheduled_date: str,
                       *, actor: str = "system") -> WorkOrder:
        """A work order for the groups of ``request_ids`` (open, not on another order)."""
        wo = t.work_orders.c
        self.crew(int(crew_id))
        now = now_utc()
        with self.db.begin() as conn:
            roots = self._open_roots(conn, request_ids)
            order_id = conn.execute(insert(t.work_orders).values(
                crew_id=int(crew_id), status="assigned", scheduled_date=scheduled_date,
                created=now, created_by=actor, updated=now).returning(wo.id)).scalar_one()
            conn.execute(insert(t.work_order_requests),
                         [{"work_order_id": order_id, "request_id": r} for r in roots])
            write_audit(conn, "created", "work_order", order_id,
                        {"crew_id": int(crew_id), "requests": roots, "date": scheduled_date},
                        actor)
            for r in roots:
                write_audit(conn, "assigned", "request", r,
                            {"work_order": order_id, "crew_id": int(crew_id)}, actor)
        return self.work_order(int(order_id))

    def add_stops(self, order_id: int, request_ids: Sequence[int], *,
                  actor: str = "system") -> WorkOrder:
        """Append the groups of ``request_ids`` to an open work order; audited."""
        order = self.work_order(order_id)
        if order.status not in ACTIVE_WORK_STATUSES:
            raise InvalidRequest(f"work order {order.id} is {order.status}; stops are added "
                                 "to open work orders only")
        with self.db.begin() as conn:
            roots = self._open_roots(conn, request_ids)
            conn.execute(insert(t.work_order_requests),
                         [{"work_order_id": order.id, "request_id": r} for r in roots])
            conn.execute(update(t.work_orders).where(t.work_orders.c.id == order.id)
                         .values(updated=now_utc(), route_position=None))
            write_audit(conn, "stops_added", "work_order", order.id, {"requests": roots},
                        actor)
            for r in roots:
                write_audit(conn, "assigned", "request", r,
                            {"work_order": order.id, "crew_id": order.crew_id}, actor)
        return self.work_order(order.id)

    def work_order(self, order_id: int) -> WorkOrder:
        """One work order with its requests and notes; raise ``NotFound``."""
        found = self.work_orders(ids=[int(order_id)])
        if not found:
            raise NotFound(f"work order {order_id} does not exist")
        return found[0]

    def work_orders(self, *, crew_id: int | None = None, status: Sequence[str] | None = None,
                    scheduled_date: str | None = None, ids: Sequence[int] | None = None,
                    limit: int = 5000) -> list[WorkOrder]:
        """Work orders matching filters, by date then route position then id."""
        wo, wr, wn = t.work_orders.c, t.work_order_requests.c, t.work_order_notes.c
        stmt = select(t.work_orders).order_by(wo.scheduled_date, wo.route_position, wo.id)
        if crew_id is not None:
            stmt = stmt.where(wo.crew_id == int(crew_id))
        if status is not None:
            stmt = stmt.where(wo.status.in_(list(status)))
        if scheduled_date is not None:
            stmt = stmt.where(wo.scheduled_date == scheduled_date)
        if ids is not None:
            stmt = stmt.where(wo.id.in_([int(i) for i in ids]))
        with self.db.connect() as conn:
            rows = conn.execute(stmt.limit(limit)).mappings().all()
            wanted = [r["id"] for r in rows]
            reqs: dict[int, list[int]] = {}
            notes: dict[int, list[tuple[datetime, str, str]]] = {}
            for start in range(0, len(wanted), 5000):
                chunk = wanted[start:start + 5000]
                for w, r in conn.execute(select(wr.work_order_id, wr.request_id).where(
                        wr.work_order_id.in_(chunk)).order_by(
                        wr.position.is_(None), wr.position, wr.request_id)):
                    reqs.setdefault(w, []).append(int(r))
                for w, at, author, body in conn.execute(
                        select(wn.work_order_id, wn.at, wn.author, wn.text)
                        .where(wn.work_order_id.in_(chunk)).order_by(wn.id)):
                    notes.setdefault(w, []).append((at, author, body))
        return [WorkOrder(
            id=r["id"], crew_id=r["crew_id"], status=r["status"],
            scheduled_date=r["scheduled_date"], route_position=r["route_position"],
            request_ids=tuple(reqs.get(r["id"], [])), resolution=r["resolution"],
            created=r["created"], created_by=r["created_by"], updated=r["updated"],
            started=r["started"], finished=r["finished"],
            notes=tuple(notes.get(r["id"], []))) for r in rows]

    def set_work_order_status(self, order_id: int, status: str, *, resolution: str = "",
                              actor: str = "system") -> WorkOrder:
        """Move a work order on (assigned, in_progress, done, cancelled); audited."""
        order = self.work_order(order_id)
        now = now_utc()
        values: dict[str, Any] = {"status": status, "updated": now}
        if status == "in_progress" and order.started is None:
            values["started"] = now
        if status in ("done", "cancelled"):
            values["finished"] = now
            values["resolution"] = resolution
        with self.db.begin() as conn:
            conn.execute(update(t.work_orders).where(t.work_orders.c.id == order.id)
                         .values(**values))
            write_audit(conn, "status", "work_order", order.id,
                        {"from": order.status, "to": status, "resolution": resolution}, actor)
        return self.work_order(order.id)

    def reassign_work_order(self, order_id: int, crew_id: int, *, scheduled_date: str | None
                            = None, actor: str = "system") -> WorkOrder:
        """Give a work order to another crew (the dispatcher's override); audited."""
        order = self.work_order(order_id)
        self.crew(int(crew_id))
        values: dict[str, Any] = {"crew_id": int(crew_id), "updated": now_utc(),
                                  "route_position": None}
        if scheduled_date:
            values["scheduled_date"] = scheduled_date
        with self.db.begin() as conn:
            conn.execute(update(t.work_orders).where(t.work_orders.c.id == order.id)
                         .values(**values))
            write_audit(conn, "reassigned", "work_order", order.id,
                        {"from_crew": order.crew_id, "to_crew": int(crew_id),
                         "date": values.get("scheduled_date", order.scheduled_date)}, actor)
        return self.work_order(order.id)

    def add_work_order_note(self, order_id: int, body: str, *, author: str) -> None:
        """Append a note to a work order; audited."""
        order = self.work_order(order_id)
        with self.db.begin() as conn:
            conn.execute(insert(t.work_order_notes).values(
                work_order_id=order.id, at=now_utc(), author=author, text=body))
            conn.execute(update(t.work_orders).where(t.work_orders.c.id == order.id)
                         .values(updated=now_utc()))
            write_audit(conn, "note", "work_order", order.id, {"length": len(body)}, author)

    def set_route_positions(self, positions: dict[int, int], *, actor: str = "system",
                            stops: dict[tuple[int, int], int] | None = None) -> None:
        """Store the visiting order of work orders (one crew's day); audited.

        ``stops`` maps ``(work_order_id, request_id)`` to the stop's place in the day.
        """
        wo, wr = t.work_orders.c, t.work_order_requests.c
        with self.db.begin() as conn:
            for order_id, pos in positions.items():
                conn.execute(update(t.work_orders).where(wo.id == int(order_id))
                             .values(route_position=int(pos)))
            for (order_id, request_id), pos in (stops or {}).items():
                conn.execute(update(t.work_order_requests).where(
                    wr.work_order_id == int(order_id)).where(wr.request_id == int(request_id))
                    .values(position=int(pos)))
            write_audit(conn, "route_ordered", "work_order", "",
                        {"positions": {str(k): v for k, v in positions.items()}}, actor)

    def open_days(self) -> dict[str, int]:
        """Open work orders (assigned or in progress) per scheduled day."""
        wo = t.work_orders.c
        with self.db.connect() as conn:
            rows = conn.execute(select(wo.scheduled_date, func.count()).where(
                wo.status.in_(ACTIVE_WORK_STATUSES)).group_by(wo.scheduled_date)
                .order_by(wo.scheduled_date)).all()
        return {str(d): int(n) for d, n in rows}

    def crew_loads(self) -> dict[int, int]:
        """Stops on open work orders (assigned or in progress), per crew id."""
        wo, wr = t.work_orders.c, t.work_order_requests.c
        with self.db.connect() as conn:
            rows = conn.execute(
                select(wo.crew_id, func.count()).select_from(
                    t.work_orders.join(t.work_order_requests, wr.work_order_id == wo.id))
                .where(wo.status.in_(ACTIVE_WORK_STATUSES)).group_by(wo.crew_id)).all()
        return {int(c): int(n) for c, n in rows}

    def frame(self, layer_version_id: int | None, *, district: str | None = None,
                       unassigned_only: bool = True,
                       ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Open located group roots with service group, due time, pause and district.

        Columns: id, service_code, group, lon, lat, requested, expected, paused,
        district_id (in ``layer_version_id``), work_order_id (None when unassigned).
        """
        sr, sv, rd = t.service_requests.c, t.services.c, t.request_districts.c
        wo, wr, p = t.work_orders.c, t.work_order_requests.c, t.sla_pauses.c
        active_orders = (select(wr.request_id, wr.work_order_id)
                         .select_from(t.work_order_requests.join(
                             t.work_orders, wo.id == wr.work_order_id))
                         .where(wo.status.in_(ACTIVE_WORK_STATUSES)).subquery())
        joined = t.service_requests.join(t.services, sv.code == sr.service_code).outerjoin(
            active_orders, active_orders.c.request_id == sr.id)
        district_col: Any = None
        if layer_version_id is not None:
            joined = joined.outerjoin(t.request_districts, (rd.request_id == sr.id)
                                      & (rd.layer_version_id == layer_version_id))
            district_col = rd.district_id
        paused = select(p.request_id).where(p.ended.is_(None))
        stmt = select(
            sr.id, sr.service_code, sv.group, func.ST_X(sr.geom), func.ST_Y(sr.geom),
            sr.requested_datetime, sr.expected_datetime, sr.id.in_(paused),
            district_col if district_col is not None else text("NULL"),
            active_orders.c.work_order_id,
        ).select_from(joined).where(sr.status == OPEN).where(sr.duplicate_of.is_(None)).where(
            sr.geom.isnot(None)).order_by(sr.id)
        if unassigned_only:
            stmt = stmt.where(active_orders.c.work_order_id.is_(None))
        if district is not None and district_col is not None:
            stmt = stmt.where(district_col == district)
        if ids is not None:
            stmt = stmt.where(sr.id.in_([int(i) for i in ids]))
        with self.db.connect() as conn:
            rows = conn.execute(stmt).all()
        frame = to_frame(rows, ["id", "service_code", "group", "lon", "lat", "requested",
                              "expected", "paused", "district_id", "work_order_id"])
        frame["paused"] = frame["paused"].astype(bool)
        return frame


def _crew_from_row(r: Any) -> Crew:
    return Crew(id=r["id"], name=r["name"], service_groups=tuple(json.loads(r["service_groups"])),
                layer=r["layer"], districts=tuple(json.loads(r["districts"])),
                capacity_per_day=r["capacity_per_day"], calendar=r["calendar"],
                depot_lon=r["depot_lon"], depot_lat=r["depot_lat"], active=bool(r["active"]))
