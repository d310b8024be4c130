"""Chicago's real redistricting (wards 2015-2023 -> wards 2023) on the 2021 request sample."""

import geopandas as gpd
import pytest

from geo311.errors import InvalidRequest, NotFound
from geo311.imports import import_file, read_mapping
from geo311.intake import Context
from geo311.layers import activate_version, diff_version, load_layer, retire_layer
from tests.conftest import SAMPLE_2021_CSV, SHAPEFILES, load_shipped
from tests.prepared import prepared_state


@prepared_state("sample_2021_wards_2023", base="layered", fixtures=("sample_store",),
                module=__name__)
def _sample(store, workdir):
    import_file(store, Context.from_store(store), SAMPLE_2021_CSV, read_mapping("chicago-311"))
    load_layer(store, SHAPEFILES / "wards_2023", name="wards_2023", id_field="ward",
               title="Wards 2023-", activate=False)


@pytest.fixture
def sample_store(layered_store, ctx):
    """Community areas and wards 2015-2023 active, the 2021 sample imported, wards 2023 loaded."""
    return layered_store


def _wards(store, layer):
    """Each request's stored district of ``layer`` (None where it has none)."""
    return {r.id: r.districts.get(layer) for r in store.requests.query(limit=10_000)}


def _sjoin_wards(store, layer):
    """Independent reference: geopandas point-in-polygon on the stored layer."""
    pts = store.requests.points()
    frame = gpd.GeoDataFrame(pts[["id", "status"]], crs=4326,
                             geometry=gpd.points_from_xy(pts["lon"], pts["lat"]))
    joined = gpd.sjoin(frame, store.layers.features(layer)[["district_id", "geometry"]],
                       how="left", predicate="within")
    joined = joined[~joined.index.duplicated()]
    return dict(zip(joined["id"], joined["district_id"].where(joined["district_id"].notna(), None),
                    strict=True)), dict(zip(joined["id"], joined["status"], strict=True))


def test_diff_is_a_dry_run_matching_an_independent_join(sample_store):
    before = _wards(sample_store, "wards_2015_2023")
    audit_before = len(sample_store.audit.entries())
    diff = diff_version(sample_store, "wards_2023", 1, replaces="wards_2015_2023")
    assert _wards(sample_store, "wards_2015_2023") == before  # nothing written
    assert len(sample_store.audit.entries()) == audit_before
    assert sample_store.layers.version("wards_2023").status == "inactive"
    located = sample_store.requests.points()
    assert diff.open_requests + diff.closed_requests == len(located)
    assert diff.open_requests == int((located["status"] == "open").sum()) > 0
    assert diff.closed_kept == diff.closed_requests - diff.closed_assigned
    assert sum(n for _o, _n, n in diff.transitions) == diff.open_changed
    assert all(old != new for old, new, _n in diff.transitions)
    assert diff.transitions == sorted(diff.transitions, key=lambda t: -t[2])
    # geopandas within() on the 2023 map, against the stored 2015-2023 ward
    new, status = _sjoin_wards(sample_store, "wards_2023")
    reference = sum(1 for i, w in new.items() if status[i] == "open" and w != before[i])
    # the index decides points on a boundary from the side of the street; sjoin cannot
    assert abs(diff.open_changed - reference) <= max(5, 0.02 * reference)
    assert 0 < diff.open_changed < diff.open_requests
    # the same index, compared request by request in plain Python (None == None)
    from geo311.districts import DistrictIndex, DistrictLayer, assign_by_address
    feats = sample_store.layers.features("wards_2023")
    index = DistrictIndex([DistrictLayer("w", 0, list(feats["district_id"]),
                                         list(feats.geometry.values))])
    got = assign_by_address(index, located["lon"].to_numpy(), located["lat"].to_numpy(),
                            located["address"].tolist())["w"].district_id
    moved = [(i, s) for i, s, w in zip(located["id"], located["status"], got, strict=True)
             if before[i] != w]
    assert diff.open_changed == sum(s == "open" for _i, s in moved)
    assert diff.closed_kept_differing == sum(s == "closed" for _i, s in moved)
    assert any(before[i] is None for i in located["id"])  # outside both maps: not a move


def test_activation_moves_open_requests_and_keeps_closed_ones(sample_store):
    before = _wards(sample_store, "wards_2015_2023")
    diff = diff_version(sample_store, "wards_2023", 1, replaces="wards_2015_2023")
    version, assigned, applied = activate_version(sample_store, "wards_2023", 1,
                                                  replaces="wards_2015_2023", actor="gis-test")
    assert applied == diff
    assert version.status == "active"
    assert sample_store.layers.version("wards_2015_2023").status == "retired"
    assert assigned == diff.open_requests + diff.closed_assigned
    after_old = _wards(sample_store, "wards_2015_2023")
    after_new = _wards(sample_store, "wards_2023")
    requests = {r.id: r for r in sample_store.requests.query(limit=10_000)}
    closed = [i for i, r in requests.items() if r.status == "closed" and r.lon is not None]
    opened = [i for i, r in requests.items() if r.status == "open" and r.lon is not None]
    assert closed and opened
    # closed requests keep the ward of their day and get none from the new map
    assert all(after_old[i] == before[i] for i in closed)
    assert all(after_new[i] is None for i in closed if before[i] is not None)
    # open requests hold the new map's ward; the number that changed is the diff's
    changed = sum(1 for i in opened if after_new[i] != before[i])
    assert changed == diff.open_changed
    moves = {}
    for i in opened:
        if after_new[i] != before[i]:
            moves[(before[i], after_new[i])] = moves.get((before[i], after_new[i]), 0) + 1
    assert moves == {(o, n): c for o, n, c in diff.transitions}
    entry = sample_store.audit.entries("layer", "wards_2023")[-1]
    assert entry["action"] == "layer_activated" and entry["actor"] == "gis-test"
    assert entry["detail"]["open_changed"] == diff.open_changed
    assert entry["detail"]["replaces"] == "wards_2015_2023"
    retired = sample_store.audit.entries("layer", "wards_2015_2023")[-1]
    assert retired["action"] == "layer_retired" and retired["detail"]["replaced_by"] == "wards_2023"
    # new reports get only the active ward map
    from geo311.intake import Context
    ctx = Context.from_store(sample_store)
    assert [layer.name for layer in ctx.index.layers] == ["community_areas", "wards_2023"]


def test_versions_of_one_layer_switch_back_and_forth(store, tmp_path):
    """One ward layer, two versions: closed requests keep the map of their day both ways."""
    load_shipped(store, "community_areas")
    load_layer(store, SHAPEFILES / "wards_2015_2023", name="wards", id_field="ward")
    from geo311.intake import Context
    from tests.conftest import csv_head
    ctx = Context.from_store(store)
    import_file(store, ctx, csv_head(SAMPLE_2021_CSV, tmp_path / "s.csv", 1500),
                read_mapping("chicago-311"))
    before = _wards(store, "wards")
    load_layer(store, SHAPEFILES / "wards_2023", name="wards", id_field="ward", activate=False)
    diff = diff_version(store, "wards", 2)
    assert (diff.baseline_layer, diff.baseline_version) == ("wards", 1)
    activate_version(store, "wards", 2)
    mid = _wards(store, "wards")
    requests = store.requests.query(limit=10_000)
    closed = [r.id for r in requests if r.status == "closed" and r.lon is not None]
    opened = [r.id for r in requests if r.status == "open" and r.lon is not None]
    assert all(mid[i] == before[i] for i in closed)
    assert sum(mid[i] != before[i] for i in opened) == diff.open_changed > 0
    # close one request that moved, then go back to version 1: it keeps its 2023 ward
    moved = next(i for i in opened if mid[i] != before[i])
    store.requests.set_status(moved, "closed")
    back = diff_version(store, "wards", 1)
    assert back.open_changed == diff.open_changed - 1
    activate_version(store, "wards", 1)
    final = _wards(store, "wards")
    assert final[moved] == mid[moved] != before[moved]
    assert all(final[i] == before[i] for i in opened if i != moved)
    assert [v.status for v in store.layers.versions("wards")] == ["active", "inactive"]


def test_retire_keeps_districts_and_guards_the_service_area(layered_store, ctx):
    from geo311.intake import submit
    from geo311.model import NewRequest, Service

    layered_store.catalogue.upsert([Service("SCB", "Sanitation Code Violation")])
    r = submit(layered_store, ctx, NewRequest("SCB", -87.6321, 41.8837))
    ward = r.districts["wards_2015_2023"]
    assert ward is not None
    assert retire_layer(layered_store, "wards_2015_2023", actor="gis") == [1]
    assert layered_store.requests.get(r.id).districts["wards_2015_2023"] == ward
    assert layered_store.layers.version("wards_2015_2023").status == "retired"
    with pytest.raises(InvalidRequest, match="no active version"):
        retire_layer(layered_store, "wards_2015_2023")
    with pytest.raises(NotFound):
        retire_layer(layered_store, "nope")
    with pytest.raises(InvalidRequest, match="is the service area"):
        retire_layer(layered_store, "community_areas")
    with pytest.raises(InvalidRequest, match="another active layer"):
        retire_layer(layered_store, "community_areas", service_area="wards_2015_2023")
    assert layered_store.layers.version("community_areas").status == "active"
    load_shipped(layered_store, "police_districts_2012")
    retire_layer(layered_store, "community_areas", service_area="police_districts_2012")
    assert layered_store.layers.version("police_districts_2012").role == "service_area"
    assert layered_store.layers.version("community_areas").role == "district"
    actions = [e["action"] for e in layered_store.audit.entries("layer", "community_areas")]
    assert actions[-1] == "layer_retired"
