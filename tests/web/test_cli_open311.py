"""``geo311 services`` and ``geo311 api-keys`` through Click's runner, both backends."""

from __future__ import annotations

import pytest

from geo311.store.tables import api_keys
from geo311_web.cli import cli
from tests.web.conftest import LOOP

#: Backend-specific paths throughout: every test here runs on PostGIS too.
pytestmark = pytest.mark.both_backends


def run(runner, *args):
    return runner.invoke(cli, list(map(str, args)))


def test_api_key_create_prints_the_key_alone_on_the_last_line(runner, app, client, city):
    out = run(runner, "api-keys", "create", "seeclickfix")
    assert out.exit_code == 0, out.output
    key = out.output.strip().splitlines()[-1]
    assert len(key) >= 40 and " " not in key
    store = app.extensions["geo311"].store
    with store.engine.connect() as conn:  # only the hash is stored
        stored = [r.key_hash for r in conn.execute(api_keys.select())]
    assert key not in stored and len(stored) == 2
    assert store.accounts.find_api_key(key).name == "seeclickfix"
    form = {"api_key": key, "service_code": "SDR", "lat": LOOP[1], "long": LOOP[0]}
    assert client.post("/open311/v2/requests.json", data=form).status_code == 200
    listing = run(runner, "api-keys", "list").output
    assert "seeclickfix" in listing and "active" in listing and key not in listing

    assert run(runner, "api-keys", "revoke", "seeclickfix").exit_code == 0
    assert "revoked" in run(runner, "api-keys", "list").output
    assert client.post("/open311/v2/requests.json", data=form).status_code == 403
    again = run(runner, "api-keys", "revoke", "seeclickfix")
    assert again.exit_code == 1 and "was revoked on" in again.output
    assert "exists already" in run(runner, "api-keys", "create", "tests").output
    assert "no API key is named" in run(runner, "api-keys", "revoke", "nobody").output
    assert [e["action"] for e in store.audit.entries("api_key", "seeclickfix")] == [
        "api_key_created", "api_key_revoked"]


def test_services_load_validates_and_upserts_then_lists(runner, app, tmp_path):
    path = tmp_path / "mycity.toml"
    path.write_text('[[services]]\ncode = "PH"\nname = "Pothole"\ngroup = "Streets"\n'
                    'sla_days = 3\n[[services.attributes]]\ncode = "lane"\n'
                    'datatype = "singlevaluelist"\ndescription = "Which lane?"\n'
                    'values = [{key = "curb", name = "Curb lane"}]\n')
    out = run(runner, "services", "load", path)
    assert out.exit_code == 0, out.output
    assert "1 added, 0 updated" in out.output
    path.write_text(path.read_text().replace('name = "Pothole"', 'name = "Pothole in street"'))
    assert "0 added, 1 updated" in run(runner, "services", "load", path).output
    listing = run(runner, "services", "list").output
    assert "Pothole in street" in listing and "1 questions" in listing
    store = app.extensions["geo311"].store
    assert store.catalogue.service("PH").attributes[0].values == (("curb", "Curb lane"),)
    assert [e["action"] for e in store.audit.entries("service")] == ["catalogue_loaded"] * 2

    path.write_text('[[services]]\ncode = "PH"\nname = "x"\nsla_days = "soon"\n')
    bad = run(runner, "services", "load", path)
    assert bad.exit_code == 1 and "sla_days" in bad.output and "Traceback" not in bad.output
    assert store.catalogue.service("PH").name == "Pothole in street"


def test_services_load_shipped_chicago(runner, app):
    out = run(runner, "services", "load", "chicago")
    assert out.exit_code == 0 and "loaded 75 services" in out.output
    assert "Sanitation Code Violation" in run(runner, "services", "list").output
