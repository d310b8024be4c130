"""The outbox on both backends: written with the change it reports, never twice, never by imports."""

from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from geo311.model import NewRequest, Placement, Reporter, Service
from geo311.store import tables as t
from geo311.store.outbox import enqueue

LON, LAT = -87.6500, 41.8500


@pytest.fixture
def catalogued(store):
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation")])
    return store


def _add(store, email="", lon=LON, **kw):
    return store.requests.add(NewRequest("SCB", lon, LAT, reporter=Reporter(email=email), **kw),
                              Placement(lon, LAT, "reported"))


def _kinds(store, request_id=None):
    return [(r["kind"], r["email"], r["status"]) for r in store.outbox.rows(request_id)]


def test_a_report_with_an_email_is_received_once_and_one_without_writes_nothing(catalogued):
    r = _add(catalogued, " Ann.Lee@Example.org ")
    quiet = _add(catalogued)
    assert _kinds(catalogued, r.id) == [("received", "ann.lee@example.org", "pending")]
    assert _kinds(catalogued, quiet.id) == []
    row = catalogued.outbox.rows(r.id)[0]
    assert row["language"] == "en" and row["attempts"] == 0 and row["next_attempt_at"] <= datetime.now(UTC)


def test_status_change_and_close_enqueue_for_the_whole_group(catalogued):
    root = _add(catalogued, "root@example.org")
    child = _add(catalogued, "child@example.org", lon=LON + 0.0001)
    catalogued.duplicates.mark(child.id, root.id)
    assert ("merged", "child@example.org", "pending") in _kinds(catalogued, child.id)
    catalogued.requests.set_status(root.id, "closed", note="cart replaced")
    closed = [r for r in catalogued.outbox.rows(root.id) if r["kind"] == "closed"]
    assert sorted(r["email"] for r in closed) == ["child@example.org", "root@example.org"]
    assert '"note": "cart replaced"' in closed[0]["detail"]
    catalogued.requests.set_status(root.id, "open", note="reopened: still broken")
    assert [r["kind"] for r in catalogued.outbox.rows(root.id)].count("status") == 2
    # Nothing changed: nothing to tell.
    before = len(catalogued.outbox.rows())
    catalogued.requests.set_status(root.id, "open", note="reopened: still broken")
    assert len(catalogued.outbox.rows()) == before


def test_merging_groups_tells_every_member_of_the_folded_group(catalogued):
    a = _add(catalogued, "a@example.org", requested_datetime=datetime(2024, 1, 1, tzinfo=UTC))
    b = _add(catalogued, "b@example.org", lon=LON + 0.001,
             requested_datetime=datetime(2024, 1, 2, tzinfo=UTC))
    b2 = _add(catalogued, "b2@example.org", lon=LON + 0.0011,
              requested_datetime=datetime(2024, 1, 3, tzinfo=UTC))
    catalogued.duplicates.mark(b2.id, b.id)
    keep = catalogued.duplicates.merge_groups(a.id, b.id)
    assert keep == a.id
    merged = {(r["request_id"], r["email"], r["detail"]) for r in catalogued.outbox.rows()
              if r["kind"] == "merged" and f'"into": {a.id}' in r["detail"]}
    assert {(rid, email) for rid, email, _ in merged} == {(b.id, "b@example.org"),
                                                          (b2.id, "b2@example.org")}


def test_the_same_event_cannot_be_enqueued_twice(catalogued):
    r = _add(catalogued, "ann@example.org")
    assert catalogued.outbox.enqueue("status", r.id, event="e1", detail={"status": "open"}) == 1
    assert catalogued.outbox.enqueue("status", r.id, event="e1", detail={"status": "open"}) == 0
    assert catalogued.outbox.enqueue("status", r.id, event="e2") == 1
    # The unique key holds even against a writer that does not ask first.
    with pytest.raises(IntegrityError), catalogued.db.begin() as conn:
        row = {k: v for k, v in catalogued.outbox.rows(r.id)[-1].items() if k != "id"}
        conn.execute(insert(t.notifications).values(**row))
    assert len(catalogued.outbox.rows(r.id)) == 3


def test_a_change_rolled_back_leaves_no_outbox_row(catalogued):
    r = _add(catalogued, "ann@example.org")
    before = len(catalogued.outbox.rows())
    with pytest.raises(RuntimeError, match="boom"), catalogued.db.begin() as conn:
        assert enqueue(conn, "status", r.id, event="x") == 1
        raise RuntimeError("boom")
    assert len(catalogued.outbox.rows()) == before


def _refuse_outbox_rows_for(store, email):
    """A database trigger failing any outbox insert for ``email`` (a failure mid-change)."""
    with store.db.begin() as conn:
        if store.backend == "postgis":
            conn.execute(text(
                "CREATE OR REPLACE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.email = '{email}' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$"))
            conn.execute(text("CREATE OR REPLACE TRIGGER test_refuse BEFORE INSERT ON "
                              "notifications FOR EACH ROW EXECUTE FUNCTION test_refuse()"))
        else:
            conn.execute(text(
                "CREATE TRIGGER test_refuse BEFORE INSERT ON notifications "
                f"WHEN NEW.email = '{email}' BEGIN SELECT RAISE(ABORT, 'refused'); END"))


@pytest.fixture
def refusing(catalogued):
    """The store, whose database refuses outbox rows for boom@example.org (then stops)."""
    yield catalogued
    with catalogued.db.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS test_refuse"
                          + (" ON notifications" if catalogued.backend == "postgis" else "")))


def test_a_status_change_whose_outbox_write_fails_is_not_made(refusing):
    catalogued = refusing
    r = _add(catalogued, "boom@example.org")
    _refuse_outbox_rows_for(catalogued, "boom@example.org")
    with pytest.raises(Exception, match="refused"):
        catalogued.requests.set_status(r.id, "closed", note="done")
    assert catalogued.requests.get(r.id).status == "open"
    assert [e["action"] for e in catalogued.audit.entries("request", r.id)] == ["created"]
    assert [row["kind"] for row in catalogued.outbox.rows(r.id)] == ["received"]
    # And a report whose receipt cannot be queued is not stored either.
    count = catalogued.requests.count()
    with pytest.raises(Exception, match="refused"):
        _add(catalogued, "boom@example.org")
    assert catalogued.requests.count() == count


def test_bulk_imports_enqueue_nothing(catalogued):
    r = _add(catalogued, "ann@example.org", external_id="EXT-1")
    before = catalogued.outbox.rows()
    frame = pd.DataFrame({
        "external_id": ["EXT-1", "EXT-2"], "external_parent_id": None, "source": "import",
        "service_code": "SCB", "status": ["closed", "open"], "status_notes": ["done", ""],
        "description": "", "address": "", "zipcode": "", "geocode_match": "source",
        "outside_service_area": False,
        "requested_datetime": pd.Timestamp("2024-01-01", tz="UTC"),
        "updated_datetime": pd.Timestamp("2024-01-02", tz="UTC"),
        "closed_datetime": [pd.Timestamp("2024-01-02", tz="UTC"), pd.NaT],
        "lon": [LON, LON], "lat": [LAT, LAT],
    })
    with catalogued.requests.bulk_load(expected_rows=2):
        result = catalogued.requests.add_many(frame)
    assert (result.stored, result.updated) == (1, 1)
    assert catalogued.requests.get(r.id).status == "closed"  # the import did change it
    assert catalogued.outbox.rows() == before


def test_an_unsubscribed_address_gets_nothing_new_and_its_waiting_rows_stop(catalogued):
    r = _add(catalogued, "Ann@Example.org")
    other = _add(catalogued, "bob@example.org")
    assert catalogued.outbox.unsubscribe("ann@example.org ") == 1
    assert catalogued.outbox.unsubscribe("ann@example.org") == 0  # twice is fine
    assert catalogued.outbox.is_unsubscribed("ANN@example.org")
    catalogued.requests.set_status(r.id, "closed")
    catalogued.requests.set_status(other.id, "closed")
    assert _kinds(catalogued, r.id) == [("received", "ann@example.org", "unsubscribed")]
    assert [k for k, _, _ in _kinds(catalogued, other.id)] == ["received", "closed"]
    with catalogued.db.connect() as conn:
        stored = conn.execute(text("SELECT email_hash FROM unsubscribed")).scalars().all()
    assert len(stored) == 1 and "ann" not in stored[0]


def test_init_db_adds_the_outbox_tables_to_a_version_8_database(backend_url):
    from sqlalchemy import inspect

    from geo311.store import open_store

    store = open_store(backend_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE survey_answers"))
            conn.execute(text("DROP TABLE notifications"))
            conn.execute(text("DROP TABLE unsubscribed"))
            conn.execute(t.schema_info.update().where(t.schema_info.c.key == "version")
                         .values(value="8"))
        store.schema.upgrade()
        assert store.db.schema_version() == t.SCHEMA_VERSION >= 9
        with store.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            uniques = {u["name"] for u in inspect(conn).get_unique_constraints("notifications")}
        assert {"notifications", "unsubscribed"} <= tables
        assert "uq_notification_event" in uniques
    finally:
        store.dispose()
