"""Prepared databases: each state built once per session and backend, copied per test.

A state (the schema; the shipped layers; the Open311 city; a seeded sample; the whole
demo) is a template: a SpatiaLite file copied for each test, or a PostGIS database each
test gets by ``CREATE DATABASE … TEMPLATE``. A test starts from the state of the fixtures
it uses (``STATE_FIXTURES``), the deepest when several. This module is imported, never
loaded as a conftest, so the registry is one however the conftests are imported.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from geo311.store import open_store

#: Where ``backend_url`` leaves what the test's state builder returned.
PREPARED = pytest.StashKey[Any]()


@dataclass(frozen=True)
class State:
    """A database state: ``build(store, workdir)`` applied to a copy of ``base``."""

    name: str
    base: str | None
    build: Callable[[Any, Path], Any]

    def depth(self) -> int:
        return 0 if self.base is None else 1 + STATES[self.base].depth()

    def lineage(self) -> set[str]:
        return {self.name} | (set() if self.base is None else STATES[self.base].lineage())


STATES: dict[str, State] = {}
#: (module or None for any, fixture name) -> the state a test using that fixture starts from.
STATE_FIXTURES: dict[tuple[str | None, str], str] = {}


def prepared_state(name: str, *, base: str | None = "schema", fixtures: tuple[str, ...] = (),
                   module: str | None = None):
    """Register ``build(store, workdir) -> extra`` as the state ``name``.

    Tests using one of ``fixtures`` (defined in ``module``, or anywhere when None) start
    from a copy of it; ``extra`` (what ``build`` returned) is the ``prepared`` fixture.
    """
    def register(build: Callable[[Any, Path], Any]) -> Callable[[Any, Path], Any]:
        STATES[name] = State(name, base, build)
        for fixture in fixtures:
            STATE_FIXTURES[(module, fixture)] = name
        return build
    return register


def starts_from(name: str, *fixtures: str, module: str | None = None) -> None:
    """Tests using one of ``fixtures`` (of ``module``) start from the existing state ``name``."""
    for fixture in fixtures:
        STATE_FIXTURES[(module, fixture)] = name


def state_of(request: pytest.FixtureRequest) -> State:
    """The deepest state asked for by the test's fixtures (they must lie on one line)."""
    module = request.module.__name__ if request.module is not None else None
    wanted = {STATES[s] for (mod, fixture), s in STATE_FIXTURES.items()
              if fixture in request.fixturenames and mod in (None, module)}
    if not wanted:
        return STATES["schema"]
    deepest = max(wanted, key=State.depth)
    clash = [s.name for s in wanted if s.name not in deepest.lineage()]
    if clash:
        raise pytest.UsageError(f"{request.node.nodeid}: states {deepest.name} and {clash} "
                                "do not build on each other")
    return deepest


class SpatialiteTemplates:
    """SpatiaLite templates: one file per state, copied for each test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict[str, tuple[Path, Any]] = {}

    def template(self, name: str) -> tuple[Path, Any]:
        if name not in self.built:
            state = STATES[name]
            path = self.root / f"{name}.sqlite"
            if state.base is not None:
                shutil.copy(self.template(state.base)[0], path)
            workdir = self.root / name
            workdir.mkdir()
            store = open_store(f"sqlite:///{path}")
            try:
                extra = state.build(store, workdir)
            finally:
                store.dispose()
            self.built[name] = (path, extra)
        return self.built[name]

    def copy(self, name: str, directory: Path) -> Iterator[tuple[str, Any]]:
        source, extra = self.template(name)
        path = directory / "geo311.sqlite"
        shutil.copy(source, path)
        yield f"sqlite:///{path}", extra


class PostgisTemplates:
    """PostGIS templates: one database per state, each test ``CREATE DATABASE … TEMPLATE``.

    The empty schema is the exception: emptying the session's database (TRUNCATE) is
    faster than copying one (measured), so schema-only tests share it, emptied.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.db = make_url(url).database or "postgres"
        self.admin = create_engine(url, isolation_level="AUTOCOMMIT")
        self.built: dict[str, tuple[str, Any]] = {}
        self.copies = itertools.count(1)
        self.worker = ThreadPoolExecutor(max_workers=1)
        self.spares: dict[str, Future[str]] = {}
        self.dropping: list[Future[None]] = []
        with self.admin.connect() as conn:
            fast = conn.execute(text("SHOW server_version_num")).scalar_one()
            self.strategy = " STRATEGY FILE_COPY" if int(fast) >= 150000 else ""
            stale = conn.execute(text(
                "SELECT datname FROM pg_database WHERE starts_with(datname, :a) "
                "OR starts_with(datname, :b)"), {"a": self.prefix("tpl"),
                                                 "b": self.prefix("copy")}).scalars().all()
        for name in stale:  # left by a session that was killed
            self.drop(name)

    def prefix(self, kind: str) -> str:
        return f"{self.db}_{kind}_"

    def url_of(self, name: str) -> str:
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def create(self, name: str, template: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{self.strategy}'))

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def template(self, name: str, workroot: Path) -> tuple[str, Any]:
        if name not in self.built:
            state = STATES[name]
            db = self.prefix("tpl") + name
            self.create(db, "template0" if state.base is None
                        else self.template(state.base, workroot)[0])
            workdir = workroot / f"postgis-{name}"
            workdir.mkdir()
            store = open_store(self.url_of(db))
            try:
                extra = state.build(store, workdir)
            finally:
                store.dispose()  # a template must have no connection while it is copied
            self.built[name] = (db, extra)
        return self.built[name]

    def copy(self, name: str, workroot: Path) -> Iterator[tuple[str, Any]]:
        if name == "schema":
            store = open_store(self.url)
            store.schema.truncate_all()
            store.dispose()
            yield self.url, None
            return
        template, extra = self.template(name, workroot)
        ready = self.spares.pop(name, None)
        db = ready.result() if ready is not None else self.fresh(template)
        # Tests of one state come together (a file, a fixture): copy the next one while
        # this test runs, and drop this copy after it, both off the test's time.
        self.spares[name] = self.worker.submit(self.fresh, template)
        try:
            yield self.url_of(db), extra
        finally:
            self.dropping.append(self.worker.submit(self.drop, db))

    def fresh(self, template: str) -> str:
        """A new copy of ``template``; its name."""
        db = self.prefix("copy") + str(next(self.copies))
        self.create(db, template)
        return db

    def close(self) -> None:
        self.worker.shutdown(wait=True)
        for done in self.dropping:
            done.result()  # a copy that could not be dropped is an error
        for spare in self.spares.values():
            self.drop(spare.result())
        for db, _ in self.built.values():
            self.drop(db)
        self.admin.dispose()


@prepared_state("schema", base=None)
def _schema(store, workdir: Path) -> None:
    store.schema.init()
