"""Live intake: every report goes through submit, and bad ones store nothing."""

import pytest

from geo311.errors import InvalidRequest, NotFound, OutsideServiceArea
from geo311.intake import Context, submit
from geo311.model import NewRequest, Service

# Chicago City Hall, 121 N LaSalle St, in the Loop (community area 32).
LOOP = (-87.6321, 41.8837)


@pytest.fixture
def catalogued(layered_store):
    layered_store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation")])
    return layered_store


def test_submit_assigns_every_active_layer(catalogued, ctx):
    import geopandas as gpd
    from shapely import Point

    from tests.conftest import SHAPEFILES

    r = submit(catalogued, ctx, NewRequest("SCB", *LOOP, address="121 N LA SALLE ST"))
    wards = gpd.read_file(SHAPEFILES / "wards_2015_2023")
    expected_ward = wards[wards.contains(Point(*LOOP))]["ward"].item()
    assert r.districts == {"community_areas": "32", "wards_2015_2023": expected_ward}
    assert r.status == "open" and r.geocode_match == "reported"


@pytest.mark.parametrize("lon,lat,needle", [
    (-74.0060, 40.7128, "outside the service area"),
    (-87.50, 41.90, "outside the service area"),  # Lake Michigan
])
def test_outside_the_city_is_refused_and_nothing_stored(catalogued, ctx, lon, lat, needle):
    with pytest.raises(OutsideServiceArea, match=needle):
        submit(catalogued, ctx, NewRequest("SCB", lon, lat))
    assert catalogued.requests.count() == 0


@pytest.mark.parametrize("lon,lat,needle", [
    (None, None, "a location is required"),
    ("west", 41.8, "expected to be numbers"),
    (-87.6, 95.0, "not a place on Earth"),
    (float("nan"), 41.8, "not a place on Earth"),
])
def test_bad_locations_are_refused(catalogued, ctx, lon, lat, needle):
    with pytest.raises(InvalidRequest, match=needle):
        submit(catalogued, ctx, NewRequest("SCB", lon, lat))
    assert catalogued.requests.count() == 0


def test_unknown_service_and_long_description(catalogued, ctx):
    with pytest.raises(NotFound, match="'XYZ'"):
        submit(catalogued, ctx, NewRequest("XYZ", *LOOP))
    with pytest.raises(InvalidRequest, match="4001 characters"):
        submit(catalogued, ctx, NewRequest("SCB", *LOOP, description="x" * 4001))
    assert catalogued.requests.count() == 0


def test_service_area_defaults_to_role_and_can_be_named(catalogued):
    assert Context.from_store(catalogued).service_area == "community_areas"
    assert Context.from_store(catalogued, service_area_layer="wards_2015_2023").service_area \
        == "wards_2015_2023"
    with pytest.raises(InvalidRequest, match="'wards_1900'"):
        Context.from_store(catalogued, service_area_layer="wards_1900")
