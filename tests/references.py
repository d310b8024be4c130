"""Small real geocoding references cut from the shipped Chicago files, read once."""

from functools import cache

import pandas as pd

from geo311.config import PROJECT_ROOT
from geo311.geocoding.references import read_reference

GEOCODING = PROJECT_ROOT / "shapefiles" / "geocoding"
POINTS = GEOCODING / "chicago_address_points_food_inspections_business_licenses.csv.gz"
INTERSECTIONS = GEOCODING / "chicago_street_intersections.csv.gz"
OSM = GEOCODING / "chicago_osm_hermosa_avondale_2012.osm.gz"
TIGER = PROJECT_ROOT / "tests" / "data" / "tiger_centerlines.geojson"
#: Fullerton to Belmont, Pulaski to Kedzie (the OSM extract's area), and the Loop.
BOXES = ((-87.7280, 41.9240, -87.7026, 41.9429), (-87.6400, 41.8750, -87.6200, 41.8900))


def _inside(frame: pd.DataFrame) -> pd.Series:
    keep = pd.Series(False, index=frame.index)
    for x0, y0, x1, y1 in BOXES:
        keep |= frame["lon"].between(x0, x1) & frame["lat"].between(y0, y1)
    return keep


@cache
def full() -> dict[str, pd.DataFrame]:
    """The shipped address points and intersections, whole."""
    return {"points": read_reference(POINTS)[1], "intersections": read_reference(INTERSECTIONS)[1]}


@cache
def subset() -> dict[str, pd.DataFrame]:
    """Address points and intersections in ``BOXES`` (a few thousand rows)."""
    points, crossings = full()["points"], full()["intersections"]
    return {"points": points[_inside(points)].reset_index(drop=True),
            "intersections": crossings[_inside(crossings)].reset_index(drop=True)}


def load_subset(store) -> dict[str, pd.DataFrame]:
    """Store the subset (and the centreline fixture) as reference layers."""
    frames = subset()
    store.addresses.replace_reference("points", frames["points"], "points-subset")
    store.addresses.replace_reference("intersections", frames["intersections"], "intersections-subset")
    store.addresses.replace_reference("centerlines", read_reference(TIGER, "centerlines")[1],
                            TIGER.name)
    return frames
