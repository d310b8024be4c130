"""Stored public records: served while current, rebuilt after any change they show.

GET requests reads each request's record from ``public_records``. Triggers keep
those honest: every kind of change below must reach the next page, on both backends,
whichever code path (or raw SQL) made it.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import func, select, text, update

from geo311.imports import import_file, read_mapping
from geo311.intake import Context, submit
from geo311.layers import load_layer
from geo311.model import NewRequest, Service
from geo311.open311_records import build_records, refresh_records, request_page, save_records
from geo311.store import tables as t
from tests.conftest import SAMPLE_2021_CSV, SHAPEFILES, csv_head, load_shipped
from tests.store.test_open311_records import CHICAGO, LAT, LON, records_of_requests

EVERYTHING = {"start": datetime(2025, 1, 1, tzinfo=UTC), "limit": 1000, "offset": 0}


@pytest.fixture
def recorded(layered_store, ctx):
    """Three requests, their records built and stored by a first read."""
    store = layered_store
    store.catalogue.upsert([
        Service("SCB", "Sanitation Code Violation", "Sanitation", agency="Streets and San"),
        Service("PHF", "Pothole in Street", "Streets", agency="Transportation"),
    ])
    made = [submit(store, ctx, NewRequest(code, LON + dx, LAT, description=f"report {i}",
                                          address="233 S Wacker Dr",
                                          requested_datetime=datetime(2026, 3, 1, 12, i,
                                                                      tzinfo=UTC)))
            for i, (code, dx) in enumerate([("SCB", 0.0), ("PHF", 0.002), ("SCB", 0.004)])]
    first = request_page(store, CHICAGO, **EVERYTHING).documents(extensions=True)
    assert first == records_of_requests(store, CHICAGO, extensions=True, **EVERYTHING)
    assert _stored(store) == len(made)
    return store, made


def _stored(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.public_records)).scalar_one()


def _page(store, zone=CHICAGO, **query):
    return request_page(store, zone, **(query or EVERYTHING)).documents(extensions=True)


def test_a_page_is_read_from_stored_records(recorded):
    store, made = recorded
    # A stored record is what the page shows: put a marker in one and read it back.
    with store.engine.begin() as conn:
        conn.execute(update(t.public_records)
                     .where(t.public_records.c.request_id == made[1].id)
                     .values(record='{"service_request_id":"marker"}'))
    page = _page(store)
    assert [r["service_request_id"] for r in page] == [str(made[2].id), "marker",
                                                      str(made[0].id)]


def test_strict_and_json_forms_come_from_the_same_records(recorded):
    store, _made = recorded
    page = request_page(store, CHICAGO, **EVERYTHING)
    strict = page.documents(extensions=False)
    assert strict == records_of_requests(store, CHICAGO, extensions=False, **EVERYTHING)
    assert all("extended_attributes" not in r and "agency_responsible" in r for r in strict)
    assert orjson.loads(page.json(extensions=True)) == page.documents(extensions=True)
    assert orjson.loads(page.json(extensions=False)) == strict


def _status(store, made):
    store.requests.set_status(made[0].id, "closed", note="Cart replaced")


def _merge(store, made):
    store.duplicates.mark(made[2].id, made[0].id)


def _due(store, made):
    store.sla.set_expected([made[1].id], [datetime(2026, 3, 9, 17, tzinfo=UTC)])


def _raw_sql(store, made):
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE service_requests SET description = 'edited in SQL', "
                          "address = '1 N State St' WHERE id = :id"), {"id": made[1].id})


def _moved(store, made):
    with store.engine.begin() as conn:
        conn.execute(update(t.service_requests).where(t.service_requests.c.id == made[0].id)
                     .values(geom=func.ST_GeomFromText(f"POINT({LON + 0.01} {LAT})", 4326)))


def _agency(store, made):
    store.catalogue.upsert([Service("SCB", "Sanitation Violation", "Sanitation",
                                   agency="Department of Streets and Sanitation")])


def _sensitive(store, made):
    store.catalogue.set_sensitive("PHF", True)


def _inactive(store, made):
    with store.engine.begin() as conn:
        conn.execute(update(t.services).where(t.services.c.code == "PHF").values(active=False))


def _new_layer(store, made):
    load_shipped(store, "police_districts_2012")


def _new_version(store, made):
    load_layer(store, SHAPEFILES / "wards_2023", name="wards_2015_2023", id_field="ward")


def _layer_renamed(store, made):
    with store.engine.begin() as conn:
        conn.execute(update(t.layers).where(t.layers.c.name == "wards_2015_2023")
                     .values(name="wards_old"))


CHANGES = {"status": _status, "merge": _merge, "due_time": _due, "raw_sql": _raw_sql,
           "moved": _moved, "agency": _agency, "sensitive": _sensitive,
           "inactive": _inactive, "new_layer": _new_layer, "new_version": _new_version,
           "layer_renamed": _layer_renamed}


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_a_record_shows_reaches_the_next_page(recorded, change):
    store, made = recorded
    before = _page(store)
    CHANGES[change](store, made)
    after = _page(store)
    assert after != before, "the change shows in the records"
    assert after == records_of_requests(store, CHICAGO, extensions=True, **EVERYTHING)
    # ... and the rebuilt records are stored and served again unchanged.
    assert _page(store) == after


def test_a_change_elsewhere_keeps_every_record(recorded):
    """Writing a column no record shows (the map's H3 cell) keeps the records current."""
    store, made = recorded
    with store.engine.connect() as conn:
        revisions = dict(conn.execute(select(t.service_requests.c.id,
                                             t.service_requests.c.revision)).all())
    store.hotspots.fill_cells()
    with store.engine.begin() as conn:
        conn.execute(update(t.service_requests).values(geocode_match="exact"))
        assert dict(conn.execute(select(t.service_requests.c.id,
                                        t.service_requests.c.revision)).all()) == revisions
    built, current = refresh_records(store, CHICAGO)
    assert (built, current) == (0, len(made))


def test_a_record_built_before_a_change_is_never_served_after_it(recorded):
    """The race of a reader building while a writer commits: its late save is ignored."""
    store, made = recorded
    with store.engine.connect() as conn:
        early = build_records(store, conn, [made[0].id], CHICAGO)
    store.requests.set_status(made[0].id, "closed", note="done")
    assert save_records(store, early) == 1  # the reader's late write lands...
    page = {r["service_request_id"]: r for r in _page(store)}
    assert page[str(made[0].id)]["status"] == "closed"  # ...and is not believed
    assert page[str(made[0].id)]["status_notes"] == "done"


def test_records_follow_the_time_zone_asked_for(recorded):
    store, made = recorded
    chicago = _page(store)
    utc = _page(store, ZoneInfo("UTC"))
    assert chicago[-1]["requested_datetime"] == "2026-03-01T06:00:00-06:00"
    assert utc[-1]["requested_datetime"] == "2026-03-01T12:00:00+00:00"
    assert _page(store) == chicago


def test_new_requests_and_new_districts_of_them_leave_stored_records_current(recorded, ctx):
    store, made = recorded
    with store.engine.connect() as conn:
        generation = conn.execute(select(t.schema_info.c.value).where(
            t.schema_info.c.key == t.RECORDS_GENERATION)).scalar_one()
    newer = submit(store, ctx, NewRequest("SCB", LON, LAT + 0.003,
                                          requested_datetime=datetime(2026, 3, 2, tzinfo=UTC)))
    with store.engine.connect() as conn:
        assert conn.execute(select(t.schema_info.c.value).where(
            t.schema_info.c.key == t.RECORDS_GENERATION)).scalar_one() == generation
    assert refresh_records(store, CHICAGO) == (1, len(made))
    assert _page(store)[0]["service_request_id"] == str(newer.id)


def test_refresh_builds_what_is_missing_or_stale_after_an_import(layered_store, tmp_path):
    store = layered_store
    ctx = Context.from_store(store)
    import_file(store, ctx, csv_head(SAMPLE_2021_CSV, tmp_path / "s.csv", 300),
                read_mapping("chicago-311"))
    total = store.requests.count()
    assert refresh_records(store, CHICAGO) == (total, 0)
    assert refresh_records(store, CHICAGO) == (0, total)
    some = [r.id for r in store.requests.query(limit=5)]
    for rid in some:
        store.requests.set_status(rid, "closed")
    assert refresh_records(store, CHICAGO) == (len(some), total - len(some))
    query = {"start": datetime(2000, 1, 1, tzinfo=UTC), "limit": 1000, "offset": 0}
    assert _page(store, **query) == records_of_requests(store, CHICAGO, extensions=True,
                                                        **query)


def test_near_pages_use_the_same_records(recorded):
    store, made = recorded
    query = {"near": (LON, LAT, 200.0), "limit": 1000, "offset": 0}
    page = _page(store, **query)
    assert [r["service_request_id"] for r in page] == [str(made[1].id), str(made[0].id)]
    assert page == records_of_requests(store, CHICAGO, extensions=True, **query)


def test_a_busy_spatialite_file_costs_only_the_saving(spatialite_template, tmp_path):
    """Another writer holds SQLite's lock: the page is right and prompt, just not stored."""
    import shutil
    import time

    from geo311.store import open_store
    path = tmp_path / "busy.sqlite"
    shutil.copy(spatialite_template, path)
    store = open_store(f"sqlite:///{path}")
    load_shipped(store, "community_areas")
    store.catalogue.upsert([Service("SCB", "Sanitation", "")])
    made = submit(store, Context.from_store(store), NewRequest(
        "SCB", LON, LAT, requested_datetime=datetime(2026, 3, 1, tzinfo=UTC)))
    with store.engine.connect() as conn:
        patience_ms = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    other = open_store(f"sqlite:///{path}")  # the same SQLite library, so locks meet
    holder = other.engine.raw_connection()
    holder.driver_connection.isolation_level = None
    holder.driver_connection.execute("BEGIN IMMEDIATE")
    try:
        started = time.perf_counter()
        page = _page(store)
        waited_s = time.perf_counter() - started
        assert _stored(store) == 0
    finally:
        holder.driver_connection.execute("ROLLBACK")
        holder.close()
        other.dispose()
    assert page[0]["service_request_id"] == str(made.id) and page[0]["status"] == "open"
    assert waited_s < patience_ms / 1000 / 2  # not the time a writer waits for the lock
    with store.engine.connect() as conn:  # the connection's own patience is given back
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == patience_ms
    assert _page(store) == page and _stored(store) == 1
    store.dispose()


def test_schema_upgrade_gives_an_older_database_its_triggers(backend_url):
    """A database made before stored records: init-db adds the column, table and triggers."""
    from geo311.store import open_store
    store = open_store(backend_url)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE public_records"))
        if store.backend == "postgis":
            conn.execute(text("DROP TRIGGER geo311_request_revised ON service_requests"))
        else:
            conn.execute(text("DROP TRIGGER geo311_request_revised"))
        conn.execute(update(t.schema_info).where(t.schema_info.c.key == "version")
                     .values(value="3"))
    assert store.schema.init() == t.SCHEMA_VERSION
    store.catalogue.upsert([Service("SCB", "Sanitation", "")])
    ctx = Context.from_store(store)
    made = submit(store, ctx, NewRequest("SCB", LON, LAT, requested_datetime=datetime(
        2026, 3, 1, tzinfo=UTC) - timedelta(days=1)))
    assert _page(store)[0]["status"] == "open"
    store.requests.set_status(made.id, "closed")
    assert _page(store)[0]["status"] == "closed"
    store.dispose()
