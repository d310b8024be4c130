"""An invented city, Springfield, MA: profiles, references, a layer and requests in a folder.

Two MAIN STs: one downtown (Metro Center, ZIP 01103), one in Forest Park (01108), about
4 km apart, each with house numbers 11, 29 and 41. E STATE ST crosses N DWIGHT ST
downtown.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from shapely import box
from shapely.geometry import mapping

MINIMAL = """\
name = "Springfield"
state = "MA"
timezone = "America/New_York"
place_names = ["Springfield"]
zip_codes = ["01103", "01104", "01105", "01107", "01108", "01109"]
"""

NEIGHBOURHOODS = """
[[neighbourhoods]]
name = "Metro Center"
zip_codes = ["01103"]

[[neighbourhoods]]
name = "Forest Park"
zip_codes = ["01108"]
"""

DEMO = """
[[neighbourhoods]]
name = "Six Corners"
layer = "neighbourhoods"
districts = ["SC"]

[map]
centre = [42.1015, -72.5898]
zoom = 13

[demo]
layers = "layers"
references = ["references/points.csv", "references/intersections.csv"]
requests = [{ file = "requests/requests.csv", mapping = "springfield-311.toml" }]
"""

#: Where each MAIN ST's numbers are: (lon, lat) of number 11; numbers run north.
DOWNTOWN = (-72.5900, 42.1000)
FOREST_PARK = (-72.5500, 42.0700)
NUMBERS = (11, 29, 41)
STEP = 0.0002  # degrees of latitude per listed number
#: Where E STATE ST crosses N DWIGHT ST.
STATE_DWIGHT = (-72.5880, 42.1050)


def main_st(number: int, where: tuple[float, float]) -> tuple[float, float]:
    """The point of a listed number on one MAIN ST."""
    return where[0], where[1] + STEP * NUMBERS.index(number)


def points() -> pd.DataFrame:
    """The address points: both MAIN STs and three numbers on E STATE ST."""
    rows = []
    for zipcode, where in (("01103", DOWNTOWN), ("01108", FOREST_PARK)):
        for n in NUMBERS:
            lon, lat = main_st(n, where)
            rows.append((f"{n} MAIN ST", zipcode, lon, lat))
    for n, dx in ((100, 0.0), (140, 0.0005), (180, 0.0010)):
        rows.append((f"{n} E STATE ST", "01103", STATE_DWIGHT[0] + 0.0004 + dx, STATE_DWIGHT[1]))
    return pd.DataFrame(rows, columns=["address", "zip", "lon", "lat"])


def intersections() -> pd.DataFrame:
    """The shipped intersections: E STATE ST & N DWIGHT ST."""
    return pd.DataFrame({"street_1": ["E STATE ST"], "street_2": ["N DWIGHT ST"],
                         "zip": ["01103"], "lon": [STATE_DWIGHT[0]], "lat": [STATE_DWIGHT[1]]})


#: Where MAIN ST (downtown) crosses ELM ST: known only from the city's own requests.
MAIN_ELM = (-72.5900, 42.1012)
REQUESTS = pd.DataFrame({
    "case_id": ["S-1", "S-2", "S-3", "S-4", "S-5"],
    "type": ["Pothole"] * 5,
    "opened": ["2026-04-20T09:00:00"] * 5,
    "state": ["Open"] * 5,
    "address": ["29 MAIN ST", "MAIN ST & ELM ST", "INTERSECTION of Elm St & Main St",
                "corner of Main Street and Elm Street", "41 MAIN ST"],
    "zip": ["01103"] * 5,
    "lon": [DOWNTOWN[0], MAIN_ELM[0], MAIN_ELM[0] + 0.00002, MAIN_ELM[0] - 0.00002,
            DOWNTOWN[0]],
    "lat": [DOWNTOWN[1] + STEP, MAIN_ELM[1], MAIN_ELM[1], MAIN_ELM[1], DOWNTOWN[1] + 2 * STEP],
})

MAPPING = """\
name = "springfield-311"
description = "Springfield 311 cases (invented)"
timezone = "America/New_York"
source = "springfield-311"

[columns]
id = "case_id"
service_name = "type"
created = "opened"
status = "state"
address = "address"
zipcode = "zip"
lon = "lon"
lat = "lat"

[dates]
format = "ISO8601"

[status]
"Open" = "open"
"Closed" = "closed"
"""

#: Six Corners, a neighbourhood given as a district of a layer: around Forest Park's MAIN ST.
SIX_CORNERS = box(-72.56, 42.06, -72.54, 42.08)
DOWNTOWN_BOX = box(-72.60, 42.09, -72.58, 42.11)

NEIGHBOURHOOD_LAYER = """\
name = "neighbourhoods"
title = "Neighbourhoods"
source = "layers/neighbourhoods.geojson"
id_field = "id"
name_field = "name"
role = "district"
"""

LAYER = """\
name = "springfield"
title = "Springfield"
source = "layers/springfield.geojson"
id_field = "id"
name_field = "name"
role = "service_area"
"""


def write_minimal(folder: Path) -> Path:
    """A profile with only the five required keys."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "city.toml"
    path.write_text(MINIMAL)
    return path


def write_city(folder: Path) -> Path:
    """The minimal profile plus neighbourhoods, a map view and a demo with all its files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "layers").mkdir(exist_ok=True)
    (folder / "references").mkdir(exist_ok=True)
    (folder / "requests").mkdir(exist_ok=True)
    area = box(-72.62, 42.03, -72.47, 42.16)
    (folder / "layers" / "springfield.geojson").write_text(json.dumps({
        "type": "FeatureCollection", "features": [{
            "type": "Feature", "properties": {"id": "1", "name": "Springfield"},
            "geometry": mapping(area)}]}))
    (folder / "layers" / "springfield.toml").write_text(LAYER)
    (folder / "layers" / "neighbourhoods.geojson").write_text(json.dumps({
        "type": "FeatureCollection", "features": [{
            "type": "Feature", "properties": {"id": code, "name": name},
            "geometry": mapping(shape)} for code, name, shape in (
                ("SC", "Six Corners", SIX_CORNERS), ("MC", "Metro Center", DOWNTOWN_BOX))]}))
    (folder / "layers" / "neighbourhoods.toml").write_text(NEIGHBOURHOOD_LAYER)
    points().to_csv(folder / "references" / "points.csv", index=False)
    intersections().to_csv(folder / "references" / "intersections.csv", index=False)
    REQUESTS.to_csv(folder / "requests" / "requests.csv", index=False)
    (folder / "springfield-311.toml").write_text(MAPPING)
    path = folder / "city.toml"
    path.write_text(MINIMAL + 'mappings = ["springfield-311.toml"]\n' + NEIGHBOURHOODS + DEMO)
    return path
