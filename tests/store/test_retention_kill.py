"""A real ``geo311 retention run`` killed with SIGKILL mid-run, then run again.

The moment is a condition, not a sleep: once the run has committed some batches (rows in
``retention_applied``), the test takes the lock the run needs next (SQLite's write lock;
on PostGIS an exclusive lock on ``retention_applied``, and it waits until the run's
session is seen waiting on it, half-way through a batch's transaction) and kills the
process there. Running again must give exactly the state of an uninterrupted run on a
copy of the same database, and a further run must change nothing.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, insert, literal, select, text
from sqlalchemy.engine import make_url

from geo311.config import PROJECT_ROOT
from geo311.retention import run_retention
from geo311.store import open_store
from geo311.store import tables as t
from tests.prepared import starts_from
from tests.records_seed import snapshot

starts_from("records", "records_store", module=__name__)

WAIT_S = 120
#: Copies of the seed's closed requests added (with reporters), so the run has many batches.
GROW = 30
BATCH = 10


@pytest.fixture
def records_store(store):
    return store


@pytest.fixture
def reference_url(request, backend_url, tmp_path, tmp_path_factory):
    """A second copy of the records state, for the uninterrupted run."""
    if backend_url.startswith("postgresql"):
        copies = request.getfixturevalue("postgis_templates").copy(
            "records", tmp_path_factory.getbasetemp())
    else:
        (tmp_path / "reference").mkdir()
        copies = request.getfixturevalue("spatialite_templates").copy(
            "records", tmp_path / "reference")
    url, _ = next(copies)
    yield url
    copies.close()


def _grow(store) -> None:
    """Add ``GROW`` copies of each closed request, each with a reporter of its own."""
    sr = t.service_requests.c
    columns = ["source", "service_code", "status", "status_notes", "description", "address",
               "zipcode", "media_url", "geocode_match", "outside_service_area",
               "requested_datetime", "updated_datetime", "closed_datetime", "reporter_count",
               "geom", "attributes"]
    with store.engine.begin() as conn:
        first = conn.execute(select(func.max(sr.id))).scalar_one()
        for _ in range(GROW):
            conn.execute(insert(t.service_requests).from_select(
                columns, select(*[sr[c] for c in columns]).where(
                    sr.closed_datetime.is_not(None), sr.id <= first).order_by(sr.id)))
        conn.execute(insert(t.reporters).from_select(
            ["request_id", "first_name", "last_name", "email", "phone", "device_id",
             "account_id", "created"],
            select(sr.id, literal("Bo"), literal("Kowalski"), literal("bo@example.net"),
                   literal("312-555-0111"), literal("dev"), literal(""),
                   sr.requested_datetime).where(sr.id > first)))


def _applied(store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.retention_applied))
                   .scalar_one())


def _wait(condition: Callable[[], bool], what: str, proc: subprocess.Popen | None = None
          ) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT_S} s for {what}")
        time.sleep(0.005)


class Blocker:
    """Holds the lock a retention batch needs, on the test database's backend."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgis = url.startswith("postgresql")
        self.waiting_pid: int | None = None
        if self.postgis:
            self.engine = create_engine(url)
            self.conn = self.engine.connect()
        else:
            # No busy timeout: SQLite's own wait sleeps up to 100 ms between tries and so
            # keeps missing the short gaps between the run's batches.
            self.raw = sqlite3.connect(make_url(url).database, timeout=0,
                                       isolation_level=None)

    def hold(self, proc: subprocess.Popen, total: int) -> None:
        if not self.postgis:
            def taken_mid_run() -> bool:
                """The write lock, taken in a gap between batches after the first."""
                try:
                    self.raw.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:  # the run is writing a batch
                    return False
                done = self.raw.execute("SELECT count(*) FROM retention_applied").fetchone()[0]
                if 0 < done < total:
                    return True  # kept: the run waits for it at its next batch
                self.raw.execute("ROLLBACK")
                return False

            _wait(taken_mid_run, "a gap between the run's batches", proc)
            return
        self.conn.execute(text("LOCK TABLE retention_applied IN EXCLUSIVE MODE"))
        watcher = self.engine.connect()

        def blocked() -> bool:
            self.waiting_pid = watcher.execute(text(
                "SELECT l.pid FROM pg_locks l WHERE NOT l.granted AND l.relation = "
                "'retention_applied'::regclass")).scalar()
            watcher.rollback()
            return self.waiting_pid is not None

        _wait(blocked, "the run's session to wait on retention_applied", proc)
        watcher.close()

    def release(self) -> None:
        if not self.postgis:
            self.raw.execute("ROLLBACK")
            self.raw.close()
            return
        self.conn.rollback()
        self.conn.close()
        with self.engine.connect() as conn:  # the killed run's session ends, its batch undone
            _wait(lambda: conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE "
                                            "pid = :pid"), {"pid": self.waiting_pid}
                                       ).scalar_one() == 0 or bool(conn.rollback()),
                  "the killed run's session to end")
        self.engine.dispose()


def test_kill_9_mid_run_then_a_rerun_equals_an_uninterrupted_run(
        records_store, prepared, reference_url, backend_url, tmp_path):
    store, reference = records_store, open_store(reference_url)
    try:
        for s in (store, reference):
            _grow(s)
        as_of = datetime.combine((prepared.closed_at + timedelta(days=6 * 366)).date(),
                                 datetime.min.time(), UTC)
        whole = run_retention(reference, as_of=as_of, batch_size=BATCH)
        total = sum(k.applied for k in whole.kinds.values())
        assert total > 5 * BATCH * 3

        env = {**os.environ, "GEO311_DATABASE_URL": backend_url,
               "GEO311_INSTANCE_PATH": str(tmp_path / "instance")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "geo311_web", "retention", "run", "--as-of",
             f"{as_of:%Y-%m-%d}", "--batch-size", str(BATCH)],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        blocker = Blocker(backend_url)
        try:
            _wait(lambda: _applied(store) > 0, "a first batch to commit", proc)
            blocker.hold(proc, total)
            assert proc.poll() is None  # it cannot end while the lock is held: mid-run
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(WAIT_S) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
            blocker.release()
        partial = _applied(store)
        assert 0 < partial < total

        again = run_retention(store, as_of=as_of, batch_size=BATCH)
        assert sum(k.applied for k in again.kinds.values()) == total - partial
        assert snapshot(store) == snapshot(reference)
        assert sum(k.applied for k in run_retention(store, as_of=as_of).kinds.values()) == 0
        assert snapshot(store) == snapshot(reference)
    finally:
        reference.dispose()

