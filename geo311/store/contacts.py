"""Call-taker contacts, and a caller's earlier requests found by phone or email."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Integer, and_, cast, func, insert, or_, select, true

from geo311.errors import InvalidRequest, NotFound
from geo311.model import CALLBACKS, CHANNELS, CONTACT_KINDS, CallerRequest, Contact
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.rows import MAX_ID, now_utc, to_frame

LOGGER = logging.getLogger(__name__)
#: A phone number is matched on its last digits: "+1 (312) 555-0100" is "312-555-0100".
PHONE_DIGITS = 10
MIN_PHONE_DIGITS = 7
#: What a stored phone number may hold besides digits; each is dropped before comparing.
_PHONE_PUNCTUATION = (" ", "-", "(", ")", ".", "+", "/")


def phone_digits(phone: str) -> str:
    """The digits a phone number is matched on (its last ten)."""
    return re.sub(r"\D", "", phone)[-PHONE_DIGITS:]


def reporter_matches(*, phone: str = "", email: str = "") -> list[Any]:
    """Conditions on ``reporters`` matching a phone number's last digits or an email.

    A phone number matches whatever its punctuation; an email without regard to case.
    Raises ``InvalidRequest`` for a phone number too short to tell anyone apart, or
    when neither is given.
    """
    digits = phone_digits(phone)
    email = email.strip().lower()
    if phone.strip() and len(digits) < MIN_PHONE_DIGITS:
        raise InvalidRequest(f"phone {phone[:40]!r} has {len(digits)} digits but at least "
                             f"{MIN_PHONE_DIGITS} are needed to find a caller")
    if not digits and not email:
        raise InvalidRequest("give a phone number or an email to find a caller")
    rp = t.reporters.c
    matches: list[Any] = []
    if digits:
        stored: Any = rp.phone
        for mark in _PHONE_PUNCTUATION:
            stored = func.replace(stored, mark, "")
        matches.append(stored.like(f"%{digits}"))
    if email:
        matches.append(func.lower(rp.email) == email)
    return matches


class Contacts:
    """The contacts table and the staff-only lookup of a caller's requests."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, *, agent: str, channel: str, kind: str, topic: str = "", outcome: str = "",
            request_id: int | None = None, callback: str = "none") -> Contact:
        """Store one contact and audit it with the agent's name."""
        for name, value, allowed in (("channel", channel, CHANNELS),
                                     ("kind", kind, CONTACT_KINDS),
                                     ("callback", callback, CALLBACKS)):
            if value not in allowed:
                raise InvalidRequest(f"{name} was {value!r} but is expected to be in "
                                     f"{list(allowed)}")
        if (kind == "request") != (request_id is not None):
            raise InvalidRequest("a request contact needs its request_id; an information "
                                 "contact has none")
        values: dict[str, Any] = {
            "created": now_utc(), "agent": agent, "channel": channel, "kind": kind,
            "topic": topic[:200], "outcome": outcome, "request_id": request_id,
            "callback": callback,
        }
        with self.db.begin() as conn:
            contact_id = conn.execute(insert(t.contacts).values(**values)
                                      .returning(t.contacts.c.id)).scalar_one()
            write_audit(conn, "contact_logged", "contact", contact_id,
                        {k: v for k, v in values.items() if k not in ("created", "agent")},
                        agent)
        LOGGER.info("contact #%s (%s, %s) by %s", contact_id, kind, channel, agent)
        return self.get(contact_id)

    def get(self, contact_id: int) -> Contact:
        """One contact; raise ``NotFound``."""
        if not 0 < int(contact_id) <= MAX_ID:
            raise NotFound(f"contact {contact_id} does not exist")
        with self.db.connect() as conn:
            row = conn.execute(select(t.contacts).where(t.contacts.c.id == int(contact_id))
                               ).mappings().first()
        if row is None:
            raise NotFound(f"contact {contact_id} does not exist")
        return _contact(row)

    def recent(self, *, agent: str | None = None, limit: int = 20) -> list[Contact]:
        """The newest contacts (of one agent when given), newest first."""
        c = t.contacts.c
        stmt = select(t.contacts).order_by(c.created.desc(), c.id.desc()).limit(limit)
        if agent is not None:
            stmt = stmt.where(c.agent == agent)
        with self.db.connect() as conn:
            return [_contact(r) for r in conn.execute(stmt).mappings()]

    def of_request(self, request_id: int) -> list[Contact]:
        """The contacts that made or joined a request, oldest first."""
        c = t.contacts.c
        with self.db.connect() as conn:
            rows = conn.execute(select(t.contacts).where(c.request_id == int(request_id))
                                .order_by(c.id)).mappings().all()
        return [_contact(r) for r in rows]

    def caller_requests(self, *, phone: str = "", email: str = "",
                        limit: int = 50) -> list[CallerRequest]:
        """Requests whose reporter had this phone number or email, newest first.

        A phone number matches on its last digits whatever its punctuation; an email
        matches without regard to case. Personal data: for staff only.
        """
        rp, sr, sv = t.reporters.c, t.service_requests.c, t.services.c
        ids = select(rp.request_id).where(or_(*reporter_matches(phone=phone, email=email)))
        stmt = (select(sr.id, sr.service_code, sv.name, sr.status, sr.requested_datetime,
                       sr.address, sr.duplicate_of)
                .select_from(t.service_requests.join(t.services, sv.code == sr.service_code))
                .where(sr.id.in_(ids))
                .order_by(sr.requested_datetime.desc(), sr.id.desc()).limit(limit))
        with self.db.connect() as conn:
            return [CallerRequest(*row) for row in conn.execute(stmt)]


    def centre_frames(self, start: datetime | None, end: datetime | None,
                      first_actions: Sequence[str]) -> dict[str, pd.DataFrame]:
        """What the centre's figures are made of, for contacts and requests in [start, end).

        ``contacts``: one row per desk contact; ``channels``: requests received per
        ``source``; ``first_actions``: the group roots staff acted on, with their time and
        first audited staff action among ``first_actions``; ``roots``: how many group
        roots came in. Staff actions are few: they are grouped first and joined to their
        requests, so a view never reads every request.
        """
        c, sr, a = t.contacts.c, t.service_requests.c, t.audit_log.c

        def within(column: Any) -> Any:
            return and_(true(), *([column >= start] if start else []),
                        *([column < end] if end else []))

        with self.db.connect() as conn:
            contacts = to_frame(conn.execute(
                select(c.created, c.agent, c.channel, c.kind, c.outcome, c.request_id)
                .where(within(c.created))).all(),
                ["created", "agent", "channel", "kind", "outcome", "request_id"])
            channels = to_frame(conn.execute(
                select(sr.source, func.count()).where(within(sr.requested_datetime))
                .group_by(sr.source)).all(), ["channel", "requests"])
            firsts = (select(a.entity_id.label("request_id"), func.min(a.at).label("at"))
                      .where(a.entity == "request", a.action.in_(list(first_actions)),
                             a.actor != "system")
                      .group_by(a.entity_id).subquery())
            roots = and_(within(sr.requested_datetime), sr.duplicate_of.is_(None))
            acted = to_frame(conn.execute(
                select(sr.id, sr.requested_datetime, firsts.c.at)
                .join_from(firsts, t.service_requests,
                           sr.id == cast(firsts.c.request_id, Integer))
                .where(roots)).all(), ["id", "requested", "first_action"])
            counted = conn.execute(select(func.count()).select_from(t.service_requests)
                                   .where(roots)).scalar_one()
        for frame, cols in ((contacts, ["created"]), (acted, ["requested", "first_action"])):
            for col in cols:
                frame[col] = pd.to_datetime(frame[col], utc=True)
        return {"contacts": contacts, "channels": channels, "first_actions": acted,
                "roots": pd.DataFrame({"requests": [int(counted)]})}


def _contact(r: Any) -> Contact:
    return Contact(id=r["id"], created=r["created"], agent=r["agent"], channel=r["channel"],
                   kind=r["kind"], topic=r["topic"], outcome=r["outcome"],
                   request_id=r["request_id"], callback=r["callback"])
