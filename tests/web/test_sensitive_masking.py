"""A sensitive service's exact place never leaves through any public output."""

from __future__ import annotations

import csv
import io
import json

import h3
import pytest

from geo311.export import export_requests
from geo311.intake import Context, submit
from geo311.model import NewRequest, Service
from tests.conftest import load_shipped

#: Backend-specific paths throughout: every test here runs on PostGIS too.
pytestmark = pytest.mark.both_backends

LON, LAT = -87.64123, 41.88456
SECRET = "behind the blue door at 123 W Secret St"


@pytest.fixture
def seeded(app):
    store = app.extensions["geo311"].store
    load_shipped(store, "community_areas")
    store.catalogue.upsert([Service("SHELTER", "Shelter concern"), Service("SCB", "Sanitation")])
    store.catalogue.set_sensitive("SHELTER", True)
    ctx = Context.from_store(store)
    hidden = submit(store, ctx, NewRequest("SHELTER", LON, LAT, address="123 W SECRET ST",
                                           description=SECRET))
    plain = submit(store, ctx, NewRequest("SCB", LON, LAT, address="123 W OPEN ST",
                                          description="bags"))
    return store, hidden.id, plain.id


def _cell_centre() -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(h3.latlng_to_cell(LAT, LON, 9))
    return round(lon, 6), round(lat, 6)


def _assert_masked(lon, lat, text_fields):
    assert (round(float(lon), 6), round(float(lat), 6)) == _cell_centre()
    assert (float(lon), float(lat)) != (LON, LAT)
    assert all(SECRET not in (v or "") and "SECRET" not in (v or "") for v in text_fields)


def test_open311_get_masks_sensitive_services(client, seeded):
    store, hidden, plain = seeded
    for url in (f"/open311/v2/requests/{hidden}.json",
                "/open311/v2/requests.json?extensions=true"):
        records = {r["service_request_id"]: r for r in client.get(url).get_json()}
        r = records[str(hidden)]
        _assert_masked(r["long"], r["lat"], [r.get("address"), r.get("description")])
    r = client.get(f"/open311/v2/requests/{plain}.json").get_json()[0]
    assert (r["long"], r["lat"]) == (LON, LAT) and r["description"] == "bags"


def test_open311_bulk_export_masks_sensitive_services(client, seeded):
    store, hidden, _ = seeded
    rows = client.get("/open311/bulk/requests.json").get_json()
    body = json.dumps(rows)
    assert SECRET not in body and "123 W SECRET" not in body
    assert str(LAT) not in body or body.count(str(LAT)) == 1  # only the plain request


def test_ogc_items_mask_sensitive_services(client, seeded):
    store, hidden, _ = seeded
    one = client.get(f"/ogc/collections/requests/items/{hidden}").get_json()
    lon, lat = one["geometry"]["coordinates"]
    _assert_masked(lon, lat, [str(v) for v in one["properties"].values()])
    page = client.get("/ogc/collections/requests/items").get_json()
    assert SECRET not in json.dumps(page)


def test_public_export_masks_and_private_export_does_not(seeded, tmp_path):
    store, hidden, _ = seeded
    export_requests(store, tmp_path / "public.csv", "csv")
    rows = {r["service_request_id"]: r for r in csv.DictReader(open(tmp_path / "public.csv"))}
    r = rows[str(hidden)]
    _assert_masked(r["long"], r["lat"], [r["address"], r["description"]])
    export_requests(store, tmp_path / "private.csv", "csv", include_private=True)
    rows = {r["service_request_id"]: r for r in csv.DictReader(open(tmp_path / "private.csv"))}
    assert rows[str(hidden)]["description"] == SECRET
    assert float(rows[str(hidden)]["long"]) == pytest.approx(LON)


def test_fine_hotspot_cells_place_a_sensitive_request_at_its_masked_centre(client, seeded):
    """Level-10 hexagons are finer than the level-9 mask: a sensitive request must fall in
    the one holding the masked centre, in memory, in SQL (a district filter) and after
    the service is marked sensitive while the map is cached."""
    store, hidden, plain = seeded
    lat, lon = h3.cell_to_latlng(h3.latlng_to_cell(LAT, LON, 9))
    masked_cell = h3.latlng_to_cell(lat, lon, 10)
    true_cell = h3.latlng_to_cell(LAT, LON, 10)
    assert masked_cell != true_cell  # the point was chosen away from its cell's centre
    district = store.requests.get(hidden).districts["community_areas"]

    def cells(query, service="SHELTER"):
        rows = csv.DictReader(io.StringIO(client.get(
            f"/hotspots/export.csv?res=10&service={service}{query}").get_data(as_text=True)))
        return {r["h3_cell"]: int(r["reporters"]) for r in rows if int(r["reporters"])}

    in_memory = cells("")
    in_sql = cells(f"&layer=community_areas&district={district}")
    assert in_memory == in_sql == {masked_cell: 1}
    # SCB is not sensitive: its request stays in its true cell, until it is marked so.
    assert cells("", "SCB") == {true_cell: 1}
    store.catalogue.set_sensitive("SCB", True)
    assert cells("", "SCB") == {masked_cell: 1}
