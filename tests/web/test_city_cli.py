"""``geo311 city check/show`` and ``geo311 demo --city``: a city from its own files."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from geo311.city import CITIES_PATH
from geo311_web.cli import cli
from geo311_web.cli.city import city_check
from tests import springfield as sf


def metres(lon1, lat1, lon2, lat2):
    kx = 111_320 * math.cos(math.radians(lat1))
    return math.hypot((lon1 - lon2) * kx, (lat1 - lat2) * 110_574)


def test_city_check_on_a_good_and_a_bad_file(runner, tmp_path):
    good = runner.invoke(cli, ["city", "check", str(sf.write_minimal(tmp_path / "good"))])
    assert good.exit_code == 0, good.output
    assert "valid profile of Springfield, MA" in good.output
    assert "no numbering rules" in good.output
    full = runner.invoke(cli, ["city", "check", str(sf.write_city(tmp_path / "full"))])
    assert full.exit_code == 0 and "3 neighbourhoods" in full.output and "a demo" in full.output
    bad = tmp_path / "bad.toml"
    bad.write_text(sf.MINIMAL.replace('"MA"', '"Massachusetts"') + 'mayor = "Quimby"\n')
    out = runner.invoke(cli, ["city", "check", str(bad)])
    assert out.exit_code == 1 and "Traceback" not in out.output
    errors = [line for line in out.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and all(str(bad) in line for line in errors)
    assert "`state`" in out.output and "`mayor`" in out.output


def test_city_show_gives_the_active_profile(runner, tmp_path, monkeypatch):
    shown = json.loads(runner.invoke(cli, ["city", "show", "--json"]).output)
    assert (shown["name"], shown["state"], shown["numbering"]["even_side_ns"]) == (
        "Chicago", "IL", "W")
    monkeypatch.setenv("GEO311_CITY", str(sf.write_city(tmp_path / "sf")))
    out = runner.invoke(cli, ["city", "show", "--json"])
    shown = json.loads(out.output)
    assert shown["name"] == "Springfield" and shown["numbering"] is None
    assert shown["neighbourhoods"] == {"Metro Center": ["01103"], "Forest Park": ["01108"],
                                       "Six Corners": ["neighbourhoods:SC"]}
    assert shown["calendar"]["state_holidays"] == "MA"
    text = runner.invoke(cli, ["city", "show"]).output
    assert "name: Springfield" in text and "timezone: America/New_York" in text


@pytest.mark.both_backends
def test_demo_of_a_city_from_its_profile_then_learning_intersections(
        runner, app, tmp_path, monkeypatch):
    profile = sf.write_city(tmp_path / "springfield")
    monkeypatch.setenv("GEO311_CITY", "")  # restored after the demo sets it
    out = runner.invoke(cli, ["demo", "--city", str(profile), "--no-serve"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert "layer springfield: version 1, active" in lines
    assert "layer neighbourhoods: version 1, active" in lines
    assert "geocoding points.csv: 9 points" in lines, lines
    assert "geocoding intersections.csv: 1 intersections" in lines
    assert any(line.startswith("  stored 5,") for line in lines), lines
    assert "learned 2 address points and 1 intersections" in out.output
    state = app.extensions["geo311"]
    assert state.settings.timezone == "America/New_York"
    again = runner.invoke(cli, ["demo", "--city", str(profile), "--no-serve"])
    assert "layer springfield: already loaded" in again.output
    # The profile's own mapping is known by its name, as a shipped one is.
    again_import = runner.invoke(cli, ["import", str(profile.parent / "requests" / "requests.csv"),
                                       "--mapping", "springfield-311"])
    assert again_import.exit_code == 0 and "stored 0, updated 0, unchanged 5" in \
        again_import.output, again_import.output
    learned = runner.invoke(cli, ["addresses", "learn"])
    assert learned.exit_code == 0
    assert "learned 2 address points and 1 intersections" in learned.output
    geocoder = state.context().geocoder
    for text in ("MAIN ST & ELM ST", "ELM ST and MAIN ST, Springfield",
                 "INTERSECTION of Elm Street & Main Street"):
        g = geocoder.geocode(text)
        assert g.match == "intersection" and metres(g.lon, g.lat, *sf.MAIN_ELM) < 2, (text, g)
    for text in ("29 MAIN ST, FOREST PARK", "29 MAIN ST, SIX CORNERS"):   # ZIPs; a district
        near = geocoder.geocode(text)
        assert metres(near.lon, near.lat, *sf.main_st(29, sf.FOREST_PARK)) < 1, (text, near)
    downtown = geocoder.geocode("29 MAIN ST, METRO CENTER")
    assert metres(downtown.lon, downtown.lat, *sf.main_st(29, sf.DOWNTOWN)) < 1
    refused = geocoder.geocode("29 MAIN ST, CHICAGO")
    assert "outside the city (Springfield)" in refused.reason
    bad = runner.invoke(cli, ["demo", "--city", "atlantis", "--no-serve"])
    assert bad.exit_code == 1 and "--city" in bad.output and "Traceback" not in bad.output


def test_pages_show_the_citys_branding_escaped(client, tmp_path, monkeypatch):
    path = sf.write_minimal(tmp_path)
    path.write_text(sf.MINIMAL + '[branding]\nname = "<script>alert(1)</script> 311"\n'
                    'contact = "311 & more"\ncolours = { primary = "#1f4e79" }\n')
    monkeypatch.setenv("GEO311_CITY", str(path))
    page = client.get("/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 311" in page and "<script>alert" not in page
    assert "311 &amp; more" in page and "--city-primary: #1f4e79;" in page


def test_maps_open_where_the_profile_says(client, tmp_path, monkeypatch):
    assert "41.8358, -87.6877" in client.get("/").get_data(as_text=True)   # the default city
    monkeypatch.setenv("GEO311_CITY", str(sf.write_city(tmp_path / "sf")))
    page = client.get("/").get_data(as_text=True)
    assert "42.1015, -72.5898" in page and "41.8358" not in page


def test_city_check_checks_the_profiles_routing_table(tmp_path):
    out = CliRunner().invoke(city_check, [str(CITIES_PATH / "chicago" / "city.toml")])
    assert out.exit_code == 0, out.output
    assert "valid routing table (4 agencies, 4 routes, forwarding off, neighbours in layer " \
           "'jurisdictions')" in out.output
    profile = tmp_path / "city.toml"
    profile.write_text('name = "Springfield"\nstate = "MA"\ntimezone = "America/New_York"\n'
                       'place_names = ["Springfield"]\nzip_codes = ["01103"]\n')
    (tmp_path / "routing.toml").write_text('jurisdiction_layer = "j"\n[[routes]]\n'
                                           'jurisdiction = "1"\nservice = "*"\nagency = "x"\n')
    bad = CliRunner().invoke(city_check, [str(profile)])
    assert bad.exit_code == 1
    assert "routes[0]: 'agency' was 'x' but is expected to be one of the agencies: []" \
        in bad.output
