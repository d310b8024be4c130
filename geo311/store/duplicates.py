"""Duplicate groups: links between requests, reporter counts, reclustering."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    DateTime,
    func,
    select,
    text,
    type_coerce,
    update,
)

from geo311.errors import InvalidRequest
from geo311.model import (
    OPEN,
)
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.outbox import enqueue
from geo311.store.requests import Requests
from geo311.store.rows import now_utc, to_frame

LOGGER = logging.getLogger(__name__)


class Duplicates:
    """Who is a duplicate of whom."""

    def __init__(self, db: Database, requests: Requests) -> None:
        self.db = db
        self.requests = requests

    def mark(self, child_id: int, parent_id: int, *, actor: str = "system",
             why: str = "") -> None:
        """Move one request into the group of another (staff's "move"); audited, reversible.

        A request that leads a group of its own cannot be moved alone: merge the groups.
        """
        if child_id == parent_id:
            raise InvalidRequest(f"request {child_id} cannot be a duplicate of itself")
        child, parent = self.requests.get(child_id), self.requests.get(parent_id)
        root = parent.duplicate_of or parent.id
        if root == child.id:
            raise InvalidRequest(f"request {parent_id} is already in the group of {child_id}")
        if child.duplicate_of is None and child.reporter_count > 1:
            raise InvalidRequest(
                f"request {child_id} leads a group of {child.reporter_count}; "
                "merge the two groups instead"
            )
        sr = t.service_requests.c
        with self.db.begin() as conn:
            conn.execute(update(t.service_requests).where(sr.id == child.id)
                         .values(duplicate_of=root, updated_datetime=now_utc()))
            self._recount(conn, [root, child.duplicate_of])
            write_audit(conn, "merged", "request", child.id,
                        {"into": root, "from": child.duplicate_of, **_why(why)}, actor)
            enqueue(conn, "merged", child.id, event=str(root), detail={"into": root})
        LOGGER.info("moved #%s into group #%s", child.id, root)

    def unmerge(self, child_id: int, *, actor: str = "system", why: str = "") -> None:
        """Take a request out of its group: it becomes a group of its own; audited."""
        child = self.requests.get(child_id)
        if child.duplicate_of is None:
            raise InvalidRequest(f"request {child_id} is not a duplicate of another request")
        sr = t.service_requests.c
        with self.db.begin() as conn:
            conn.execute(update(t.service_requests).where(sr.id == child.id)
                         .values(duplicate_of=None, updated_datetime=now_utc()))
            self._recount(conn, [child.duplicate_of, child.id])
            write_audit(conn, "unmerged", "request", child.id,
                        {"from": child.duplicate_of, **_why(why)}, actor)
        LOGGER.info("unmerged #%s from group #%s", child.id, child.duplicate_of)

    def merge_groups(self, first_id: int, second_id: int, *, actor: str = "system",
                     why: str = "") -> int:
        """Join two groups under the older root; every member follows. Returns that root."""
        a, b = self.requests.get(first_id), self.requests.get(second_id)
        roots = sorted({a.duplicate_of or a.id, b.duplicate_of or b.id})
        if len(roots) == 1:
            raise InvalidRequest(f"requests {first_id} and {second_id} are in one group already")
        heads = sorted((self.requests.get(r) for r in roots),
                       key=lambda r: (r.requested_datetime, r.id))
        keep, fold = heads[0].id, heads[1].id
        sr = t.service_requests.c
        with self.db.begin() as conn:
            members = list(conn.execute(select(sr.id).where(
                (sr.id == fold) | (sr.duplicate_of == fold)).order_by(sr.id)).scalars())
            conn.execute(update(t.service_requests)
                         .where((sr.id == fold) | (sr.duplicate_of == fold))
                         .values(duplicate_of=keep, updated_datetime=now_utc()))
            self._recount(conn, [keep, fold])
            write_audit(conn, "groups_merged", "request", keep, {"folded": fold, **_why(why)},
                        actor)
            for member in members:
                enqueue(conn, "merged", member, event=str(keep), detail={"into": keep})
        LOGGER.info("merged group #%s into #%s", fold, keep)
        return keep

    def _recount(self, conn: Connection, ids: Sequence[int | None]) -> None:
        """Reporter count = the request itself plus the duplicates linked to it."""
        sr = t.service_requests.c
        child = t.service_requests.alias("child")
        wanted = [i for i in ids if i is not None]
        conn.execute(
            update(t.service_requests).where(sr.id.in_(wanted)).values(
                reporter_count=1 + select(func.count()).select_from(child)
                .where(child.c.duplicate_of == sr.id).scalar_subquery()
            )
        )

    def frame(self, *, since: datetime | None = None) -> pd.DataFrame:
        """Located requests for reclustering: id, lon, lat, service_code, requested, closed."""
        sr = t.service_requests.c
        # Raw times (no per-value conversion): pandas reads them as UTC in one pass.
        stmt = select(
            sr.id, func.ST_X(sr.geom), func.ST_Y(sr.geom), sr.service_code,
            type_coerce(sr.requested_datetime, DateTime()),
            type_coerce(sr.closed_datetime, DateTime()),
        ).where(sr.geom.isnot(None)).order_by(sr.id)
        if since is not None:
            stmt = stmt.where(sr.requested_datetime >= since)
        with self.db.connect() as conn:
            frame = to_frame(conn.execute(stmt).all(),
                           ["id", "lon", "lat", "service_code", "requested", "closed"])
        frame["requested"] = pd.to_datetime(frame["requested"], utc=True)
        frame["closed"] = pd.to_datetime(frame["closed"], utc=True)
        return frame

    def set_groups(
        self, ids: Sequence[int], duplicate_of: Sequence[int | None], *, actor: str = "system",
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Rewrite the group links of ``ids`` and the reporter counts of their roots.

        One transaction and one audit entry; returns how many links changed.
        """
        links = pd.DataFrame({"id": np.asarray(ids, dtype=np.int64),
                              "parent": pd.array(duplicate_of, dtype="Int64")})
        sr = t.service_requests.c
        with self.db.begin() as conn:
            before = to_frame(conn.execute(
                select(sr.id, sr.duplicate_of).where(sr.duplicate_of.isnot(None))).all(),
                ["id", "old"])
            conn.execute(text("CREATE TEMPORARY TABLE dedup_links (id INTEGER PRIMARY KEY, "
                              "parent INTEGER)"))
            conn.execute(text("INSERT INTO dedup_links (id, parent) VALUES (:id, :parent)"),
                         [{"id": int(i), "parent": None if pd.isna(p) else int(p)}
                          for i, p in zip(links["id"], links["parent"], strict=True)])
            conn.execute(text(
                "UPDATE service_requests SET duplicate_of = (SELECT parent FROM dedup_links "
                "WHERE dedup_links.id = service_requests.id) "
                "WHERE id IN (SELECT id FROM dedup_links)"))
            conn.execute(text(
                "UPDATE service_requests SET reporter_count = 1 + (SELECT count(*) FROM "
                "service_requests AS child WHERE child.duplicate_of = service_requests.id) "
                "WHERE id IN (SELECT id FROM dedup_links) OR id IN "
                "(SELECT parent FROM dedup_links WHERE parent IS NOT NULL)"))
            conn.execute(text("DROP TABLE dedup_links"))
            merged = links.merge(before, on="id", how="left")
            changed = int((merged["parent"].astype("Float64").fillna(-1)
                           != merged["old"].astype("Float64").fillna(-1)).sum())
            write_audit(conn, "duplicates_recomputed", "request", "", {
                "requests": len(links), "children": int(links["parent"].notna().sum()),
                "changed": changed, **(detail or {})}, actor)
        return changed

    def members(self, root: int) -> list[int]:
        """Every request of one group, open or closed: the root and its duplicates, by id."""
        sr = t.service_requests.c
        with self.db.connect() as conn:
            return [int(i) for i in conn.execute(
                select(sr.id).where((sr.id == int(root)) | (sr.duplicate_of == int(root)))
                .order_by(sr.id)).scalars()]

    def group_members(self, roots: Sequence[int]) -> list[int]:
        """Open requests of these groups: the roots and their duplicates, by id."""
        sr = t.service_requests.c
        wanted = [int(r) for r in roots]
        with self.db.connect() as conn:
            return [int(i) for i in conn.execute(
                select(sr.id).where(sr.id.in_(wanted) | sr.duplicate_of.in_(wanted))
                .where(sr.status == OPEN).order_by(sr.id)).scalars()]


def _why(why: str) -> dict[str, str]:
    """The reason staff gave, for an audit entry (nothing when none was given)."""
    return {"why": why} if why else {}
