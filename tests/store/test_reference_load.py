"""Loading a geocoding reference file into the store, as ``geo311 addresses load`` does."""

from geo311.gazetteer import load_reference
from tests.conftest import SHAPEFILES


def test_load_reference_replaces_its_source_and_stores_osm_as_centrelines(store, tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("address,lon,lat\n121 N LA SALLE ST,-87.6321,41.8837\n"
                    "50 W WASHINGTON ST,-87.6301,41.8831\n", encoding="utf-8")
    assert load_reference(store, path, actor="tester") == ("points", 2)
    path.write_text("address,lon,lat\n121 N LA SALLE ST,-87.6321,41.8837\n", encoding="utf-8")
    assert load_reference(store, path, source="mine") == ("points", 1)
    assert load_reference(store, path, "points") == ("points", 1)  # same source: replaced
    assert sorted(store.addresses.reference_sources()) == [("points", "mine", 1),
                                                 ("points", "points.csv", 1)]
    osm = SHAPEFILES / "geocoding" / "chicago_osm_hermosa_avondale_2012.osm.gz"
    kind, n = load_reference(store, osm)
    assert kind == "osm" and n > 100
    assert ("centerlines", osm.name, n) in store.addresses.reference_sources()
