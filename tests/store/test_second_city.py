"""A second real city, Boston, from its own files only: layers, import, districts.

The reference is the City's own: each request of the July 2015 export carries the ward and
police district the City assigned. The labels are read here independently of
``geo311.district_ids`` (a plain regular expression), so the rules under test are not also
the judge.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from geo311.boundaries.reading import read_layer
from geo311.catalogue import load_catalogue, read_catalogue
from geo311.config import PROJECT_ROOT
from geo311.geodesy import haversine_m
from geo311.imports import import_file, read_mapping
from geo311.intake import Context
from geo311.layerdefs import read_layer_definitions
from geo311.layers import load_definitions
from tests.prepared import prepared_state

REQUESTS = PROJECT_ROOT / "shapefiles/boston/requests/boston_311_2015-07_all_types.csv.gz"
CITY_HALL = (-71.0587, 42.3594)  # where the CRM puts a case it has no location for


@prepared_state("boston", fixtures=("boston_store",), module=__name__)
def _boston(store, workdir: Path) -> dict:
    definitions = read_layer_definitions(PROJECT_ROOT / "layers/boston", PROJECT_ROOT / "layers")
    loaded = load_definitions(store, definitions, loaded_by="tests")
    load_catalogue(store, read_catalogue("boston"), source="boston")
    summary = import_file(store, Context.from_store(store), REQUESTS, read_mapping("boston-311"))
    return {"rows_read": summary.rows_read, "stored": summary.stored,
            "rejected": summary.rejected, "lines": summary.lines(),
            "reports": {d.name: r.report.to_dict() for d, r in loaded}}


@pytest.fixture
def boston_store(store):
    """A store with Boston's shipped layers, catalogue and July 2015 requests."""
    return store


@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    return pd.read_csv(REQUESTS, dtype=str, keep_default_na=False)


def test_layers_load_as_the_city_delivers_them(boston_store, prepared):
    reports = prepared["reports"]
    wards = reports["boston_wards"]
    assert wards["feature_count"] == 255 and wards["valid"]  # precincts
    assert boston_store.layers.version("boston_wards").feature_count == 22
    dissolved = [p for p in wards["problems"] if p["action"] == "dissolved"]
    assert sorted(int(p["district_id"]) for p in dissolved) == list(range(1, 23))
    assert all("written '" in p["problem"] for p in dissolved)
    assert boston_store.layers.version("boston_police_districts").feature_count == 12
    assert boston_store.layers.version("boston_neighborhoods").feature_count == 26
    assert boston_store.layers.version("boston_wards").role == "service_area"
    # the wards' union is the city: the police districts' union covers it to within 2 %
    city = shapely.union_all(boston_store.layers.features("boston_wards").geometry.to_numpy())
    police = shapely.union_all(
        boston_store.layers.features("boston_police_districts").geometry.to_numpy())
    assert shapely.area(shapely.difference(city, police)) / shapely.area(city) < 0.02


def test_import_rejects_nothing_and_places_no_case_at_the_placeholder(
        boston_store, prepared, source):
    assert prepared["rows_read"] == len(source) == 10406
    assert prepared["rejected"] == [] and prepared["stored"] == len(source)
    lat = pd.to_numeric(source["LATITUDE"], errors="coerce")
    lon = pd.to_numeric(source["LONGITUDE"], errors="coerce")
    placeholder = (lon.sub(CITY_HALL[0]).abs() < 5e-5) & (lat.sub(CITY_HALL[1]).abs() < 5e-5)
    no_location = int((lat.isna() | placeholder).sum())
    assert f"without location {no_location}," in "\n".join(prepared["lines"])
    stored = boston_store.requests.query(limit=20000)
    assert sum(r.lon is None for r in stored) == no_location
    one = boston_store.requests.get_by_external_id(source["CASE_ENQUIRY_ID"].iloc[0])
    assert one.requested_datetime.isoformat().endswith("+00:00")
    zips = {r.zipcode for r in stored} - {""}
    assert zips and all(re.fullmatch(r"02\d{3}", z) for z in zips), sorted(zips)[:5]


def _labels(values: pd.Series, layer: str) -> pd.Series:
    if layer == "boston_wards":  # "Ward 5", "05", "5"
        return values.str.extract(r"(\d+)")[0].astype(float).astype("Int64").astype(str)
    return values.str.replace("-", "", regex=False).str.upper()  # "C-11", "C11"


@pytest.mark.parametrize(("layer", "column"), [("boston_wards", "ward"),
                                               ("boston_police_districts", "police_district")])
def test_districts_agree_with_the_citys_own_labels(boston_store, source, layer, column):
    stored = {r.external_id: r for r in boston_store.requests.query(limit=20000)}
    rows = source[source[column] != ""].copy()
    rows["city"] = _labels(rows[column], layer)
    rows["geo311"] = [stored[i].districts.get(layer) for i in rows["CASE_ENQUIRY_ID"]]
    rows["located"] = [stored[i].lon is not None for i in rows["CASE_ENQUIRY_ID"]]
    rows = rows[rows["located"]]
    by_kind = {kind: float((part["city"] == part["geo311"]).mean())
               for kind, part in rows.groupby("Property_Type")}
    assert len(rows[rows["Property_Type"] == "Address"]) > 7000
    assert by_kind["Address"] >= 0.99, by_kind
    # Intersections sit on the streets that are ward edges, and the export rounds points
    # to 1e-4 degree (up to 5.5 m): measured 96.5 % (wards), 98.6 % (police districts).
    assert by_kind["Intersection"] >= 0.96, by_kind
    # What disagrees is, nearly always, within that rounding of the City's own district.
    features = boston_store.layers.features(layer).set_index("district_id").geometry
    wrong = rows[(rows["city"] != rows["geo311"]) & (rows["Property_Type"] == "Intersection")]
    far = [r for r in wrong.itertuples()
           if _distance_m(features.get(r.city), float(r.LONGITUDE), float(r.LATITUDE)) > 10]
    assert len(far) <= 0.002 * len(rows[rows["Property_Type"] == "Intersection"]), far


def _distance_m(polygon, lon: float, lat: float) -> float:
    if polygon is None:
        return np.inf
    nearest = shapely.shortest_line(shapely.Point(lon, lat), polygon).coords[-1]
    return float(haversine_m(lon, lat, nearest[0], nearest[1]))


def test_the_profile_names_only_districts_and_zip_codes_the_files_have(source):
    from geo311.city import load_profile

    profile = load_profile("boston")
    definitions = read_layer_definitions(profile.layers, profile.layers.parent)
    assert profile.service_area_layer in {d.name for d in definitions}
    ids = {d.name: set(read_layer(d.source, id_field=d.id_field, layer=d.layer,
                                  id_rule=list(d.id_rule) or None).features["district_id"])
           for d in definitions if d.name == "boston_neighborhoods"}
    written = set(source["Location"].str.extract(r"\s{2}MA\s{2}(\d{5})$")[0].dropna())
    for n in profile.neighbourhoods:
        assert set(n.districts) <= ids.get(n.layer, set()), n
        assert set(n.zip_codes) <= set(profile.zip_codes), n
    assert set(profile.zip_codes) <= written  # every ZIP of the profile is one the City writes
