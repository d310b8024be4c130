"""A city geo311 has never seen, from its profile alone: geocoder, calendar, validation."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
import shapely

from geo311.business_calendar import load_calendar
from geo311.city import check_profile, load_profile, read_profile
from geo311.config import PROJECT_ROOT
from geo311.districts import DistrictIndex, DistrictLayer, assign_by_address
from geo311.errors import ConfigError
from geo311.gazetteer import geocoder_over
from geo311.geocoding.parsing import parse_address
from geo311.geocoding.references import learned_intersections, read_reference
from geo311.geocoding.side import EVEN_WEST_NORTH
from tests import springfield as sf


def metres(lon1, lat1, lon2, lat2):
    kx = 111_320 * math.cos(math.radians(lat1))
    return math.hypot((lon1 - lon2) * kx, (lat1 - lat2) * 110_574)


@pytest.fixture
def minimal(tmp_path):
    return read_profile(sf.write_minimal(tmp_path / "minimal"))


@pytest.fixture
def full(tmp_path):
    return read_profile(sf.write_city(tmp_path / "springfield"))


def frames(folder):
    """The references as the store would hold them, read from the written files."""
    _, points = read_reference(folder / "references" / "points.csv")
    _, crossings = read_reference(folder / "references" / "intersections.csv")
    return {"points": points, "intersections": crossings}


@pytest.fixture
def geocoder(full):
    return geocoder_over(frames(full.path.parent), full)


def test_the_five_keys_make_a_valid_profile(minimal):
    assert (minimal.name, minimal.state, minimal.timezone) == ("Springfield", "MA",
                                                               "America/New_York")
    assert minimal.grid is None and minimal.demo is None and minimal.neighbourhoods == ()
    assert minimal.places == {"SPRINGFIELD"} and minimal.remote_suffix == "Springfield, MA"
    assert minimal.calendar().timezone == "America/New_York"


def test_the_states_public_holidays_are_not_business_days(minimal):
    cal = minimal.calendar()
    assert not cal.is_business_day(date(2026, 4, 20))     # Patriots' Day (MA), a Monday
    assert cal.is_business_day(date(2026, 4, 21))
    assert not cal.is_business_day(date(2026, 7, 3))      # 4 July on a Saturday, observed
    assert not cal.is_business_day(date(2026, 11, 26))    # Thanksgiving
    assert cal.is_business_day(date(2026, 11, 23)) and not cal.is_business_day(date(2026, 4, 18))
    # Another state's calendar does not keep Patriots' Day; the shipped one is unchanged.
    assert load_profile("chicago").calendar().is_business_day(date(2026, 4, 20))
    assert load_profile("chicago").calendar() == load_calendar("chicago")


def test_closures_and_hours_of_the_city(tmp_path):
    path = sf.write_minimal(tmp_path)
    path.write_text(sf.MINIMAL + '[calendar]\nclosures = ["2026-12-24"]\n'
                    'hours = ["09:00", "17:00"]\n')
    cal = read_profile(path).calendar()
    assert not cal.is_business_day(date(2026, 12, 24)) and cal.is_business_day(date(2026, 12, 23))
    assert (cal.day_start.hour, cal.day_end.hour) == (9, 17)


def test_the_citys_address_geocodes_and_another_citys_is_refused(minimal, tmp_path):
    g = geocoder_over(frames(sf.write_city(tmp_path / "files").parent), minimal)
    found = g.geocode("100 E STATE ST, SPRINGFIELD")
    assert found.match == "exact"
    assert g.geocode("100 E State Street, Springfield, MA 01103").match == "exact"
    # MAIN ST is in two neighbourhoods: without a ZIP code or neighbourhood, ambiguous.
    for text in ("29 MAIN ST", "29 MAIN ST, SPRINGFIELD", "29 Main Street"):
        twin = g.geocode(text)
        assert twin.match == "none" and "01103 and 01108 of Springfield" in twin.reason
    assert g.geocode("11 Main Street, Springfield, MA 01103").match == "exact"
    for text in ("29 MAIN ST, CHICAGO", "29 MAIN ST CHICAGO IL"):
        refused = g.geocode(text)
        assert refused.match == "none" and "outside the city (Springfield)" in refused.reason
    state = g.geocode("29 MAIN ST, SPRINGFIELD, IL")
    assert state.match == "none" and "Springfield" in state.reason and "IL" in state.reason
    other_zip = g.geocode("29 MAIN ST 60601")
    assert other_zip.match == "none" and "60601" in other_zip.reason
    assert "Springfield" in other_zip.reason


@pytest.mark.parametrize(("text", "where"), [
    ("29 MAIN ST, FOREST PARK", sf.FOREST_PARK),
    ("29 Main Street, Forest Park", sf.FOREST_PARK),
    ("29 MAIN ST, METRO CENTER", sf.DOWNTOWN),
    ("29 MAIN ST, SPRINGFIELD 01108", sf.FOREST_PARK),
    ("29 MAIN ST, SPRINGFIELD, MA 01103", sf.DOWNTOWN),
    ("29 MAIN ST 01108", sf.FOREST_PARK),
])
def test_a_neighbourhood_or_zip_chooses_between_streets_of_one_name(geocoder, text, where):
    g = geocoder.geocode(text)
    lon, lat = sf.main_st(29, where)
    assert g.found, g.reason
    assert metres(g.lon, g.lat, lon, lat) < 1.0, (text, g)


def test_a_neighbourhood_given_as_districts_of_a_layer(full):
    g = geocoder_over(frames(full.path.parent), full, {"Six Corners": sf.SIX_CORNERS})
    found = g.geocode("29 MAIN ST, SIX CORNERS")
    assert metres(found.lon, found.lat, *sf.main_st(29, sf.FOREST_PARK)) < 1.0
    assert g.geocode("29 MAIN ST, METRO CENTER").lat == pytest.approx(
        sf.main_st(29, sf.DOWNTOWN)[1])


def test_a_neighbourhood_interpolates_on_its_own_street(geocoder):
    g = geocoder.geocode("35 MAIN ST, FOREST PARK")
    lon, lat = sf.main_st(29, sf.FOREST_PARK)
    assert g.match == "interpolated" and metres(g.lon, g.lat, lon, lat + sf.STEP / 2) < 1.0
    downtown = geocoder.geocode("35 MAIN ST, METRO CENTER")
    assert metres(downtown.lon, downtown.lat, *sf.main_st(29, sf.DOWNTOWN)) < 30


INTERSECTION_FORMS = [
    "E STATE ST & N DWIGHT ST",
    "STATE ST & DWIGHT ST",
    "State St and Dwight St",
    "STATE AT DWIGHT",
    "STATE ST / DWIGHT ST",
    "INTERSECTION OF E STATE ST & N DWIGHT ST",
    "INTERSECTION of State St & Dwight St",
    "corner of State Street and Dwight Street",
    "Corner of East State Street and North Dwight Street",
    "DWIGHT ST & STATE ST",
    "E State & N Dwight",
]


@pytest.mark.parametrize("text", INTERSECTION_FORMS)
def test_intersections_in_their_written_forms(geocoder, text):
    parsed = parse_address(text)
    assert parsed.kind == "intersection", parsed
    assert {parsed.street.name, parsed.cross.name} == {"STATE", "DWIGHT"}
    g = geocoder.geocode(text)
    assert g.match == "intersection", g.reason
    assert metres(g.lon, g.lat, *sf.STATE_DWIGHT) < 1.0


@pytest.mark.parametrize("text", [f"{t}, Springfield" for t in INTERSECTION_FORMS[:3]]
                         + ["INTERSECTION of State St & Dwight St, METRO CENTER",
                            "State St and Dwight St, Springfield, MA 01103"])
def test_intersections_with_the_city_or_neighbourhood(geocoder, text):
    g = geocoder.geocode(text)
    assert g.match == "intersection", g.reason
    assert metres(g.lon, g.lat, *sf.STATE_DWIGHT) < 1.0
    away = geocoder.geocode(text.replace(", Springfield", ", Boston")
                            .replace(", METRO CENTER", ", Boston"))
    assert away.match == "none" and "Springfield" in away.reason


def test_without_numbering_rules_no_grid_and_no_side(minimal, full, tmp_path):
    folder = tmp_path / "files"
    sf.write_city(folder)
    plain = geocoder_over(frames(folder), minimal)
    g = plain.geocode("260 E STATE ST")
    assert g.match == "none" and "grid" in g.reason
    gridded = geocoder_over(frames(folder), replace(minimal, grid=EVEN_WEST_NORTH))
    assert gridded.geocode("260 E STATE ST").match == "grid"
    # Side of the street: only with numbering rules; without, plain point-in-polygon.
    west, east = (np.array([[-72.59, 42.0], [-72.58, 42.0], [-72.58, 42.2], [-72.59, 42.2]]),
                  np.array([[-72.58, 42.0], [-72.57, 42.0], [-72.57, 42.2], [-72.58, 42.2]]))
    index = DistrictIndex([DistrictLayer("halves", 1, ["w", "e"],
                                         [shapely.Polygon(west), shapely.Polygon(east)])])
    on_edge = ([-72.58], [42.1], ["2250 N EDGE AVE"])           # even: west side
    assert assign_by_address(index, *on_edge, grid=EVEN_WEST_NORTH)["halves"].district_id[0] == "w"
    plain_pip = index.assign(np.array([-72.58]), np.array([42.1]))["halves"].district_id[0]
    assert assign_by_address(index, *on_edge, grid=None)["halves"].district_id[0] == plain_pip
    odd = ([-72.58], [42.1], ["2251 N EDGE AVE"])
    assert assign_by_address(index, *odd, grid=EVEN_WEST_NORTH)["halves"].district_id[0] == "e"


def test_intersections_are_learned_from_trusted_history():
    trusted = sf.REQUESTS.rename(columns={"zip": "zipcode"})[["address", "zipcode", "lon",
                                                               "lat"]]
    learned = learned_intersections(trusted)
    assert learned[["street_1", "street_2"]].values.tolist() == [["ELM ST", "MAIN ST"]]
    row = learned.iloc[0]
    assert metres(row["lon"], row["lat"], *sf.MAIN_ELM) < 1.0 and row["zipcode"] == "01103"
    assert learned_intersections(trusted.iloc[[0, 4]]).empty


def test_check_names_the_file_and_every_bad_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "Springfield"\nstate = "Mass"\nplace_names = "Springfield"\n'
                   'zip_codes = ["1103"]\ncolour = "red"\n[numbering]\neven_side_ns = "X"\n'
                   '[[neighbourhoods]]\nname = "Forest Park"\n')
    problems, profile = check_profile(bad)
    assert profile is None
    assert all(p.startswith(f"{bad}: ") for p in problems)
    text = "\n".join(problems)
    for key in ("`state`", "`timezone`", "`place_names`", "`zip_codes`", "`colour`",
                "`numbering`", "`neighbourhoods[0].name`"):
        assert key in text, (key, text)
    with pytest.raises(ConfigError, match="bad.toml"):
        read_profile(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    assert "not valid TOML" in check_profile(broken)[0][0]


def test_shipped_profile_keeps_todays_city():
    chicago = load_profile("chicago")
    assert chicago.grid == EVEN_WEST_NORTH and chicago.timezone == "America/Chicago"
    assert chicago.catalogue == "chicago" and "chicago-311-legacy" in chicago.mappings
    assert load_profile() == chicago                                  # the default
    with pytest.raises(ConfigError, match="GEO311_CITY"):
        load_profile("atlantis")


def test_geo311_city_selects_a_profile_by_path(tmp_path, monkeypatch):
    from geo311.city import active_profile
    from geo311.config import Settings

    path = sf.write_minimal(tmp_path)
    monkeypatch.setenv("GEO311_CITY", str(path))
    assert active_profile().name == "Springfield"
    assert Settings.from_env().timezone == "America/New_York"
    assert Settings.from_env({"GEO311_CITY": str(path), "GEO311_TIMEZONE": "UTC"}).timezone == "UTC"
    assert load_calendar("").state_holidays == "MA"
    monkeypatch.delenv("GEO311_CITY")
    assert Settings().timezone == "America/Chicago"


def test_an_unknown_street_is_refused_naming_the_city(geocoder):
    g = geocoder.geocode("12 NOWHERE LN, SPRINGFIELD")
    assert g.match == "none" and "known in Springfield" in g.reason


def test_crews_and_slas_default_to_the_citys_calendar(tmp_path, monkeypatch):
    from geo311.model import Crew, Service
    from geo311.sla import calendar_of

    monkeypatch.setenv("GEO311_CITY", str(sf.write_minimal(tmp_path)))
    crew = Crew("north", "wards")
    assert crew.calendar == "" and load_calendar(crew.calendar).state_holidays == "MA"
    service = Service("PH", "Pothole")
    assert not calendar_of(service).is_business_day(date(2026, 4, 20))   # Patriots' Day


@pytest.mark.parametrize(("text", "where"), [
    ("INTERSECTION of State St & Dwight St  Metro Center  MA", sf.STATE_DWIGHT),
    ("E State St and N Dwight St Springfield MA 01103", sf.STATE_DWIGHT),
    ("29 Main St  Forest Park  MA  01108", sf.main_st(29, sf.FOREST_PARK)),
    ("29 Main St  Springfield  MA  01103", sf.main_st(29, sf.DOWNTOWN)),
])
def test_the_place_written_without_a_comma(geocoder, text, where):
    g = geocoder.geocode(text)
    assert g.found and metres(g.lon, g.lat, *where) < 1.0, (text, g)


def test_no_core_code_names_the_shipped_city():
    """Chicago is a shipped profile, not an assumption: only its data files name it."""
    code = PROJECT_ROOT / "geo311"
    naming = [str(p.relative_to(code)) for p in code.rglob("*.py")
              if "chicago" in p.read_text(encoding="utf-8").lower()]
    assert naming == []
