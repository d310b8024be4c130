"""Requests for records tests: reporters, notes, desk contacts, mail, media, answers, groups.

The prepared state ``records`` (on the shipped layers) holds ``N`` requests of three
services with different retention rules; most are closed now, so a run ``as of`` some
years ahead finds each kind due or not. ``snapshot`` reads every table retention may
touch with plain SQL, so tests compare states without going through geo311.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, insert, select, text

from geo311.intake import Context, submit
from geo311.model import Attribute, NewRequest, Reporter, RetentionRule, Service
from geo311.store import tables as t
from geo311.store.rows import as_utc, now_utc
from tests.prepared import prepared_state

SERVICES = [
    Service("SCB", "Sanitation Code Violation", "Sanitation",
            retention=RetentionRule(contact_years=2, text_years=5, media_years=3)),
    Service("PHF", "Pothole in Street", "Streets",
            attributes=(Attribute("details", "text", "Anything the crew should know?"),
                        Attribute("lane", "singlevaluelist", "Which lane?",
                                  values=(("curb", "Curb lane"), ("middle", "Middle"))),),
            retention=RetentionRule(contact_years=1, media_years=1)),
    Service("INF", "Information Only", "Info"),  # no rule: everything kept
]
N = 45
PHONE = "312-555-0142"
#: Written into free text by residents and staff; retention must not leave them behind.
TYPED = "call me at 773-555-0199 or write to zed@example.org"


@dataclass(frozen=True)
class Seeded:
    """What the seed made: request ids, the open ones, and the duplicate children."""

    ids: tuple[int, ...]
    open_ids: tuple[int, ...]
    children: tuple[int, ...]
    closed_at: datetime


def reporter(k: int) -> Reporter:
    return Reporter(first_name=f"Ada{k}", last_name="Zebrowski", email=f"ada{k}@example.com",
                    phone=PHONE if k % 2 else f"(312) 555-01{k:02d}", device_id=f"dev-{k}",
                    account_id=f"acct-{k}", language="es" if k % 3 == 0 else "")


def seed_records(store) -> Seeded:
    """``N`` requests over Chicago with everything personal retention removes."""
    store.catalogue.upsert(SERVICES)
    ctx = Context.from_store(store)
    ids, children = [], []
    for k in range(N):
        service = SERVICES[k % 3]
        # every ninth lands on the previous point of its service: a duplicate in its group
        spot = k - 3 if k % 9 == 8 else k
        made = submit(store, ctx, NewRequest(
            service.code, lon=-87.70 + (spot % 5) * 0.01, lat=41.85 + (spot // 5) * 0.01,
            description=f"request {k}: {TYPED}" if k % 4 else "",
            address=f"{100 + k} W Test St", reporter=reporter(k), source="phone",
            media_url=f"https://media.example.org/{k}.jpg" if k % 2 == 0 else "",
            attributes={"details": (f"gate code 4411, {TYPED}",), "lane": ("curb",)}
            if service.code == "PHF" else {}), actor="ana")
        ids.append(made.id)
        if made.duplicate_of is not None:
            children.append(made.id)
        store.notes.add(made.id, "internal" if k % 2 else "public",
                        f"Spoke to caller ({PHONE}) about {k}", author="ana")
        store.contacts.add(agent="ana", channel="phone", kind="request",
                           topic=f"caller Ada{k} asked about {service.name}",
                           request_id=made.id, callback="phone" if k % 2 else "email")
    open_ids = [i for n, i in enumerate(ids) if n % 7 == 6]
    for rid in ids:
        if rid not in open_ids:
            store.requests.set_status(rid, "closed", note=f"Done; questions to {PHONE}",
                                      actor="dina")
    n = t.notifications.c
    with store.engine.begin() as conn:  # a follower and a survey answer on every fifth
        for k, rid in enumerate(ids):
            if k % 5 or rid in open_ids:
                continue
            conn.execute(insert(t.followers).values(
                request_id=rid, email=f"fan{k}@example.net", status="confirmed",
                created=now_utc()))
            closing = conn.execute(select(n.id).where(n.request_id == rid, n.kind == "closed")
                                   ).scalars().first()
            conn.execute(insert(t.survey_answers).values(
                notification_id=closing, request_id=rid, rating=1 + k % 5 + k % 4,
                comment=f"Thanks, {TYPED}", answered=now_utc()))
    with store.engine.connect() as conn:
        closed_at = conn.execute(select(func.max(t.service_requests.c.closed_datetime))
                                 ).scalar_one()
    closed_at = as_utc(closed_at)
    return Seeded(tuple(ids), tuple(open_ids), tuple(children), closed_at)


@prepared_state("records", base="layered")
def _records(store, workdir: Path) -> Seeded:
    """A module's tests start from it with ``starts_from("records", FIXTURE, module=...)``."""
    return seed_records(store)


#: Tables (and their order) a snapshot reads: what retention may change, and what it must not.
SNAPSHOT = {
    "service_requests": "SELECT id, service_code, status, status_notes, description, address, "
                        "media_url, requested_datetime, closed_datetime, duplicate_of, "
                        "reporter_count, attributes, revision, ST_AsText(geom) "
                        "FROM service_requests ORDER BY id",
    "reporters": "SELECT id, request_id, first_name, last_name, email, phone, device_id, "
                 "account_id, language FROM reporters ORDER BY id",
    "contacts": "SELECT id, request_id, agent, channel, kind, topic, outcome, callback "
                "FROM contacts ORDER BY id",
    "request_notes": "SELECT id, request_id, visibility, body, author FROM request_notes "
                     "ORDER BY id",
    "notifications": "SELECT id, request_id, kind, email, detail, status FROM notifications "
                     "ORDER BY id",
    "request_audit": "SELECT id, action, entity_id, detail FROM audit_log "
                     "WHERE entity = 'request' ORDER BY id",
    "request_districts": "SELECT request_id, layer_version_id, district_id FROM "
                         "request_districts ORDER BY request_id, layer_version_id",
    "retention_applied": "SELECT request_id, kind FROM retention_applied "
                         "ORDER BY request_id, kind",
    "public_records": "SELECT request_id FROM public_records ORDER BY request_id",
    "followers": "SELECT id, request_id, email FROM followers ORDER BY id",
    "survey_answers": "SELECT id, request_id, rating, comment FROM survey_answers ORDER BY id",
}


def snapshot(store) -> dict[str, list[tuple]]:
    """Every row of the tables in ``SNAPSHOT``, as plain tuples."""
    with store.engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(text(sql))]
                for name, sql in SNAPSHOT.items()}


def personal_strings(k: int) -> list[str]:
    """What of reporter ``k`` must be gone from storage after the contact rule."""
    r = reporter(k)
    return [r.email, r.first_name, r.device_id, r.account_id, f"fan{k}@example.net"]
