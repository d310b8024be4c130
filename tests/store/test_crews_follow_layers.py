"""Crews follow a new ward map: activating wards 2023 re-maps their home districts."""

from datetime import UTC, datetime, timedelta

import geopandas as gpd
import pytest

from geo311 import dispatch as core
from geo311.errors import InvalidRequest
from geo311.intake import submit
from geo311.layers import activate_version, describe_layer, diff_version, load_layer, retire_layer
from geo311.model import Crew, NewRequest, Service
from tests.conftest import SHAPEFILES
from tests.prepared import prepared_state

OLD, NEW = "wards_2015_2023", "wards_2023"
UTM16 = "EPSG:32616"  # Chicago's UTM zone, chosen here independently of the code


@prepared_state("wards_2023_loaded", base="layered", fixtures=("wards23_store",),
                module=__name__)
def _wards_2023(store, workdir):
    load_layer(store, SHAPEFILES / NEW, name=NEW, id_field="ward", title="Wards 2023-",
               activate=False)


@pytest.fixture
def wards23_store(layered_store):
    """Wards 2015-2023 active, the shipped wards 2023 loaded but not active."""
    return layered_store


def _shapefile(name):
    """The shipped ward file read straight with geopandas: ward id and geometry in UTM 16N."""
    frame = gpd.read_file(SHAPEFILES / name)
    return gpd.GeoDataFrame({"ward": frame["ward"].astype(int).astype(str)},
                            geometry=frame.geometry, crs=frame.crs).to_crs(UTM16)


def _largest_overlap(old, new, ward, new_id="ward"):
    """Reference: the new ward covering most of the old one, and the share it covers."""
    piece = old[old["ward"] == ward]
    parts = gpd.overlay(piece, new.rename(columns={new_id: "to"}), how="intersection")
    parts["m2"] = parts.area
    sums = parts.groupby("to")["m2"].sum().sort_values(ascending=False)
    return sums.index[0], float(sums.iloc[0] / piece.area.sum())


def test_crews_follow_the_2023_wards_and_suggestions_run(wards23_store, ctx):
    store = wards23_store
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation",
                                    sla_hours=48, sla_clock="24x7")])
    loop = core.create_crew(store, Crew("Loop", OLD, ("42", "2", "3", "4"), ("Sanitation",), 6,
                                        depot_lon=-87.63, depot_lat=41.88))
    north = core.create_crew(store, Crew("North", OLD, ("40", "47", "48", "49", "50"),
                                         ("Sanitation",), 6))
    anywhere = core.create_crew(store, Crew("Anywhere", OLD, (), ("Sanitation",), 2))
    now = datetime.now(UTC)
    points = [(-87.6321, 41.8837), (-87.6250, 41.8700), (-87.6800, 41.9800), (-87.6650, 42.0050),
              (-87.6900, 41.9650), (-87.6100, 41.8300), (-87.7400, 41.7600)]
    made = [submit(store, ctx, NewRequest("SCB", lon, lat, requested_datetime=now
                                          - timedelta(hours=k))).id
            for k, (lon, lat) in enumerate(points)]

    dry = diff_version(store, NEW, 1, replaces=OLD)
    assert {m["crew"] for m in dry.crews} == {"Loop", "North", "Anywhere"}
    assert store.dispatch.crew(loop.id).layer == OLD  # a dry run writes nothing
    version, _moved, diff = activate_version(store, NEW, 1, actor="gis", replaces=OLD)
    assert version.status == "active" and store.layers.version(OLD).status == "retired"
    assert diff.crews == dry.crews

    old_file, new_file = _shapefile(OLD), _shapefile(NEW)
    for crew in (loop, north):
        after = store.dispatch.crew(crew.id)
        assert after.layer == NEW and after.active
        move = next(m for m in diff.crews if m["crew_id"] == crew.id)
        expected = []
        for s in move["successors"]:
            # the reference, from the shapefiles: the namesake's share of the old ward,
            # kept when at least half, else the new ward covering most of it
            piece = old_file[old_file["ward"] == s["old"]]
            same = new_file[new_file["ward"] == s["old"]]
            share = piece.intersection(same.union_all()).area.sum() / piece.area.sum()
            if share >= 0.5:
                assert s["how"] == "same id" and s["share"] == pytest.approx(share, abs=0.005)
                expected.append(s["old"])
            else:
                ward, biggest = _largest_overlap(old_file, new_file, s["old"])
                assert s["how"] == "largest overlap" and s["new"] == ward
                assert s["share"] == pytest.approx(biggest, abs=0.005)
                expected.append(ward)
        assert after.districts == tuple(dict.fromkeys(expected))
    loop_moves = next(m for m in diff.crews if m["crew_id"] == loop.id)["successors"]
    assert {s["old"]: s["how"] for s in loop_moves}["2"] == "largest overlap"  # 42 % kept
    assert store.dispatch.crew(anywhere.id).layer == NEW
    assert store.dispatch.crew(anywhere.id).districts == ()

    found = core.suggest(store, NEW, now=now)  # no "layer has no active version"
    assert sorted(s.request_id for s in found) == sorted(made)
    located = gpd.GeoDataFrame({"id": made}, geometry=gpd.points_from_xy(
        *zip(*points, strict=True)), crs=4326).to_crs(UTM16)
    ward_of = dict(gpd.sjoin(located, new_file, predicate="within")[["id", "ward"]].values)
    crews = {c.id: c for c in store.dispatch.crews()}
    for s in found:
        assert s.crew_id is not None, s
        home = crews[s.crew_id].districts
        assert not home or ward_of[s.request_id] in home
    assert any(crews[s.crew_id].name == "Loop" for s in found)

    audited = [e for e in store.audit.entries("crew") if e["action"] == "crew_remapped"]
    assert {int(e["entity_id"]) for e in audited} == {loop.id, north.id, anywhere.id}
    assert all(e["detail"]["layer_to"] == NEW and e["actor"] == "gis" for e in audited)
    activation = [e for e in store.audit.entries("layer", NEW)
                  if e["action"] == "layer_activated"][-1]
    assert {m["crew"] for m in activation["detail"]["crews"]} == {"Loop", "North", "Anywhere"}
    assert {m["crew"] for m in describe_layer(store, NEW)["crews"]} == {"Loop", "North",
                                                                        "Anywhere"}


def test_renumbered_wards_go_to_the_largest_overlap(wards23_store, tmp_path):
    store = wards23_store
    renumbered = gpd.read_file(SHAPEFILES / NEW)[["ward", "geometry"]]
    renumbered["ward"] = "W" + renumbered["ward"].astype(int).astype(str).str.zfill(2)
    renumbered.to_file(tmp_path / "renumbered.gpkg", driver="GPKG")
    crew = core.create_crew(store, Crew("Lakefront", OLD, ("1", "2", "42", "43", "46"),
                                        ("Sanitation",), 6))
    load_layer(store, tmp_path / "renumbered.gpkg", name=OLD, id_field="ward", activate=False)
    _version, _moved, diff = activate_version(store, OLD, 2, actor="gis")
    after = store.dispatch.crew(crew.id)
    old_file = _shapefile(OLD)
    new_file = renumbered.to_crs(UTM16)
    expected = [_largest_overlap(old_file, new_file, w) for w in crew.districts]
    assert after.layer == OLD
    assert after.districts == tuple(dict.fromkeys(w for w, _share in expected))
    successors = diff.crews[0]["successors"]
    assert [s["how"] for s in successors] == ["largest overlap"] * 5
    assert [s["share"] for s in successors] == pytest.approx([s for _w, s in expected],
                                                             abs=0.005)
    assert all(0 < s["share"] <= 1 for s in successors)
    print("successors", [(s["old"], s["new"], s["share"]) for s in successors])


def test_a_layer_with_crews_is_not_retired_from_under_them(wards23_store):
    core.create_crew(wards23_store, Crew("Loop", OLD, ("42",), ("Sanitation",), 6))
    with pytest.raises(InvalidRequest, match="crews \\['Loop'\\] work on layer"):
        retire_layer(wards23_store, OLD, actor="gis", force=True)
