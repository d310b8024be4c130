"""The matching cascade, reverse geocoding and suggestions over the shipped references."""

import math

import numpy as np
import pandas as pd
import pytest

from geo311.city import load_profile
from geo311.config import PROJECT_ROOT
from geo311.geocoding.cascade import Geocoder
from geo311.geocoding.references import read_reference

GEOCODING = PROJECT_ROOT / "shapefiles" / "geocoding"
POINTS = GEOCODING / "chicago_address_points_food_inspections_business_licenses.csv.gz"
INTERSECTIONS = GEOCODING / "chicago_street_intersections.csv.gz"
OSM = GEOCODING / "chicago_osm_hermosa_avondale_2012.osm.gz"
TIGER = PROJECT_ROOT / "tests" / "data" / "tiger_centerlines.geojson"
#: The shipped city's name, state, places and numbering rules, as its profile gives them.
CHICAGO = load_profile("chicago").geocoder_options()


def metres(lon1, lat1, lon2, lat2):
    kx = 111_320 * math.cos(math.radians(lat1))
    return math.hypot((lon1 - lon2) * kx, (lat1 - lat2) * 110_574)


@pytest.fixture(scope="module")
def references():
    _, points = read_reference(POINTS)
    _, crossings = read_reference(INTERSECTIONS)
    _, tiger = read_reference(TIGER, "centerlines")
    _, osm = read_reference(OSM)
    return points, crossings, pd.concat([tiger, osm], ignore_index=True)


@pytest.fixture(scope="module")
def geocoder(references):
    points, crossings, lines = references
    return Geocoder(points, crossings, lines, zipcodes=crossings["zipcode"], **CHICAGO)


def test_references_read_as_shipped(references):
    points, crossings, lines = references
    assert len(points) > 10_000 and len(crossings) > 23_000
    assert set(lines["street"]) >= {"N FIXTURE AVE", "W FIXTURE ST", "N KEDZIE AVE"}
    row = points[points["address"] == "3004 E 100TH ST"].iloc[0]
    assert (row.house_number, row.pre_dir, row.street_name, row.suffix) == (3004, "E", "100TH", "ST")


def test_exact_address_point(geocoder, references):
    points = references[0]
    for row in points.sample(50, random_state=1).itertuples():
        g = geocoder.geocode(row.address)
        assert g.match == "exact" and g.score == 1.0, (row.address, g)
        assert (g.lon, g.lat) == (row.lon, row.lat)


def test_exact_match_through_variants(geocoder):
    plain = geocoder.geocode("3004 E 100TH ST")
    for variant in ("3004 east 100th street", "3004 E 100 ST", "3004 E. 100th St., Chicago IL",
                    "3004 E 100TH ST APT 2"):
        g = geocoder.geocode(variant)
        assert g.match == "exact" and (g.lon, g.lat) == (plain.lon, plain.lat), variant


def test_interpolation_between_held_out_points(references):
    points, crossings, _ = references
    held = points.sample(300, random_state=7)
    def keys(frame):
        return list(zip(frame["house_number"], frame["pre_dir"],
                        frame["street_name"].str.replace(" ", ""), strict=False))

    same = pd.Series(keys(points), index=points.index).isin(set(keys(held)))
    geocoder = Geocoder(points[~same], crossings, **CHICAGO)
    errors = []
    for row in held.itertuples():
        g = geocoder.geocode(row.address)
        assert g.match != "exact"
        if g.match == "interpolated":
            assert 0 < g.score < 1
            errors.append(metres(g.lon, g.lat, row.lon, row.lat))
    assert len(errors) > 100
    assert np.median(errors) < 60
    assert np.mean(np.array(errors) < 150) > 0.85


def test_interpolation_prefers_the_same_side():
    # Two even numbers on the west side, one odd number on the east side of a street.
    g = Geocoder(pd.DataFrame({
        "house_number": [2400, 2500, 2451], "pre_dir": "N", "street_name": "TEST",
        "suffix": "AVE", "lon": [-87.7001, -87.7001, -87.6999],
        "lat": [41.9250, 41.9263, 41.9256]}))
    even = g.geocode("2450 N TEST AVE")
    assert even.match == "interpolated"
    assert even.lon == pytest.approx(-87.7001) and even.lat == pytest.approx(41.92565)


def test_centerline_range_on_the_correct_side(geocoder):
    even = geocoder.geocode("2450 N FIXTURE AVE")
    odd = geocoder.geocode("2451 N FIXTURE AVE")
    assert even.match == odd.match == "centerline"
    assert even.lon < -87.7300 < odd.lon                       # even west, odd east
    assert 41.9250 < even.lat < 41.9263
    assert metres(even.lon, even.lat, -87.7300, 41.92565) < 15
    south = geocoder.geocode("4051 W FIXTURE ST")               # range digitised 4099 -> 4001
    north = geocoder.geocode("4050 W FIXTURE ST")
    assert south.lat < 41.9280 < north.lat
    assert abs(south.lon - (-87.7300)) * 83_000 < 15
    assert geocoder.geocode("2700 N FIXTURE AVE").match == "none"


def test_intersection(geocoder):
    g = geocoder.geocode("W FULLERTON AVE & N PULASKI RD")
    assert g.match == "intersection"
    assert metres(g.lon, g.lat, -87.72677, 41.92448) < 1
    for text in ("fullerton and pulaski", "Fullerton Ave at Pulaski Rd", "FULLERTON / PULASKI"):
        h = geocoder.geocode(text)
        assert h.match == "intersection" and (h.lon, h.lat) == (g.lon, g.lat), text
        assert h.score < g.score
    assert "not known to cross" in geocoder.geocode("N PULASKI RD & N KEDZIE AVE").reason


def test_grid_fallback_is_anchored_on_the_cross_street(geocoder, references):
    # 7100 S is 71st Street on Chicago's grid: a N-S street without address points
    # must be placed near its intersection with W 71ST ST.
    points, crossings, _ = references
    known = set(zip(points["pre_dir"], points["street_name"], strict=False))
    rows = crossings[(crossings["street_2"] == "W 71ST ST") & crossings["street_1"].str.startswith("S ")]
    checked = 0
    for row in rows.itertuples():
        pre, name = row.street_1.split(" ", 1)
        if (pre, name.rsplit(" ", 1)[0]) in known:
            continue
        g = geocoder.geocode(f"7100 {row.street_1}")
        if g.match != "grid":
            continue
        checked += 1
        assert g.score <= 0.6 and "grid" in g.reason
        assert metres(g.lon, g.lat, row.lon, row.lat) < 250, row.street_1
    assert checked >= 3


def test_fuzzy_street_names_are_bounded(geocoder):
    right = geocoder.geocode("3004 E 100TH ST")
    typo = geocoder.geocode("1200 W FULERTON AVE")
    assert typo.found and typo.address.endswith("W FULLERTON AVE") and typo.score < 0.9
    assert geocoder.geocode("1200 W QWXZRT AVE").reason.startswith("no street named")
    assert not geocoder.geocode("1200 W FULXXXXXN AVE").found
    assert right.score == 1.0


def test_missing_suffix_and_direction(geocoder):
    a = geocoder.geocode("3522 E 100TH")
    assert a.found and a.address == "3522 E 100TH ST" and a.score < 1
    b = geocoder.geocode("1200 FULLERTON AVE")
    assert b.found and b.address == "1200 W FULLERTON AVE"


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("hello world", "no street named"),
    ("x" * 10_000, "at most 200"),
    ("北京路 12号", "characters"),
    ("99999999 S WOOD ST", "larger than any city uses"),
    ("80000 S WOOD ST", "beyond"),
    ("1600 Pennsylvania Ave NW, Washington, DC 20500", "outside the city"),
    ("100 N STATE ST 90210", "ZIP code 90210"),
    ("N STATE ST", "no house number"),
    ("<script>alert(1)</script>", ""),
])
def test_bad_input_gets_a_reason_not_a_guess(geocoder, text, reason):
    g = geocoder.geocode(text)
    assert g.match == "none" and g.lon is None and g.score == 0
    assert g.reason and reason in g.reason


def test_geocode_many_keeps_order_and_caches(geocoder):
    texts = ["3004 E 100TH ST", None, "hello world", "3004 E 100TH ST", 42]
    frame = geocoder.geocode_many(texts)
    assert list(frame["match"]) == ["exact", "none", "none", "exact", "none"]
    assert frame["lon"].iloc[0] == frame["lon"].iloc[3] and np.isnan(frame["lon"].iloc[1])
    assert list(frame.columns) == ["lon", "lat", "match", "score", "reason", "address"]


def test_reverse(geocoder, references):
    points = references[0]
    row = points.iloc[1234]
    r = geocoder.reverse(row.lon + 0.00005, row.lat)
    assert r.address == row.address and 3 < r.address_distance_m < 6
    assert r.street and r.street_distance_m is not None
    far = geocoder.reverse(-80.0, 30.0)
    assert far.address == "" and far.address_distance_m is None


def test_suggest(geocoder):
    found = geocoder.suggest("3004 e 100t", 5)
    assert found and len(found) <= 5
    assert "3004 E 100TH ST" in [s.address for s in found]
    assert all(s.match != "none" for s in found)
    streets = geocoder.suggest("W FULLERT", 3)
    assert streets and streets[0].address.startswith("W FULLERTON")
    assert geocoder.suggest("", 5) == [] and geocoder.suggest("x" * 10_000, 5) == []
    crossings = geocoder.suggest("fullerton and pul", 5)
    assert [s.address for s in crossings] == ["W FULLERTON AVE & N PULASKI RD"]
    assert crossings[0].match == "intersection"
    exact = geocoder.geocode("W FULLERTON AVE & N PULASKI RD")
    assert (crossings[0].lon, crossings[0].lat) == (exact.lon, exact.lat)
    assert geocoder.suggest("qqqq & pul", 5) == []


def test_reused_street_readings_give_the_parser_s_answer(geocoder):
    from geo311.geocoding.parsing import parse_address
    from tests.conftest import LEGACY_CSV

    addresses = pd.read_csv(LEGACY_CSV, usecols=["Street_Address"], dtype=str,
                            nrows=6000)["Street_Address"].tolist()
    geocoder.clear_caches()
    fast = geocoder.geocode_many(addresses)
    for i, text in enumerate(addresses):
        slow = geocoder.geocode_parsed(parse_address(text))
        if fast["match"][i] == "exact" and fast["score"][i] == 1.0:
            continue                     # the reference's own spelling: no parsing at all
        assert (fast["match"][i], fast["address"][i]) == (slow.match, slow.address), text


def test_held_out_year_lands_within_100_m(references):
    """Learn 2011-2012 requests, geocode 2013 ones ignoring their points (no leakage)."""
    from geo311.geocoding.references import learned_points
    from tests.conftest import LEGACY_CSV

    frame = pd.read_csv(LEGACY_CSV, dtype=str, keep_default_na=False,
                        usecols=["Creation_Date", "Street_Address", "ZIP_Code", "Longitude",
                                 "Latitude"])
    frame = frame[frame["Latitude"] != ""]
    frame["lon"], frame["lat"] = frame["Longitude"].astype(float), frame["Latitude"].astype(float)
    history = frame[frame["Creation_Date"] < "2013-01-01"]
    later = frame[frame["Creation_Date"] >= "2013-01-01"].sample(1500, random_state=11)
    learned = learned_points(history.rename(columns={"Street_Address": "address",
                                                     "ZIP_Code": "zipcode"}))
    points, crossings, _ = references
    geocoder = Geocoder(pd.concat([learned, points]), crossings, **CHICAGO)
    found = geocoder.geocode_many(later["Street_Address"].tolist())
    err = [metres(x, y, x0, y0) if not np.isnan(x) else np.inf for x, y, x0, y0 in zip(
        found["lon"], found["lat"], later["lon"], later["lat"], strict=True)]
    assert np.mean(np.array(err) <= 100) >= 0.95
    assert np.median(err) < 10
