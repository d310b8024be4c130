"""OGC API - Features rules that need no server: parameters, paging links, H3 counts."""

from datetime import UTC, datetime

import h3
import pandas as pd
import pytest

from geo311.errors import InvalidRequest
from geo311.ogc import documents as ogc_documents
from geo311.ogc import features as ogc_features
from geo311.ogc import params as ogc_params

REQ = ogc_params.Collection("requests", "Requests", "", "requests", None)
LAYER = ogc_params.Collection("wards", "Wards", "", "layer", None)


@pytest.mark.parametrize("text, expected", [
    ("-87.7,41.8,-87.6,41.9", (-87.7, 41.8, -87.6, 41.9)),
    ("-87.7,41.8,0,-87.6,41.9,100", (-87.7, 41.8, -87.6, 41.9)),
    (None, None), ("", None),
])
def test_bbox_parses(text, expected):
    assert ogc_params.parse_bbox(text) == expected


@pytest.mark.parametrize("text, message", [
    ("1,2,3", "4 numbers"), ("a,b,c,d", "4 numbers"), ("0,91,1,92", "within ±90"),
    ("0,10,1,5", "minlat <= maxlat"), ("181,0,-170,1", "within ±180"),
    ("nan,0,1,1", "4 numbers"),
])
def test_bad_bbox_says_what_arrived(text, message):
    with pytest.raises(InvalidRequest, match=message) as err:
        ogc_params.parse_bbox(text)
    assert repr(text) in err.value.message


def test_bbox_crs_other_than_crs84_is_refused():
    with pytest.raises(InvalidRequest, match="bbox-crs"):
        ogc_params.parse_bbox("0,0,1,1", "http://www.opengis.net/def/crs/EPSG/0/3435")
    assert ogc_params.parse_bbox("0,0,1,1", ogc_params.CRS84) == (0, 0, 1, 1)


def test_datetime_instants_and_intervals():
    t = datetime(2021, 1, 1, 6, tzinfo=UTC)
    assert ogc_params.parse_datetime("2021-01-01T06:00:00Z") == (t, t)
    assert ogc_params.parse_datetime("2021-01-01T00:00:00-06:00/..") == (t, None)
    assert ogc_params.parse_datetime("../2021-01-01T06:00:00Z") == (None, t)
    assert ogc_params.parse_datetime("/2021-01-01T06:00:00Z") == (None, t)
    assert ogc_params.parse_datetime(None) == (None, None)
    assert ogc_params.parse_datetime("../..") == (None, None)  # every time
    for bad, message in [("yesterday", "RFC 3339"),
                         ("2021-01-02T00:00:00Z/2021-01-01T00:00:00Z", "start is after"),
                         ("2021-01-01T06:00:00", "UTC offset")]:
        with pytest.raises(InvalidRequest, match=message):
            ogc_params.parse_datetime(bad)


def test_limit_and_offset():
    assert ogc_params.parse_limit(None) == ogc_params.DEFAULT_LIMIT
    assert ogc_params.parse_limit(str(ogc_params.MAX_LIMIT + 5)) == ogc_params.MAX_LIMIT
    for bad in ("0", "-3", "ten"):
        with pytest.raises(InvalidRequest, match="limit was"):
            ogc_params.parse_limit(bad)
    assert ogc_params.parse_offset("7") == 7
    with pytest.raises(InvalidRequest, match="offset was"):
        ogc_params.parse_offset("-1")


def test_unknown_parameters_are_refused_per_collection():
    with pytest.raises(InvalidRequest, match="status"):
        ogc_params.ItemQuery.from_args({"status": "open"}, LAYER)
    q = ogc_params.ItemQuery.from_args({"datetime": "2021-01-01T00:00:00Z/..", "status": "open",
                                 "service_code": "SCB,PHF"}, REQ)
    assert q.status == "open" and q.service_codes == ("SCB", "PHF")
    with pytest.raises(InvalidRequest, match="status was"):
        ogc_params.ItemQuery.from_args({"status": "done"}, REQ)


def _doc(offset, limit, matched, returned, args=None):
    q = ogc_params.ItemQuery(limit=limit, offset=offset)
    features = [{"type": "Feature", "id": i, "geometry": None, "properties": {}}
                for i in range(returned)]
    return ogc_documents.items_document("http://x/ogc", REQ, q, args or {"limit": str(limit)},
                              features, matched)


def _rels(doc):
    return {link["rel"]: link["href"] for link in doc["links"]}


def test_paging_links():
    first = _rels(_doc(0, 10, 25, 10, {"limit": "10", "bbox": "0,0,1,1"}))
    assert "prev" not in first
    assert first["next"] == "http://x/ogc/collections/requests/items?limit=10&bbox=0%2C0%2C1%2C1&offset=10&f=json"
    middle = _rels(_doc(10, 10, 25, 10))
    assert "offset=20" in middle["next"] and "offset=0" not in middle["prev"]
    last = _doc(20, 10, 25, 5)
    assert "next" not in _rels(last) and "offset=10" in _rels(last)["prev"]
    assert (last["numberMatched"], last["numberReturned"]) == (25, 5)
    assert last["features"][0]["links"][0]["href"] == "http://x/ogc/collections/requests/items/0"


def test_cell_counts_weight_by_reporters_and_swap_axes_once():
    lon, lat = -87.6321, 41.8837
    points = pd.DataFrame({"lon": [lon, lon + 1e-5, -87.70], "lat": [lat, lat, 41.95],
                           "reporter_count": [3, 1, 2], "status": ["open", "closed", "open"]})
    counts = ogc_features.cell_counts(points, 9)
    here = h3.latlng_to_cell(lat, lon, 9)
    row = counts[counts["cell"] == here].iloc[0]
    assert (row["requests"], row["reports"], row["open"]) == (2, 4, 1)
    assert counts["reports"].sum() == points["reporter_count"].sum()
    assert counts["reports"].is_monotonic_decreasing
    lat_c, lng_c = h3.cell_to_latlng(here)
    assert abs(lng_c - lon) < 0.01 and abs(lat_c - lat) < 0.01


def test_openapi_declares_every_collection():
    doc = ogc_documents.openapi_document("http://x/ogc", [REQ, LAYER])
    assert doc["openapi"].startswith("3.0")
    items = doc["paths"]["/collections/requests/items"]["get"]["parameters"]
    assert {"limit", "offset", "bbox", "datetime"} <= {p["name"] for p in items}
    layer_items = doc["paths"]["/collections/wards/items"]["get"]["parameters"]
    assert "status" not in {p["name"] for p in layer_items}
    assert "datetime" in {p["name"] for p in layer_items}  # the layer version in force then
    assert "/collections/wards/items/{featureId}" in doc["paths"]
