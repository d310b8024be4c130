"""The 311 centre's tables: notes, desk contacts, saved queue views, the outbox, surveys.

Part of the one schema (``geo311.store.tables`` re-exports them, so repositories use
``t.contacts`` as any other table); kept apart to keep each schema module readable.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from geo311.store.schema_types import UTCDateTime, metadata

# Notes staff write on a request: "public" ones the tracking page shows (as the city's,
# never naming the author), "internal" ones only staff read.
request_notes = Table(
    "request_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, ForeignKey("service_requests.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("visibility", String(10), nullable=False),
    Column("body", Text, nullable=False),
    Column("author", String(100), nullable=False),
    Column("created", UTCDateTime, nullable=False),
)

# A staff user's named filter set of the work queue (``/staff/requests``), kept as the
# page's query string.
saved_views = Table(
    "saved_views",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(100), nullable=False),
    Column("name", String(100), nullable=False),
    Column("query", Text, nullable=False, default=""),
    Column("created", UTCDateTime, nullable=False),
    UniqueConstraint("owner", "name", name="uq_saved_view_owner_name"),
)

# --- the call-taker desk ----------------------------------------------------------------

#: One row per contact a call-taker handles: "info" (answered from the knowledge base, no
#: ticket) or "request" (pointing at the request it made), for the centre's statistics.
contacts = Table(
    "contacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created", UTCDateTime, nullable=False),
    Column("agent", String(100), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("kind", String(10), nullable=False),  # "info" or "request"
    Column("topic", String(200), nullable=False, default=""),
    Column("outcome", String(40), nullable=False, default=""),
    Column("request_id", Integer, ForeignKey("service_requests.id"), index=True),
    Column("callback", String(10), nullable=False, default="none"),  # phone, email or none
    Index("ix_contacts_created", "created"),
)

# --- notifications: mail to reporters, written with the change it reports ----------------

#: The outbox: one row per event and address, written in the transaction of the change
#: (``store.outbox``); the worker claims due rows (pending -> sending) before it sends.
#: ``event`` names the event within its request and kind (a status change's time, the
#: group a request joined), so the unique key refuses the same event for one address twice.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, ForeignKey("service_requests.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("kind", String(20), nullable=False),  # received | status | closed | merged
    Column("event", String(100), nullable=False, default=""),
    Column("email", String(254), nullable=False),
    Column("language", String(10), nullable=False, default="en"),
    Column("detail", Text, nullable=False, default="{}"),  # JSON: new status, note, group
    Column("created", UTCDateTime, nullable=False),
    # pending | sending | sent | failed | unsubscribed
    Column("status", String(20), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime),
    Column("last_error", Text, nullable=False, default=""),
    Column("sent_at", UTCDateTime),
    Column("message_id", String(250), nullable=False, default=""),
    UniqueConstraint("request_id", "kind", "event", "email", name="uq_notification_event"),
    Index("ix_notifications_due", "status", "next_attempt_at"),
    Index("ix_notifications_email", "email", "status"),
)

#: Addresses that asked for no more mail, by the SHA-256 of the address as written to
#: the outbox (lower case, trimmed): the address itself is not kept here.
unsubscribed = Table(
    "unsubscribed",
    metadata,
    Column("email_hash", String(64), primary_key=True),
    Column("created", UTCDateTime, nullable=False),
)

# --- satisfaction: the survey a closing notification links to ---------------------------

#: One answer per closing notification (its signed link is good once): a 1-5 rating
#: and an optional comment, kept as written (staff read it; public outputs redact it).
survey_answers = Table(
    "survey_answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", Integer, ForeignKey("notifications.id", ondelete="CASCADE"),
           nullable=False, unique=True),
    Column("request_id", Integer, ForeignKey("service_requests.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("rating", Integer, nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("language", String(10), nullable=False, default="en"),
    Column("answered", UTCDateTime, nullable=False),
    Index("ix_survey_answers_answered", "answered"),
)

# --- following a request by email, with double opt-in ----------------------------------

#: Anyone may follow a request without an account: ``pending`` until the address opens
#: the link mailed to it (kind ``follow`` in the outbox), then ``confirmed``, and from
#: then on it hears what the reporters hear (status, closed, merged).
followers = Table(
    "followers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, ForeignKey("service_requests.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("email", String(254), nullable=False),
    Column("language", String(10), nullable=False, default="en"),
    Column("status", String(10), nullable=False, default="pending"),
    Column("created", UTCDateTime, nullable=False),
    Column("confirmed", UTCDateTime),
    UniqueConstraint("request_id", "email", name="uq_follower_request_email"),
    Index("ix_followers_email", "email", "status"),
)
