"""Fixtures: real SpatiaLite and PostGIS stores, the Flask app, client and runner.

Each test's database is its own copy of a state built once per session (``tests.prepared``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from geo311.config import PROJECT_ROOT, Settings
from geo311.store import open_store
from tests.prepared import (
    PREPARED,
    PostgisTemplates,
    SpatialiteTemplates,
    prepared_state,
    state_of,
)

BACKENDS = ("spatialite", "postgis")
SHAPEFILES = PROJECT_ROOT / "shapefiles"
SAMPLES = SHAPEFILES / "requests"
LEGACY_CSV = SAMPLES / "chicago_311_sanitation_code_complaints_2011_2013.csv.gz"
SAMPLE_2021_CSV = SAMPLES / "chicago_311_all_types_2021-01-01_to_02_sample.csv.gz"

# --- Hypothesis: quick while developing, thorough in CI ------------------------------

hypothesis_settings.register_profile("ci", max_examples=100, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile("dev", max_examples=15, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
hypothesis_settings.load_profile(PROFILE)


def examples(thorough: int) -> int:
    """``max_examples`` for a test that sets its own: all of them in CI, a tenth in dev.

    A ``@settings`` decorator overrides the loaded profile, so such tests ask here.
    """
    return thorough if PROFILE == "ci" else max(5, thorough // 10)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-all-backends", action="store_true",
        help="fail (instead of skip) when SpatiaLite or PostGIS is not available",
    )
    parser.addoption(
        "--web-on-both-backends", action="store_true",
        help="run every web and browser test on PostGIS too, not only the both_backends ones",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Web and browser tests run on SpatiaLite; those marked ``both_backends`` on both.

    Every store test stays on both backends: only views over the same store calls drop
    their PostGIS twin, and the marked ones cover each backend-specific path.
    """
    if config.getoption("--web-on-both-backends"):
        return
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgis = callspec is not None and callspec.params.get("backend_url") == "postgis"
        part = Path(str(item.fspath)).parent.name
        if (on_postgis and part in ("web", "browser")
                and item.get_closest_marker("both_backends") is None):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _unavailable(request: pytest.FixtureRequest, why: str) -> None:
    if request.config.getoption("--require-all-backends"):
        pytest.fail(f"backend required but unavailable: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def spatialite_templates(tmp_path_factory: pytest.TempPathFactory) -> SpatialiteTemplates:
    return SpatialiteTemplates(tmp_path_factory.mktemp("templates"))


@pytest.fixture(scope="session")
def spatialite_template(spatialite_templates: SpatialiteTemplates) -> Path:
    """A SpatiaLite file with the schema, copied for each test (initialising is slow)."""
    return spatialite_templates.template("schema")[0]


@pytest.fixture(scope="session")
def postgis_url(request: pytest.FixtureRequest) -> str:
    """The PostGIS test database, schema created afresh once per session."""
    url = os.environ.get("GEO311_TEST_POSTGIS_URL", "")
    if not url:
        _unavailable(request, "GEO311_TEST_POSTGIS_URL is not set")
    store = open_store(url)
    try:
        store.db.ping()
    except Exception as exc:  # noqa: BLE001 - any connection failure means unavailable
        store.dispose()
        _unavailable(request, f"PostGIS at {url} is unreachable: {exc}")
    with store.engine.begin() as conn:
        store.db.dialect.prepare_schema(conn)
    store.schema.drop()
    store.schema.init()
    store.dispose()
    return url


@pytest.fixture(scope="session")
def postgis_templates(postgis_url: str) -> Iterator[PostgisTemplates]:
    templates = PostgisTemplates(postgis_url)
    yield templates
    templates.close()


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database URL for each backend: a fresh copy of the state the test starts from."""
    state = state_of(request)
    if request.param == "spatialite":
        copies = request.getfixturevalue("spatialite_templates").copy(state.name, tmp_path)
    else:
        copies = request.getfixturevalue("postgis_templates").copy(
            state.name, tmp_path_factory.getbasetemp())
    url, extra = next(copies)
    request.node.stash[PREPARED] = extra
    yield url
    copies.close()



@pytest.fixture
def prepared(request: pytest.FixtureRequest, backend_url: str) -> Any:
    """What the test's prepared state's builder returned (ids, keys, outputs)."""
    return request.node.stash[PREPARED]


@pytest.fixture
def store(backend_url: str):
    store = open_store(backend_url)
    yield store
    store.dispose()


@pytest.fixture
def settings(backend_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=backend_url, instance_path=tmp_path / "instance")


@pytest.fixture
def app(settings: Settings):
    from geo311_web import create_app

    app = create_app(settings)
    app.config.update(TESTING=True)
    yield app
    app.extensions["geo311"].store.dispose()


@pytest.fixture
def client(app):
    """An anonymous client whose form posts carry a valid CSRF token, as a browser's would."""
    return csrf_ready(app, app.test_client())


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def load_shipped(store, *names: str) -> None:
    """Load shipped layers by name, as their TOML definitions say."""
    from geo311.layerdefs import read_layer_definitions
    from geo311.layers import load_layer

    defs = {d.name: d for d in read_layer_definitions(PROJECT_ROOT / "layers", PROJECT_ROOT)}
    for name in names:
        d = defs[name]
        load_layer(store, d.source, name=d.name, title=d.title, role=d.role,
                   id_field=d.id_field, name_field=d.name_field, crs=d.crs, activate=True)


@prepared_state("layered", fixtures=("layered_store",))
def _layered(store, workdir: Path) -> None:
    load_shipped(store, "community_areas", "wards_2015_2023")


@pytest.fixture
def layered_store(store):
    """A store with community areas (the service area) and wards 2015-2023 active."""
    return store


@prepared_state("demo", fixtures=("demo_output",))
def _demo(store, workdir: Path):
    """``geo311 demo --no-serve`` once per session and backend; its result is kept."""
    from geo311_web import create_app
    from geo311_web.cli import cli

    url = store.engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, instance_path=workdir / "instance"))
    try:
        result = app.test_cli_runner().invoke(cli, ["demo", "--no-serve"])
    finally:
        app.extensions["geo311"].store.dispose()
    return DemoRun(result.exit_code, result.output)


@dataclass(frozen=True)
class DemoRun:
    """What the session's one full ``geo311 demo`` run said."""

    exit_code: int
    output: str


@pytest.fixture
def demo_output(prepared) -> DemoRun:
    """The test's database is a copy of the demo's; this is what that run printed."""
    return prepared


@pytest.fixture
def ctx(layered_store):
    from geo311.intake import Context

    return Context.from_store(layered_store)


def csv_head(src: Path, dest: Path, rows: int) -> Path:
    """The header and first ``rows`` data lines of a (gzipped) CSV."""
    import gzip

    with gzip.open(src, "rt", encoding="utf-8") as fh, open(dest, "w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if i > rows:
                break
            out.write(line)
    return dest


@pytest.fixture
def app_for(tmp_path):
    """An app over an existing store's database."""
    from geo311_web import create_app

    made = []

    def build(store):
        url = store.engine.url.render_as_string(hide_password=False).split("?")[0]
        app = create_app(Settings(database_url=url, instance_path=tmp_path / "instance"))
        app.config.update(TESTING=True)
        made.append(app)
        return app

    yield build
    for app in made:
        app.extensions["geo311"].store.dispose()


# --- dispatch: staff accounts -------------------------------------------------------

STAFF_PASSWORD = "correct horse battery staple"


def csrf_ready(app, client):
    """Give ``client`` a session CSRF token and send it with every request (X-CSRFToken)."""
    from flask import session
    from flask_wtf.csrf import generate_csrf

    with app.test_request_context():
        token = generate_csrf()
        raw = session["csrf_token"]
    with client.session_transaction() as sess:
        sess["csrf_token"] = raw
    client.environ_base["HTTP_X_CSRFTOKEN"] = token
    return client


@pytest.fixture
def staff_client(app):
    """``staff_client(role)``: a test client logged in through /login as a new user of ``role``."""
    from geo311.accounts import create_user

    made = {}

    def login(role: str = "admin", username: str | None = None):
        name = username or f"{role}-user"
        if name not in made:
            create_user(app.extensions["geo311"].store, name, STAFF_PASSWORD, role)
            made[name] = True
        c = csrf_ready(app, app.test_client())
        r = c.post("/login", data={"username": name, "password": STAFF_PASSWORD})
        assert r.status_code == 302, r.get_data(as_text=True)
        return c

    return login


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(tmp_path):
    """Start ``geo311 run`` on a free loopback port against a database URL."""
    procs = []

    def start(database_url: str, command: str = "run", timeout_s: float = 60,
              **env_extra: str) -> str:
        port = _free_port()
        env = {**os.environ, "GEO311_DATABASE_URL": database_url,
               "GEO311_INSTANCE_PATH": str(tmp_path / "instance"), **env_extra}
        log = open(tmp_path / f"server-{port}.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "geo311_web", command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append((proc, log))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / f"server-{port}.log").read_text())
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return base
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not start in {timeout_s} s")

    yield start
    for proc, log in procs:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def submit_as_imported(store, ctx, new):
    """Take in ``new`` through intake, then give it the text a legacy import could carry.

    Intake refuses HTML in a description (``geo311.reports``), but a legacy CRM's rows
    arrive by import with whatever their text was, so pages must still show hostile
    stored text safely: this stores it the way such a row would hold it.
    """
    from dataclasses import replace

    from sqlalchemy import update

    from geo311.intake import submit
    from geo311.store import tables

    stored = submit(store, ctx, replace(new, description=""))
    if new.description:
        with store.engine.begin() as conn:
            conn.execute(update(tables.service_requests).where(
                tables.service_requests.c.id == stored.id).values(description=new.description))
    return store.requests.get(stored.id)


# --- knowledge base -------------------------------------------------------------------


@prepared_state("kb", fixtures=("kb_store",))
def _kb(store, workdir: Path) -> None:
    from geo311.catalogue import load_catalogue, read_catalogue
    from geo311.knowledge import load_kb

    load_catalogue(store, read_catalogue("chicago"), source="chicago")
    load_kb(store, "chicago")


@pytest.fixture
def kb_store(store):
    """A store with the Chicago catalogue and its shipped starter knowledge base."""
    return store
