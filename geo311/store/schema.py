"""Schema: create, upgrade and repair the tables, their triggers and indexes."""

from __future__ import annotations

import logging
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    Connection,
    MetaData,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.schema import AddConstraint

from geo311.errors import InvalidRequest
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database

LOGGER = logging.getLogger(__name__)


class Schema:
    """The tables of one database, made and kept to the declared schema."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def init(self) -> int:
        """Create missing tables, columns, indexes and keys; return the schema version.

        Also rebuilds what a killed bulk load left suspended, so running it after any
        crash gives the structure of a clean database.
        """
        self.upgrade()
        return t.SCHEMA_VERSION

    def upgrade(self) -> list[str]:
        """Do what ``init_schema`` does; return what was added or rebuilt (for a report)."""
        with self.db.begin() as conn:
            self.db.dialect.prepare_schema(conn)
        # A copy: GeoAlchemy2's SQLite DDL hooks edit the metadata they create from.
        copy = MetaData()
        for table in t.metadata.sorted_tables:
            table.to_metadata(copy)
        copy.create_all(self.db.engine)
        with self.db.begin() as conn:
            found = conn.execute(
                select(t.schema_info.c.value).where(t.schema_info.c.key == "version")
            ).scalar()
            if found is not None and int(found) > t.SCHEMA_VERSION:
                raise InvalidRequest(
                    f"the database has schema version {found} but this geo311 knows only "
                    f"{t.SCHEMA_VERSION}: upgrade geo311"
                )
            # What a killed bulk load suspended comes back first, from its recorded
            # definitions; tables still listed then belong to a load that is running.
            added = self.db.dialect.restore_suspended(conn)
            busy = set(conn.execute(select(t.suspended_structure.c.table_name)).scalars())
            added += self._add_missing_columns(conn, busy) + self.db.dialect.finish_schema(conn)
            added += self._add_missing_structure(conn, busy)
            if conn.execute(select(t.schema_info.c.key)
                            .where(t.schema_info.c.key == t.RECORDS_GENERATION)).first() is None:
                conn.execute(insert(t.schema_info).values(key=t.RECORDS_GENERATION, value="0"))
            for statement in self.db.dialect.record_triggers():
                conn.execute(text(statement))
            if found is None:
                conn.execute(
                    insert(t.schema_info).values(key="version", value=str(t.SCHEMA_VERSION))
                )
            elif int(found) < t.SCHEMA_VERSION:
                conn.execute(update(t.schema_info).where(t.schema_info.c.key == "version")
                             .values(value=str(t.SCHEMA_VERSION)))
            if added or (found is not None and int(found) < t.SCHEMA_VERSION):
                write_audit(conn, "upgrade_schema", "schema", t.SCHEMA_VERSION,
                            {"from": found, "added_columns": added})
        return added

    def _add_missing_columns(self, conn: Connection, busy: set[str] | None = None) -> list[str]:
        """Add the columns a newer geo311 declares to tables an older one created.

        Schema changes are additive: new tables are created by ``create_all`` and
        new columns, which are nullable or carry a scalar default, are added here,
        so upgrading never rewrites or loses stored rows. Missing declared indexes
        are created too, except on ``busy`` tables (a bulk load is rebuilding them).
        """
        busy = busy or set()
        existing = inspect(conn)
        tables = set(existing.get_table_names())
        added: list[str] = []
        for table in t.metadata.sorted_tables:
            if table.name not in tables:
                continue
            self._add_missing_table_columns(conn, existing, table, added)
            if table.name in busy:
                continue
            indexes = {i["name"] for i in existing.get_indexes(table.name)}
            for index in table.indexes:
                spatial = any(isinstance(c.type, Geometry) for c in index.columns)
                if index.name and index.name not in indexes and not spatial:
                    index.create(conn)
                    added.append(f"index {index.name}")
                    LOGGER.info("schema upgrade: created index %s", index.name)
        return added

    def _add_missing_structure(self, conn: Connection, busy: set[str]) -> list[str]:
        """Rebuild declared spatial indexes and foreign keys the database lacks.

        They go missing only by accident (a bulk load killed by an older geo311, a
        hand-made change); ``init-db`` puts them back and reports them.
        """
        existing = set(inspect(conn).get_table_names())
        added: list[str] = []
        for table in t.metadata.sorted_tables:
            if table.name not in existing or table.name in busy:
                continue
            for column in table.columns:
                if (isinstance(column.type, Geometry) and column.type.spatial_index
                        and self.db.dialect.spatial_index_missing(conn, table.name, column.name)):
                    self.db.dialect.create_spatial_index(conn, table.name, column.name)
                    added.append(f"spatial index {table.name}.{column.name}")
                    LOGGER.info("schema repair: created the spatial index on %s.%s",
                                table.name, column.name)
            for constraint in self.db.dialect.foreign_keys_missing(conn, table):
                conn.execute(AddConstraint(constraint))
                columns = ", ".join(c.name for c in constraint.columns)
                added.append(f"foreign key {table.name}({columns})")
                LOGGER.info("schema repair: added the foreign key %s(%s)", table.name, columns)
        return added

    def _add_missing_table_columns(self, conn: Connection, existing: Any, table: Any,
                                   added: list[str]) -> None:
        """Add ``table``'s declared columns that the stored table lacks."""
        have = {c["name"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if isinstance(column.type, Geometry):
                raise InvalidRequest(
                    f"cannot add geometry column {table.name}.{column.name} in place: "
                    "export, re-create with init-db and re-import"
                )
            ddl = f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" ' \
                f"{column.type.compile(dialect=conn.dialect)}"
            default = getattr(column.default, "arg", None)
            if isinstance(default, bool):
                ddl += f" DEFAULT {'TRUE' if default else 'FALSE'}"
            elif isinstance(default, int | float):
                ddl += f" DEFAULT {default}"
            elif isinstance(default, str):
                ddl += " DEFAULT '" + default.replace("'", "''") + "'"
            if not column.nullable and default is not None:
                ddl += " NOT NULL"
            conn.execute(text(ddl))
            added.append(f"{table.name}.{column.name}")
            LOGGER.info("schema upgrade: added column %s.%s", table.name, column.name)

    def drop(self) -> None:
        """Drop every geo311 table and its data (tests and benchmarks only)."""
        with self.db.begin() as conn:
            for table in reversed(t.metadata.sorted_tables):
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}"{self.db.dialect.cascade}'))

    def truncate_all(self) -> None:
        """Delete every row (tests and demos); the schema stays."""
        with self.db.begin() as conn:
            self.db.dialect.truncate_all(conn)
