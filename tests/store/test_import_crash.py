"""A real ``geo311 import`` killed (SIGKILL) at several moments, then run again.

The moments are conditions, not sleeps. On PostGIS the test holds a table lock the
import is about to need, waits until the import's session is seen waiting on it
(``pg_stat_activity``), and kills it there: after the indexes and foreign keys are
dropped, half-way through the COPY transaction, half-way through the transaction that
rebuilds them, and after the load while public records are written. On SpatiaLite it
kills once the services are committed but the rows are not, and once the rows are.
After each kill the same command is run to completion, and the whole structure and the
rows must equal those of a clean import into a fresh database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from geo311.config import PROJECT_ROOT
from geo311.store import open_store
from geo311.store import tables as t
from tests.conftest import LEGACY_CSV, csv_head, load_shipped

ROWS = 10_000
WAIT_S = 120


# --- databases ---------------------------------------------------------------------


def _admin(postgis_url: str):
    return create_engine(postgis_url, isolation_level="AUTOCOMMIT")


def _drop_database(admin, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Databases:
    """Fresh databases of one backend, each holding the schema and a district layer."""

    def __init__(self, backend: str, base: Path, postgis_url: str | None) -> None:
        self.backend = backend
        self.base = base
        self.postgis_url = postgis_url
        self.made: list[str] = []
        # Named after the test database, so that sessions on other databases never meet.
        self.prefix = f"{make_url(postgis_url).database}_crash_" if postgis_url else ""
        self.clean: dict[str, Any] | None = None
        self.template = self._make_template()

    def _make_template(self) -> str:
        if self.backend == "spatialite":
            path = self.base / "template.sqlite"
            self._prepare(f"sqlite:///{path}")
            return str(path)
        name = self.prefix + "template"
        admin = _admin(self.postgis_url)
        _drop_database(admin, name)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.made.append(name)
        self._prepare(self._url(name))
        return name

    def _prepare(self, url: str) -> None:
        store = open_store(url)
        store.schema.init()
        load_shipped(store, "community_areas")
        store.dispose()

    def _url(self, name: str) -> str:
        return make_url(self.postgis_url).set(database=name).render_as_string(
            hide_password=False)

    def fresh(self, label: str) -> str:
        """A new database copied from the template; its URL."""
        if self.backend == "spatialite":
            path = self.base / f"{label}.sqlite"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            shutil.copy(self.template, path)
            return f"sqlite:///{path}"
        name = self.prefix + label
        admin = _admin(self.postgis_url)
        _drop_database(admin, name)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        admin.dispose()
        if name not in self.made:
            self.made.append(name)
        return self._url(name)

    def drop_all(self) -> None:
        if self.backend == "postgis":
            admin = _admin(self.postgis_url)
            for name in self.made:
                _drop_database(admin, name)
            admin.dispose()


def _databases(backend: str, request, factory) -> Iterator[Databases]:
    url = request.getfixturevalue("postgis_url") if backend == "postgis" else None
    dbs = Databases(backend, factory.mktemp(f"crash-{backend}"), url)
    try:
        yield dbs
    finally:
        dbs.drop_all()


@pytest.fixture(scope="module")
def spatialite_dbs(request, tmp_path_factory) -> Iterator[Databases]:
    yield from _databases("spatialite", request, tmp_path_factory)


@pytest.fixture(scope="module")
def postgis_dbs(request, tmp_path_factory) -> Iterator[Databases]:
    yield from _databases("postgis", request, tmp_path_factory)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return csv_head(LEGACY_CSV, tmp_path_factory.mktemp("src") / "legacy.csv", ROWS)


# --- the import as a process -------------------------------------------------------


def _env(url: str, instance: Path) -> dict[str, str]:
    # A load of any size takes the bulk path (drop indexes and keys, rebuild at the end).
    return {**os.environ, "GEO311_DATABASE_URL": url, "GEO311_INSTANCE_PATH": str(instance),
            "GEO311_BULK_MIN_ROWS": "1"}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "geo311_web", *args]


def _import_args(path: Path) -> list[str]:
    return _command("import", str(path), "--mapping", "chicago-311-legacy")


def _run(url: str, instance: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=PROJECT_ROOT, env=_env(url, instance),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def _start(url: str, instance: Path, path: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(_import_args(path), cwd=PROJECT_ROOT, env=_env(url, instance),
                                stdout=out, stderr=subprocess.STDOUT)


def _wait_for(proc: subprocess.Popen[bytes], log: Path, what: str,
              condition: Callable[[], Any]) -> Any:
    """Poll ``condition`` until it is truthy; fail if the import ends first."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"the import ended ({proc.returncode}) before {what}:\n"
                        + log.read_text()[-3000:])
        time.sleep(0.005)
    pytest.fail(f"no {what} within {WAIT_S} s")


# --- what is compared ----------------------------------------------------------------

_POSTGIS_STRUCTURE = {
    "columns": """SELECT table_name, column_name, ordinal_position, data_type, udt_name,
                  is_nullable, column_default FROM information_schema.columns
                  WHERE table_schema = 'public' ORDER BY 1, 2""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
                  WHERE schemaname = 'public' ORDER BY 1, 2""",
    "constraints": """SELECT c.conrelid::regclass::text, c.conname, c.contype,
                      pg_get_constraintdef(c.oid), c.convalidated FROM pg_constraint c
                      JOIN pg_namespace n ON n.oid = c.connamespace
                      WHERE n.nspname = 'public' ORDER BY 1, 2""",
    "triggers": """SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid), tgenabled
                   FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
    "functions": """SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
                    JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'public' AND p.proname LIKE 'geo311%' ORDER BY 1""",
    # The audit log's own numbering counts the killed run's entries too.
    "sequences": """SELECT sequencename, last_value FROM pg_sequences
                    WHERE schemaname = 'public' AND sequencename <> 'audit_log_id_seq'
                    ORDER BY 1""",
}

_SPATIALITE_STRUCTURE = {
    "sqlite_master": """SELECT type, name, tbl_name, sql FROM sqlite_master
                        WHERE name NOT LIKE 'sqlite_stat%' ORDER BY 1, 2""",
    "geometry_columns": "SELECT * FROM geometry_columns ORDER BY 1, 2",
    "spatial_index_check": "SELECT CheckSpatialIndex('service_requests', 'geom')",
    "spatial_index_rows": "SELECT count(*) FROM idx_service_requests_geom",
    # SpatiaLite's own history log counts the killed run's entries too.
    "sequences": """SELECT name, seq FROM sqlite_sequence
                    WHERE name <> 'spatialite_history' ORDER BY 1""",
}


def _read(conn, query: str) -> list[tuple[Any, ...]]:
    """The rows of ``query``, or what it failed with (a table that is gone)."""
    try:
        return [tuple(r) for r in conn.execute(text(query))]
    except DBAPIError as exc:
        conn.rollback()
        return [("failed", str(exc.orig))]


def structure(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table, column, index, constraint, trigger and function of a database."""
    store = open_store(url)
    queries = _POSTGIS_STRUCTURE if store.backend == "postgis" else _SPATIALITE_STRUCTURE
    try:
        with store.engine.connect() as conn:
            found = {k: _read(conn, q) for k, q in queries.items()}
            found["suspended"] = [tuple(r) for r in conn.execute(select(t.suspended_structure))]
            found["version"] = [tuple(r) for r in conn.execute(select(t.schema_info).where(
                t.schema_info.c.key == "version"))]
    finally:
        store.dispose()
    return found


def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The stored requests (every column but the import's clock), districts, services."""
    sr = t.service_requests.c
    kept = [c for c in t.service_requests.columns if c.name not in ("geom", "updated_datetime")]
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            return {
                "requests": [tuple(r) for r in conn.execute(
                    select(*kept, func.ST_X(sr.geom), func.ST_Y(sr.geom)).order_by(sr.id))],
                "districts": [tuple(r) for r in conn.execute(
                    select(t.request_districts).order_by(*t.request_districts.primary_key))],
                "services": [tuple(r) for r in conn.execute(
                    select(t.services).order_by(t.services.c.code))],
                "records": [tuple(r) for r in conn.execute(
                    select(t.public_records.c.request_id, t.public_records.c.revision)
                    .order_by(t.public_records.c.request_id))],
            }
    finally:
        store.dispose()


def clean_import(dbs: Databases, source: Path) -> dict[str, Any]:
    """Structure and rows after an uninterrupted import into a fresh database (made once)."""
    if dbs.clean is None:
        url = dbs.fresh("clean")
        _run(url, dbs.base / "instance", _import_args(source))
        found = {"url": url, "structure": structure(url), "rows": rows(url)}
        assert len(found["rows"]["requests"]) == ROWS
        assert found["rows"]["districts"] and found["rows"]["records"]
        assert found["structure"]["suspended"] == []
        dbs.clean = found
    return dbs.clean


# --- the moments ---------------------------------------------------------------------


def _import_sessions(conn, mine: set[int]) -> list[Any]:
    return conn.execute(text(
        "SELECT pid, wait_event_type, query, state FROM pg_stat_activity "
        "WHERE datname = current_database() AND backend_type = 'client backend' "
        "AND NOT (pid = ANY (:mine))"), {"mine": sorted(mine)}).all()


def _waiting_on(conn, mine: set[int], statement: str) -> bool:
    return any(s.wait_event_type == "Lock" and s.query.lstrip().startswith(statement)
               for s in _import_sessions(conn, mine))


def _suspended_count(conn) -> int:
    return int(conn.execute(select(func.count()).select_from(t.suspended_structure)).scalar())


def _request_count(conn) -> int:
    return int(conn.execute(select(func.count()).select_from(t.service_requests)).scalar())


class Observer:
    """Connections of the test to the database being imported into."""

    def __init__(self, url: str) -> None:
        self.store = open_store(url)
        self.watch = self.store.engine.connect()  # polls, in autocommit-like short reads
        self.holders: list[Any] = []

    def pids(self) -> set[int]:
        if self.store.backend != "postgis":
            return set()
        return {c.execute(text("SELECT pg_backend_pid()")).scalar() for c in
                [self.watch, *self.holders]}

    def poll(self, read: Callable[[Any], Any]) -> Any:
        try:
            return read(self.watch)
        finally:
            self.watch.rollback()

    def hold(self, statement: str) -> Any:
        """Take a table lock in a transaction left open until ``release``."""
        conn = self.store.engine.connect()
        conn.execute(text(statement))
        self.holders.append(conn)
        return conn

    def release(self, conn: Any) -> None:
        conn.rollback()
        conn.close()
        self.holders.remove(conn)

    def close(self) -> None:
        for conn in list(self.holders):
            self.release(conn)
        self.watch.close()
        self.store.dispose()


def _after_drop(obs: Observer, proc, log) -> str:
    """PostGIS: indexes and keys dropped (and recorded); stopped before any row is written."""
    _wait_for(proc, log, "the structure is suspended", lambda: obs.poll(_suspended_count))
    obs.hold("LOCK TABLE services IN SHARE MODE")  # the import adds its service next
    _wait_for(proc, log, "the import waits to add its service",
              lambda: obs.poll(lambda c: _waiting_on(c, obs.pids(), "INSERT INTO services")))
    return "after_drop"


def _mid_copy(obs: Observer, proc, log) -> str:
    """PostGIS: the requests are COPYed in the open transaction, the districts not yet."""
    _wait_for(proc, log, "the structure is suspended", lambda: obs.poll(_suspended_count))
    obs.hold("LOCK TABLE request_districts IN SHARE MODE")
    _wait_for(proc, log, "the import waits to COPY districts",
              lambda: obs.poll(lambda c: _waiting_on(c, obs.pids(), "COPY request_districts")))
    return "mid_copy"


def _mid_restore(obs: Observer, proc, log) -> str:
    """PostGIS: the rows are committed; the indexes are rebuilt, the keys not yet."""
    _wait_for(proc, log, "the structure is suspended", lambda: obs.poll(_suspended_count))
    districts = obs.hold("LOCK TABLE request_districts IN SHARE MODE")
    _wait_for(proc, log, "the import waits to COPY districts",
              lambda: obs.poll(lambda c: _waiting_on(c, obs.pids(), "COPY request_districts")))
    # Its service is in: the foreign key to services is the last thing it rebuilds.
    obs.hold("LOCK TABLE services IN SHARE ROW EXCLUSIVE MODE")
    obs.release(districts)
    _wait_for(proc, log, "the import waits to restore the foreign key to services",
              lambda: obs.poll(lambda c: _waiting_on(c, obs.pids(), "ALTER TABLE")))
    assert obs.poll(_request_count) == ROWS  # committed, with the structure still suspended
    assert obs.poll(_suspended_count)
    return "mid_restore"


def _writing_records(obs: Observer, proc, log) -> str:
    """PostGIS: the load and its structure are done; public records are being written."""
    _wait_for(proc, log, "the structure is suspended", lambda: obs.poll(_suspended_count))
    obs.hold("LOCK TABLE public_records IN SHARE MODE")
    _wait_for(proc, log, "the import waits to write public records",
              lambda: obs.poll(lambda c: any(
                  s.wait_event_type == "Lock" and "public_records" in s.query
                  for s in _import_sessions(c, obs.pids()))))
    assert obs.poll(_suspended_count) == 0
    assert obs.poll(_request_count) == ROWS
    return "writing_records"


def _rows_in_flight(obs: Observer, proc, log) -> str:
    """SpatiaLite: its service is committed, its rows not yet (they are being written)."""
    _wait_for(proc, log, "the service is stored", lambda: obs.poll(
        lambda c: c.execute(select(func.count()).select_from(t.services)).scalar()))
    assert obs.poll(_request_count) == 0
    return "rows_in_flight"


def _rows_committed(obs: Observer, proc, log) -> str:
    """SpatiaLite: the rows are committed; the import is finishing (SLA times, records)."""
    _wait_for(proc, log, "the rows are stored", lambda: obs.poll(_request_count) == ROWS)
    return "rows_committed"


def _kill_at(dbs: Databases, source: Path, tmp_path: Path, label: str, moment) -> str:
    """Start the import into a fresh database, SIGKILL it at ``moment``; the URL."""
    url = dbs.fresh(label)
    log = tmp_path / f"{label}.log"
    proc = _start(url, tmp_path / "instance", source, log)
    obs = Observer(url)
    try:
        moment(obs, proc, log)
        proc.kill()
        assert proc.wait(timeout=60) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
        obs.close()
    return url


def _run_again_and_compare(dbs: Databases, source: Path, tmp_path: Path, url: str) -> None:
    clean = clean_import(dbs, source)
    _run(url, tmp_path / "instance", _import_args(source))
    assert structure(url) == clean["structure"]
    assert rows(url) == clean["rows"]


@pytest.mark.parametrize("moment", [_after_drop, _mid_copy, _mid_restore],
                         ids=lambda m: m.__name__.strip("_"))
def test_postgis_import_killed_with_its_structure_suspended_then_run_again(
        postgis_dbs, source, tmp_path, moment):
    url = _kill_at(postgis_dbs, source, tmp_path, "killed", moment)
    killed = structure(url)
    names = {r[1] for r in killed["indexes"]} | {r[1] for r in killed["constraints"]}
    assert "idx_service_requests_geom" not in names
    assert "service_requests_service_code_fkey" not in names
    assert {r[2] for r in killed["suspended"]} == {  # recorded, ready to rebuild
        "idx_service_requests_geom", "ix_requests_geom_requested", "ix_requests_status",
        "ix_requests_duplicate_of", "ix_requests_h3_missing", "ix_requests_updated",
        "ix_requests_service_requested", "ix_requests_requested", "ix_requests_hotspots",
        "ix_requests_status_requested", "ix_requests_source_requested",
        "ix_requests_assignee_requested", "ix_requests_status_expected",
        "ix_requests_description_trgm", "ix_requests_address_trgm",
        "service_requests_service_code_fkey", "service_requests_duplicate_of_fkey"}
    _run_again_and_compare(postgis_dbs, source, tmp_path, url)


def test_postgis_import_killed_after_its_load_then_run_again(postgis_dbs, source, tmp_path):
    url = _kill_at(postgis_dbs, source, tmp_path, "killed", _writing_records)
    assert structure(url)["suspended"] == []
    _run_again_and_compare(postgis_dbs, source, tmp_path, url)


@pytest.mark.parametrize("moment", [_rows_in_flight, _rows_committed],
                         ids=lambda m: m.__name__.strip("_"))
def test_spatialite_import_killed_then_run_again(spatialite_dbs, source, tmp_path, moment):
    url = _kill_at(spatialite_dbs, source, tmp_path, "killed", moment)
    assert structure(url)["spatial_index_check"] == [(1,)]
    _run_again_and_compare(spatialite_dbs, source, tmp_path, url)


@pytest.mark.parametrize("backend", ["spatialite", "postgis"])
def test_init_db_alone_rebuilds_what_is_missing(request, backend, source, tmp_path):
    dbs = request.getfixturevalue(f"{backend}_dbs")
    clean = clean_import(dbs, source)
    if backend == "postgis":
        url = _kill_at(dbs, source, tmp_path, "killed_init", _mid_copy)
    else:  # nothing is suspended on SpatiaLite: lose the spatial index and an index by hand
        url = _kill_at(dbs, source, tmp_path, "killed_init", _rows_in_flight)
        store = open_store(url)
        with store.engine.begin() as conn:
            conn.execute(text("SELECT DisableSpatialIndex('service_requests', 'geom')"))
            conn.execute(text("DROP TABLE idx_service_requests_geom"))
            conn.execute(text("DROP INDEX ix_requests_status"))
        store.dispose()
    before = structure(url)
    out = _run(url, tmp_path / "instance", _command("init-db")).stdout
    after = structure(url)
    for key in ("indexes", "constraints", "triggers", "functions", "sqlite_master",
                "geometry_columns", "spatial_index_check"):
        assert after.get(key) == clean["structure"].get(key), key
    assert after["suspended"] == []
    assert after != before
    if backend == "postgis":
        assert "added index idx_service_requests_geom" in out
        assert "added foreign key service_requests_service_code_fkey" in out
        assert out.count("\n  added ") == 17
    else:
        assert "added spatial index service_requests.geom" in out
        assert "added index ix_requests_status" in out
    # Once whole, init-db adds nothing more and audits nothing more.
    store = open_store(url)
    audited = len(store.audit.entries("schema", t.SCHEMA_VERSION))
    store.dispose()
    again = _run(url, tmp_path / "instance", _command("init-db")).stdout
    assert "added" not in again
    assert structure(url) == after
    store = open_store(url)
    assert len(store.audit.entries("schema", t.SCHEMA_VERSION)) == audited
    store.dispose()


@pytest.mark.parametrize("backend", ["spatialite", "postgis"])
def test_init_db_on_a_clean_import_adds_nothing(request, backend, source, tmp_path):
    clean = clean_import(request.getfixturevalue(f"{backend}_dbs"), source)
    out = _run(clean["url"], tmp_path / "instance", _command("init-db")).stdout
    assert "added" not in out
    assert structure(clean["url"]) == clean["structure"]


# --- the bulk-load lock, in process (PostGIS) ------------------------------------------


def _status_index(store) -> bool:
    with store.engine.connect() as conn:
        return bool(conn.execute(text("SELECT to_regclass('ix_requests_status')")).scalar())


def test_init_db_leaves_a_running_bulk_load_alone(postgis_url):
    loading, other = open_store(postgis_url), open_store(postgis_url)
    try:
        with loading.requests.bulk_load(10**9, min_rows=1):
            assert not _status_index(loading)
            assert other.schema.upgrade() == []  # the load's structure is not its to rebuild
            assert not _status_index(other)
            assert structure(postgis_url)["suspended"]
        assert _status_index(other)
        assert structure(postgis_url)["suspended"] == []
    finally:
        loading.dispose()
        other.dispose()


def test_a_bulk_load_first_rebuilds_what_a_killed_one_left(postgis_url):
    store = open_store(postgis_url)
    try:
        whole = structure(postgis_url)
        store.db.dialect.suspend_structure(store.engine)  # and then the process died
        assert not _status_index(store)
        with store.requests.bulk_load(1, min_rows=10**9):  # too small to suspend anything itself
            assert _status_index(store)
            assert structure(postgis_url) == whole
    finally:
        store.schema.init()
        store.dispose()
