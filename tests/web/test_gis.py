"""GIS staff pages and commands: upload, validation report, diff, activation, retirement, exports."""

import html
import io
import json
import zipfile

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from geo311.intake import Context, submit
from geo311.model import NewRequest, Service
from geo311_web.cli import cli
from tests.conftest import SHAPEFILES
from tests.prepared import starts_from

XSS = '<img src=x onerror="window.__xss=1">'


def _zip_of(folder, stem, parts=("shp", "shx", "dbf", "prj", "cpg")):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for part in parts:
            path = folder / f"{stem}.{part}"
            if path.exists():
                zf.write(path, path.name)
    return buf.getvalue()


@pytest.fixture
def client(staff_client):
    """GIS pages are for staff: a client logged in with the gis role."""
    return staff_client("gis")


starts_from("layered", "gis", module=__name__)


@pytest.fixture
def gis(app):
    """Community areas and wards 2015-2023 active; three requests, one closed."""
    store = app.extensions["geo311"].store
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation")])
    ctx = Context.from_store(store)
    made = [submit(store, ctx, NewRequest("SCB", lon, lat)) for lon, lat in
            [(-87.6389, 41.9402), (-87.7000, 41.9000), (-87.6650, 41.7800), (-87.6321, 41.8837)]]
    store.requests.set_status(made[0].id, "closed")
    return store


def _upload(client, data, filename, **fields):
    form = {"file": (io.BytesIO(data), filename), "name": "wards_2023", "id_field": "ward",
            **fields}
    return client.post("/gis/upload", data=form, content_type="multipart/form-data")


def test_upload_zip_shows_report_diff_and_activates(client, gis):
    before = {r.id: r.districts["wards_2015_2023"] for r in gis.requests.query()}
    r = _upload(client, _zip_of(SHAPEFILES / "wards_2023", "wards_2023"), "wards_2023.zip")
    assert r.status_code == 303
    assert r.headers["Location"].endswith("/gis/layers/wards_2023/versions/1/report")
    v = gis.layers.version("wards_2023")
    assert (v.status, v.source_file, v.loaded_by) == ("inactive", "wards_2023.zip", "gis-user")
    report = client.get("/gis/layers/wards_2023/versions/1/report.json")
    assert report.content_type == "application/json"
    info = report.get_json()
    assert info["feature_count"] == 50 and info["source_crs"] == "EPSG:4326"
    assert info["service_area"] == "community_areas"
    assert info["outside_count"] == len(info["outside"])
    page = client.get("/gis/layers/wards_2023/versions/1/report?replaces=wards_2015_2023")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="map-panel"' in body
    diff = client.get("/gis/layers/wards_2023/versions/1/diff.json?replaces=wards_2015_2023").get_json()
    assert diff["open_requests"] == 3 and diff["closed_kept"] == 1
    assert f'id="open-changed">{diff["open_changed"]}<' in body
    assert 'name="csrf_token"' in body
    done = client.post("/gis/layers/wards_2023/versions/1/activate",
                       data={"replaces": "wards_2015_2023"})
    assert done.status_code == 303
    assert gis.layers.version("wards_2023").status == "active"
    assert gis.layers.version("wards_2015_2023").status == "retired"
    after = {r.id: r for r in gis.requests.query()}
    closed = next(i for i, r in after.items() if r.status == "closed")
    assert after[closed].districts["wards_2015_2023"] == before[closed]
    assert "wards_2023" not in after[closed].districts
    feats = gis.layers.features("wards_2023")
    for r in after.values():
        if r.status == "open":
            hit = feats[feats.contains(shapely.Point(r.lon, r.lat))]["district_id"].tolist()
            assert r.districts["wards_2023"] in hit
    assert gis.audit.entries("layer", "wards_2023")[-1]["actor"] == "gis-user"


def test_upload_geojson_and_geopackage(client, gis, tmp_path):
    wards = gpd.read_file(SHAPEFILES / "wards_2023")
    pyogrio.write_dataframe(wards, tmp_path / "w.gpkg", layer="wards")
    assert _upload(client, (tmp_path / "w.gpkg").read_bytes(), "w.gpkg").status_code == 303
    assert _upload(client, wards.to_json().encode(), "w.geojson").status_code == 303
    assert [v.source_file for v in gis.layers.versions("wards_2023")] == ["w.gpkg", "w.geojson"]
    assert {v.checksum for v in gis.layers.versions("wards_2023")} != {""}


@pytest.mark.parametrize("data, filename, message", [
    (b"hello", "notes.txt", "extension '.txt'"),
    (b"PK\x03\x04 broken", "w.zip", "not a zip archive"),
    (b"{not json", "w.geojson", "could not be read as GeoJSON"),
])
def test_bad_uploads_get_precise_messages_and_store_nothing(client, gis, data, filename, message):
    audit = len(gis.audit.entries())
    r = _upload(client, data, filename)
    assert r.status_code == 400
    text = html.unescape(r.get_data(as_text=True))
    assert message in text and "geo311-upload-" not in text
    assert not _has(gis)
    assert len(gis.audit.entries()) == audit


def _has(store):
    return any(v.layer == "wards_2023" for v in store.layers.versions())


def test_zip_without_dbf_is_refused(client, gis):
    r = _upload(client, _zip_of(SHAPEFILES / "wards_2023", "wards_2023", ("shp", "shx", "prj")),
                "w.zip")
    assert r.status_code == 400 and ".dbf" in r.get_data(as_text=True)
    assert not _has(gis)


def test_upload_over_the_size_limit_is_refused(app, client, gis):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    r = _upload(client, b"x" * 5000, "w.geojson")
    assert r.status_code == 413
    assert "1,000 bytes allowed" in r.get_data(as_text=True)
    assert not _has(gis)


def test_report_page_escapes_layer_and_district_names(client, gis, tmp_path):
    frame = gpd.GeoDataFrame({"ward": ["1", XSS]}, crs=4326, geometry=[
        shapely.box(-87.70, 41.80, -87.69, 41.81), shapely.box(-87.69, 41.80, -87.68, 41.81)])
    path = tmp_path / "x.geojson"
    frame.to_file(path)
    _upload(client, path.read_bytes(), "x.geojson", name="evil", title=XSS, id_field="ward")
    body = client.get("/gis/layers/evil/versions/1/report").get_data(as_text=True)
    assert XSS not in body
    home = client.get("/gis/").get_data(as_text=True)
    assert "evil" in home and XSS not in home


def test_exports_from_the_gis_page(client, gis, tmp_path):
    home = client.get("/gis/").get_data(as_text=True)
    assert "/gis/layers/wards_2015_2023/export.shp?version=1" in home
    for fmt, mimetype in [("shp", "application/zip"), ("geojson", "application/geo+json"),
                          ("gpkg", "application/geopackage+sqlite3")]:
        r = client.get(f"/gis/layers/wards_2015_2023/export.{fmt}")
        assert r.status_code == 200 and r.mimetype == mimetype
        path = tmp_path / f"out.{'zip' if fmt == 'shp' else fmt}"
        path.write_bytes(r.data)
        back = pyogrio.read_dataframe(path)
        assert len(back) == 50
    assert client.get("/gis/layers/wards_2015_2023/export.kml").status_code == 400


def test_retire_from_the_page_guards_the_service_area(client, gis):
    r = client.post("/gis/layers/community_areas/retire")
    assert r.status_code == 400 and "is the service area" in r.get_data(as_text=True)
    assert client.post("/gis/layers/wards_2015_2023/retire").status_code == 303
    assert gis.layers.version("wards_2015_2023").status == "retired"


def test_staff_hook_guards_every_route(app, staff_client, gis):
    from geo311_web import gis as gis_web

    assert gis_web._staff_only in gis_web.bp.before_request_funcs[None]
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("gis.")]
    assert len(rules) >= 5
    anonymous = app.test_client()
    dispatcher = staff_client("dispatcher")
    for rule in rules:
        url = rule.rule.replace("<name>", "wards_2015_2023").replace("<int:version>", "1")
        url = url.replace("<fmt>", "geojson").replace("<path:name>", "x")
        method = "POST" if "POST" in rule.methods else "GET"
        r = anonymous.open(url, method=method)
        assert r.status_code in (302, 401, 400), (url, r.status_code)
        if r.status_code == 302:
            assert "/login" in r.headers["Location"]
        assert dispatcher.open(url, method=method).status_code == 403, url


def test_cli_diff_activate_retire(runner, gis):
    out = runner.invoke(cli, ["layers", "load", str(SHAPEFILES / "wards_2023"), "--name",
                              "wards_2023", "--id-field", "ward", "--no-activate"])
    assert out.exit_code == 0, out.output
    assert "beyond service area community_areas" in out.output
    dry = runner.invoke(cli, ["layers", "diff", "wards_2023", "--version", "1", "--replaces",
                              "wards_2015_2023", "--json"])
    assert dry.exit_code == 0, dry.output
    data = json.loads(dry.output)
    assert data["open_requests"] == 3 and data["closed_kept"] == 1
    assert sum(t["requests"] for t in data["transitions"]) == data["open_changed"]
    text = runner.invoke(cli, ["layers", "diff", "wards_2023", "--version", "1", "--replaces",
                               "wards_2015_2023"]).output
    assert f"would change district: {data['open_changed']}" in text
    assert gis.layers.version("wards_2023").status == "inactive"
    done = runner.invoke(cli, ["layers", "activate", "wards_2023", "--version", "1",
                               "--replaces", "wards_2015_2023"])
    assert done.exit_code == 0, done.output
    assert f"{data['open_changed']} open requests changed district" in done.output
    assert "wards_2015_2023 retired" in done.output
    refused = runner.invoke(cli, ["layers", "retire", "community_areas"])
    assert refused.exit_code == 1 and "is the service area" in refused.output
    gone = runner.invoke(cli, ["layers", "retire", "wards_2023"])
    assert gone.exit_code == 0 and "wards_2023 retired (version 1)" in gone.output
    shown = runner.invoke(cli, ["layers", "show", "wards_2023", "--json"])
    info = json.loads(shown.output)
    assert info["status"] == "retired" and info["service_area"] == "community_areas"
    missing = runner.invoke(cli, ["layers", "diff", "wards_2023", "--version", "7"])
    assert missing.exit_code == 1 and "no version 7" in missing.output


@pytest.mark.both_backends
def test_a_test_layer_at_zero_zero_is_not_valid_and_waits_for_force(client, gis):
    wards = gpd.read_file(SHAPEFILES / "wards_2023")[["ward", "geometry"]].to_crs(4326)
    bad = gpd.GeoDataFrame({"ward": ["99"]}, geometry=[shapely.box(0, 0, 0.7, 0.7)], crs=4326)
    layer = gpd.GeoDataFrame(pd.concat([wards, bad], ignore_index=True), crs=4326)
    r = _upload(client, layer.to_json().encode(), "bad.geojson", name="bad")
    assert r.status_code == 303
    v = gis.layers.version("bad")
    assert v.status == "inactive"
    info = client.get("/gis/layers/bad/versions/1/report.json").get_json()
    assert info["valid"] is False
    assert {(f["district_id"], f["kind"]) for f in info["findings"]} == {
        ("99", "far_outside"), ("99", "implausible_area")}  # about 6,000 km² at 0°, 0°
    page = client.get("/gis/layers/bad/versions/1/report").get_data(as_text=True)
    assert 'id="valid">no: 1 districts no city has' in page and 'id="sanity"' in page
    assert "bad" not in client.get("/layers").get_data(as_text=True).split("<h1>")[1]
    refused = client.post("/gis/layers/bad/versions/1/activate", data={})
    assert refused.status_code == 400 and "far_outside" in refused.get_data(as_text=True)
    assert gis.layers.version("bad").status == "inactive"
    forced = client.post("/gis/layers/bad/versions/1/activate", data={"force": "1"})
    assert forced.status_code == 303 and gis.layers.version("bad").status == "active"
