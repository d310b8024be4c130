"""The store on both backends: same answers, personal data kept apart, indexes present."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from geo311.errors import InvalidRequest, NotFound
from geo311.geodesy import haversine_m
from geo311.model import NewRequest, Placement, Reporter, Service

LON, LAT = -87.6500, 41.8500
METRE_LAT = 1 / 111_195.0  # degrees of latitude per metre (spherical Earth)


def _add(store, lon=LON, lat=LAT, code="SCB", **kw):
    return store.requests.add(NewRequest(code, lon, lat, **kw), Placement(lon, lat, "reported"))


@pytest.fixture
def catalogued(store):
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation"),
                           Service("PHF", "Pothole in Street Complaint", "Streets")])
    return store


def test_spatial_extension_answers(store):
    assert store.db.ping()[0].isdigit()


def test_add_and_get_roundtrip(catalogued):
    when = datetime(2021, 3, 14, 1, 59, tzinfo=UTC)
    r = _add(catalogued, description="Overflowing cart", address="1 W MADISON ST",
             requested_datetime=when)
    got = catalogued.requests.get(r.id)
    assert got.service_name == "Sanitation Code Violation"
    assert got.requested_datetime == when
    assert (got.lon, got.lat) == pytest.approx((LON, LAT), abs=1e-9)
    assert got.status == "open" and got.reporter_count == 1
    assert got.service_request_id == str(r.id)
    assert [e["action"] for e in catalogued.audit.entries("request", r.id)] == ["created"]


def test_missing_request_is_not_found(catalogued):
    with pytest.raises(NotFound, match="999"):
        catalogued.requests.get(999)


def test_personal_data_lives_only_in_reporters(catalogued):
    r = _add(catalogued, reporter=Reporter("Ann", "Lee", "ann@example.org", "312-555-0101",
                                           "dev-1", "acct-9"))
    public = catalogued.requests.get(r.id)
    flat = repr(public) + repr(catalogued.requests.query()) + repr(catalogued.requests.near(LON, LAT, 10))
    for secret in ("Ann", "Lee", "ann@example.org", "312-555-0101", "dev-1", "acct-9"):
        assert secret not in flat
    assert catalogued.requests.reporters_of(r.id)[0].email == "ann@example.org"


def test_near_decides_in_metres_and_orders_by_distance(catalogued):
    at_49 = _add(catalogued, lat=LAT + 49 * METRE_LAT)
    at_51 = _add(catalogued, lat=LAT + 51 * METRE_LAT)
    at_10 = _add(catalogued, lon=LON + 10 * METRE_LAT / np.cos(np.radians(LAT)))
    other = _add(catalogued, code="PHF")
    found = catalogued.requests.near(LON, LAT, 50, service_code="SCB")
    assert [r.id for r, _ in found] == [at_10.id, at_49.id]
    assert found[1][1] == pytest.approx(49, abs=0.1)
    assert at_51.id in [r.id for r, _ in catalogued.requests.near(LON, LAT, 52)]
    assert other.id in [r.id for r, _ in catalogued.requests.near(LON, LAT, 1)]
    with pytest.raises(InvalidRequest, match="radius_m"):
        catalogued.requests.near(LON, LAT, 0)


def test_near_agrees_with_brute_force_on_random_points(catalogued):
    rng = np.random.default_rng(7)
    lons = LON + rng.uniform(-0.01, 0.01, 300)
    lats = LAT + rng.uniform(-0.01, 0.01, 300)
    frame = pd.DataFrame({
        "external_id": [f"X{i}" for i in range(300)], "external_parent_id": None,
        "source": "test", "service_code": "SCB", "status": "open", "status_notes": "",
        "description": "", "address": "", "zipcode": "", "geocode_match": "source",
        "outside_service_area": False,
        "requested_datetime": pd.Timestamp("2021-01-01", tz="UTC"),
        "updated_datetime": pd.Timestamp("2021-01-01", tz="UTC"),
        "closed_datetime": pd.NaT, "lon": lons, "lat": lats,
    })
    catalogued.requests.add_many(frame)
    found = {r.external_id for r, _ in catalogued.requests.near(LON, LAT, 400, limit=1000)}
    d = haversine_m(LON, LAT, lons, lats)
    assert found == {f"X{i}" for i in np.flatnonzero(d <= 400)}
    assert 10 < len(found) < 300


def test_query_filters(catalogued):
    t0 = datetime(2021, 1, 1, tzinfo=UTC)
    a = _add(catalogued, requested_datetime=t0)
    b = _add(catalogued, code="PHF", requested_datetime=t0 + timedelta(days=1))
    c = _add(catalogued, lon=LON + 0.1, requested_datetime=t0 + timedelta(days=2))
    catalogued.requests.set_status(c.id, "closed", note="cleaned")
    assert [r.id for r in catalogued.requests.query()] == [c.id, b.id, a.id]
    assert [r.id for r in catalogued.requests.query(service_codes=["PHF"])] == [b.id]
    assert [r.id for r in catalogued.requests.query(status="closed")] == [c.id]
    assert [r.id for r in catalogued.requests.query(start=t0 + timedelta(hours=1),
                                           end=t0 + timedelta(days=1, hours=1))] == [b.id]
    box = (LON - 0.01, LAT - 0.01, LON + 0.01, LAT + 0.01)
    assert {r.id for r in catalogued.requests.query(bbox=box)} == {a.id, b.id}
    assert [r.id for r in catalogued.requests.query(limit=1, offset=1)] == [b.id]
    with pytest.raises(InvalidRequest, match="status was 'done'"):
        catalogued.requests.query(status="done")


def test_status_change_is_audited(catalogued):
    r = _add(catalogued)
    closed = catalogued.requests.set_status(r.id, "closed", note="done", actor="crew-7")
    assert closed.closed_datetime is not None and closed.status_notes == "done"
    last = catalogued.audit.entries("request", r.id)[-1]
    assert last["action"] == "status" and last["actor"] == "crew-7"
    assert last["detail"] == {"from": "open", "to": "closed", "note": "done"}


def test_mark_duplicate_links_to_root_and_counts_reporters(catalogued):
    parent, child, grandchild = _add(catalogued), _add(catalogued), _add(catalogued)
    catalogued.duplicates.mark(child.id, parent.id)
    catalogued.duplicates.mark(grandchild.id, child.id)
    assert catalogued.requests.get(grandchild.id).duplicate_of == parent.id
    assert catalogued.requests.get(parent.id).reporter_count == 3
    assert catalogued.requests.get(child.id).status == "open"  # linked, not deleted
    with pytest.raises(InvalidRequest, match="itself"):
        catalogued.duplicates.mark(parent.id, parent.id)


def test_bulk_write_is_all_or_nothing(catalogued):
    good = {"external_id": "G1", "service_code": "SCB"}
    bad = {"external_id": "B1", "service_code": "NOT-IN-CATALOGUE"}
    frame = pd.DataFrame([good, bad]).assign(
        external_parent_id=None, source="t", status="open", status_notes="", description="",
        address="", zipcode="", geocode_match="none", outside_service_area=False,
        requested_datetime=pd.Timestamp("2021-01-01", tz="UTC"),
        updated_datetime=pd.Timestamp("2021-01-01", tz="UTC"), closed_datetime=pd.NaT,
        lon=np.nan, lat=np.nan)
    _add(catalogued)
    with pytest.raises(Exception):  # noqa: B017 - the driver's integrity error
        catalogued.requests.add_many(frame)
    assert catalogued.requests.count() == 1


def test_spatial_indexes_exist(store):
    with store.engine.connect() as conn:
        if store.backend == "postgis":
            rows = conn.execute(text(
                "SELECT tablename FROM pg_indexes WHERE indexdef ILIKE '%USING gist%'"
            )).scalars().all()
        else:
            rows = conn.execute(text(
                "SELECT f_table_name FROM geometry_columns WHERE spatial_index_enabled = 1"
            )).scalars().all()
    assert {"service_requests", "districts"} <= set(rows)


def test_init_schema_is_repeatable(store):
    assert store.schema.init() == store.schema.init() == store.db.schema_version()


def _catalogue_indexes(store):
    with store.engine.connect() as conn:
        if store.backend == "postgis":
            return sorted(conn.execute(text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'service_requests' UNION ALL "
                "SELECT conname FROM pg_constraint WHERE conrelid = 'service_requests'::regclass"
            )).scalars())
        return sorted(conn.execute(text(
            "SELECT name FROM sqlite_master WHERE tbl_name = 'service_requests'"
        )).scalars())


def test_bulk_load_restores_indexes_and_keys_even_after_a_failure(catalogued):
    before = _catalogue_indexes(catalogued)
    catalogued.db.dialect.bulk_min_rows = 1
    with pytest.raises(RuntimeError, match="boom"), catalogued.requests.bulk_load(expected_rows=10):
        if catalogued.backend == "postgis":
            assert len(_catalogue_indexes(catalogued)) < len(before)
        raise RuntimeError("boom")
    assert _catalogue_indexes(catalogued) == before
    with catalogued.requests.bulk_load(expected_rows=10):
        r = _add(catalogued)
    assert catalogued.requests.near(LON, LAT, 5)[0][0].id == r.id
    assert _catalogue_indexes(catalogued) == before
    with pytest.raises(Exception):  # noqa: B017 - the foreign key on service_code is back
        _add(catalogued, code="NOPE")
