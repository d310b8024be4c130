"""Area alerts: subscriptions to a district or a drawn area, and the rows of their digests.

Subscribing writes a ``pending`` subscription and its confirmation mail in one
transaction; only a confirmed subscription gets digests. A digest row is unique per
subscription and local day, so queuing a day twice (a cron job run again) adds nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from geoalchemy2 import functions as gf
from sqlalchemy import and_, func, insert, or_, select, update

from geo311.errors import NotFound
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database
from geo311.store.outbox import address_hash, normal_address
from geo311.store.rows import now_utc, to_frame

LOGGER = logging.getLogger(__name__)

#: Unconfirmed subscriptions one address may have at once (see ``Followers``).
MAX_PENDING = 5


@dataclass(frozen=True)
class AreaSubscription:
    """One address's alert: a district of a layer or a drawn area, and its services."""

    id: int
    email: str
    language: str
    layer: str | None
    district_id: str | None
    area: str | None  # GeoJSON geometry, WGS84
    services: tuple[str, ...]
    label: str
    status: str
    created: datetime
    confirmed: datetime | None


class AreaAlerts:
    """Area subscriptions and the mail rows of their confirmations and digests."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def subscribe(self, email: str, language: str, *, label: str, layer: str | None = None,
                  district_id: str | None = None, area: str | None = None,
                  services: Sequence[str] = ()) -> bool:
        """Store a pending subscription and queue its confirmation; True if mail was queued.

        Nothing is queued for an address with ``MAX_PENDING`` unconfirmed subscriptions,
        one that unsubscribed, or the same area and services already asked for.
        """
        address = normal_address(email)
        a = t.area_subscriptions.c
        codes = ",".join(sorted(set(services)))
        now = now_utc()
        with self.db.begin() as conn:
            same = conn.execute(select(a.id).where(
                a.email == address, a.status != "ended", a.services == codes,
                a.layer.is_(None) if layer is None else a.layer == layer,
                a.district_id.is_(None) if district_id is None else a.district_id == district_id,
                a.area.is_(None) if area is None else a.area == area)).first()
            pending = conn.execute(select(func.count()).select_from(t.area_subscriptions)
                                   .where(a.email == address, a.status == "pending")
                                   ).scalar_one()
            gone = conn.execute(select(t.unsubscribed.c.email_hash).where(
                t.unsubscribed.c.email_hash == address_hash(address))).first()
            if same is not None or pending >= MAX_PENDING or gone is not None:
                return False
            sub_id = conn.execute(insert(t.area_subscriptions).values(
                email=address, language=language or "en", layer=layer,
                district_id=district_id, area=area, services=codes, label=label[:200],
                status="pending", created=now).returning(a.id)).scalar_one()
            conn.execute(insert(t.area_mail).values(
                subscription_id=sub_id, kind="confirm", event="", email=address,
                language=language or "en", detail="{}", created=now, status="pending",
                attempts=0, next_attempt_at=now, last_error="", message_id=""))
            write_audit(conn, "area_subscribed", "area_subscription", sub_id,
                        {"address": address_hash(address)[:12], "label": label[:200]},
                        "resident")
        return True

    def set_status(self, subscription_id: int, status: str) -> AreaSubscription:
        """Confirm (``confirmed``) or end (``ended``) a subscription; audited when it changes."""
        a = t.area_subscriptions.c
        values: dict[str, Any] = {"status": status}
        if status == "confirmed":
            values["confirmed"] = now_utc()
        with self.db.begin() as conn:
            allowed = ("pending",) if status == "confirmed" else ("pending", "confirmed")
            changed = conn.execute(update(t.area_subscriptions).where(
                a.id == int(subscription_id), a.status.in_(allowed)).values(**values)).rowcount
            if changed:
                write_audit(conn, f"area_{status}", "area_subscription", subscription_id, {},
                            "resident")
        return self.get(subscription_id)

    def get(self, subscription_id: int) -> AreaSubscription:
        """One subscription; ``NotFound`` if there is none."""
        found = self._select(t.area_subscriptions.c.id == int(subscription_id))
        if not found:
            raise NotFound(f"area subscription {subscription_id} does not exist")
        return found[0]

    def confirmed(self) -> list[AreaSubscription]:
        """Every confirmed subscription, oldest first."""
        return self._select(t.area_subscriptions.c.status == "confirmed")

    def _select(self, where: Any) -> list[AreaSubscription]:
        a = t.area_subscriptions.c
        stmt = select(a.id, a.email, a.language, a.layer, a.district_id, a.area, a.services,
                      a.label, a.status, a.created, a.confirmed).where(where).order_by(a.id)
        with self.db.connect() as conn:
            return [AreaSubscription(i, e, lang, layer, d, area,
                                     tuple(s for s in services.split(",") if s), label, st, c,
                                     conf)
                    for i, e, lang, layer, d, area, services, label, st, c, conf
                    in conn.execute(stmt).all()]

    def activity(self, start: datetime, end: datetime, *, layer_version_id: int | None = None,
                 box: tuple[float, float, float, float] | None = None,
                 services: Sequence[str] = (), hidden: Sequence[str] = ()) -> pd.DataFrame:
        """Requests received or closed in [start, end) in a district or a box.

        One row per request: id, service_code, service_name, address, status, lon, lat,
        district, received (bool), closed (bool). Services in ``hidden`` (sensitive ones)
        are left out: a digest is mail to the public.
        """
        sr, sv, rd = t.service_requests.c, t.services.c, t.request_districts.c
        received = and_(sr.requested_datetime >= start, sr.requested_datetime < end)
        closed = and_(sr.closed_datetime >= start, sr.closed_datetime < end)
        stmt = (select(sr.id, sr.service_code, sv.name, sr.address, sr.status,
                       gf.ST_X(sr.geom), gf.ST_Y(sr.geom), rd.district_id, received, closed)
                .select_from(t.service_requests.join(t.services, sv.code == sr.service_code)
                             .outerjoin(t.request_districts,
                                        and_(rd.request_id == sr.id,
                                             rd.layer_version_id == (layer_version_id or -1))))
                .where(or_(received, closed), sr.geom.isnot(None)))
        if services:
            stmt = stmt.where(sr.service_code.in_(list(services)))
        if hidden:
            stmt = stmt.where(sr.service_code.not_in(list(hidden)))
        if box is not None:
            stmt = stmt.where(self.db.dialect.within_box(box))
        with self.db.connect() as conn:
            frame = to_frame(conn.execute(stmt.order_by(sr.id)).all(),
                             ["id", "service_code", "service_name", "address", "status", "lon",
                              "lat", "district", "received", "closed"])
        for col in ("received", "closed"):
            frame[col] = frame[col].fillna(False).astype(bool)
        return frame

    def queue_digest(self, subscription: AreaSubscription, day: str,
                     detail: dict[str, Any]) -> bool:
        """Queue one day's digest for a subscription; False if that day was queued already."""
        now = now_utc()
        with self.db.begin() as conn:
            stmt = (self.db.dialect.upsert(t.area_mail).values(
                subscription_id=subscription.id, kind="digest", event=day,
                email=subscription.email, language=subscription.language,
                detail=json.dumps(detail), created=now, status="pending", attempts=0,
                next_attempt_at=now, last_error="", message_id="")
                .on_conflict_do_nothing().returning(t.area_mail.c.id))
            # A row comes back only when one was written (rowcount says 1 either way on
            # PostgreSQL's ON CONFLICT DO NOTHING through some drivers).
            return conn.execute(stmt).first() is not None
