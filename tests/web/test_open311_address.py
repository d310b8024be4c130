"""Open311 POST located by ``address_string`` or ``address_id``, through the geocoder."""

from __future__ import annotations

import pytest

from geo311.geodesy import haversine_m
from tests.references import load_subset
from tests.web.test_open311 import V2, post

#: Backend-specific paths throughout: every test here runs on PostGIS too.
pytestmark = pytest.mark.both_backends


@pytest.fixture
def located(city):
    """The city with a real cut of the shipped address points as its reference."""
    frames = load_subset(city.store)
    loop = frames["points"]
    loop = loop[loop["lon"].between(-87.64, -87.62) & loop["lat"].between(41.875, 41.89)]
    return city, loop.iloc[0]


def test_post_with_address_string_is_geocoded(client, located):
    city, point = located
    r = post(client, city, lat=None, long=None, address_string=point["address"].lower())
    assert r.status_code == 200, r.get_data(as_text=True)
    rid = r.get_json()[0]["service_request_id"]
    got = client.get(f"{V2}/requests/{rid}.json").get_json()[0]
    assert haversine_m(got["long"], got["lat"], point["lon"], point["lat"]) < 1.0
    stored = city.store.requests.get(int(rid))
    assert stored.geocode_match == "exact"


def test_post_with_unplaceable_address_is_400_and_stores_nothing(client, located):
    city, _ = located
    before = city.store.requests.count()
    r = post(client, city, lat=None, long=None, address_string="99999 N NOWHERE ST")
    assert r.status_code == 400
    assert "cannot be located" in r.get_json()[0]["description"]
    assert city.store.requests.count() == before


def test_post_with_address_id_takes_the_stored_point(client, located):
    city, point = located
    frames = city.store.addresses.reference_frames()["points"]
    row = frames[frames["address"] == point["address"]].iloc[0]
    r = post(client, city, lat=None, long=None, address_id=str(int(row["id"])))
    assert r.status_code == 200, r.get_data(as_text=True)
    stored = city.store.requests.get(int(r.get_json()[0]["service_request_id"]))
    assert (round(stored.lon, 6), round(stored.lat, 6)) == (round(row["lon"], 6),
                                                            round(row["lat"], 6))
    assert stored.address == point["address"]
    bad = post(client, city, lat=None, long=None, address_id="987654321")
    assert bad.status_code == 400 and "address_id" in bad.get_json()[0]["description"]
