"""Pages and public JSON through the Flask test client, on both backends."""

import re

import pytest

from geo311.model import NewRequest, Reporter, Service
from tests.conftest import submit_as_imported
from tests.prepared import starts_from

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


starts_from("layered", "seeded", module=__name__)


@pytest.fixture
def seeded(app):
    """Community areas and wards 2015-2023 active (the layered state); one hostile request."""
    store = app.extensions["geo311"].store
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation")])
    r = submit_as_imported(store, app.extensions["geo311"].context(), NewRequest(
        "SCB", -87.6321, 41.8837, address="121 N LA SALLE ST", description=XSS,
        reporter=Reporter("Zed", "Quill", "zed@example.org", "773-555-0199", "dev-9", "a-9")))
    return r


def test_map_page_uses_only_local_assets(client, seeded):
    page = client.get("/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "/static/vendor/leaflet/leaflet.js" in body
    assert "cdn" not in body.lower() and "https://" not in body
    assert 'id="drawn">1<' in body
    assert "<script>window.__xss" not in body
    assert "zed@example.org" not in body


def test_tracking_page_escapes_and_hides_personal_data(client, seeded):
    page = client.get(f"/requests/{seeded.id}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in body
    assert "<script>window.__xss" not in body
    for secret in ("Zed", "Quill", "zed@example.org", "773-555-0199", "dev-9"):
        assert secret not in body
    assert "Community areas" in body and ">LOOP<" in body


def test_public_json_has_no_personal_fields(client, seeded):
    data = client.get(f"/api/requests/{seeded.id}").get_json()
    assert data["service_request_id"] == str(seeded.id)
    assert set(data["districts"]) == {"community_areas", "wards_2015_2023"}
    assert not {"email", "first_name", "last_name", "phone", "device_id"} & set(data)
    assert "zed@example.org" not in str(data)


def test_missing_request_is_404_in_both_forms(client, seeded):
    page = client.get("/requests/99999")
    assert page.status_code == 404 and "99999 does not exist" in page.get_data(as_text=True)
    api = client.get("/api/requests/99999")
    assert api.status_code == 404
    assert api.get_json() == [{"code": 404, "description": "service request 99999 does not exist"}]


def test_bad_query_value_is_a_clear_400(client, seeded):
    page = client.get("/?limit=lots")
    assert page.status_code == 400
    assert "limit was &#39;lots&#39;" in page.get_data(as_text=True)


def test_health_reports_backend(client, app):
    data = client.get("/healthz").get_json()
    assert data["backend"] == app.extensions["geo311"].store.backend
    assert data["status"] == "ok"


def test_layers_page_lists_versions(client, seeded):
    body = client.get("/layers").get_data(as_text=True)
    assert "wards_2015_2023" in body and "EPSG:4326" in body


def test_tracking_page_names_active_layers_by_title_and_districts_by_name(client, seeded, app):
    from geo311.layers import retire_layer

    body = client.get(f"/requests/{seeded.id}").get_data(as_text=True)
    assert '<dt class="district-layer">Community areas</dt><dd>LOOP</dd>' in body
    assert '<dt class="district-layer">Wards 2015–2023</dt><dd>42</dd>' in body
    assert "wards_2015_2023" not in body and "community_areas" not in body
    retire_layer(app.extensions["geo311"].store, "wards_2015_2023")
    body = client.get(f"/requests/{seeded.id}").get_data(as_text=True)
    assert "Wards 2015–2023" not in body and "Community areas" in body


def test_layers_page_lists_only_active_layers_by_title(client, seeded, app, tmp_path):
    import json

    from geo311.layers import load_layer

    square = {"type": "Polygon", "coordinates": [[[-87.7, 41.8], [-87.6, 41.8], [-87.6, 41.9],
                                                  [-87.7, 41.9], [-87.7, 41.8]]]}
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "1"}, "geometry": square}]}))
    load_layer(app.extensions["geo311"].store, path, name="bad", id_field="id", activate=False)
    body = client.get("/layers").get_data(as_text=True)
    assert "Community areas" in body and "Wards 2015–2023" in body
    assert ">bad<" not in body


def test_tracking_page_says_when_an_import_found_the_date_implausible(client, seeded, app,
                                                                      tmp_path):
    from geo311.imports import import_file, read_mapping
    from tests.store.test_import_flags import MAPPING, _csv

    (tmp_path / "m.toml").write_text(MAPPING)
    store = app.extensions["geo311"].store
    import_file(store, app.extensions["geo311"].context(),
                _csv(tmp_path / "r.csv", [("old", "2000-01-03"), ("ok", "2012-05-01")]),
                read_mapping(tmp_path / "m.toml"))
    by_id = {r.external_id: r.id for r in store.requests.query(limit=10)}
    old = client.get(f"/requests/{by_id['old']}").get_data(as_text=True)
    assert 'id="import-note">the date recorded is before the imported records begin' in old
    assert 'id="import-note"' not in client.get(f"/requests/{by_id['ok']}").get_data(
        as_text=True)


def test_tracking_page_says_when_the_point_lies_outside_the_city(client, seeded, app, tmp_path):
    from geo311.imports import import_file, read_mapping
    from tests.store.test_import_flags import MAPPING, _csv

    (tmp_path / "m.toml").write_text(MAPPING)
    store = app.extensions["geo311"].store
    summary = import_file(store, app.extensions["geo311"].context(),
                          _csv(tmp_path / "r.csv", [("far", "2012-05-01")], lon=-80.0, lat=40.0),
                          read_mapping(tmp_path / "m.toml"))
    assert summary.outside_service_area == 1
    far = next(r.id for r in store.requests.query(limit=10) if r.external_id == "far")
    body = client.get(f"/requests/{far}").get_data(as_text=True)
    assert "lies outside the city&#39;s service area" in body


def test_tracking_page_gives_times_in_the_citys_zone_and_in_words(client, seeded, app):
    from babel.dates import format_date

    body = client.get(f"/requests/{seeded.id}").get_data(as_text=True)
    when = seeded.requested_datetime
    local = when.astimezone(app.extensions["geo311"].settings.zone)
    assert f'datetime="{when.isoformat()}"' in body  # the instant, for machines
    words = re.search(r'<time id="reported" datetime="[^"]+">([^<]+)</time>', body).group(1)
    assert words.startswith(format_date(local, "medium", locale="en_US"))
    assert local.tzname() in words and words.endswith("ago)")
    assert "+00:00" not in words and "UTC —" not in body


def test_tracking_page_links_the_photo_sent_with_the_report(client, app):
    store = app.extensions["geo311"].store
    store.catalogue.upsert([Service("GRAF", "Graffiti Removal", "Streets")])
    r = submit_as_imported(store, app.extensions["geo311"].context(), NewRequest(
        "GRAF", -87.6321, 41.8837, address="121 N LA SALLE ST",
        media_url="https://example.org/photo.jpg?a=1&b=2"))
    body = client.get(f"/requests/{r.id}").get_data(as_text=True)
    assert 'id="media" href="https://example.org/photo.jpg?a=1&amp;b=2"' in body


def test_mail_to_a_reporter_is_in_the_language_their_browser_asks_for(client, seeded, app):
    store = app.extensions["geo311"].store
    asked = [("es-MX,es;q=0.9,en;q=0.5", "es"), ("pl-PL", "pl"), ("fr-FR", "en"),
             ("zh-CN,zh;q=0.9", "zh")]
    for i, (header, expected) in enumerate(asked):
        page = client.post("/report", headers={"Accept-Language": header}, data={
            "service_code": "SCB", "lat": f"{41.8700 + 0.003 * i:.4f}", "long": "-87.6300",
            "email": f"r{i}@example.org"})
        assert page.status_code == 200, page.get_data(as_text=True)[:300]
        stored = store.requests.query(limit=50)
        mine = next(r for r in stored if r.lat and abs(r.lat - (41.8700 + 0.003 * i)) < 1e-6)
        [row] = store.outbox.rows(mine.id)
        assert (row["kind"], row["email"], row["language"]) == (
            "received", f"r{i}@example.org", expected)
