"""Live duplicate merging through submit, on both backends, including reports in parallel."""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from geo311.intake import submit
from geo311.model import DuplicateRule, NewRequest, Service

LON, LAT = -87.6321, 41.8837
METRE_LAT = 1 / 111_195.0


@pytest.fixture
def catalogued(layered_store):
    layered_store.catalogue.upsert([
        Service("SCB", "Sanitation Code Violation", "Sanitation"),
        Service("PHF", "Pothole in Street Complaint", "Streets",
                duplicate_rule=DuplicateRule(radius_m=20, window_days=7)),
    ])
    return layered_store


def test_reports_of_one_problem_become_one_group(catalogued, ctx):
    first = submit(catalogued, ctx, NewRequest("SCB", LON, LAT))
    second = submit(catalogued, ctx, NewRequest("SCB", LON, LAT + 10 * METRE_LAT))
    third = submit(catalogued, ctx, NewRequest("SCB", LON, LAT + 15 * METRE_LAT))
    assert first.duplicate_of is None
    assert second.duplicate_of == first.id and third.duplicate_of == first.id
    assert catalogued.requests.get(first.id).reporter_count == 3
    merged = catalogued.audit.entries("request", third.id)[-1]
    assert merged["action"] == "merged" and merged["detail"]["into"] == first.id
    assert merged["detail"]["distance_m"] == pytest.approx(5.0, abs=0.2)  # nearest: #2


def test_other_service_far_point_or_closed_parent_start_new_groups(catalogued, ctx):
    parent = submit(catalogued, ctx, NewRequest("SCB", LON, LAT))
    other_service = submit(catalogued, ctx, NewRequest("PHF", LON, LAT))
    far = submit(catalogued, ctx, NewRequest("SCB", LON, LAT + 300 * METRE_LAT))
    assert other_service.duplicate_of is None and far.duplicate_of is None
    catalogued.requests.set_status(parent.id, "closed")
    after_close = submit(catalogued, ctx, NewRequest("SCB", LON, LAT))
    assert after_close.duplicate_of is None


def test_service_rule_is_stored_and_used(catalogued, ctx):
    assert catalogued.catalogue.service("PHF").duplicate_rule == DuplicateRule(radius_m=20, window_days=7)
    old = submit(catalogued, ctx, NewRequest(
        "PHF", LON, LAT, requested_datetime=datetime.now(UTC) - timedelta(days=8)))
    new = submit(catalogued, ctx, NewRequest("PHF", LON, LAT + 25 * METRE_LAT))
    assert new.duplicate_of is None  # 25 m is beyond this service's 20 m
    again = submit(catalogued, ctx, NewRequest("PHF", LON, LAT + 22 * METRE_LAT))
    assert again.duplicate_of == new.id  # the 8-day-old one is outside the 7-day window
    assert old.duplicate_of is None


def test_simultaneous_reports_end_in_one_group(catalogued, ctx):
    workers = 8
    barrier = threading.Barrier(workers)
    made, errors = [], []

    def report(i):
        try:
            barrier.wait(timeout=30)
            made.append(submit(catalogued, ctx, NewRequest("SCB", LON, LAT + i * METRE_LAT)))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=report, args=(i,)) for i in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert errors == []
    roots = [r for r in (catalogued.requests.get(m.id) for m in made) if r.duplicate_of is None]
    assert len(roots) == 1
    assert roots[0].reporter_count == workers
    assert {catalogued.requests.get(m.id).duplicate_of for m in made} == {None, roots[0].id}


def test_bulk_recluster_gives_the_live_groups(catalogued, ctx):
    """Live intake in time order, then `dedup --recompute`: nothing changes."""
    import numpy as np

    rng = np.random.default_rng(3)
    start = datetime.now(UTC) - timedelta(days=50)
    times = sorted(start + timedelta(hours=float(h)) for h in rng.uniform(0, 24 * 45, 60))
    made = []
    for i, when in enumerate(times):
        code = "SCB" if i % 3 else "PHF"
        lon = LON + rng.uniform(-60, 60) * METRE_LAT * 1.34
        lat = LAT + rng.uniform(-60, 60) * METRE_LAT
        made.append(submit(catalogued, ctx, NewRequest(code, lon, lat, requested_datetime=when)))
        if i % 7 == 0:
            catalogued.requests.set_status(made[-1].id, "closed")
    live = {m.id: catalogued.requests.get(m.id).duplicate_of for m in made}
    assert 5 < sum(v is not None for v in live.values()) < 55
    from geo311.intake import regroup_duplicates

    total, children, changed = regroup_duplicates(catalogued)
    assert (total, changed) == (60, 0)
    assert {m.id: catalogued.requests.get(m.id).duplicate_of for m in made} == live
    counts = {m.id: catalogued.requests.get(m.id).reporter_count for m in made}
    for root in {v for v in live.values() if v}:
        assert counts[root] == 1 + sum(v == root for v in live.values())


def test_staff_corrections_are_audited_and_recount(catalogued, ctx):
    a = submit(catalogued, ctx, NewRequest("SCB", LON, LAT))
    a2 = submit(catalogued, ctx, NewRequest("SCB", LON, LAT + 5 * METRE_LAT))
    b = submit(catalogued, ctx, NewRequest("SCB", LON, LAT + 200 * METRE_LAT))
    b2 = submit(catalogued, ctx, NewRequest("SCB", LON, LAT + 205 * METRE_LAT))
    assert (a2.duplicate_of, b2.duplicate_of) == (a.id, b.id)
    catalogued.duplicates.unmerge(a2.id, actor="dispatcher-1")
    assert catalogued.requests.get(a2.id).duplicate_of is None
    assert catalogued.requests.get(a.id).reporter_count == 1
    catalogued.duplicates.mark(a2.id, b2.id, actor="dispatcher-1")
    assert catalogued.requests.get(a2.id).duplicate_of == b.id
    assert catalogued.requests.get(b.id).reporter_count == 3
    with pytest.raises(Exception, match="leads a group of 3"):
        catalogued.duplicates.mark(b.id, a.id)
    assert catalogued.duplicates.merge_groups(b2.id, a.id, actor="planner-2") == a.id
    assert {catalogued.requests.get(x.id).duplicate_of for x in (a2, b, b2)} == {a.id}
    assert catalogued.requests.get(a.id).reporter_count == 4
    actions = [(e["action"], e["actor"]) for e in catalogued.audit.entries("request")
               if e["actor"] != "system"]
    assert actions == [("unmerged", "dispatcher-1"), ("merged", "dispatcher-1"),
                       ("groups_merged", "planner-2")]
    with pytest.raises(Exception, match="not a duplicate"):
        catalogued.duplicates.unmerge(a.id)


def test_nearby_offers_open_groups_without_personal_data(catalogued, ctx, app_for):
    from geo311.model import Reporter

    a = submit(catalogued, ctx, NewRequest("SCB", LON, LAT, reporter=Reporter(email="x@y.z")))
    submit(catalogued, ctx, NewRequest("SCB", LON, LAT + 8 * METRE_LAT))
    far = submit(catalogued, ctx, NewRequest("SCB", LON, LAT + 400 * METRE_LAT))
    submit(catalogued, ctx, NewRequest("PHF", LON, LAT))
    client = app_for(catalogued).test_client()
    got = client.get(f"/api/requests/nearby?lat={LAT}&long={LON}&service_code=SCB").get_json()
    assert [g["service_request_id"] for g in got] == [str(a.id)]
    assert got[0]["reporter_count"] == 2 and "x@y.z" not in str(got)
    wide = client.get(f"/api/requests/nearby?lat={LAT}&long={LON}&service_code=SCB"
                      "&radius_m=500").get_json()
    assert [g["service_request_id"] for g in wide] == [str(a.id), str(far.id)]
    bad = client.get("/api/requests/nearby?lat=x&long=1")
    assert bad.status_code == 400 and "expected to be numbers" in bad.get_json()[0]["description"]


def test_one_call_candidates_equal_the_portable_lock_then_query(catalogued, ctx):
    """PostGIS reads candidates in one function call; it must read what the portable path
    (lock, then a query) reads, for live reports and for back-dated ones."""
    from geo311.model import DuplicateSearch
    from geo311.store import Dialect

    now = datetime.now(UTC)
    ages = [0.5, 2, 9, 20, 40, 3]
    made = [submit(catalogued, ctx, NewRequest("SCB", LON + k * 3 * METRE_LAT, LAT,
                                               requested_datetime=now - timedelta(days=d)))
            for k, d in enumerate(ages)]
    catalogued.requests.set_status(made[1].id, "closed")  # closed after every time asked below
    search = DuplicateSearch(("SCB",), 50, 30, lambda c, r: None, only_open=True)
    for requested in (None, now - timedelta(days=5), now - timedelta(days=25)):
        with catalogued.engine.connect() as conn, conn.begin():
            fast = catalogued.db.dialect.duplicate_candidates(conn, LON, LAT, search,
                                                              requested=requested)
        with catalogued.engine.connect() as conn, conn.begin():
            portable = Dialect.duplicate_candidates(catalogued.db.dialect, conn, LON, LAT,
                                                    search, requested=requested)
        assert sorted(fast, key=lambda c: c.id) == sorted(portable, key=lambda c: c.id)
        until = requested or now
        assert {c.id for c in fast} == {
            m.id for m, d in zip(made, ages, strict=True)
            if until - timedelta(days=30) <= now - timedelta(days=d) <= until}


def test_a_database_not_upgraded_says_to_run_init_db_and_stores_nothing(catalogued, ctx):
    """PostGIS needs schema 3's function; without it a report fails clearly, not halfway."""
    from sqlalchemy import text

    if catalogued.backend != "postgis":  # SpatiaLite reads candidates without a function
        assert submit(catalogued, ctx, NewRequest("SCB", LON, LAT)).id == 1
        return
    before = catalogued.requests.count()
    with catalogued.engine.begin() as conn:
        conn.execute(text("DROP FUNCTION geo311_duplicate_candidates"))
    try:
        with pytest.raises(RuntimeError, match="geo311 init-db"):
            submit(catalogued, ctx, NewRequest("SCB", LON, LAT))
        assert catalogued.requests.count() == before
    finally:
        catalogued.schema.init()
    assert submit(catalogued, ctx, NewRequest("SCB", LON, LAT)).duplicate_of is None
