"""Referral across jurisdictions: a report in a neighbour is told who handles it, and forwarded.

The neighbour is a second geo311 on loopback (its own SpatiaLite file, Evanston's boundary
from the shipped jurisdiction layer as its service area), served by werkzeug in a thread.
"""

import json
import socket
import threading
import time
import urllib.request
from types import SimpleNamespace

import geopandas as gpd
import pytest
from shapely import Point
from werkzeug.serving import make_server

from geo311.catalogue import load_catalogue, read_catalogue
from geo311.config import Settings
from geo311.layers import load_layer
from geo311.referral import (
    ForwardPolicy,
    forward_due,
    load_routing,
    open311_fields,
    post_form,
    remote_id_of,
    run_worker,
)
from geo311.store import open_store
from geo311_web import create_app
from geo311_web.cli import cli
from tests.conftest import SHAPEFILES, csrf_ready, load_shipped
from tests.prepared import prepared_state

EVANSTON = (-87.6816, 42.0480)  # Fountain Square, Evanston
OAK_PARK = (-87.7845, 41.8850)  # Oak Park's village hall
LAKE = (-87.45, 41.95)  # Lake Michigan: outside the city and every neighbour
LOOP = (-87.6321, 41.8837)
EVANSTON_ID = "1724582"  # its Census GEOID, the layer's id
KEY_ENV = "GEO311_TEST_NEIGHBOUR_KEY"


@prepared_state("referral", base="layered", fixtures=("referral_city",), module=__name__)
def _referral_city(store, workdir):
    load_shipped(store, "jurisdictions")
    load_catalogue(store, read_catalogue("chicago"), source="chicago")
    return store.accounts.create_api_key("referral-tests")


@pytest.fixture
def referral_city(app, prepared):
    """The app's store: Chicago's layers, its 34 neighbours, the catalogue, an API key."""
    return SimpleNamespace(store=app.extensions["geo311"].store, key=prepared)


# --- the neighbour: a real geo311 on loopback ---------------------------------------------


def _evanston(tmp_path):
    layer = gpd.read_file(SHAPEFILES / "jurisdictions" / "jurisdictions.shp")
    path = tmp_path / "evanston.geojson"
    layer[layer["geoid"] == EVANSTON_ID].to_file(path, driver="GeoJSON")
    return path


@pytest.fixture
def neighbour(spatialite_templates, tmp_path):
    """Evanston's geo311: its boundary as service area, a catalogue and our API key."""
    folder = tmp_path / "neighbour"
    folder.mkdir()
    copies = spatialite_templates.copy("schema", folder)
    url, _ = next(copies)
    store = open_store(url)
    load_layer(store, _evanston(tmp_path), name="evanston", role="service_area",
               id_field="geoid", name_field="name", activate=True)
    load_catalogue(store, read_catalogue("chicago"), source="chicago")
    key = store.accounts.create_api_key("chicago-referrals")
    store.dispose()
    app = create_app(Settings(database_url=url, instance_path=folder / "instance"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    yield SimpleNamespace(base=base, endpoint=f"{base}/open311/v2", key=key)
    server.shutdown()
    thread.join()
    server.server_close()
    app.extensions["geo311"].store.dispose()
    copies.close()


@pytest.fixture
def closed_endpoint():
    """An Open311 base on a loopback port nobody listens on: a neighbour that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/open311/v2"


@pytest.fixture
def routing_file(request, tmp_path):
    """The shipped routing table, or one that forwards Evanston's reports (SDR as PHF)."""
    if "neighbour" in request.fixturenames:
        endpoint = request.getfixturevalue("neighbour").endpoint
    elif "closed_endpoint" in request.fixturenames:
        endpoint = request.getfixturevalue("closed_endpoint")
    else:
        return ""
    path = tmp_path / "routing.toml"
    path.write_text(f"""
jurisdiction_layer = "jurisdictions"
forward = true
max_attempts = 3
[[agencies]]
id = "evanston-311"
name = "Evanston 311"
phone = "847-448-4311"
open311 = {{ endpoint = "{endpoint}", api_key_env = "{KEY_ENV}", service_codes = {{ SDR = "PHF" }} }}
[[agencies]]
id = "hall"
name = "the village or city hall of {{jurisdiction}}"
refer = true
[[routes]]
jurisdiction = "{EVANSTON_ID}"
service = "*"
agency = "evanston-311"
[[routes]]
jurisdiction = "*"
service = "*"
agency = "hall"
""")
    return path


@pytest.fixture
def settings(backend_url, tmp_path, routing_file):
    return Settings(database_url=backend_url, instance_path=tmp_path / "instance",
                    routing_file=str(routing_file))


def _post(client, key, at, code="SDR", **extra):
    return client.post("/open311/v2/requests.json", data={
        "api_key": key, "service_code": code, "lat": at[1], "long": at[0], **extra})


def _wait_for(condition, timeout_s=20.0):
    """Wait until ``condition()`` is true (polling a condition, not sleeping for time)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# --- told who handles it -----------------------------------------------------------------


def test_the_points_lie_where_the_census_file_says(referral_city):
    layer = gpd.read_file(SHAPEFILES / "jurisdictions" / "jurisdictions.shp")
    by_name = layer.set_index("name").geometry
    assert by_name["Evanston"].contains(Point(EVANSTON))
    assert by_name["Oak Park"].contains(Point(OAK_PARK))
    assert not layer.contains(Point(LAKE)).any() and not layer.contains(Point(LOOP)).any()


def test_open311_post_in_evanston_names_evanston_311_and_stores_nothing(client, referral_city):
    before = referral_city.store.requests.count()
    r = _post(client, referral_city.key, EVANSTON)
    assert r.status_code == 400  # as the plain refusal outside the city
    (error,) = r.get_json()
    assert error["code"] == 400
    assert "in Evanston" in error["description"]
    assert "Evanston 311 (City of Evanston) (phone 847-448-4311, " \
           "https://www.cityofevanston.org/311)" in error["description"]
    assert "outside the city limit" in error["description"]
    assert referral_city.store.requests.count() == before
    (row,) = referral_city.store.referrals.rows()
    assert (row["status"], row["jurisdiction_id"], row["agency_id"], row["how"]) == \
        ("referred", EVANSTON_ID, "evanston-311", "refer")
    assert row["description"] == ""  # nothing kept that is not passed on


def test_open311_xml_error_and_other_neighbours_and_open_water(client, referral_city):
    r = client.post("/open311/v2/requests.xml", data={
        "api_key": referral_city.key, "service_code": "SDR", "lat": OAK_PARK[1], "long": OAK_PARK[0]})
    assert r.status_code == 400 and r.mimetype == "text/xml"
    assert b"the village or city hall of Oak Park" in r.data
    lake = _post(client, referral_city.key, LAKE)
    assert lake.status_code == 400
    assert "outside the city limit" in lake.get_json()[0]["description"]
    assert "handled by" not in lake.get_json()[0]["description"]
    assert [r["jurisdiction_name"] for r in referral_city.store.referrals.rows()] == ["Oak Park"]


def test_report_form_in_evanston_tells_the_resident(client, referral_city):
    r = client.post("/report", data={"service_code": "SDR", "lat": EVANSTON[1],
                                     "long": EVANSTON[0], "description": "old sofa"})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "Reports there are handled by Evanston 311 (City of Evanston)" in page
    assert "847-448-4311" in page


def test_desk_request_in_oak_park_tells_the_call_taker(app, referral_city, staff_client):
    agent = staff_client("agent")
    r = agent.post("/api/staff/intake/request", json={
        "channel": "phone", "service_code": "SDR", "lat": OAK_PARK[1], "long": OAK_PARK[0]})
    assert r.status_code == 422
    assert "the village or city hall of Oak Park" in r.get_json()[0]["description"]


def test_inside_the_city_reports_are_taken_as_before(client, referral_city):
    r = _post(client, referral_city.key, LOOP)
    assert r.status_code == 200 and r.get_json()[0]["service_request_id"]
    assert referral_city.store.referrals.rows() == []


# --- forwarded to a neighbour's Open311 ---------------------------------------------------


@pytest.mark.both_backends  # the referrals outbox on each backend
def test_a_report_in_evanston_is_forwarded_and_resolvable_on_the_neighbour(
        app, client, referral_city, neighbour, monkeypatch):
    r = _post(client, referral_city.key, EVANSTON, description="sofa on the parkway",
              email="resident@example.org", first_name="Maria")
    assert r.status_code == 400
    description = r.get_json()[0]["description"]
    assert "passed on to them: referral reference R-" in description
    reference = description.rsplit("referral reference ", 1)[1].rstrip(".")
    row = referral_city.store.referrals.get(reference)
    assert row["status"] == "pending" and row["description"] == "sofa on the parkway"
    assert "resident@example.org" not in json.dumps(row, default=str)

    monkeypatch.setenv(KEY_ENV, neighbour.key)
    runner = app.test_cli_runner()
    out = runner.invoke(cli, ["referrals", "run", "--once"])
    assert out.exit_code == 0, out.output
    assert "1 forwarded, 0 to retry, 0 failed" in out.output
    row = referral_city.store.referrals.get(reference)
    assert row["status"] == "forwarded" and row["attempts"] == 1 and row["remote_id"]

    with urllib.request.urlopen(
            f"{neighbour.endpoint}/requests/{row['remote_id']}.json") as answer:
        (remote,) = json.loads(answer.read())
    assert remote["service_code"] == "PHF"  # the routing table's code mapping
    assert remote["description"] == "sofa on the parkway"
    assert (remote["long"], remote["lat"]) == pytest.approx(EVANSTON)

    # Posting it again (a worker that stopped before storing the answer) makes no second
    # request on the neighbour: our reference is its client_request_id.
    table = load_routing(app.extensions["geo311"].settings.routing_path)
    fields = open311_fields(row, table.agencies["evanston-311"], neighbour.key)
    assert remote_id_of(post_form(f"{neighbour.endpoint}/requests.json", fields, 5)) \
        == row["remote_id"]

    page = client.get(f"/referrals/{reference}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Passed on to them." in text and row["remote_id"] in text
    assert "sofa" not in text  # the public page shows no report text


@pytest.mark.both_backends  # the referrals outbox on each backend
def test_a_neighbour_that_is_down_is_retried_then_flagged(app, referral_city, client,
                                                          closed_endpoint, staff_client):
    r = _post(client, referral_city.key, EVANSTON)
    reference = r.get_json()[0]["description"].rsplit("referral reference ", 1)[1][:-1]
    store = referral_city.store
    routing = load_routing(app.extensions["geo311"].settings.routing_path)
    policy = ForwardPolicy(max_attempts=routing.max_attempts, backoff_s=0.0, timeout_s=2)
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(store, lambda: routing, policy),
                              kwargs={"poll_s": 0.05, "stop": stop,
                                      "environ": {KEY_ENV: "any"}})
    worker.start()
    try:
        _wait_for(lambda: store.referrals.get(reference)["status"] == "failed")
    finally:
        stop.set()
        worker.join()
    row = store.referrals.get(reference)
    assert row["attempts"] == 3 and "cannot reach" in row["last_error"]
    assert [e["action"] for e in store.audit.entries("referral", reference)] == \
        ["referral_made", "referral_failed"]

    staff = staff_client("agent")
    page = staff.get("/staff/referrals").get_data(as_text=True)
    assert f'id="flagged-{reference}"' in page and "cannot reach" in page
    assert staff.post(f"/staff/referrals/{reference}/retry").status_code == 302
    assert store.referrals.get(reference)["status"] == "pending"
    listed = app.test_cli_runner().invoke(cli, ["referrals", "list", "--status", "pending"])
    assert reference in listed.output


def test_backoff_doubles_and_a_missing_key_waits(app, referral_city, client, closed_endpoint):
    policy = ForwardPolicy(backoff_s=60, max_backoff_s=600)
    assert [policy.wait_after(n).total_seconds() for n in (1, 2, 3, 5)] == [60, 120, 240, 600]
    r = _post(client, referral_city.key, EVANSTON)
    reference = r.get_json()[0]["description"].rsplit("referral reference ", 1)[1][:-1]
    routing = load_routing(app.extensions["geo311"].settings.routing_path)
    summary = forward_due(referral_city.store, routing, policy, environ={})
    assert (summary.retried, summary.failed) == (1, 0)
    row = referral_city.store.referrals.get(reference)
    assert row["status"] == "pending" and KEY_ENV in row["last_error"]
    assert row["next_attempt_at"] > row["created"]
    # not due yet: a pass now takes nothing
    assert forward_due(referral_city.store, routing, policy, environ={}).retried == 0


def test_referral_page_of_an_unknown_reference_is_404(client, referral_city):
    assert client.get("/referrals/R-999").status_code == 404


def test_referrals_staff_page_needs_a_login(app, referral_city):
    anonymous = csrf_ready(app, app.test_client())
    assert anonymous.get("/staff/referrals").status_code == 302


# --- inside the city: the routing table names the agency -----------------------------


OHARE = (-87.9048, 41.9786)  # community area 76


def test_inside_the_city_the_table_names_the_agency_responsible(client, referral_city):
    ids = {}
    for name, at in (("ohare", OHARE), ("loop", LOOP)):
        r = _post(client, referral_city.key, at, code="AVN")
        assert r.status_code == 200, r.get_json()
        ids[name] = r.get_json()[0]["service_request_id"]
    # the shipped table: aircraft noise at O'Hare goes to its noise office (example values)
    (ohare,) = client.get(f"/open311/v2/requests/{ids['ohare']}.json").get_json()
    (loop,) = client.get(f"/open311/v2/requests/{ids['loop']}.json").get_json()
    assert ohare["agency_responsible"] == "Department of Aviation – O'Hare noise office"
    assert loop["agency_responsible"] == "Aviation"  # no route: the catalogue's agency
    listed = client.get("/open311/v2/requests.json?service_code=AVN").get_json()
    assert {r["service_request_id"]: r["agency_responsible"] for r in listed} == {
        ids["ohare"]: "Department of Aviation – O'Hare noise office",
        ids["loop"]: "Aviation"}
    page = client.get(f"/requests/{ids['ohare']}").get_data(as_text=True)
    assert 'id="agency">Department of Aviation – O&#39;Hare noise office' in page


def test_records_built_without_the_table_are_stale_once_it_routes_inside(app, client,
                                                                        referral_city):
    from geo311.open311_records import refresh_records, stamp_tail

    r = _post(client, referral_city.key, OHARE, code="AVN")
    rid = int(r.get_json()[0]["service_request_id"])
    zone = app.extensions["geo311"].settings.zone
    routing = load_routing(app.extensions["geo311"].settings.routing_path)
    assert stamp_tail(zone) != stamp_tail(zone, routing)
    assert refresh_records(referral_city.store, zone) == (1, 0)  # without the table
    (record,) = client.get(f"/open311/v2/requests/{rid}.json").get_json()
    assert record["agency_responsible"] == "Department of Aviation – O'Hare noise office"
    assert refresh_records(referral_city.store, zone, routing) == (0, 1)  # the GET stored it


def test_a_new_version_of_the_jurisdiction_layer_is_used_at_once(app, client, referral_city,
                                                                  tmp_path):
    """GIS staff load the neighbours again, without Evanston: a point there is refused plainly."""
    layer = gpd.read_file(SHAPEFILES / "jurisdictions" / "jurisdictions.shp")
    path = tmp_path / "without_evanston.geojson"
    layer[layer["geoid"] != EVANSTON_ID].to_file(path, driver="GeoJSON")
    before = app.extensions["geo311"].context()
    assert before.neighbours.at(*EVANSTON) == (EVANSTON_ID, "Evanston")
    result = load_layer(referral_city.store, path, name="jurisdictions", role="jurisdiction",
                        id_field="geoid", name_field="name")
    assert not result.activated and result.version.version == 2
    after = app.extensions["geo311"].context()
    assert after is not before and after.neighbours.at(*EVANSTON) is None
    r = _post(client, referral_city.key, EVANSTON)
    assert "handled by" not in r.get_json()[0]["description"]
