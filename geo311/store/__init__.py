"""Storage: one SQL store over SpatiaLite (embedded default) or PostGIS (production)."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url

from geo311.errors import ConfigError
from geo311.store.base import RequestStore
from geo311.store.postgis import PostGISStore
from geo311.store.spatialite import SpatiaLiteStore
from geo311.store.sql import SQLStore

__all__ = ["RequestStore", "SQLStore", "PostGISStore", "SpatiaLiteStore", "open_store"]


def open_store(url: str) -> SQLStore:
    """Connect to the database at ``url``: ``sqlite:///file`` or ``postgresql+psycopg://…``.

    Examples
    --------
    >>> store = open_store("sqlite:///instance/geo311.sqlite")  # doctest: +SKIP
    >>> store.init_schema()  # doctest: +SKIP
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises several types here
        raise ConfigError(
            f"GEO311_DATABASE_URL was {url!r} but is expected to be a database URL such as "
            "'sqlite:///instance/geo311.sqlite' or 'postgresql+psycopg://host/db'"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return SpatiaLiteStore(_spatialite_engine(url))
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, plugins=["geoalchemy2"], pool_pre_ping=True)
        return PostGISStore(engine)
    raise ConfigError(
        f"GEO311_DATABASE_URL was {url!r} but its backend {backend!r} is expected to be "
        "'sqlite' (SpatiaLite) or 'postgresql' (PostGIS)"
    )


def _spatialite_engine(url: str) -> Any:
    """An engine whose connections load SpatiaLite through an extension-capable sqlite3."""
    try:
        import pysqlite3.dbapi2 as sqlite_module  # type: ignore[import-not-found]
    except ImportError:  # a Python whose own sqlite3 can load extensions is fine too
        import sqlite3 as sqlite_module
    if not hasattr(sqlite_module.connect(":memory:"), "enable_load_extension"):
        raise ConfigError(
            "this Python's sqlite3 cannot load extensions, so SpatiaLite cannot run: "
            "install the 'pysqlite3-binary' package"
        )
    # GDAL (bundled in pyogrio's wheel) must be loaded before mod_spatialite brings in
    # the system's PROJ, GEOS and SQLite: the other order crashes the process at exit.
    import pyogrio  # noqa: F401

    os.environ.setdefault("SPATIALITE_LIBRARY_PATH", "mod_spatialite")
    path = make_url(url).database
    if path and path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sep = "&" if "?" in url else "?"
    engine = create_engine(
        f"{url}{sep}geoalchemy2_connect_sqlite_init_mode=WGS84",
        module=sqlite_module, plugins=["geoalchemy2"],
        connect_args={"timeout": 30, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    return engine
