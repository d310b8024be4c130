"""Geocoding references in the store, learning from history, intake and import by address."""

import math

import pandas as pd
import pytest

from geo311.errors import InvalidRequest
from geo311.gazetteer import LEARNED_SOURCE, geocoder_for, learn_addresses
from geo311.geocoding.references import POINT_COLUMNS
from geo311.imports import import_file, read_mapping
from geo311.intake import Context, submit
from geo311.model import NewRequest, Service
from tests import references
from tests.conftest import LEGACY_CSV, csv_head
from tests.references import load_subset

LEGACY = read_mapping("chicago-311-legacy")


def metres(lon1, lat1, lon2, lat2):
    return math.hypot((lon1 - lon2) * 83_000, (lat1 - lat2) * 111_000)


def test_references_round_trip_with_their_source(store):
    frames = load_subset(store)
    stored = store.addresses.reference_frames()
    assert len(stored["points"]) == len(frames["points"])
    assert len(stored["intersections"]) == len(frames["intersections"])
    assert set(stored["points"]["source"]) == {"points-subset"}
    assert len(stored["centerlines"]) == 3 and stored["centerlines"]["l_from"].notna().all()
    sources = {(k, s): n for k, s, n in store.addresses.reference_sources()}
    assert sources[("points", "points-subset")] == len(frames["points"])
    first = stored["points"].iloc[0]
    assert store.addresses.point(int(first["id"]))[0] == first["address"]
    key = store.addresses.reference_key()
    store.addresses.replace_reference("points", frames["points"].head(10), "points-subset")
    assert len(store.addresses.reference_frames()["points"]) == 10          # replaced, not added
    assert store.addresses.reference_key() != key
    with pytest.raises(InvalidRequest, match="kind"):
        store.addresses.replace_reference("roads", frames["points"], "x")


def test_reloading_a_source_keeps_each_address_its_id(store):
    """Clients keep address_id values: a reload must not renumber the addresses it keeps."""
    points = load_subset(store)["points"].reset_index(drop=True)
    before = store.addresses.reference_frames()["points"].set_index("address")["id"]
    moved = points.copy()
    moved.loc[0, "lon"] += 0.0001                     # the first address moved a little
    gone = before.idxmax()                            # the newest address left the source
    moved = moved[moved["address"] != gone]
    extra = moved.iloc[[2]].assign(address="9999 S NEW ST", house_number=9999,
                                   street_name="NEW")
    store.addresses.replace_reference("points", pd.concat([moved, extra]), "points-subset")
    after = store.addresses.reference_frames()["points"].set_index("address")["id"]
    kept = [a for a in moved["address"] if a in before.index]
    assert after[kept].tolist() == before[kept].tolist()
    assert gone not in after.index
    assert after["9999 S NEW ST"] not in set(before)  # a new address never takes an old id
    first = points.loc[0, "address"]
    address, lon, _ = store.addresses.point(int(after[first]))
    assert address == first and lon == pytest.approx(points.loc[0, "lon"] + 0.0001)


def test_geocoder_over_the_store(store):
    frames = load_subset(store)
    geocoder, key = geocoder_for(store)
    row = frames["points"].iloc[5]
    g = geocoder.geocode(row.address)
    assert g.match == "exact" and metres(g.lon, g.lat, row.lon, row.lat) < 0.01
    assert g.address_id is not None
    assert store.addresses.point(g.address_id)[0] == row.address
    assert geocoder.geocode("2450 N FIXTURE AVE").match == "centerline"
    assert geocoder.geocode("W FULLERTON AVE & N PULASKI RD").match == "intersection"
    again, same_key = geocoder_for(store)
    assert again is geocoder and same_key == key                   # cached until a change
    store.addresses.replace_reference("points", frames["points"].head(3), "more")
    assert geocoder_for(store)[0] is not geocoder
    # A reload of the same size (same ids on SQLite) is still seen.
    store.addresses.replace_reference("points", frames["points"].head(3), "points-subset")
    moved = frames["points"].head(3).assign(lon=frames["points"]["lon"].head(3) + 0.01)
    store.addresses.replace_reference("points", moved.head(0), "more")
    before = geocoder_for(store)[0].geocode(moved["address"].iloc[0])
    store.addresses.replace_reference("points", moved, "points-subset")
    after = geocoder_for(store)[0].geocode(moved["address"].iloc[0])
    assert after.lon == pytest.approx(before.lon + 0.01)


def test_learn_from_imported_history(layered_store, ctx, tmp_path):
    src = csv_head(LEGACY_CSV, tmp_path / "legacy.csv", 1500)
    import_file(layered_store, ctx, src, LEGACY)
    n = learn_addresses(layered_store)
    source = pd.read_csv(src, dtype=str).dropna(subset=["Latitude"])
    assert 0.6 * source["Street_Address"].nunique() < n <= source["Street_Address"].nunique()
    assert {s for _, s, _ in layered_store.addresses.reference_sources()} == {LEARNED_SOURCE}
    assert learn_addresses(layered_store) == n                      # replaces, idempotent
    geocoder, _ = geocoder_for(layered_store)
    hits = 0
    for row in source.sample(100, random_state=3).itertuples():
        g = geocoder.geocode(row.Street_Address)
        hits += g.match == "exact" and metres(g.lon, g.lat, float(row.Longitude),
                                             float(row.Latitude)) < 1
    assert hits >= 95
    assert learn_addresses(layered_store, since=pd.Timestamp("2030-01-01", tz="UTC")) == n
    layered_store.addresses.replace_reference("points", pd.DataFrame(columns=list(POINT_COLUMNS)),
                                    LEARNED_SOURCE)
    recent = learn_addresses(layered_store, since=pd.Timestamp("2011-02-01", tz="UTC"))
    assert 0 < recent < n                                          # only the later requests
    assert learn_addresses(layered_store, since=pd.Timestamp("2011-01-01", tz="UTC")) > recent


@pytest.fixture
def geo_store(layered_store):
    layered_store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation")])
    load_subset(layered_store)
    return layered_store


def test_submit_by_address(geo_store):
    ctx = Context.from_store(geo_store)
    r = submit(geo_store, ctx, NewRequest("SCB", address="3415 w diversey avenue"))
    assert r.geocode_match == "exact"
    assert metres(r.lon, r.lat, -87.712901, 41.931853) < 1
    assert r.districts["community_areas"] == "22"                  # Logan Square
    grid = submit(geo_store, ctx, NewRequest("SCB", address="2451 N FIXTURE AVE"))
    assert grid.geocode_match == "centerline"
    crossing = submit(geo_store, ctx, NewRequest("SCB", address="Fullerton and Pulaski"))
    assert crossing.geocode_match == "intersection"
    assert geo_store.requests.count() == 3


@pytest.mark.parametrize("address, needle", [
    ("hello world", "no street named"),
    ("99999999 W DIVERSEY AVE", "larger than any city"),
    ("x" * 10_000, "at most 500"),  # the report rules (geo311.reports) speak first
    ("1600 Pennsylvania Ave NW, Washington, DC 20500", "outside the city"),
])
def test_unplaceable_address_is_refused_and_nothing_stored(geo_store, address, needle):
    ctx = Context.from_store(geo_store)
    with pytest.raises(InvalidRequest, match=needle):
        submit(geo_store, ctx, NewRequest("SCB", address=address))
    assert geo_store.requests.count() == 0


def test_submit_by_address_id(geo_store):
    ctx = Context.from_store(geo_store)
    point = geo_store.addresses.reference_frames()["points"].iloc[7]
    r = submit(geo_store, ctx, NewRequest("SCB", address_id=int(point["id"])))
    assert r.address == point["address"] and r.geocode_match == "exact"
    assert metres(r.lon, r.lat, point["lon"], point["lat"]) < 0.01
    with pytest.raises(InvalidRequest, match="address_id 99999999"):
        submit(geo_store, ctx, NewRequest("SCB", address_id=99_999_999))
    assert geo_store.requests.count() == 1


def test_given_coordinates_win_over_the_address(geo_store):
    ctx = Context.from_store(geo_store)
    r = submit(geo_store, ctx, NewRequest("SCB", -87.6321, 41.8837, address="hello world"))
    assert r.geocode_match == "reported" and r.lon == -87.6321


def test_import_geocode_missing(layered_store, ctx, tmp_path):
    frame = pd.read_csv(csv_head(LEGACY_CSV, tmp_path / "head.csv", 4000), dtype=str,
                        keep_default_na=False)
    history, later = frame.iloc[:3000], frame.iloc[3000:].copy()
    history.to_csv(tmp_path / "history.csv", index=False)
    import_file(layered_store, ctx, tmp_path / "history.csv", LEGACY)
    learn_addresses(layered_store)
    full = references.full()
    layered_store.addresses.replace_reference("points", full["points"], "points")
    layered_store.addresses.replace_reference("intersections", full["intersections"], "intersections")
    located_rows = later[later["Latitude"] != ""].drop_duplicates("Service_Request_Number",
                                                                 keep="last")
    truth = {r.Service_Request_Number: (float(r.Longitude), float(r.Latitude))
             for r in located_rows.itertuples()}
    for column in ("Longitude", "Latitude", "X_Coordinate", "Y_Coordinate", "Location"):
        later[column] = ""
    later.to_csv(tmp_path / "later.csv", index=False)
    ctx = Context.from_store(layered_store)
    summary = import_file(layered_store, ctx, tmp_path / "later.csv", LEGACY, geocode="missing")
    assert any("addresses geocoded" in note for note in summary.notes)
    stored = [layered_store.requests.get_by_external_id(i) for i in truth]
    located = [r for r in stored if r.lon is not None]
    assert {r.geocode_match for r in located} <= {"exact", "interpolated", "centerline", "grid",
                                                   "intersection"}
    close = sum(metres(r.lon, r.lat, *truth[r.external_id]) <= 100 for r in located)
    assert len(located) > 0.95 * len(stored)
    assert close > 0.85 * len(stored)


def test_context_has_no_remote_geocoder_unless_asked(geo_store):
    ctx = Context.from_store(geo_store)
    assert ctx.remote is None and ctx.geocoder is not None
    with pytest.raises(Exception, match="GEO311_REMOTE_GEOCODER was 'bing'"):
        Context.from_store(geo_store, remote_geocoder="bing")
