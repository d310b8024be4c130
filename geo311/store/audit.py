"""The audit log: what happened, when, by whom."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import (
    Connection,
    func,
    insert,
    select,
)

from geo311.store import tables as t
from geo311.store.database import Database
from geo311.store.rows import now_utc

LOGGER = logging.getLogger(__name__)


def write_audit(
    conn: Connection, action: str, entity: str, entity_id: object,
    detail: dict[str, Any] | None = None, actor: str = "system",
) -> None:
    """Record something that happened in the transaction of ``conn`` (every change is)."""
    conn.execute(
        insert(t.audit_log).values(
            at=now_utc(), actor=actor, action=action, entity=entity,
            entity_id=str(entity_id), detail=json.dumps(detail or {}, default=str),
        )
    )


class AuditLog:
    """Reading and writing the audit log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, action: str, entity: str, entity_id: object, detail: dict[str, Any] | None = None,
        actor: str = "system",
    ) -> None:
        """Record something that happened, outside any other change."""
        with self.db.begin() as conn:
            write_audit(conn, action, entity, entity_id, detail, actor)

    def entries(
        self, entity: str | None = None, entity_id: object | None = None
    ) -> list[dict[str, Any]]:
        """Audit rows, oldest first."""
        stmt = select(t.audit_log).order_by(t.audit_log.c.id)
        if entity is not None:
            stmt = stmt.where(t.audit_log.c.entity == entity)
        if entity_id is not None:
            stmt = stmt.where(t.audit_log.c.entity_id == str(entity_id))
        with self.db.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]

    def since(self, after_id: int, limit: int = 10_000) -> list[dict[str, Any]]:
        """Audit entries newer than ``after_id``, oldest first (at most ``limit``)."""
        a = t.audit_log.c
        with self.db.connect() as conn:
            rows = conn.execute(
                select(a.id, a.action, a.entity, a.entity_id, a.detail)
                .where(a.id > after_id).order_by(a.id).limit(limit)).mappings().all()
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]

    def last_change(self) -> int:
        """Id of the newest audit entry (0 when none).

        Every change to requests is audited, so cached map results stay exact while
        this does not move.
        """
        with self.db.connect() as conn:
            return int(conn.execute(select(func.max(t.audit_log.c.id))).scalar() or 0)
