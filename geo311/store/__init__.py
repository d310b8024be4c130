"""Storage: one database (SpatiaLite or PostGIS) and a repository per aggregate.

``open_store(url)`` returns a ``Store``: ``store.db`` (engine, dialect, transactions)
and one repository per aggregate, ``store.requests.add(...)``,
``store.layers.activate(...)``. A new aggregate is a new module here, with its
repository class given to ``Store``; backend differences go in the dialects.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from geo311.errors import ConfigError
from geo311.store import tables as t
from geo311.store.accounts import Accounts
from geo311.store.addresses import Addresses
from geo311.store.areas import AreaAlerts
from geo311.store.audit import AuditLog
from geo311.store.catalogue import Catalogue
from geo311.store.contacts import Contacts
from geo311.store.database import Database, Dialect
from geo311.store.disclosure import Disclosures
from geo311.store.dispatch import Dispatch
from geo311.store.duplicates import Duplicates
from geo311.store.followers import Followers
from geo311.store.holds import Holds
from geo311.store.hotspots import Hotspots
from geo311.store.kb import KnowledgeBase
from geo311.store.layers import Layers
from geo311.store.notes import Notes
from geo311.store.notices import Notices
from geo311.store.outbox import Outbox
from geo311.store.postgis import PostGISDialect
from geo311.store.public_records import PublicRecords
from geo311.store.queues import Queues
from geo311.store.referrals import Referrals
from geo311.store.requests import Requests
from geo311.store.retention import Retention
from geo311.store.schema import Schema
from geo311.store.search import Search
from geo311.store.sla import SlaClocks
from geo311.store.spatialite import SpatiaLiteDialect
from geo311.store.surveys import Surveys

__all__ = ["Database", "Dialect", "Store", "open_store"]

#: The backends, each named by the backend part of its URLs.
DIALECTS: tuple[type[Dialect], ...] = (SpatiaLiteDialect, PostGISDialect)


class Store:
    """The database and its repositories, one per aggregate."""

    def __init__(self, engine: Engine, dialect: Dialect) -> None:
        self.db = Database(engine, dialect)
        self.schema = Schema(self.db)
        self.audit = AuditLog(self.db)
        self.catalogue = Catalogue(self.db)
        self.layers = Layers(self.db)
        self.requests = Requests(self.db, self.catalogue, self.layers)
        self.search = Search(self.db, self.catalogue)
        self.public_records = PublicRecords(self.db, self.search)
        self.duplicates = Duplicates(self.db, self.requests)
        self.accounts = Accounts(self.db)
        self.sla = SlaClocks(self.db)
        self.dispatch = Dispatch(self.db)
        self.addresses = Addresses(self.db)
        self.hotspots = Hotspots(self.db)
        self.kb = KnowledgeBase(self.db)
        self.notes = Notes(self.db)
        self.contacts = Contacts(self.db)
        self.queues = Queues(self.db, self.requests)
        self.outbox = Outbox(self.db)
        self.surveys = Surveys(self.db)
        self.followers = Followers(self.db)
        self.areas = AreaAlerts(self.db)
        self.area_outbox = Outbox(self.db, t.area_mail)
        self.disclosure = Disclosures(self.db)
        self.notices = Notices(self.db)
        self.referrals = Referrals(self.db)
        self.holds = Holds(self.db)
        self.retention = Retention(self.db)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (one per process)."""
        return self.db.engine

    @property
    def backend(self) -> str:
        """``postgis`` or ``spatialite``, as the health check reports it."""
        return self.db.dialect.name

    def dispose(self) -> None:
        """Close pooled connections."""
        self.db.dispose()


def open_store(url: str) -> Store:
    """Connect to the database at ``url``: ``sqlite:///file`` or ``postgresql+psycopg://…``.

    Examples
    --------
    >>> store = open_store("sqlite:///instance/geo311.sqlite")  # doctest: +SKIP
    >>> store.schema.init()  # doctest: +SKIP
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises several types here
        raise ConfigError(
            f"GEO311_DATABASE_URL was {url!r} but is expected to be a database URL such as "
            "'sqlite:///instance/geo311.sqlite' or 'postgresql+psycopg://host/db'"
        ) from exc
    backend = parsed.get_backend_name()
    for kind in DIALECTS:
        if kind.url_backend == backend:
            dialect = kind()
            return Store(dialect.create_engine(url), dialect)
    raise ConfigError(
        f"GEO311_DATABASE_URL was {url!r} but its backend {backend!r} is expected to be "
        "'sqlite' (SpatiaLite) or 'postgresql' (PostGIS)"
    )
