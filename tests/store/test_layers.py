"""Boundary layers in the store: versions, activation and reassignment."""

import pytest

from geo311.errors import LayerError, NotFound
from geo311.intake import Context, submit
from geo311.layers import activate_version, describe_layer, load_layer
from geo311.model import NewRequest, Service
from tests.conftest import SHAPEFILES, load_shipped


def test_loading_again_makes_a_new_version(layered_store):
    v1 = layered_store.layers.version("wards_2015_2023")
    load_layer(layered_store, SHAPEFILES / "wards_2015_2023", name="wards_2015_2023",
               id_field="ward")
    versions = layered_store.layers.versions("wards_2015_2023")
    assert [(v.version, v.status) for v in versions] == [(1, "inactive"), (2, "active")]
    assert versions[0].checksum == versions[1].checksum == v1.checksum
    actions = [e["action"] for e in layered_store.audit.entries("layer", "wards_2015_2023")]
    assert actions == ["layer_loaded", "layer_activated", "layer_loaded", "layer_activated"]


def test_new_version_moves_open_requests_and_keeps_closed_ones(layered_store):
    """Chicago's real 2023 redistricting, loaded as a new version of the ward layer."""
    layered_store.catalogue.upsert([Service("SCB", "Sanitation Code Violation")])
    ctx = Context.from_store(layered_store)
    # The expected wards are read from the 2023 map itself below, not hard-coded.
    points = [(-87.6389, 41.9402), (-87.7000, 41.9000), (-87.6650, 41.7800)]
    made = [submit(layered_store, ctx, NewRequest("SCB", lon, lat)) for lon, lat in points]
    layered_store.requests.set_status(made[0].id, "closed")
    before = {r.id: r.districts["wards_2015_2023"] for r in made}
    load_layer(layered_store, SHAPEFILES / "wards_2023", name="wards_2015_2023",
               id_field="ward")
    new_ids = {m.id: layered_store.requests.get(m.id).districts["wards_2015_2023"] for m in made}
    assert new_ids[made[0].id] == before[made[0].id]  # closed keeps the ward of its day
    from geo311.districts import DistrictIndex, DistrictLayer

    feats = layered_store.layers.features("wards_2015_2023")
    idx = DistrictIndex([DistrictLayer("w", 0, list(feats["district_id"]),
                                       list(feats.geometry.values))])
    for m, (lon, lat) in zip(made[1:], points[1:], strict=True):
        assert new_ids[m.id] == idx.assign_one(lon, lat)["w"][0]


def test_describe_and_missing(layered_store):
    info = describe_layer(layered_store, "community_areas")
    assert info["feature_count"] == 77 and info["status"] == "active"
    assert info["source_crs"] == "EPSG:4326"
    assert info["valid"] is True
    with pytest.raises(NotFound, match="'nope'"):
        describe_layer(layered_store, "nope")
    with pytest.raises(NotFound, match="no version 9"):
        layered_store.layers.version("community_areas", 9)


def test_bad_layer_file_stores_nothing(store, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a layer")
    with pytest.raises(LayerError):
        load_layer(store, bad, name="bad")
    assert store.layers.versions() == []


def test_activate_older_version_again(store):
    load_shipped(store, "community_areas")
    load_layer(store, SHAPEFILES / "community_areas", name="community_areas",
               id_field="area_numbe", role="service_area")
    version, _moved, _diff = activate_version(store, "community_areas", 1)
    assert version.status == "active"
    assert [v.status for v in store.layers.versions("community_areas")] == ["active", "inactive"]
