"""Area notices: messages to the residents of an area, and requests acknowledged under them.

Part of the one schema (``geo311.store.tables`` re-exports them). A notice's bounding box
is kept beside its polygon so the database narrows the notices a point may lie in with
plain comparisons, the same on both backends; the domain decides with the polygon.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from geo311.store.schema_types import UTCDateTime, metadata

#: One row per notice. ``ends`` NULL: in force until ended by hand (``ended_by`` says who
#: ended it, and ``ends`` becomes that moment). ``suspended`` is a JSON list of service
#: codes refused inside the area while the notice is in force; ``layer`` and
#: ``districts`` (JSON) name the districts the area was made of, when it was.
notices = Table(
    "notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("severity", String(10), nullable=False),
    Column("area_desc", Text, nullable=False, default=""),
    Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    Column("min_lon", Float, nullable=False),
    Column("min_lat", Float, nullable=False),
    Column("max_lon", Float, nullable=False),
    Column("max_lat", Float, nullable=False),
    Column("starts", UTCDateTime, nullable=False),
    Column("ends", UTCDateTime),
    Column("suspended", Text, nullable=False, default="[]"),
    Column("layer", String(100), nullable=False, default=""),
    Column("districts", Text, nullable=False, default="[]"),
    Column("created", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False, default="system"),
    Column("ended_by", String(100), nullable=False, default=""),
    Index("ix_notices_window", "starts", "ends"),
)

#: A notice's message in each language it was written in (``en``, ``es``, ``pl``, ``zh``).
notice_messages = Table(
    "notice_messages",
    metadata,
    Column("notice_id", Integer, ForeignKey("notices.id", ondelete="CASCADE"),
           primary_key=True),
    Column("language", String(16), primary_key=True),
    Column("text", Text, nullable=False),
)

#: The requests acknowledged under a notice (its incident): each once, with who did it.
notice_requests = Table(
    "notice_requests",
    metadata,
    Column("notice_id", Integer, ForeignKey("notices.id", ondelete="CASCADE"),
           primary_key=True),
    Column("request_id", Integer, ForeignKey("service_requests.id", ondelete="CASCADE"),
           primary_key=True, index=True),
    Column("acknowledged", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False, default="system"),
)
