"""Geocoding Boston's own 311 addresses against the City's own points, without an address grid.

Boston has no numbering grid and no centrelines in geo311's shipped files: a number a
few doors past the last known one is placed at the nearest known number, and two
streets with no known crossing meet where their known addresses come closest. The
reference is the point the City recorded for each request (not used to build anything).
"""

import numpy as np
import pandas as pd
import pytest

from geo311.city import load_profile
from geo311.config import PROJECT_ROOT
from geo311.gazetteer import geocoder_over, read_reference
from geo311.geodesy import haversine_m

BOSTON = PROJECT_ROOT / "shapefiles" / "boston"
PLACEHOLDER = (-71.0587, 42.3594)  # where the City's CRM puts requests with no location


@pytest.fixture(scope="module")
def boston():
    refs = BOSTON / "geocoding"
    _, points = read_reference(refs / "boston_address_points_311_2015_without_july.csv.gz")
    _, crossings = read_reference(refs / "boston_intersections_311_2015_without_july.csv.gz")
    geocoder = geocoder_over({"points": points, "intersections": crossings},
                             load_profile("boston"))
    source = pd.read_csv(BOSTON / "requests" / "boston_311_2015-07_all_types.csv.gz",
                         dtype=str, keep_default_na=False)
    lon = pd.to_numeric(source["LONGITUDE"], errors="coerce")
    lat = pd.to_numeric(source["LATITUDE"], errors="coerce")
    at_placeholder = ((lon - PLACEHOLDER[0]).abs() < 5e-5) & ((lat - PLACEHOLDER[1]).abs() < 5e-5)
    usable = source.assign(lon=lon, lat=lat)[lon.notna() & ~at_placeholder
                                             & (source["Location"] != "")]
    return geocoder, usable


def _errors(geocoder, rows):
    found = geocoder.geocode_many(rows["Location"].tolist())
    ok = found["lon"].notna().to_numpy()
    err = np.full(len(rows), np.inf)
    err[ok] = haversine_m(found["lon"].to_numpy(float)[ok], found["lat"].to_numpy(float)[ok],
                          rows["lon"].to_numpy(float)[ok], rows["lat"].to_numpy(float)[ok])
    return found, err


@pytest.mark.parametrize("kind, share", [("Address", 0.95), ("Intersection", 0.93)])
def test_boston_requests_land_within_100_m_of_the_citys_own_point(boston, kind, share):
    geocoder, usable = boston
    rows = usable[usable["Property_Type"] == kind]
    assert len(rows) > 1800
    found, err = _errors(geocoder, rows)
    assert np.mean(err <= 100) >= share, np.mean(err <= 100)
    fallback = found["match"] == ("nearby" if kind == "Address" else "intersection")
    assert fallback.any()
    # Each fallback says what it did, and is mostly right on its own.
    if kind == "Address":
        assert found.loc[fallback, "reason"].str.contains("the nearest known number").all()
        assert np.mean(err[fallback.to_numpy()] <= 100) >= 0.8


def test_number_zero_is_not_placed_by_a_neighbour(boston):
    geocoder, usable = boston
    street = usable.loc[usable["Location"].str.match(r"^0 [A-Z]"), "Location"]
    assert len(street) > 0
    found = geocoder.geocode_many(street.tolist())
    assert not (found["match"] == "nearby").any()
