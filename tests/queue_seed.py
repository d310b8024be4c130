"""Requests for work-queue tests: every filter has rows on both sides, with ties in time.

``queue_rows`` reads the same rows back with plain SQL, so tests compare the queue
against an independent computation over them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from geo311.intake import Context, submit
from geo311.model import NewRequest, Reporter, Service
from geo311.store import tables as t

SERVICES = [
    Service("SCB", "Sanitation Code Violation", "Sanitation", sla_days=3,
            agency="Streets and Sanitation"),
    Service("PHF", "Pothole in Street", "Streets", sla_hours=48, sla_clock="24x7",
            agency="Transportation"),
    Service("INF", "Information Only", "Info", agency="311 Center"),
]
CHANNELS = ("web", "phone", "walk-in", "email", "app", "open311")
WORDS = ("rats in the alley", "deep pothole", "graffiti on wall", "=cmd|' /C calc'!A0",
         "50% off_sale sign", "broken light")
REPORTER = Reporter(first_name="Adaline", last_name="Zebrowski", email="adaline@example.com",
                    phone="312-555-0142")


def seed_queue(store, n: int = 30, now: datetime | None = None) -> list[int]:
    """``n`` requests over Chicago, the newest first in id order reversed, with set SLA states.

    Every fifth is closed; every third is assigned to ``dina``; request times tie in pairs.
    """
    now = now or datetime.now(UTC)
    store.catalogue.upsert(SERVICES)
    ctx = Context.from_store(store)
    ids = []
    for k in range(n):
        when = now - timedelta(hours=10 * (k // 2) + 1)  # pairs share their time
        made = submit(store, ctx, NewRequest(
            SERVICES[k % 3].code, lon=-87.72 + (k % 6) * 0.015, lat=41.84 + (k // 6) * 0.012,
            description=f"{WORDS[k % len(WORDS)]} #{k}", address=f"{100 + k} W Test St",
            requested_datetime=when, source=CHANNELS[k % len(CHANNELS)], reporter=REPORTER))
        ids.append(made.id)
    sr = t.service_requests.c
    with store.engine.begin() as conn:
        for k, rid in enumerate(ids):
            requested = conn.execute(select(sr.requested_datetime).where(sr.id == rid)).scalar()
            requested = requested if requested.tzinfo else requested.replace(tzinfo=UTC)
            expected = (None, requested + timedelta(minutes=30), now + timedelta(days=1000),
                        now + timedelta(minutes=5))[k % 4]
            conn.execute(update(t.service_requests).where(sr.id == rid).values(
                expected_datetime=expected, status="closed" if k % 5 == 4 else "open",
                assignee="dina" if k % 3 == 0 else None))
    return ids


def queue_rows(store) -> list[dict]:
    """Every request's fields the queue filters on, read directly."""
    sr, sv, rd = t.service_requests.c, t.services.c, t.request_districts.c
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            select(sr.id, sr.service_code, sv.agency, sr.status, sr.source, sr.description,
                   sr.address, sr.assignee, sr.requested_datetime, sr.expected_datetime)
            .join(t.services, sv.code == sr.service_code)).mappings()]
        districts = conn.execute(select(rd.request_id, rd.layer_version_id,
                                        rd.district_id)).all()
    for r in rows:
        for key in ("requested_datetime", "expected_datetime"):
            if r[key] is not None and r[key].tzinfo is None:
                r[key] = r[key].replace(tzinfo=UTC)
        r["districts"] = {(v, d) for i, v, d in districts if i == r["id"]}
    return rows


def expected_sla(r, now):
    """The rule as the issue states it, written again: due time against now."""
    due = r["expected_datetime"]
    if r["status"] != "open" or due is None:
        return "none"
    if due <= now:
        return "breached"
    return "at_risk" if (due - now) < (due - r["requested_datetime"]) * 0.25 else "on_time"
