"""Hotspot pages, exports and the citizen API through the Flask test client, on both backends."""

import csv
import io
import re

import pandas as pd
import pytest

from geo311.hotspots import (
    EMERGING_LABELS,
    HOT_PATTERNS,
    cells_of,
    parent_cells,
    snap_to_cell_centres,
)
from geo311.imports import import_file, read_mapping
from geo311.intake import Context, submit
from geo311.model import NewRequest
from tests.conftest import LEGACY_CSV, SAMPLE_2021_CSV, csv_head, load_shipped
from tests.prepared import prepared_state


@prepared_state("sample_2021", base="layered", fixtures=("real",), module=__name__)
def _real(store, workdir):
    import_file(store, Context.from_store(store), SAMPLE_2021_CSV, read_mapping("chicago-311"))


@pytest.fixture
def real(app):
    """The 2021 sample (5,000 real requests, all types) behind a running app."""
    return app.extensions["geo311"].store


def _parents(store, **filters):
    frame = pd.concat(list(store.requests.export_frames()), ignore_index=True)
    frame = frame[frame["duplicate_of"].isna() & frame["long"].notna()]
    for column, value in filters.items():
        frame = frame[frame[column] == value]
    return frame


def _number(body, name):
    return int(re.search(rf'id="{name}">(\d+)<', body).group(1))


@pytest.mark.both_backends
def test_hotspot_page_counts_parents_weighted_by_reporters(client, real):
    page = client.get("/hotspots?res=8")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    parents = _parents(real)
    assert _number(body, "reporters") == parents["reporter_count"].sum()
    cells = parent_cells(cells_of(parents["long"], parents["lat"], 15), 8)
    drawn = _number(body, "drawn")
    assert drawn >= len(set(cells.tolist()))  # every cell with a request, plus significant empties
    assert _number(body, "hot") > 0
    assert "/static/vendor/leaflet/leaflet.js" in body and "https://" not in body

    code = parents["service_code"].value_counts().index[0]
    one = client.get(f"/hotspots?res=8&service={code}").get_data(as_text=True)
    assert _number(one, "reporters") == _parents(real, service_code=code)["reporter_count"].sum()
    assert _number(one, "drawn") < drawn


@pytest.mark.both_backends
def test_children_never_count_but_their_reporters_do(client, real):
    before = client.get("/hotspots/export.csv?res=9").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(before)))
    parents = _parents(real)
    a, b = parents["service_request_id"].iloc[0], parents["service_request_id"].iloc[1]
    real.duplicates.mark(int(b), int(a))
    after = list(csv.DictReader(io.StringIO(
        client.get("/hotspots/export.csv?res=9").get_data(as_text=True))))
    assert sum(int(r["requests"]) for r in after) == sum(int(r["requests"]) for r in rows) - 1
    assert sum(int(r["reporters"]) for r in after) == sum(int(r["reporters"]) for r in rows)


@pytest.mark.both_backends
def test_exports_match_the_page_and_its_filters(client, real):
    args = "res=9&status=open&start=2021-01-01&end=2021-01-01"
    body = client.get(f"/hotspots?{args}").get_data(as_text=True)
    link = re.search(r'id="export-geojson" href="([^"]+)"', body).group(1)
    assert link.startswith("/hotspots/export.geojson?") and "status=open" in link
    geo = client.get(f"/hotspots/export.geojson?{args}")
    assert geo.mimetype == "application/geo+json"
    features = geo.get_json()["features"]
    table = list(csv.DictReader(io.StringIO(client.get(f"/hotspots/export.csv?{args}")
                                            .get_data(as_text=True))))
    assert len(features) == len(table) == _number(body, "drawn")
    assert [f["properties"]["h3_cell"] for f in features] == [r["h3_cell"] for r in table]
    ring = features[0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 7 and -88 < ring[0][0] < -87
    frame = _parents(real, status="open")
    day = pd.to_datetime(frame["requested_datetime"], utc=True).dt.tz_convert("America/Chicago")
    wanted = frame[day.dt.strftime("%Y-%m-%d") == "2021-01-01"]["reporter_count"].sum()
    assert sum(int(r["reporters"]) for r in table) == wanted
    assert {r["class"] for r in table} <= {"not significant", "hot 90%", "hot 95%", "hot 99%",
                                          "cold 90%", "cold 95%", "cold 99%"}
    assert all(f["properties"]["filters"]["status"] == "open" for f in features)


@pytest.mark.both_backends
def test_district_filter_and_choropleth(client, real):
    body = client.get("/hotspots?layer=community_areas&metric=requests").get_data(as_text=True)
    table = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", body)
    counts = {d: int(n) for d, n, _ in table}
    parents = _parents(real)
    want = parents["district_community_areas"].value_counts()
    assert counts == {str(k): int(v) for k, v in want.items()}
    loop = want.index[0]
    one = client.get(f"/hotspots?layer=community_areas&district={loop}").get_data(as_text=True)
    assert _number(one, "reporters") == parents[parents["district_community_areas"] == loop][
        "reporter_count"].sum()
    median = client.get("/hotspots?layer=community_areas&metric=median_days")
    assert median.status_code == 200 and "median days to close" in median.get_data(as_text=True)


@pytest.mark.parametrize("query, message", [
    ("res=12", "res was 12 but is expected to be in [7, 8, 9, 10]"),
    ("status=pending", "status was 'pending'"),
    ("start=2021-13-01", "start was '2021-13-01' but is expected to be a date"),
    ("start=2021-02-01&end=2021-01-01", "start 2021-02-01 is after end 2021-01-01"),
    ("layer=nowhere", "layer was 'nowhere' but the active layers are"),
    ("district=8", "district needs layer"),
    ("service=NOPE", "service was 'NOPE' but is not in the catalogue"),
    ("metric=x", "metric was 'x'"),
])
def test_bad_filters_are_precise_400s(client, real, query, message):
    for url in ("/hotspots", "/hotspots/export.csv", "/hotspots/emerging"):
        answer = client.get(f"{url}?{query}")
        assert answer.status_code == 400
        assert message.replace("'", "&#39;") in answer.get_data(as_text=True) or \
            message in answer.get_data(as_text=True)


@pytest.mark.both_backends
def test_emerging_page_labels_real_weeks(client, store, tmp_path):
    load_shipped(store, "community_areas")
    ctx = Context.from_store(store)
    import_file(store, ctx, csv_head(LEGACY_CSV, tmp_path / "head.csv", 8000),
                read_mapping("chicago-311-legacy"))
    page = client.get("/hotspots/emerging?res=8&weeks=12")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    counts = {label: _number(body, f"n-{label.replace(' ', '-')}") for label in
              EMERGING_LABELS if f'id="n-{label.replace(" ", "-")}"' in body}
    assert set(HOT_PATTERNS) <= set(counts)  # every hot class in the legend, with its count
    assert sum(counts.values()) > 0
    assert _number(body, "drawn") >= sum(counts.values())
    labelled = re.findall(r'"l":"([a-z ]*)"', body)
    assert sum(counts.values()) == sum(1 for x in labelled if x)  # legend counts = map cells
    narrower = client.get("/hotspots/emerging?res=8&weeks=12&status=open")
    assert _number(narrower.get_data(as_text=True), "drawn") < _number(body, "drawn")


def test_emerging_default_ends_with_the_last_complete_week_not_a_sample(client, store,
                                                                        tmp_path):
    """A two-day sample years after the archive must not end the default trend."""
    load_shipped(store, "community_areas")
    ctx = Context.from_store(store)
    head = csv_head(LEGACY_CSV, tmp_path / "head.csv", 8000)
    import_file(store, ctx, head, read_mapping("chicago-311-legacy"))
    import_file(store, ctx, csv_head(SAMPLE_2021_CSV, tmp_path / "s.csv", 300),
                read_mapping("chicago-311"))
    body = client.get("/hotspots/emerging?res=8&weeks=8").get_data(as_text=True)
    shown = re.search(r"weekly bins from (\S+) to (\S+) \(the last complete weeks",
                      body)
    first, last = (pd.Timestamp(x) for x in shown.groups())
    archive = pd.to_datetime(pd.read_csv(head)["Creation_Date"])
    assert last.day_name() == "Sunday" and last <= archive.max()
    assert archive.max() - last < pd.Timedelta(days=7)  # the archive's last full week
    assert (last - first).days == 8 * 7 - 1


# --- citizen map ---

@pytest.fixture
def sensitive(real):
    """A sensitive service with one real-looking request at an exact point."""
    from geo311.model import Service

    real.catalogue.upsert([Service("SHELTER", "Shelter concern", "Human services")])
    real.catalogue.set_sensitive("SHELTER", True)
    return real


@pytest.mark.both_backends
def test_sensitive_locations_never_reach_the_browser(client, app, sensitive):
    ctx = app.extensions["geo311"].context()
    lon, lat = -87.6543219, 41.9012345
    r = submit(sensitive, ctx, NewRequest("SHELTER", lon, lat, address="1234 N SECRET ST",
                                          description="behind 1234 N Secret St"))
    data = client.get(f"/api/requests/{r.id}").get_json()
    (x,), (y,) = snap_to_cell_centres([lon], [lat])
    assert data["location_masked"] is True
    assert (data["long"], data["lat"]) == (round(float(x), 6), round(float(y), 6))
    assert data["address"] == "" and data["description"] == ""
    assert (data["long"], data["lat"]) != (lon, lat)
    around = client.get(f"/api/requests/around?lat={y}&long={x}&radius_m=200").get_json()
    mine = [a for a in around if a["service_request_id"] == str(r.id)]
    assert mine and mine[0]["long"] == data["long"] and mine[0]["distance_m"] < 1
    for url in ("/", f"/requests/{r.id}", f"/api/requests/around?lat={lat}&long={lon}",
                f"/api/requests/nearby?lat={lat}&long={lon}&service_code=SHELTER"):
        body = client.get(url).get_data(as_text=True)
        assert "-87.65432" not in body and "41.90123" not in body and "SECRET" not in body.upper()
    assert "shown only approximately" in client.get(f"/requests/{r.id}").get_data(as_text=True)


@pytest.mark.both_backends
def test_around_lists_open_parents_within_the_radius(client, app, real):
    lon, lat = -87.6321, 41.8837
    ctx = app.extensions["geo311"].context()
    for r, _d in real.requests.near(lon, lat, 700, status=None, limit=25):  # reported again, live
        submit(real, ctx, NewRequest(r.service_code, r.lon, r.lat, address=r.address))
    found = client.get(f"/api/requests/around?lat={lat}&long={lon}&radius_m=800").get_json()
    want = [(r.id, d) for r, d in real.requests.near(lon, lat, 800, status="open", limit=10_000)
            if r.duplicate_of is None]
    assert sorted(int(f["service_request_id"]) for f in found) == sorted(i for i, _ in want)
    assert len(found) > 3 and all(f["distance_m"] <= 800 and f["status"] == "open"
                                  for f in found)
    assert not {"email", "first_name", "phone"} & set(found[0])
    assert client.get("/api/requests/around?lat=x&long=1").status_code == 400
    assert client.get(f"/api/requests/around?lat={lat}&long={lon}&radius_m=9000").status_code == 400


@pytest.mark.both_backends
def test_report_form_goes_through_intake_and_says_already_reported(client, real):
    form = {"service_code": "SCB", "lat": "41.8837", "long": "-87.6321",
            "address": "121 N LA SALLE ST", "description": "rats < 3 feet & more",
            "email": "me@example.org", "csrf_token": ""}
    first = client.post("/report", data=form)
    body = first.get_data(as_text=True)
    assert first.status_code == 200 and 'id="outcome">Thank you<' in body
    number = int(re.search(r'id="tracking-number"[^>]*>(\d+)<', body).group(1))
    assert real.requests.get(number).description == "rats < 3 feet & more"
    second = client.post("/report", data={**form, "email": "other@example.org"})
    body = second.get_data(as_text=True)
    assert 'id="outcome">Already reported<' in body
    assert re.search(r'id="tracking-number"[^>]*>(\d+)<', body).group(1) == str(number)
    assert 'id="reporter-count">2<' in body
    assert "me@example.org" not in body and "other@example.org" not in body
    tracking = client.get(f"/requests/{number}").get_data(as_text=True)
    assert 'id="reporter-count">2<' in tracking and "me@example.org" not in tracking


def test_report_form_refuses_bad_input_and_stores_nothing(client, real):
    count = real.requests.count()
    missing = client.post("/report", data={"service_code": "SCB", "description": "x"})
    assert missing.status_code == 400 and "a location is required" in missing.get_data(as_text=True)
    outside = client.post("/report", data={"service_code": "SCB", "lat": "40.0", "long": "-87.6"})
    assert outside.status_code == 422 and "outside the service area" in outside.get_data(as_text=True)
    assert 'value="40.0"' in outside.get_data(as_text=True)  # the form keeps what was typed
    assert real.requests.count() == count


@pytest.mark.both_backends
def test_in_memory_counts_follow_every_change_and_equal_sql(client, app, real):
    from geo311.hotspots import RequestFilter, cell_counts_of, filter_parents
    from geo311_web.hotspots import _requests_in_memory

    def both(where):
        with app.test_request_context("/hotspots"):
            parts, vocabulary = _requests_in_memory()
            memory = pd.concat([cell_counts_of(p, filter_parents(p, where, vocabulary), 9)
                                for p in parts])
            memory = memory.groupby("cell", as_index=False)[["requests", "reporters"]].sum()
        return memory, real.hotspots.counts(9, where)

    code = _parents(real)["service_code"].value_counts().index[0]
    filters = [RequestFilter(), RequestFilter(service_codes=(code,)), RequestFilter(status="open")]
    client.get("/hotspots")  # loads the rows once
    ctx = app.extensions["geo311"].context()
    new = submit(real, ctx, NewRequest(code, -87.6301, 41.8801, description="new"))
    again = submit(real, ctx, NewRequest(code, -87.6301, 41.8801, description="again"))
    parents = _parents(real)
    a, b = (int(x) for x in parents["service_request_id"].iloc[:2])
    real.duplicates.mark(b, a)
    real.requests.set_status(new.id, "closed")
    real.duplicates.unmerge(again.id) if again.duplicate_of else None
    for where in filters:
        memory, sql = both(where)
        pd.testing.assert_frame_equal(memory.reset_index(drop=True), sql.sort_values("cell")
                                      .reset_index(drop=True))
    assert app.extensions["geo311.hotspot_rows"].loads == 1  # caught up, never reloaded


@pytest.mark.both_backends
def test_sensitive_command_masks_a_service(runner, app):
    from tests.web.test_cli import run

    store = app.extensions["geo311"].store
    from geo311.model import Service

    store.catalogue.upsert([Service("RAT", "Rodent baiting", "Sanitation")])
    out = run(runner, "sensitive", "RAT")
    assert out.exit_code == 0 and "locations masked" in out.output
    assert store.catalogue.sensitive_codes() == {"RAT"}
    assert run(runner, "sensitive", "RAT", "--off").exit_code == 0
    assert store.catalogue.sensitive_codes() == set()
    missing = run(runner, "sensitive", "NOPE")
    assert missing.exit_code != 0 and "'NOPE' is not in the service catalogue" in missing.output
    assert [e["action"] for e in store.audit.entries("service", "RAT")] == [
        "service_sensitive", "service_sensitive"]
