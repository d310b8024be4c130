"""Retention as stored: which closed requests are due, and removing what each rule removes.

A batch is one transaction: its changes, one ``retention_applied`` row per request and
kind, and its audit entry commit together, so a run killed at any point leaves whole
batches behind and the next run carries on after them. A request under an active legal
hold is re-checked inside the transaction and left untouched. The request itself, its
service, status, dates, point, districts and duplicate links are never changed, so it
still counts wherever requests are counted.

What each kind removes: ``contact`` blanks the reporters' personal fields, clears the
desk contacts' topic and callback, replaces the outbox rows' addresses and deletes the
request's followers; ``text`` replaces descriptions, notes, free-text answers and survey
comments with ``REDACTED_TEXT`` and
masks identifiers in status notes (the city's own words, shown to the public) and in
their copies in the audit log and outbox; ``media`` empties the media link.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    update,
)

from geo311.model import RETENTION_KINDS, RetentionRule
from geo311.redaction import redact_text
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.holds import RECORDS_LOCK, held
from geo311.store.rows import now_utc

LOGGER = logging.getLogger(__name__)

#: What free text becomes once its retention period is over.
REDACTED_TEXT = "[removed under the retention rule]"
#: Answers of these datatypes are free text (the others are values of a list, numbers, dates).
FREE_TEXT_DATATYPES = ("string", "text")
#: The personal fields of a reporter; retention blanks them all.
REPORTER_FIELDS = ("first_name", "last_name", "email", "phone", "device_id", "account_id")
#: What an outbox row's address becomes (with the row's id, as the address is part of a key).
REMOVED_ADDRESS = "removed:"
_GIVEN_UP = "address removed under the retention rule"
#: Keys of audit and outbox details that copy a request's status notes (or staff reasons).
_TEXT_KEYS = {"audit_log": ("note", "why"), "notifications": ("note",)}
#: Text first (it masks outbox rows the contact rule then readdresses), so a dry run,
#: which counts each kind on rows as they are, and a run count alike.
_APPLY_ORDER = ("text", "media", "contact")


@dataclass(frozen=True)
class ClosedRow:
    """A closed request as retention sees it."""

    id: int
    service_code: str
    closed: datetime


class Retention:
    """Retention rules as the catalogue stores them, and the changes they make."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def rules(self) -> dict[str, RetentionRule]:
        """Each service's rule (retired services too: their requests stay), by code."""
        sv = t.services.c
        cols = [sv[f"retention_{k}_years"] for k in RETENTION_KINDS]
        with self.db.connect() as conn:
            return {code: RetentionRule(*years)
                    for code, *years in conn.execute(select(sv.code, *cols))}

    def closed_count(self) -> int:
        """How many requests are closed (what a run reads)."""
        sr = t.service_requests.c
        with self.db.connect() as conn:
            return int(conn.execute(select(func.count()).where(
                sr.closed_datetime.is_not(None))).scalar_one())

    def closed_after(self, after_id: int, limit: int) -> list[ClosedRow]:
        """The next ``limit`` closed requests with an id above ``after_id``, by id."""
        sr = t.service_requests.c
        with self.db.connect() as conn:
            rows = conn.execute(select(sr.id, sr.service_code, sr.closed_datetime).where(
                sr.closed_datetime.is_not(None), sr.id > after_id).order_by(sr.id).limit(limit))
            return [ClosedRow(int(i), str(code), closed) for i, code, closed in rows]

    def done_and_held(self, ids: Sequence[int]) -> tuple[set[tuple[int, str]], set[int]]:
        """Which (request, kind) were applied already, and which of ``ids`` are held now."""
        if not ids:
            return set(), set()
        ra, sr = t.retention_applied.c, t.service_requests.c
        with self.db.connect() as conn:
            done = {(int(i), str(k)) for i, k in conn.execute(select(ra.request_id, ra.kind).where(
                self.db.dialect.one_of(ra.request_id, list(ids))))}
            holding = {int(i) for i in conn.execute(select(sr.id).where(
                self.db.dialect.one_of(sr.id, list(ids)), held(sr.id))).scalars()}
        return done, holding

    def applied_count(self) -> dict[str, int]:
        """How many requests each kind has been applied to, ever."""
        ra = t.retention_applied.c
        with self.db.connect() as conn:
            found = dict(conn.execute(select(ra.kind, func.count()).group_by(ra.kind)).all())
        return {k: int(found.get(k, 0)) for k in RETENTION_KINDS}

    def measure(self, plan: Mapping[str, Sequence[int]]) -> dict[str, dict[str, int]]:
        """What ``apply`` would change for ``plan`` (kind -> request ids), changing nothing."""
        with self.db.connect() as conn:
            return {kind: _effects(conn, self.db, kind, list(ids), write=False)
                    for kind, ids in plan.items() if ids}

    def apply(self, plan: Mapping[str, Sequence[int]], *, run: str, as_of: datetime,
              actor: str = "system") -> tuple[dict[str, dict[str, int]], set[int]]:
        """Apply each kind to its requests in one transaction; audited.

        Returns the changes by kind and the ids skipped because a hold was placed since
        they were read.
        """
        counts: dict[str, dict[str, int]] = {}
        if not any(plan.values()):  # nothing due in this batch: no transaction, no lock
            return counts, set()
        now = now_utc()
        with self.db.begin() as conn:
            self.db.dialect.lock_key(conn, RECORDS_LOCK)  # no hold placed meanwhile
            every = sorted({i for ids in plan.values() for i in ids})
            sr = t.service_requests.c
            holding = {int(i) for i in conn.execute(select(sr.id).where(
                self.db.dialect.one_of(sr.id, every), held(sr.id))).scalars()} if every else set()
            ra = t.retention_applied.c
            done = {(int(i), str(k)) for i, k in conn.execute(select(ra.request_id, ra.kind)
                    .where(self.db.dialect.one_of(ra.request_id, every)))} if every else set()
            markers = []
            applied: dict[str, list[int]] = {}
            for kind in _APPLY_ORDER:
                ids = sorted(i for i in plan.get(kind, ()) if i not in holding
                             and (i, kind) not in done)
                if not ids:
                    continue
                applied[kind] = ids
                counts[kind] = _effects(conn, self.db, kind, ids, write=True)
                markers += [{"request_id": i, "kind": kind, "applied": now, "run": run}
                            for i in ids]
            if markers:
                changed = sorted({i for k in ("text", "media") for i in applied.get(k, ())})
                if changed:  # stored Open311 records still hold the old text and media
                    pr = t.public_records.c
                    conn.execute(delete(t.public_records).where(
                        self.db.dialect.one_of(pr.request_id, changed)))
                conn.execute(insert(t.retention_applied), markers)
                write_audit(conn, "retention_applied", "retention", run, {
                    "as_of": as_of.isoformat(), "kinds": {
                        k: {"ids": ids, **counts[k]} for k, ids in applied.items()}}, actor)
        return counts, holding

    def media_links(self) -> list[str]:
        """Every stored link to a photo kept by this service (``/media/`` in the URL)."""
        sr = t.service_requests.c
        with self.db.connect() as conn:
            return list(conn.execute(select(sr.media_url).distinct()
                                     .where(sr.media_url.like("%/media/%"))).scalars())

    def applied_to(self, request_id: int) -> dict[str, datetime]:
        """When each kind was applied to one request."""
        ra = t.retention_applied.c
        with self.db.connect() as conn:
            return {str(k): at for k, at in conn.execute(select(ra.kind, ra.applied).where(
                ra.request_id == int(request_id)))}


def _effects(conn: Connection, db: Database, kind: str, ids: list[int], *, write: bool
             ) -> dict[str, int]:
    """Rows changed (``write``) or that would be (not) by one kind over ``ids``."""
    one_of = db.dialect.one_of
    sr, rp, ct = t.service_requests.c, t.reporters.c, t.contacts.c
    n, rn, sa = t.notifications.c, t.request_notes.c, t.survey_answers.c
    steps: list[tuple[str, Any, Any, dict[str, Any] | None]] = []
    if kind == "contact":
        steps = [
            ("reporters", t.reporters, and_(one_of(rp.request_id, ids), or_(
                *[rp[f] != "" for f in REPORTER_FIELDS])), dict.fromkeys(REPORTER_FIELDS, "")),
            ("desk contacts", t.contacts, and_(one_of(ct.request_id, ids), or_(
                ct.topic != "", ct.callback != "none")), {"topic": "", "callback": "none"}),
            # the outbox keeps its rows (a survey answer hangs on its closing mail), not
            # their addresses; a row still waiting is given up
            ("notifications", t.notifications, and_(one_of(n.request_id, ids), not_(
                n.email.like(f"{REMOVED_ADDRESS}%"))), {
                "email": literal(REMOVED_ADDRESS, String) + cast(n.id, String),
                "status": case((n.status.in_(("pending", "sending")), "failed"),
                               else_=n.status),
                "last_error": case((n.status.in_(("pending", "sending")), _GIVEN_UP),
                                   else_=n.last_error)}),
            ("followers", t.followers, one_of(t.followers.c.request_id, ids), None),
        ]
    elif kind == "text":
        steps = [
            ("descriptions", t.service_requests, and_(one_of(sr.id, ids), sr.description != "",
                                                      sr.description != REDACTED_TEXT),
             {"description": REDACTED_TEXT}),
            ("notes", t.request_notes, and_(one_of(rn.request_id, ids), rn.body != REDACTED_TEXT),
             {"body": REDACTED_TEXT}),
            ("survey comments", t.survey_answers, and_(
                one_of(sa.request_id, ids), sa.comment != "", sa.comment != REDACTED_TEXT),
             {"comment": REDACTED_TEXT}),
        ]
    elif kind == "media":
        steps = [("media", t.service_requests, and_(one_of(sr.id, ids), sr.media_url != ""),
                  {"media_url": ""})]
    counts: dict[str, int] = {}
    for name, table, where, values in steps:
        if not write:
            counts[name] = int(conn.execute(select(func.count()).select_from(table)
                                            .where(where)).scalar_one())
        elif values is None:
            counts[name] = int(conn.execute(delete(table).where(where)).rowcount)
        else:
            counts[name] = int(conn.execute(update(table).where(where).values(**values)).rowcount)
    if kind == "contact":  # the desk's audit entries copy each contact's topic
        contact_ids = [str(i) for i in conn.execute(select(ct.id).where(
            one_of(ct.request_id, ids))).scalars()]
        counts["desk contacts"] += _rewrite_json(
            conn, t.audit_log, t.audit_log.c.detail, and_(
                t.audit_log.c.entity == "contact", one_of(t.audit_log.c.entity_id,
                                                          contact_ids)),
            _forget_topic, write) if contact_ids else 0
    if kind == "text":
        counts["status notes masked"] = _mask_status_notes(conn, db, ids, write)
        counts["answers"] = _redact_answers(conn, db, ids, write)
        counts["copies in audit and outbox"] = (
            _redact_json(conn, t.audit_log, and_(
                t.audit_log.c.entity == "request",
                one_of(t.audit_log.c.entity_id, [str(i) for i in ids])),
                _TEXT_KEYS["audit_log"], write)
            + _redact_json(conn, t.notifications, one_of(n.request_id, ids),
                           _TEXT_KEYS["notifications"], write))
    return counts


def _forget_topic(_row: Any, detail: dict[str, Any]) -> dict[str, Any]:
    return {k: "" if k == "topic" else v for k, v in detail.items()}


def _mask_status_notes(conn: Connection, db: Database, ids: list[int], write: bool) -> int:
    """Mask identifiers in status notes: the city's own words stay, a typed phone goes."""
    sr = t.service_requests.c
    changes = []
    for rid, notes in conn.execute(select(sr.id, sr.status_notes).where(
            db.dialect.one_of(sr.id, ids), sr.status_notes != "")).all():
        masked = redact_text(notes)
        if masked != notes:
            changes.append({"row": rid, "value": masked})
    if write and changes:
        conn.execute(update(t.service_requests).where(sr.id == bindparam("row"))
                     .values(status_notes=bindparam("value")), changes)
    return len(changes)


def _redact_json(conn: Connection, table: Any, where: Any, keys: Sequence[str],
                 write: bool) -> int:
    """Mask identifiers in the copies of status notes under ``keys`` of JSON ``detail``."""
    def redact(_row: Any, detail: dict[str, Any]) -> dict[str, Any]:
        return {k: redact_text(v) if k in keys and isinstance(v, str) else v
                for k, v in detail.items()}
    return _rewrite_json(conn, table, table.c.detail, where, redact, write)


def _redact_answers(conn: Connection, db: Database, ids: list[int], write: bool) -> int:
    """Replace free-text answers (``string``/``text`` questions) with the redacted text."""
    sv, sr = t.services.c, t.service_requests.c
    free: dict[str, set[str]] = {}
    for code, questions in conn.execute(select(sv.code, sv.attributes)):
        codes = {q["code"] for q in json.loads(questions or "[]")
                 if q.get("datatype") in FREE_TEXT_DATATYPES}
        if codes:
            free[code] = codes
    if not free:
        return 0
    service_of = dict(conn.execute(select(sr.id, sr.service_code).where(
        db.dialect.one_of(sr.id, ids), sr.attributes.is_not(None),
        sr.service_code.in_(sorted(free)))).all())
    if not service_of:
        return 0

    def redact(rid: Any, answers: dict[str, Any]) -> dict[str, Any]:
        texts = free[service_of[rid]]
        return {k: [REDACTED_TEXT if str(v) else v for v in values]
                if k in texts and isinstance(values, list) else values
                for k, values in answers.items()}
    return _rewrite_json(conn, t.service_requests, sr.attributes,
                         db.dialect.one_of(sr.id, sorted(service_of)), redact, write)


def _rewrite_json(conn: Connection, table: Any, column: Any, where: Any,
                  change: Callable[[Any, dict[str, Any]], dict[str, Any]], write: bool) -> int:
    """Apply ``change`` to the JSON objects in ``column`` of matching rows; count changes."""
    key = next(iter(table.primary_key.columns))
    changes = []
    for row_id, raw in conn.execute(select(key, column).where(where, column.is_not(None))):
        try:
            before = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(before, dict):
            continue
        after = change(row_id, before)
        if after != before:
            changes.append({"row": row_id, "value": json.dumps(after)})
    if write and changes:
        conn.execute(update(table).where(key == bindparam("row"))
                     .values({column.name: bindparam("value")}), changes)
    return len(changes)
