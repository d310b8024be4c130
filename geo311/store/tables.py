"""The database schema, shared by SpatiaLite and PostGIS.

Personal data sits in ``reporters`` only; public queries never join it.
All times are stored in UTC.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)

from geo311.store.centre_tables import (
    area_mail as area_mail,
)
from geo311.store.centre_tables import (
    area_subscriptions as area_subscriptions,
)
from geo311.store.centre_tables import (
    contacts as contacts,
)
from geo311.store.centre_tables import (
    followers as followers,
)
from geo311.store.centre_tables import (
    notifications as notifications,
)
from geo311.store.centre_tables import (
    request_notes as request_notes,
)
from geo311.store.centre_tables import (
    saved_views as saved_views,
)
from geo311.store.centre_tables import (
    survey_answers as survey_answers,
)
from geo311.store.centre_tables import (
    unsubscribed as unsubscribed,
)
from geo311.store.notices_tables import (
    notice_messages as notice_messages,
)
from geo311.store.notices_tables import (
    notice_requests as notice_requests,
)
from geo311.store.notices_tables import (
    notices as notices,
)
from geo311.store.records_tables import (
    legal_hold_requests as legal_hold_requests,
)
from geo311.store.records_tables import (
    legal_holds as legal_holds,
)
from geo311.store.records_tables import (
    retention_applied as retention_applied,
)
from geo311.store.referral_tables import (
    referrals as referrals,
)
from geo311.store.schema_types import UTCDateTime as UTCDateTime
from geo311.store.schema_types import metadata as metadata

#: 3: PostGIS gains the function ``geo311_duplicate_candidates`` (created by ``init-db``);
#: ``api_key_calls`` counts POSTs per key for a rate limit shared by every process.
#: 4: ``public_records`` keeps each request's Open311 record, checked against
#: ``service_requests.revision`` and the records generation that triggers keep.
#: 5: ``suspended_structure`` records what a bulk load dropped, so a killed load's
#: indexes and foreign keys come back (next load or ``init-db``);
#: ``users.session_generation`` ends every session of an account on logout.
#: 6: ``work_order_requests.position`` keeps each stop's place in its crew's routed day.
#: 7: the knowledge base: ``kb_articles`` and their earlier versions in ``kb_article_versions``;
#: ``kb_index`` (articles and services, full-text indexed by each dialect);
#: ``kb_synonyms``; ``services.accepting`` (False: kept for history, no longer offered).
#: 8: ``service_requests.import_flags``: why an imported row's date is implausible.
#: 9: ``request_notes``: staff notes on a request, public (the resident reads them) or internal.
#:    ``contacts``: each call-taker contact (information only, or with its request).
#:    work queues: ``service_requests.assignee`` (a staff user's name), ``saved_views``
#: and the indexes the queue's filters use.
#:    ``notifications`` (the outbox of mail to reporters) and ``unsubscribed``.
#: 10: ``reporters.language``: the language a reporter wrote in, for mail to them.
#: 11: records: ``services.retention_*_years`` (the catalogue's retention rules),
#:    ``legal_holds`` and ``legal_hold_requests``, ``retention_applied``.
#:    ``survey_answers``: the resident's 1-5 rating of a closed request and a comment.
#:    ``followers``: addresses that follow a request by email (double opt-in).
#:    ``area_subscriptions`` and ``area_mail``: area alerts and their daily digests.
#: 11: area notices: ``notices``, their messages per language (``notice_messages``) and
#: the requests acknowledged under them (``notice_requests``).
#: 12: ``referrals``: reports outside the city referred or forwarded to a neighbour.
SCHEMA_VERSION = 12

schema_info = Table(
    "schema_info",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("value", String(200), nullable=False),
)

services = Table(
    "services",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("group", String(100), nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("keywords", Text, nullable=False, default=""),
    Column("sla_days", Float),
    Column("active", Boolean, nullable=False, default=True),
    # Duplicate rule of the service; NULL columns take the default rule.
    Column("dedup_radius_m", Float),
    Column("dedup_window_days", Float),
    Column("dedup_scope", String(20)),
    Column("dedup_only_open", Boolean),
    # SLA: sla_days or sla_hours, counted on a business calendar ("business") or the
    # clock ("24x7"); the calendar is a shipped name or a TOML path (empty: the city's own).
    Column("sla_hours", Float),
    Column("sla_clock", String(20)),
    Column("sla_calendar", String(200)),
    Column("agency", String(200), nullable=False, default=""),
    Column("attributes", Text, nullable=False, default="[]"),  # JSON list of questions
    # Maps: a sensitive service's locations are shown only as an H3 cell centre.
    Column("sensitive", Boolean, nullable=False, default=False, server_default=false()),
    # False: the service stays for its stored requests but takes no new ones.
    Column("accepting", Boolean, nullable=False, default=True, server_default=true()),
    # Retention: years after close before the reporter's contact details, the free text
    # and the media of a request go (NULL: kept).
    Column("retention_contact_years", Float),
    Column("retention_text_years", Float),
    Column("retention_media_years", Float),
)

service_requests = Table(
    "service_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(64), unique=True),
    Column("external_parent_id", String(64)),
    Column("source", String(100), nullable=False, default="web"),
    Column("service_code", String(64), ForeignKey("services.code"), nullable=False),
    Column("status", String(20), nullable=False, default="open"),
    Column("status_notes", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("address", Text, nullable=False, default=""),
    Column("zipcode", String(10), nullable=False, default=""),
    Column("media_url", Text, nullable=False, default=""),
    Column("geocode_match", String(20), nullable=False, default="none"),
    Column("outside_service_area", Boolean, nullable=False, default=False),
    # Set by an import: the date is before the mapping's earliest day, or ahead of now.
    Column("import_flags", String(40)),
    Column("requested_datetime", UTCDateTime, nullable=False),
    Column("updated_datetime", UTCDateTime, nullable=False),
    Column("closed_datetime", UTCDateTime),
    Column("expected_datetime", UTCDateTime),
    Column("duplicate_of", Integer, ForeignKey("service_requests.id")),
    Column("reporter_count", Integer, nullable=False, default=1),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=True)),
    Column("attributes", Text),  # JSON answers to the service's questions
    # Maps: the point's H3 cell at resolution 15, filled by the hotspot store methods;
    # coarser cells are bit operations on it, so aggregation runs in SQL.
    Column("h3_cell", BigInteger),
    # Raised by a trigger whenever a column of ``RECORD_COLUMNS`` is written, so a stored
    # public record built from an older revision is known to be stale.
    Column("revision", Integer, nullable=False, default=0, server_default=text("0")),
    # Work queues: the staff user (name) a request is assigned to; NULL: nobody.
    Column("assignee", String(100)),
    Index("ix_requests_h3_missing", "id", postgresql_where=text("h3_cell IS NULL"),
          sqlite_where=text("h3_cell IS NULL")),
    Index("ix_requests_updated", "updated_datetime"),  # maps catch up on changes
    # Hotspot counts read parents' cells from this index alone (an index-only scan).
    Index("ix_requests_hotspots", "h3_cell",
          postgresql_include=["reporter_count", "service_code", "status", "requested_datetime",
                              "id"],
          postgresql_where=text("duplicate_of IS NULL"), sqlite_where=text("duplicate_of IS NULL")),
    Index("ix_requests_service_requested", "service_code", "requested_datetime"),
    Index("ix_requests_status", "status"),
    Index("ix_requests_duplicate_of", "duplicate_of"),
    # Time windows (Open311's default 90 days) ANDed with the spatial index for bboxes.
    Index("ix_requests_requested", "requested_datetime"),
    # Work queues, newest first within each filter: status, channel, assignee; and the
    # open requests past their due time (SLA breached) by due time.
    Index("ix_requests_status_requested", "status", "requested_datetime", "id"),
    Index("ix_requests_source_requested", "source", "requested_datetime"),
    Index("ix_requests_assignee_requested", "assignee", "requested_datetime"),
    Index("ix_requests_status_expected", "status", "expected_datetime"),
)

#: The columns of ``service_requests`` an Open311 record shows: writing any of them
#: raises the request's ``revision`` (a trigger on each backend).
RECORD_COLUMNS = (
    "service_code", "status", "status_notes", "description", "address", "zipcode",
    "media_url", "requested_datetime", "updated_datetime", "expected_datetime",
    "duplicate_of", "reporter_count", "geom",
)

#: ``schema_info`` key of the records generation: raised by triggers on every change to
#: services, layers, layer versions and district assignments of recorded requests,
#: which a record shows (service name, agency, sensitivity, districts) but a request's
#: revision does not follow.
RECORDS_GENERATION = "records_generation"

reporters = Table(
    "reporters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "request_id", Integer, ForeignKey("service_requests.id", ondelete="CASCADE"),
        nullable=False, index=True,
    ),
    Column("first_name", String(100), nullable=False, default=""),
    Column("last_name", String(100), nullable=False, default=""),
    Column("email", String(254), nullable=False, default=""),
    Column("phone", String(40), nullable=False, default=""),
    Column("device_id", String(200), nullable=False, default=""),
    Column("account_id", String(200), nullable=False, default=""),
    Column("language", String(16)),  # a language tag ("es"); mail to the reporter uses it
    Column("created", UTCDateTime, nullable=False),
)

layers = Table(
    "layers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("title", String(200), nullable=False, default=""),
    Column("role", String(20), nullable=False, default="district"),
    Column("description", Text, nullable=False, default=""),
)

layer_versions = Table(
    "layer_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("layer_id", Integer, ForeignKey("layers.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False, default="inactive"),
    Column("source_file", Text, nullable=False, default=""),
    Column("source_crs", String(200), nullable=False, default=""),
    Column("checksum", String(64), nullable=False, default=""),
    Column("id_field", String(100), nullable=False, default=""),
    Column("name_field", String(100), nullable=False, default=""),
    Column("feature_count", Integer, nullable=False, default=0),
    Column("report", Text, nullable=False, default="{}"),
    Column("loaded_by", String(100), nullable=False, default=""),
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("activated_at", UTCDateTime),
    UniqueConstraint("layer_id", "version", name="uq_layer_version"),
)

districts = Table(
    "districts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "layer_version_id", Integer, ForeignKey("layer_versions.id", ondelete="CASCADE"),
        nullable=False, index=True,
    ),
    Column("district_id", String(100), nullable=False),
    Column("name", Text),
    Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False),
    UniqueConstraint("layer_version_id", "district_id", name="uq_district_in_version"),
)

# Derived data, rebuilt from geometry whenever a layer version is activated and written
# only in the same transaction as its request. It carries no foreign keys: their checks
# cost three quarters of a bulk import's write time on PostGIS.
request_districts = Table(
    "request_districts",
    metadata,
    Column("request_id", Integer, primary_key=True),
    Column("layer_version_id", Integer, primary_key=True),
    Column("district_id", String(100)),
    Column("boundary_case", Boolean, nullable=False, default=False),
    Index("ix_request_districts_version_district", "layer_version_id", "district_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False, default="system"),
    Column("action", String(60), nullable=False),
    Column("entity", String(40), nullable=False),
    Column("entity_id", String(100), nullable=False, default=""),
    Column("detail", Text, nullable=False, default="{}"),
    Index("ix_audit_entity", "entity", "entity_id"),
)

# --- dispatch: staff accounts, SLA pauses, crews and work orders ---------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(300), nullable=False),
    Column("role", String(20), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created", UTCDateTime, nullable=False),
    Column("last_login", UTCDateTime),
    # Raised by logout, a password or role change and disabling: sessions signed with
    # an older generation are refused, wherever their cookies were copied to.
    Column("session_generation", Integer, nullable=False, default=0),
)

# Failed logins, per username and client address, for throttling.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False),
    Column("address", String(64), nullable=False, default=""),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_login_failures_user_address", "username", "address", "at"),
)

# Stretches of time during which a request's SLA clock stood still (waiting for the
# resident, on hold); ``ended`` NULL means the clock is stopped now.
sla_pauses = Table(
    "sla_pauses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, ForeignKey("service_requests.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("reason", String(40), nullable=False),
    Column("started", UTCDateTime, nullable=False),
    Column("ended", UTCDateTime),
    Column("started_by", String(100), nullable=False, default="system"),
    Column("ended_by", String(100)),
)

crews = Table(
    "crews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("service_groups", Text, nullable=False, default="[]"),  # JSON list
    Column("layer", String(100), nullable=False),  # the dispatch layer of its districts
    Column("districts", Text, nullable=False, default="[]"),  # JSON list of district ids
    Column("capacity_per_day", Integer, nullable=False, default=8),
    Column("calendar", String(100), nullable=False, default=""),
    Column("depot_lon", Float),
    Column("depot_lat", Float),
    Column("active", Boolean, nullable=False, default=True),
    Column("created", UTCDateTime, nullable=False),
)

work_orders = Table(
    "work_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("crew_id", Integer, ForeignKey("crews.id"), nullable=False, index=True),
    Column("status", String(20), nullable=False, default="assigned"),
    Column("scheduled_date", String(10), nullable=False),  # local date, YYYY-MM-DD
    Column("route_position", Integer),
    Column("resolution", Text, nullable=False, default=""),
    Column("created", UTCDateTime, nullable=False),
    Column("created_by", String(100), nullable=False, default="system"),
    Column("updated", UTCDateTime, nullable=False),
    Column("started", UTCDateTime),
    Column("finished", UTCDateTime),
    Index("ix_work_orders_crew_date", "crew_id", "scheduled_date"),
)

# The stops of a work order: group roots (a duplicate group is one stop).
work_order_requests = Table(
    "work_order_requests",
    metadata,
    Column("work_order_id", Integer, ForeignKey("work_orders.id", ondelete="CASCADE"),
           primary_key=True),
    Column("request_id", Integer, ForeignKey("service_requests.id"), primary_key=True,
           index=True),
    Column("position", Integer),  # the stop's place in its crew's routed day
)

work_order_notes = Table(
    "work_order_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("work_order_id", Integer, ForeignKey("work_orders.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("author", String(100), nullable=False),
    Column("text", Text, nullable=False),
)

# Indexes and foreign keys a bulk load dropped (PostGIS), written in the transaction that
# drops them and deleted in the one that re-creates them: a load killed in between
# leaves here exactly what to rebuild.
suspended_structure = Table(
    "suspended_structure",
    metadata,
    Column("table_name", String(100), primary_key=True),
    Column("kind", String(20), primary_key=True),  # "index" or "foreign_key"
    Column("name", String(200), primary_key=True),
    Column("definition", Text, nullable=False),
    Column("suspended_at", UTCDateTime, nullable=False),
)

# --- API clients: keys and idempotent submissions ---

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the key
    Column("created", UTCDateTime, nullable=False),
    Column("revoked", UTCDateTime),
)

# Each request's public Open311 record (extended form, JSON) as last built: a GET reads
# pages of these instead of rebuilding 1,000 records. A record counts only while its
# ``revision`` equals the request's and its ``stamp`` is "generation|time zone"; a stale
# one is rebuilt by the next reader. No foreign key: it is derived data, like
# ``request_districts``.
public_records = Table(
    "public_records",
    metadata,
    Column("request_id", Integer, primary_key=True, autoincrement=False),
    Column("revision", Integer, nullable=False),
    Column("stamp", String(200), nullable=False),
    Column("record", Text, nullable=False),
)

# POSTs per API key and fixed window of time (``window`` = seconds since 1970 // length):
# the rate limit every server process shares.
api_key_calls = Table(
    "api_key_calls",
    metadata,
    Column("api_key_id", Integer, ForeignKey("api_keys.id"), primary_key=True),
    Column("window", BigInteger, primary_key=True, autoincrement=False),
    Column("calls", Integer, nullable=False),
)

# One row per (key, client's own id): the unique constraint makes a retried submission
# find the request the first one stored, even when both arrive together.
client_submissions = Table(
    "client_submissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("api_key_id", Integer, ForeignKey("api_keys.id"), nullable=False),
    Column("client_request_id", String(200), nullable=False),
    Column("request_id", Integer),
    Column("created", UTCDateTime, nullable=False),
    UniqueConstraint("api_key_id", "client_request_id", name="uq_client_submission"),
)

# --- geocoding: reference layers GIS staff load (and addresses learned from requests) ---
# Every row keeps its source (a file name, or "requests" for learned points); loading a
# source again replaces its rows.

address_points = Table(
    "address_points",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address", String(200), nullable=False),
    Column("house_number", Integer, nullable=False),
    Column("pre_dir", String(2), nullable=False, default=""),
    Column("street_name", String(100), nullable=False),
    Column("suffix", String(10), nullable=False, default=""),
    Column("zipcode", String(10), nullable=False, default=""),
    Column("source", String(200), nullable=False),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=True), nullable=False),
    Index("ix_address_points_address", "address"),
    Index("ix_address_points_source", "source"),
    sqlite_autoincrement=True,  # ids are never reused (clients keep address_id values)
)

street_intersections = Table(
    "street_intersections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("street_1", String(100), nullable=False),
    Column("street_2", String(100), nullable=False),
    Column("zipcode", String(10), nullable=False, default=""),
    Column("source", String(200), nullable=False),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=True), nullable=False),
    Index("ix_street_intersections_source", "source"),
)

street_centerlines = Table(
    "street_centerlines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("street", String(100), nullable=False),
    Column("l_from", Integer),
    Column("l_to", Integer),
    Column("r_from", Integer),
    Column("r_to", Integer),
    Column("source", String(200), nullable=False),
    Column("geom", Geometry("LINESTRING", srid=4326, spatial_index=True), nullable=False),
    Index("ix_street_centerlines_source", "source"),
)

# --- knowledge base ---------------------------------------------------------------------

kb_articles = Table(
    "kb_articles",
    metadata,
    Column("slug", String(100), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False, default=""),
    Column("keywords", Text, nullable=False, default=""),
    Column("script", Text, nullable=False, default=""),  # what a call-taker says; staff only
    Column("service_code", String(64), ForeignKey("services.code")),  # NULL: a general article
    Column("owner", String(200), nullable=False, default=""),
    Column("public", Boolean, nullable=False, default=False),
    Column("review_by", Date, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("updated", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False, default=""),
)

#: Every version an article had before its current one, as it was.
kb_article_versions = Table(
    "kb_article_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(100), ForeignKey("kb_articles.slug", ondelete="CASCADE"),
           nullable=False),
    Column("version", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False, default=""),
    Column("keywords", Text, nullable=False, default=""),
    Column("script", Text, nullable=False, default=""),
    Column("service_code", String(64)),
    Column("owner", String(200), nullable=False, default=""),
    Column("public", Boolean, nullable=False, default=False),
    Column("review_by", Date, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False, default=""),
    UniqueConstraint("slug", "version", name="uq_kb_article_versions"),
)

#: What knowledge-base search reads: one row per article and per accepting service, rebuilt
#: by ``store.kb.reindex()``. Each dialect adds its full-text index over title, keywords
#: and body (FTS5 on SpatiaLite, a weighted tsvector with a GIN index on PostGIS).
kb_index = Table(
    "kb_index",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(10), nullable=False),  # "article" or "service"
    Column("ref", String(100), nullable=False),  # the article's slug or the service's code
    Column("title", String(200), nullable=False),
    Column("keywords", Text, nullable=False, default=""),
    Column("body", Text, nullable=False, default=""),
    Column("service_code", String(64)),
    Column("department", String(100), nullable=False, default=""),  # a service's group
    Column("public", Boolean, nullable=False, default=True),
    UniqueConstraint("kind", "ref", name="uq_kb_index_ref"),
)

#: The city's synonym table: a phrase residents use and what it means in the catalogue's
#: words ("rats" -> "rodent baiting").
kb_synonyms = Table(
    "kb_synonyms",
    metadata,
    Column("phrase", String(200), primary_key=True),
    Column("meaning", Text, nullable=False),
)
