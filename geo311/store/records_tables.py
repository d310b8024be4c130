"""The records officer's tables: legal holds and what retention has already done.

Part of the one schema (``geo311.store.tables`` re-exports them). A hold keeps the ids
its search found when it was placed, so what it holds never drifts with later edits.
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
)

from geo311.store.schema_types import UTCDateTime, metadata

#: A legal hold: who placed it and why, the query that chose its requests ("" for ids
#: typed by hand), and when it was released (NULL while it holds).
legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reason", Text, nullable=False),
    Column("owner", String(100), nullable=False),
    Column("created", UTCDateTime, nullable=False),
    Column("query", Text, nullable=False, default=""),
    Column("request_count", Integer, nullable=False, default=0),
    Column("released", UTCDateTime),
    Column("released_by", String(100)),
)

#: The requests of each hold. A request is held while one of its holds is not released.
legal_hold_requests = Table(
    "legal_hold_requests",
    metadata,
    Column("hold_id", Integer, ForeignKey("legal_holds.id"), primary_key=True),
    Column("request_id", Integer, ForeignKey("service_requests.id"), primary_key=True),
    Index("ix_legal_hold_requests_request", "request_id"),
)

#: One row per request and retention kind (contact, text, media) once applied: a re-run
#: skips them, and a killed run resumes where its last committed batch ended.
retention_applied = Table(
    "retention_applied",
    metadata,
    Column("request_id", Integer, ForeignKey("service_requests.id", ondelete="CASCADE"),
           primary_key=True),
    Column("kind", String(10), primary_key=True),
    Column("applied", UTCDateTime, nullable=False),
    Column("run", String(40), nullable=False, default=""),
)
