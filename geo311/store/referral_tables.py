"""Referrals: reports outside the city that another jurisdiction handles.

Part of the one schema (``geo311.store.tables`` re-exports it, so repositories use
``t.referrals`` as any other table); kept apart to keep each schema module readable.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from geo311.store.schema_types import UTCDateTime, metadata

#: One row per report referred to a neighbour: the resident was told who handles it
#: (``referred``), or it waits to be forwarded to the neighbour's Open311 endpoint
#: (``pending`` -> ``sending`` -> ``forwarded``, or ``failed`` after too many tries:
#: flagged for staff). ``reference`` is what the resident is given to follow it. Only
#: what the neighbour needs is kept: no reporter name, email or phone.
referrals = Table(
    "referrals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reference", String(20), nullable=False, unique=True),
    Column("created", UTCDateTime, nullable=False),
    Column("channel", String(20), nullable=False, default=""),
    Column("actor", String(100), nullable=False, default=""),
    Column("service_code", String(50), nullable=False),
    Column("service_name", String(200), nullable=False, default=""),
    Column("jurisdiction_id", String(100), nullable=False),
    Column("jurisdiction_name", String(200), nullable=False, default=""),
    Column("agency_id", String(100), nullable=False),
    Column("agency_name", String(200), nullable=False, default=""),
    Column("how", String(10), nullable=False),  # open311 | email | refer
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("address", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("attributes", Text, nullable=False, default="{}"),  # JSON: code -> [values]
    Column("media_url", Text, nullable=False, default=""),
    # referred | pending | sending | forwarded | failed
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("claimed_at", UTCDateTime),
    Column("last_error", Text, nullable=False, default=""),
    Column("remote_id", String(100), nullable=False, default=""),
    Column("forwarded_at", UTCDateTime),
    Index("ix_referrals_due", "status", "next_attempt_at"),
)
