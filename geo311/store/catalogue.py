"""The service catalogue as stored: services, their rules and sensitivity."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    func,
    insert,
    select,
    update,
)

from geo311.errors import NotFound
from geo311.model import (
    RETENTION_KINDS,
    Attribute,
    DuplicateRule,
    RetentionRule,
    Service,
)
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database

LOGGER = logging.getLogger(__name__)


class Catalogue:
    """The stored services."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(self, services: Sequence[Service]) -> int:
        """Add services, or update those whose code exists; return how many were new."""
        added = 0
        with self.db.begin() as conn:
            existing = set(conn.execute(select(t.services.c.code)).scalars())
            for s in services:
                values = _service_values(s)
                if s.code in existing:
                    conn.execute(
                        update(t.services).where(t.services.c.code == s.code).values(**values)
                    )
                else:
                    conn.execute(insert(t.services).values(code=s.code, active=True, **values))
                    existing.add(s.code)
                    added += 1
        return added

    def ensure(self, services: Sequence[Service]) -> list[str]:
        """Add only the services whose code is missing; return the codes added."""
        with self.db.begin() as conn:
            existing = set(conn.execute(select(t.services.c.code)).scalars())
            new = [s for s in services if s.code not in existing]
            if new:
                conn.execute(
                    insert(t.services),
                    [{"code": s.code, "active": True, **_service_values(s)} for s in new],
                )
        return [s.code for s in new]

    def services(self) -> list[Service]:
        """The active service catalogue, by code."""
        with self.db.connect() as conn:
            rows = conn.execute(
                select(t.services).where(t.services.c.active).order_by(t.services.c.code)
            ).mappings().all()
        return [_service_from_row(r) for r in rows]

    def service_names(self) -> dict[str, str]:
        """Every stored service's name by code, retired ones included (old requests keep them)."""
        sv = t.services.c
        with self.db.connect() as conn:
            return dict(conn.execute(select(sv.code, sv.name)).all())  # type: ignore[arg-type]

    def service(self, code: str) -> Service:
        """One service by code; raise ``NotFound``."""
        with self.db.connect() as conn:
            row = conn.execute(
                select(t.services).where(t.services.c.code == code).where(t.services.c.active)
            ).mappings().first()
        if row is None:
            raise NotFound(f"service_code {code!r} is not in the service catalogue")
        return _service_from_row(row)

    def sensitive_codes(self) -> set[str]:
        """Codes of services whose locations maps show only as an H3 cell centre."""
        with self.db.connect() as conn:
            return set(conn.execute(
                select(t.services.c.code).where(t.services.c.sensitive)).scalars())

    def set_sensitive(self, code: str, sensitive: bool, *, actor: str = "system") -> None:
        """Mark a service as sensitive (or not); audited."""
        self.service(code)
        with self.db.begin() as conn:
            conn.execute(update(t.services).where(t.services.c.code == code)
                         .values(sensitive=sensitive))
            write_audit(conn, "service_sensitive", "service", code, {"to": sensitive}, actor)


    def changed(self) -> datetime | None:
        """When the service catalogue was last loaded, from the audit log."""
        a = t.audit_log.c
        with self.db.connect() as conn:
            return conn.execute(  # type: ignore[no-any-return]
                select(func.max(a.at)).where(a.entity == "service")).scalar()

def _service_values(s: Service) -> dict[str, Any]:
    rule = s.duplicate_rule
    return {
        "name": s.name, "group": s.group, "description": s.description,
        "keywords": s.keywords, "sla_days": s.sla_days,
        "dedup_radius_m": rule.radius_m if rule else None,
        "dedup_window_days": rule.window_days if rule else None,
        "dedup_scope": rule.scope if rule else None,
        "dedup_only_open": rule.only_open if rule else None,
        "sla_hours": s.sla_hours, "sla_clock": s.sla_clock or None,
        "sla_calendar": s.sla_calendar or None,
        "agency": s.agency, "attributes": json.dumps([a.as_dict() for a in s.attributes]),
        "accepting": s.accepting,
        **{f"retention_{kind}_years": s.retention.years(kind) for kind in RETENTION_KINDS},
    }

def _service_from_row(r: Any) -> Service:
    rule = None
    if r["dedup_radius_m"] is not None:
        rule = DuplicateRule(radius_m=r["dedup_radius_m"], window_days=r["dedup_window_days"],
                             scope=r["dedup_scope"], only_open=bool(r["dedup_only_open"]))
    return Service(r["code"], r["name"], r["group"], r["description"], r["keywords"],
                   r["sla_days"], rule, sla_hours=r["sla_hours"],
                   sla_clock=r["sla_clock"] or "business", sla_calendar=r["sla_calendar"] or "",
                   agency=r["agency"], accepting=bool(r["accepting"]),
                   retention=RetentionRule(**{f"{k}_years": r[f"retention_{k}_years"]
                                              for k in RETENTION_KINDS}),
                   attributes=tuple(Attribute.from_dict(a) for a in json.loads(r["attributes"])))
