"""OGC API - Features over HTTP (Flask test client) on both backends, and through GDAL."""

from datetime import datetime

import geopandas as gpd
import h3
import pyogrio
import pytest
import shapely

from geo311.imports import import_file, read_mapping
from geo311.intake import Context, submit
from geo311.model import NewRequest, Reporter, Service
from tests.conftest import SAMPLE_2021_CSV, csv_head, load_shipped, submit_as_imported
from tests.prepared import prepared_state

#: Backend-specific paths throughout: every test here runs on PostGIS too.
pytestmark = pytest.mark.both_backends

PERSONAL = ("Zed", "Quill", "zed@example.org", "773-555-0199", "dev-9", "acct-9")
XSS = '<script>window.__xss=1</script>'


def _seed(store, tmp_path, rows=400):
    """Layered ``store``: ``rows`` of the 2021 sample, and a hostile request twice."""
    ctx = Context.from_store(store)
    import_file(store, ctx, csv_head(SAMPLE_2021_CSV, tmp_path / "s.csv", rows),
                read_mapping("chicago-311"))
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation")])
    first = submit_as_imported(store, ctx, NewRequest("SCB", -87.6321, 41.8837, description=XSS,
                                          reporter=Reporter(*PERSONAL)))
    submit(store, ctx, NewRequest("SCB", -87.6321, 41.8837, reporter=Reporter(*PERSONAL)))
    return first


prepared_state("ogc_400", base="layered", fixtures=("seeded",), module=__name__)(_seed)


@pytest.fixture
def seeded(app, prepared):
    return prepared


def test_landing_conformance_and_api_have_the_right_types(client, seeded):
    r = client.get("/ogc")
    assert r.status_code == 200 and r.content_type == "application/json"
    rels = {link["rel"]: link for link in r.get_json()["links"]}
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert {"self", "conformance", "data"} <= set(rels)
    conf = client.get("/ogc/conformance").get_json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    api = client.get("/ogc/api")
    assert api.content_type == "application/vnd.oai.openapi+json;version=3.0"
    paths = api.get_json()["paths"]
    assert "/collections/requests/items" in paths
    assert "/collections/wards_2015_2023/items/{featureId}" in paths
    html = client.get("/ogc", headers={"Accept": "text/html"})
    assert html.content_type.startswith("text/html") and "/ogc/collections" in html.get_data(as_text=True)


def test_collections_list_requests_active_layers_and_h3(client, seeded, app):
    store = app.extensions["geo311"].store
    doc = client.get("/ogc/collections").get_json()
    ids = [c["id"] for c in doc["collections"]]
    active = [v.layer for v in store.layers.versions(active_only=True)]
    assert ids == ["requests", *active, "requests_h3_r7", "requests_h3_r8", "requests_h3_r9"]
    one = client.get("/ogc/collections/requests").get_json()
    (minx, miny, maxx, maxy), = one["extent"]["spatial"]["bbox"]
    points = store.requests.points()
    assert (minx, maxx) == pytest.approx((points["lon"].min(), points["lon"].max()))
    assert (miny, maxy) == pytest.approx((points["lat"].min(), points["lat"].max()))
    assert one["extent"]["temporal"]["interval"][0][0].startswith("2021-01-01")
    assert client.get("/ogc/collections/nope").status_code == 404
    assert client.get("/ogc/collections/nope").get_json()["code"] == "not_found"


def test_items_page_with_links_and_counts(client, seeded, app):
    store = app.extensions["geo311"].store
    total = store.requests.count()
    r = client.get("/ogc/collections/requests/items?limit=50")
    assert r.status_code == 200 and r.content_type == "application/geo+json"
    doc = r.get_json()
    assert doc["type"] == "FeatureCollection"
    assert (doc["numberMatched"], doc["numberReturned"]) == (total, 50)
    rels = {link["rel"]: link["href"] for link in doc["links"]}
    assert "prev" not in rels
    seen = [f["id"] for f in doc["features"]]
    href = rels["next"]
    while href:
        page = client.get(href.replace("http://localhost", "")).get_json()
        seen += [f["id"] for f in page["features"]]
        href = {link["rel"]: link["href"] for link in page["links"]}.get("next")
        assert "prev" in {link["rel"] for link in page["links"]}
    assert len(seen) == len(set(seen)) == total


def test_no_personal_data_and_public_fields_only(client, seeded):
    body = client.get("/ogc/collections/requests/items?limit=10000").get_data(as_text=True)
    one = client.get(f"/ogc/collections/requests/items/{seeded.id}").get_data(as_text=True)
    html = client.get(f"/ogc/collections/requests/items/{seeded.id}?f=html").get_data(as_text=True)
    for secret in PERSONAL:
        assert secret not in body and secret not in one and secret not in html
    props = client.get(f"/ogc/collections/requests/items/{seeded.id}").get_json()["properties"]
    assert not {"email", "phone", "first_name", "last_name", "device_id", "account_id"} & set(props)
    assert props["description"] == XSS
    assert XSS not in html and "&lt;script&gt;" in html


def test_bbox_matches_an_independent_filter(client, seeded, app):
    store = app.extensions["geo311"].store
    box = (-87.70, 41.85, -87.60, 41.95)
    doc = client.get("/ogc/collections/requests/items?limit=10000&bbox="
                     + ",".join(map(str, box))).get_json()
    pts = store.requests.points()
    inside = pts[(pts.lon >= box[0]) & (pts.lon <= box[2]) & (pts.lat >= box[1]) & (pts.lat <= box[3])]
    assert sorted(f["id"] for f in doc["features"]) == sorted(inside["id"])
    assert doc["numberMatched"] == len(inside) > 0
    wards = client.get("/ogc/collections/wards_2015_2023/items?bbox=" + ",".join(map(str, box))).get_json()
    feats = store.layers.features("wards_2015_2023")
    expect = feats[feats.intersects(shapely.box(*box))]["district_id"]
    assert sorted(f["id"] for f in wards["features"]) == sorted(expect)
    assert client.get("/ogc/collections/requests/items?bbox=1,2,3").status_code == 400


def test_datetime_filters_requests(client, seeded, app):
    store = app.extensions["geo311"].store
    everything = store.requests.query(limit=10_000)
    cut = sorted(r.requested_datetime for r in everything)[len(everything) // 2]
    stamp = cut.strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = client.get(f"/ogc/collections/requests/items?limit=10000&datetime=../{stamp}").get_json()
    expect = [r.id for r in everything if r.requested_datetime <= cut]
    assert sorted(f["id"] for f in doc["features"]) == sorted(expect)
    for f in doc["features"]:
        assert datetime.fromisoformat(f["properties"]["requested_datetime"]) <= cut
    bad = client.get("/ogc/collections/requests/items?datetime=soon")
    assert bad.status_code == 400 and "RFC 3339" in bad.get_json()["description"]
    layer = client.get(f"/ogc/collections/wards_2015_2023/items?status={stamp}")
    assert layer.status_code == 400 and "unknown query parameter" in layer.get_json()["description"]


def test_single_items_and_404s(client, seeded):
    f = client.get(f"/ogc/collections/requests/items/{seeded.id}")
    assert f.status_code == 200 and f.content_type == "application/geo+json"
    assert f.get_json()["geometry"]["coordinates"] == [-87.6321, 41.8837]
    ward = client.get("/ogc/collections/wards_2015_2023/items/42").get_json()
    assert ward["properties"]["district_id"] == "42"
    assert shapely.geometry.shape(ward["geometry"]).contains(shapely.Point(-87.6321, 41.8837))
    for url in ("/ogc/collections/requests/items/999999", "/ogc/collections/requests/items/x",
                "/ogc/collections/wards_2015_2023/items/99",
                "/ogc/collections/requests_h3_r8/items/nothex"):
        assert client.get(url).status_code == 404, url


def test_h3_counts_weight_parents_by_reporters(client, seeded, app):
    store = app.extensions["geo311"].store
    doc = client.get("/ogc/collections/requests_h3_r9/items?limit=10000").get_json()
    located = [r for r in store.requests.query(limit=10_000) if r.lon is not None]
    parents = [r for r in located if r.duplicate_of is None]
    assert sum(f["properties"]["reports"] for f in doc["features"]) == \
        sum(r.reporter_count for r in parents) == len(located)
    assert sum(f["properties"]["requests"] for f in doc["features"]) == len(parents)
    cell = h3.latlng_to_cell(41.8837, -87.6321, 9)
    here = client.get(f"/ogc/collections/requests_h3_r9/items/{cell}").get_json()
    expect = [r for r in parents if h3.latlng_to_cell(r.lat, r.lon, 9) == cell]
    assert here["properties"]["reports"] == sum(r.reporter_count for r in expect) >= 2
    assert shapely.geometry.shape(here["geometry"]).contains(shapely.Point(-87.6321, 41.8837))


def test_gdal_oapif_client_reads_every_collection(serve, store, backend_url, tmp_path):
    """What QGIS does: GDAL's OAPIF driver against a live server on loopback."""
    load_shipped(store, "community_areas", "wards_2015_2023")
    _seed(store, tmp_path, rows=1200)
    base = serve(backend_url)
    url = f"OAPIF:{base}/ogc"
    listed = {name for name, _kind in pyogrio.list_layers(url)}
    active = [v.layer for v in store.layers.versions(active_only=True)]
    assert {"requests", *active, "requests_h3_r8"} <= listed
    requests = pyogrio.read_dataframe(url, layer="requests")
    located = store.requests.points()
    assert len(requests) == store.requests.count()
    assert "district_wards_2015_2023" in requests.columns
    assert not {"email", "phone", "first_name"} & set(requests.columns)
    got = requests.dropna(subset=["geometry"])
    assert len(got) == len(located)
    wards = pyogrio.read_dataframe(url, layer="wards_2015_2023")
    assert sorted(wards["district_id"]) == sorted(store.layers.features("wards_2015_2023")["district_id"])
    assert isinstance(wards, gpd.GeoDataFrame) and wards.crs.to_epsg() == 4326
    cells = pyogrio.read_dataframe(url, layer="requests_h3_r8")
    assert cells["reports"].sum() == len(located)
    box = (-87.70, 41.85, -87.60, 41.95)
    boxed = pyogrio.read_dataframe(url, layer="requests", bbox=box)
    inside = located[(located.lon >= box[0]) & (located.lon <= box[2])
                     & (located.lat >= box[1]) & (located.lat <= box[3])]
    assert sorted(boxed["service_request_id"].astype(int)) == sorted(inside["id"])
