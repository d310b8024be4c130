"""OGC API - Features at the edges: huge ids and numbers, the calendar's ends, the
antimeridian, repeated parameters, datetime on layers, and a fuzz of the query string."""

import json
import time
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import geopandas as gpd
import pytest
import shapely
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from geo311.layers import load_layer
from geo311.ogc import features as ogc_features
from geo311.ogc import params as ogc_params
from tests.conftest import examples
from tests.prepared import prepared_state
from tests.web.test_ogc import _seed

#: Backend-specific paths throughout: every test here runs on PostGIS too.
pytestmark = pytest.mark.both_backends

WARDS = "wards_2015_2023"
COLLECTIONS = ("requests", WARDS, "requests_h3_r7")
EARLY = "0001-01-01T00:00:00+14:00"  # 0000-12-31T10:00Z: before the calendar in UTC
LATE = "9999-12-31T23:59:59-14:00"  # 10000-01-01T13:59:59Z: after it

settings.register_profile("ogc-http-fuzz", max_examples=examples(100), deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
HTTP_FUZZ = settings.get_profile("ogc-http-fuzz")


@prepared_state("ogc_150", base="layered", fixtures=("seeded",), module=__name__)
def _seed_150(store, workdir):
    return _seed(store, workdir, rows=150)


@pytest.fixture
def seeded(app, prepared):
    return prepared


def _items(client, collection, **params):
    r = client.get(f"/ogc/collections/{collection}/items?{urlencode(params)}")
    assert r.status_code == 200, (params, r.get_data(as_text=True)[:300])
    return r.get_json()


def _error(r, status):
    assert r.status_code == status, r.get_data(as_text=True)[:300]
    assert r.content_type == "application/json"
    body = r.get_json()
    assert set(body) == {"code", "description"}
    return body["description"]


def _matched(client, collection, **params):
    return _items(client, collection, limit=ogc_params.MAX_LIMIT, **params)["numberMatched"]


def test_items_id_beyond_integer_is_404(client, seeded):
    assert client.get(f"/ogc/collections/requests/items/{seeded.id}").status_code == 200
    odd = ["99999999999", str(2**31), str(2**31 - 1), str(2**63), str(2**64), "-1", "1e3",
           "9" * 5000, "+1", "0x1", f"0{seeded.id}", " 1", "1_0", "１"]
    for collection in COLLECTIONS:
        for fid in odd:
            r = client.get(f"/ogc/collections/{collection}/items/{quote(fid)}")
            description = _error(r, 404)
            assert r.get_json()["code"] == "not_found"
            assert len(description) < 300  # a 5,000-digit id is not echoed in full
    r = client.get(f"/ogc/collections/requests/items/{'9' * 5000}")
    assert "5,000 characters" in r.get_json()["description"]
    # an unknown collection with a huge id still names the collections there are
    assert "requests" in _error(client.get(f"/ogc/collections/x/items/{2**63}"), 404)
    assert "5,000 characters" in _error(client.get(f"/ogc/collections/{'c' * 5000}"), 404)


def test_datetime_at_calendar_edges(client, seeded, app):
    store = app.extensions["geo311"].store
    total = store.requests.count()
    everything = store.requests.query(limit=10_000)
    cut = sorted(r.requested_datetime for r in everything)[len(everything) // 2]
    stamp = cut.strftime("%Y-%m-%dT%H:%M:%SZ")
    up_to_cut = sum(r.requested_datetime <= cut for r in everything)
    assert 0 < up_to_cut < total
    cases = {
        EARLY: 0, LATE: 0, f"{EARLY}/{LATE}": total, "../..": total, f"{EARLY}/..": total,
        f"../{LATE}": total, f"../{EARLY}": 0, f"{LATE}/..": 0, f"{LATE}/{LATE}": 0,
        f"{EARLY}/{EARLY}": 0, f"{EARLY}/{stamp}": up_to_cut, f"{stamp}/{LATE}":
            total - up_to_cut + sum(r.requested_datetime == cut for r in everything),
        "0001-01-01T00:00:00Z/9999-12-31T23:59:59Z": total, "0001-01-01T00:00:00Z": 0,
        "9999-12-31T23:59:59.999999Z": 0, "0001-01-01T00:00:00-14:00/..": total,
    }
    for when, expected in cases.items():
        assert _matched(client, "requests", datetime=when) == expected, when
    located = len(store.requests.points())
    for when in (EARLY, f"{EARLY}/{LATE}", "../.."):
        doc = _items(client, "requests_h3_r7", limit=ogc_params.MAX_LIMIT, datetime=when)
        assert sum(f["properties"]["reports"] for f in doc["features"]) == \
            (0 if when == EARLY else located)
    wards = len(store.layers.features(WARDS))
    for when, expected in ((EARLY, 0), (LATE, 0), (f"{EARLY}/{LATE}", wards),
                           (f"../{EARLY}", 0), (f"{LATE}/..", 0)):
        assert _matched(client, WARDS, datetime=when) == expected, when
    description = _error(client.get(f"/ogc/collections/requests/items?datetime={LATE}/{EARLY}"
                                    .replace("+", "%2B")), 400)
    assert "start is after" in description and "9999-12-31" in description


def test_offset_beyond_bigint(client, seeded, app):
    store = app.extensions["geo311"].store
    total = store.requests.count()
    for offset in (str(10**20), str(2**63), str(2**63 - 1), "9" * 5000, str(total)):
        doc = _items(client, "requests", offset=offset)
        assert (doc["numberMatched"], doc["numberReturned"], doc["features"]) == (total, 0, [])
        assert "next" not in {link["rel"] for link in doc["links"]}
    doc = _items(client, "requests", offset=str(total - 1))
    assert (doc["numberMatched"], doc["numberReturned"]) == (total, 1)
    for limit in (str(10**20), "9" * 5000, str(ogc_params.MAX_LIMIT + 1)):
        doc = _items(client, "requests", limit=limit)
        assert doc["numberReturned"] == min(total, ogc_params.MAX_LIMIT)
    wards = len(store.layers.features(WARDS))
    for collection, matched in ((WARDS, wards), ("requests_h3_r7", None)):
        doc = _items(client, collection, offset=str(10**20), limit="9" * 5000)
        assert doc["numberReturned"] == 0 and doc["numberMatched"] > 0
        if matched is not None:
            assert doc["numberMatched"] == matched
    for name, value, words in (("offset", "-" + "9" * 5000, "0 or more"),
                               ("limit", "0", "at least 1"), ("offset", "1e3", "whole number"),
                               ("limit", "1.5", "whole number"), ("limit", " 5", "whole number"),
                               ("offset", "٣", "whole number")):
        r = client.get(f"/ogc/collections/requests/items?{urlencode({name: value})}")
        description = _error(r, 400)
        assert description.startswith(f"{name} was") and words in description
        assert len(description) < 300


def _small_wards(tmp_path, store):
    """Three wards of the active version, as a file to load as a new version."""
    path = tmp_path / "three_wards.geojson"
    store.layers.features(WARDS).head(3).rename(columns={"district_id": "ward"}).to_file(
        path, driver="GeoJSON")
    return path


def _stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wait_past(t):
    """Let the clock move past ``t`` (activation times are compared to the microsecond)."""
    while datetime.now(UTC) <= t:
        time.sleep(0.001)


def test_datetime_on_boundary_layer_collections(client, seeded, app, tmp_path):
    store = app.extensions["geo311"].store
    v1 = store.layers.features(WARDS, 1)
    during_v1 = datetime.now(UTC)
    _wait_past(during_v1)
    load_layer(store, _small_wards(tmp_path, store), name=WARDS, id_field="ward",
               activate=True)
    assert store.layers.version(WARDS).version == 2
    during_v2 = datetime.now(UTC)

    def ids(**params):
        doc = _items(client, WARDS, limit=ogc_params.MAX_LIMIT, **params)
        versions = {f["properties"]["layer_version"] for f in doc["features"]}
        return sorted(f["id"] for f in doc["features"]), versions, doc["numberMatched"]

    all_v1, three = sorted(v1["district_id"]), sorted(v1["district_id"].head(3))
    assert ids() == (three, {2}, 3)  # no datetime: the active version
    assert ids(datetime=_stamp(during_v1)) == (all_v1, {1}, len(v1))
    assert ids(datetime=_stamp(during_v2)) == (three, {2}, 3)
    assert ids(datetime=f"../{_stamp(during_v1)}") == (all_v1, {1}, len(v1))
    assert ids(datetime=f"{_stamp(during_v1)}/{_stamp(during_v2)}") == (three, {2}, 3)
    assert ids(datetime=f"{_stamp(during_v1)}/..") == (three, {2}, 3)
    assert ids(datetime="2000-01-01T00:00:00Z") == ([], set(), 0)  # before any activation
    # version 1's geometry comes back for a time when it was in force
    doc = _items(client, WARDS, datetime=_stamp(during_v1), bbox="-87.64,41.88,-87.62,41.89")
    for f in doc["features"]:
        expect = v1.loc[v1["district_id"] == f["id"]].geometry.iloc[0]
        assert shapely.geometry.shape(f["geometry"]).equals(expect)
    assert doc["features"]
    interval = client.get(f"/ogc/collections/{WARDS}").get_json()["extent"]["temporal"]["interval"]
    begins = datetime.fromisoformat(interval[0][0].replace("Z", "+00:00"))
    assert interval[0][1] is None and begins <= during_v1
    api = client.get("/ogc/api").get_json()["paths"][f"/collections/{WARDS}/items"]["get"]
    assert "datetime" in {p["name"] for p in api["parameters"]}


def test_bbox_crossing_antimeridian(client, seeded, app):
    store = app.extensions["geo311"].store
    # minlon > maxlon: everything east of -87.65 and west of -87.70, wrapping round the globe
    box = (-87.65, 41.6, -87.70, 42.1)
    text = ",".join(map(str, box))
    pts = store.requests.points()
    keep = ((pts.lon >= box[0]) | (pts.lon <= box[2])) & (pts.lat >= box[1]) & (pts.lat <= box[3])
    expect = set(pts[keep]["id"])
    assert 0 < len(expect) < len(pts)
    assert (pts[keep].lon >= box[0]).any() and (pts[keep].lon <= box[2]).any()
    order = [r.id for r in store.requests.query(limit=10_000) if r.id in expect]
    seen, offset = [], 0
    while True:  # pages of 37 merge both halves in the collection's order
        doc = _items(client, "requests", bbox=text, limit=37, offset=offset)
        assert doc["numberMatched"] == len(expect)
        if not doc["features"]:
            break
        seen += [f["id"] for f in doc["features"]]
        offset += 37
    assert seen == order
    halves = shapely.MultiPolygon([shapely.box(box[0], box[1], 180, box[3]),
                                   shapely.box(-180, box[1], box[2], box[3])])
    feats = store.layers.features(WARDS)
    wards = _items(client, WARDS, bbox=text, limit=ogc_params.MAX_LIMIT)
    assert sorted(f["id"] for f in wards["features"]) == \
        sorted(feats[feats.intersects(halves)]["district_id"])
    assert 0 < wards["numberMatched"] < len(feats)
    cells = _items(client, "requests_h3_r7", bbox=text, limit=ogc_params.MAX_LIMIT)
    every = _items(client, "requests_h3_r7", limit=ogc_params.MAX_LIMIT)
    hexes = gpd.GeoSeries([shapely.geometry.shape(f["geometry"]) for f in every["features"]])
    assert sorted(f["id"] for f in cells["features"]) == \
        sorted(f["id"] for f, hit in zip(every["features"], hexes.intersects(halves),
                                         strict=True) if hit)
    for collection in COLLECTIONS:  # a box round the antimeridian itself: nothing in Chicago
        assert _matched(client, collection, bbox="170,-10,-170,10") == 0
    assert _matched(client, "requests", bbox="-87.7,41.6,0,-87.65,42.1,10") > 0  # heights
    for bad, words in (("1,2,3", "4 numbers"), ("0,10,1,5", "minlat <= maxlat"),
                       ("a,b,c,d", "4 numbers"), ("nan,0,1,1", "4 numbers"),
                       ("0,0,181,1", "within ±180"), ("0,-91,1,1", "within ±90"),
                       ("0,0,5,1,1,2", "height"), ("1,2,3,4,5", "4 numbers"),
                       ("inf,0,1,1", "4 numbers"), ("," * 5000, "characters")):
        for collection in COLLECTIONS:
            r = client.get(f"/ogc/collections/{collection}/items?{urlencode({'bbox': bad})}")
            description = _error(r, 400)
            assert description.startswith("bbox was") and words in description, description
    crs = urlencode({"bbox": "0,0,1,1", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/3435"})
    assert "bbox-crs" in _error(client.get(f"/ogc/collections/requests/items?{crs}"), 400)


def test_single_valued_parameter_twice(client, seeded):
    twice = {"limit": ("5", "6"), "offset": ("0", "0"), "bbox": ("-88,41,-87,42",) * 2,
             "datetime": ("../..", "2021-01-01T00:00:00Z"), "f": ("json", "json"),
             "status": ("open", "closed"), "service_code": ("SCB", "SCB"),
             "bbox-crs": (ogc_params.CRS84, ogc_params.CRS84)}
    for collection in COLLECTIONS:
        params = ogc_features.find_collection(_store(client), collection).params
        for name, values in twice.items():
            if name not in params:
                continue
            query = urlencode([(name, v) for v in values])
            description = _error(client.get(f"/ogc/collections/{collection}/items?{query}"), 400)
            assert description.startswith(f"{name} was given 2 times"), description
    for path in ("/ogc", "/ogc/conformance", "/ogc/api", "/ogc/collections",
                 "/ogc/collections/requests", "/ogc/collections/requests/items/1"):
        assert "f was given 2 times" in _error(client.get(f"{path}?f=json&f=json"), 400)
    # once each is fine, and an unknown parameter is still named as unknown
    assert _items(client, "requests", limit="5", offset="1")["numberReturned"] == 5
    assert "unknown query parameter" in _error(
        client.get("/ogc/collections/requests/items?lmit=5&lmit=6"), 400)


def _store(client):
    return client.application.extensions["geo311"].store


# --- fuzz: any query string, never a 5xx ------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_number = st.one_of(st.integers(-10**30, 10**30).map(str), st.floats().map(str),
                    st.integers(1, 5000).map(lambda n: "9" * n))
_stamp_text = st.builds(
    lambda d, minutes: d.isoformat() + (
        "Z" if minutes == 0 else f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:"
                                 f"{abs(minutes) % 60:02d}"),
    st.one_of(st.datetimes(), st.sampled_from([datetime.min, datetime.max])),
    st.integers(-14 * 60, 14 * 60))
_when = st.one_of(_stamp_text, _stamp_text, st.sampled_from(["..", "", EARLY, LATE]), _text)
_lon, _lat = st.floats(-180, 180), st.floats(-90, 90)
_box_text = st.tuples(_lon, _lat, _lon, _lat).map(
    lambda b: ",".join(map(str, (b[0], min(b[1], b[3]), b[2], max(b[1], b[3])))))
_values = {
    "bbox": st.one_of(_box_text, _box_text, _text, st.lists(
        st.one_of(_number, st.floats(-200, 200).map(str)), max_size=7).map(",".join)),
    "datetime": st.one_of(_when, st.tuples(_when, _when).map("/".join)),
    "limit": st.one_of(*[st.integers(0, 20_000).map(str)] * 3, _number, _text),
    "offset": st.one_of(*[st.integers(0, 500).map(str)] * 3, _number, _text),
    "f": st.one_of(st.sampled_from(["json", "html", "xml", ""]), _text),
    "status": st.one_of(st.sampled_from(["open", "closed", ""]), _text),
    "service_code": st.one_of(st.sampled_from(["SCB", "SCB,XYZ", ","]), _text),
    "bbox-crs": st.one_of(st.just(ogc_params.CRS84), _text),
}
_known = st.sampled_from(sorted(_values)).flatmap(lambda k: st.tuples(st.just(k), _values[k]))
# mostly each parameter once; sometimes one more pair: an unknown name or a repeat
_pairs = st.tuples(st.lists(_known, max_size=4, unique_by=lambda p: p[0]),
                   st.lists(st.one_of(_known, st.tuples(_text, _text)), max_size=1)
                   ).map(lambda both: both[0] + both[1])
_fid = st.one_of(st.none(), st.none(), st.none(), _text, _number)


@prepared_state("ogc_60", base="layered", fixtures=("fuzz_seeded",), module=__name__)
def _seed_60(store, workdir):
    return _seed(store, workdir, rows=60)


@pytest.fixture
def fuzz_seeded(app, prepared):
    return prepared


@HTTP_FUZZ
@given(collection=st.sampled_from([*COLLECTIONS * 3, "nope"]),
       pairs=_pairs, fid=_fid)
def test_ogc_query_string_fuzz_never_5xx(client, fuzz_seeded, collection, pairs, fid):
    path = f"/ogc/collections/{collection}/items"
    if fid is not None:
        path += "/" + quote(fid, safe="")
    r = client.get(f"{path}?{urlencode(pairs)}")
    assert r.status_code < 500, (path, pairs, r.get_data(as_text=True)[:300])
    event(f"status {r.status_code}")
    fmt = next((v for k, v in pairs if k == "f"), None)
    if r.status_code >= 400 and fmt != "html":
        body = json.loads(r.get_data(as_text=True))
        assert set(body) == {"code", "description"} and body["description"]
    elif r.status_code == 200 and fmt != "html":
        assert r.get_json()["type"] in ("Feature", "FeatureCollection")
