"""init-db upgrades a database an older geo311 created, keeping its rows."""

from __future__ import annotations

from sqlalchemy import MetaData, Table, insert, inspect, select, text

from geo311.store import open_store
from geo311.store import tables as t


def _older_schema(store, dropped: str) -> None:
    """Re-create ``services`` without one column, as an older release had it."""
    with store.engine.begin() as conn:
        conn.execute(text(f'DROP TABLE "services"{store.db.dialect.cascade}'))
    old = MetaData()
    columns = [c._copy() for c in t.services.columns if c.name != dropped]
    Table("services", old, *columns).create(store.engine)


def test_init_db_adds_columns_an_older_release_lacked(backend_url):
    store = open_store(backend_url)
    try:
        _older_schema(store, "dedup_only_open")
        with store.engine.begin() as conn:  # an index a newer release declares
            conn.execute(text("DROP INDEX ix_requests_updated"))
        with store.engine.begin() as conn:
            conn.execute(insert(t.services).values(code="SCB", name="Sanitation", group="",
                                                   description="", keywords="", active=True))
        store.schema.init()
        with store.engine.connect() as conn:
            row = conn.execute(select(t.services.c.code, t.services.c.dedup_only_open)).one()
        assert row.code == "SCB"
        assert row.dedup_only_open is None
        assert store.catalogue.service("SCB").name == "Sanitation"
        with store.engine.connect() as conn:
            names = {i["name"] for i in inspect(conn).get_indexes("service_requests")}
        assert "ix_requests_updated" in names
        entries = store.audit.entries("schema", t.SCHEMA_VERSION)
        assert entries and "services.dedup_only_open" in str(entries[-1])
        assert "index ix_requests_updated" in str(entries[-1])
        store.schema.init()  # nothing left to add: no second audit entry
        assert len(store.audit.entries("schema", t.SCHEMA_VERSION)) == len(entries)
    finally:
        store.schema.drop()  # leave the shared PostGIS test database as other tests expect
        store.schema.init()
        store.dispose()


def test_init_db_adds_the_knowledge_base_to_a_version_6_database(backend_url):
    from geo311.catalogue import load_catalogue, read_catalogue
    from geo311.knowledge import load_kb, search_kb

    store = open_store(backend_url)
    try:
        with store.engine.begin() as conn:
            for name in ("kb_article_versions", "kb_articles", "kb_index", "kb_synonyms"):
                conn.execute(text(f'DROP TABLE "{name}"{store.db.dialect.cascade}'))
            conn.execute(t.schema_info.update().where(t.schema_info.c.key == "version")
                         .values(value="6"))
        _older_schema(store, "accepting")
        with store.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO services (code, name, \"group\", description, keywords, active, "
                "agency, attributes, sensitive) VALUES ('SGA', 'Rodent Baiting', '', '', '', "
                "TRUE, '', '[]', FALSE)"))
        added = store.schema.upgrade()
        assert "services.accepting" in added
        assert store.db.schema_version() == t.SCHEMA_VERSION >= 7
        assert store.catalogue.service("SGA").accepting is True  # old services stay offered
        with store.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        assert {"kb_articles", "kb_article_versions", "kb_index", "kb_synonyms"} <= tables
        load_catalogue(store, read_catalogue("chicago"), source="chicago")
        load_kb(store, "chicago")
        assert search_kb(store, "rats", 1)[0].service_code == "SGA"
    finally:
        store.schema.drop()
        store.schema.init()
        store.dispose()


def test_init_db_adds_import_flags_to_a_version_7_database(backend_url):
    store = open_store(backend_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(text('ALTER TABLE service_requests DROP COLUMN "import_flags"'))
            conn.execute(t.schema_info.update().where(t.schema_info.c.key == "version")
                         .values(value="7"))
        added = store.schema.upgrade()
        assert "service_requests.import_flags" in added
        assert store.db.schema_version() == t.SCHEMA_VERSION >= 8
        with store.engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("service_requests")}
        assert "import_flags" in columns
    finally:
        store.schema.drop()
        store.schema.init()
        store.dispose()
