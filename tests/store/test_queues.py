"""The work queue's store on both backends: filters, keyset pages, bulk changes, saved views."""

from datetime import UTC, datetime, timedelta

import pytest

from geo311 import sla
from geo311.accounts import create_user
from geo311.errors import InvalidRequest, NotFound
from geo311.store.queues import AT_RISK_SHARE, QueueFilter
from tests.conftest import STAFF_PASSWORD
from tests.queue_seed import expected_sla, queue_rows, seed_queue

NOW = datetime.now(UTC)


@pytest.fixture
def seeded(layered_store):
    ids = seed_queue(layered_store, now=NOW)
    return layered_store, ids


def newest_first(rows):
    return [r["id"] for r in sorted(rows, key=lambda r: (r["requested_datetime"], r["id"]),
                                    reverse=True)]


def all_pages(store, f, size, oldest_first=False):
    pages, after = [], None
    while True:
        page = store.queues.page(f, now=NOW, after=after, size=size, oldest_first=oldest_first)
        pages.append([r.id for r in page.rows])
        if page.next_after is None:
            return pages, page
        after = page.next_after


def test_each_filter_narrows_as_computed_from_the_rows(seeded):
    store, _ids = seeded
    rows = queue_rows(store)
    versions = {v.layer: v.id for v in store.layers.versions(active_only=True)}
    some = next(r for r in rows if r["districts"])
    vid, did = sorted(some["districts"])[0]
    layer = next(name for name, v in versions.items() if v == vid)
    start, end = NOW - timedelta(days=3), NOW - timedelta(days=1)
    cases = [
        (QueueFilter(services=("SCB",)), lambda r: r["service_code"] == "SCB"),
        (QueueFilter(services=("SCB", "INF")), lambda r: r["service_code"] in ("SCB", "INF")),
        (QueueFilter(agency="Transportation"), lambda r: r["agency"] == "Transportation"),
        (QueueFilter(agency="Nobody"), lambda r: False),
        (QueueFilter(status="closed"), lambda r: r["status"] == "closed"),
        (QueueFilter(status="open", services=("PHF",)),
         lambda r: r["status"] == "open" and r["service_code"] == "PHF"),
        (QueueFilter(district=f"{layer}:{did}"), lambda r: (vid, did) in r["districts"]),
        (QueueFilter(channel="phone"), lambda r: r["source"] == "phone"),
        (QueueFilter(start=start, end=end),
         lambda r: start <= r["requested_datetime"] < end),
        (QueueFilter(q="POTHOLE"), lambda r: "pothole" in r["description"].lower()),
        (QueueFilter(q="104 W"), lambda r: "104 w" in r["address"].lower()),
        (QueueFilter(q="50%"), lambda r: "50%" in r["description"]),
        (QueueFilter(q="%"), lambda r: "%" in r["description"]),
        (QueueFilter(q="f_s"), lambda r: "f_s" in r["description"]),
        (QueueFilter(assignee="dina"), lambda r: r["assignee"] == "dina"),
        *[(QueueFilter(sla=state), lambda r, s=state: expected_sla(r, NOW) == s)
          for state in ("breached", "at_risk", "on_time", "none")],
    ]
    for f, keep in cases:
        wanted = newest_first([r for r in rows if keep(r)])
        got = [r.id for r in store.queues.page(f, now=NOW, size=100).rows]
        assert got == wanted, f
        assert 0 < len(wanted) < len(rows) or f.agency == "Nobody", f  # it narrows
    by_state = {r.id: r.sla for r in store.queues.page(QueueFilter(), now=NOW, size=100).rows}
    assert by_state == {r["id"]: expected_sla(r, NOW) for r in rows}
    assert set(by_state.values()) == {"breached", "at_risk", "on_time", "none"}


def test_filters_refuse_what_they_cannot_read(seeded):
    store, _ = seeded
    for f in (QueueFilter(sla="late"), QueueFilter(status="pending"),
              QueueFilter(district="wards_2015_2023"), QueueFilter(district="nolayer:1")):
        with pytest.raises(InvalidRequest):
            store.queues.page(f)
    with pytest.raises(InvalidRequest):
        store.queues.page(QueueFilter(), after=10**6)


@pytest.mark.parametrize("oldest_first", [False, True])
def test_keyset_pages_cover_every_row_once_both_ways(seeded, oldest_first):
    store, ids = seeded
    order = newest_first(queue_rows(store))
    if oldest_first:
        order.reverse()
    pages, last = all_pages(store, QueueFilter(), 7, oldest_first)
    assert [i for p in pages for i in p] == order  # ties in time are split by id
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    back, before = [pages[-1]], last.previous_before
    while before is not None:
        page = store.queues.page(QueueFilter(), now=NOW, before=before, size=7,
                                 oldest_first=oldest_first)
        back.insert(0, [r.id for r in page.rows])
        assert page.next_after == page.rows[-1].id
        before = page.previous_before
    assert back == pages
    first = store.queues.page(QueueFilter(), now=NOW, size=7, oldest_first=oldest_first)
    assert first.previous_before is None
    exported = [r.id for r in store.queues.all_rows(QueueFilter(), oldest_first=oldest_first,
                                                    chunk=4)]
    assert exported == order


def test_bulk_status_and_assignment_change_the_store_and_audit_each(seeded):
    store, ids = seeded
    create_user(store, "dina", STAFF_PASSWORD, "dispatcher")
    chosen = ids[:3]
    assert store.queues.set_status_many(chosen, "closed", note="Cleaned up", actor="ann") == 3
    for rid in chosen:
        r = store.requests.get(rid)
        assert r.status == "closed" and r.status_notes == "Cleaned up"
        entry = [e for e in store.audit.entries("request", rid) if e["action"] == "status"][-1]
        assert entry["actor"] == "ann" and entry["detail"]["to"] == "closed"
    assert store.queues.assign(chosen, "dina", actor="ann") == 3
    assert {r["id"]: r["assignee"] for r in queue_rows(store) if r["id"] in chosen} == \
        dict.fromkeys(chosen, "dina")
    assert store.queues.assign(chosen[:1], None, actor="bob") == 1
    entry = store.audit.entries("request", chosen[0])[-1]
    assert (entry["action"], entry["actor"], entry["detail"]) == \
        ("unassigned", "bob", {"from": "dina", "to": None})
    assert {r.id for r in store.queues.page(QueueFilter(assignee="dina"), size=100).rows
            if r.id in chosen} == set(chosen[1:])


def test_unknown_or_inactive_assignee_changes_nothing(seeded):
    store, ids = seeded
    create_user(store, "gone", STAFF_PASSWORD, "agent")
    store.accounts.set_user_active("gone", False)
    before = queue_rows(store)
    audit = len(store.audit.entries("request"))
    for name in ("nobody", "gone"):
        with pytest.raises(InvalidRequest, match="active staff user"):
            store.queues.assign(ids[:4], name, actor="ann")
    with pytest.raises(NotFound):
        store.queues.assign([ids[0], 10**6], None)
    with pytest.raises(InvalidRequest):
        store.queues.set_status_many(ids[:2], "pending")
    assert queue_rows(store) == before and len(store.audit.entries("request")) == audit


def test_saved_views_belong_to_their_owner(seeded):
    store, _ = seeded
    mine = store.queues.save_view("ann", "Late potholes", "service=PHF&sla=breached")
    store.queues.save_view("bob", "Late potholes", "status=open")
    again = store.queues.save_view("ann", "Late potholes", "service=PHF&sla=at_risk")
    assert again.id == mine.id and again.query == "service=PHF&sla=at_risk"
    assert [(v.name, v.query) for v in store.queues.views("ann")] == \
        [("Late potholes", "service=PHF&sla=at_risk")]
    assert [v.query for v in store.queues.views("bob")] == ["status=open"]
    with pytest.raises(NotFound):
        store.queues.view("bob", mine.id)
    with pytest.raises(NotFound):
        store.queues.delete_view("bob", mine.id)
    with pytest.raises(InvalidRequest):
        store.queues.save_view("ann", "  ", "status=open")
    store.queues.delete_view("ann", mine.id)
    assert store.queues.views("ann") == [] and len(store.queues.views("bob")) == 1
    assert [e["action"] for e in store.audit.entries("saved_view", mine.id)] == \
        ["view_saved", "view_saved", "view_deleted"]


def test_at_risk_share_is_the_sla_boards():
    assert AT_RISK_SHARE == sla.AT_RISK_SHARE


def test_init_db_adds_the_queue_to_a_version_8_database(backend_url):
    from sqlalchemy import inspect, text

    from geo311.store import open_store
    from geo311.store import tables as t

    store = open_store(backend_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(text("DROP INDEX ix_requests_assignee_requested"))
            conn.execute(text('ALTER TABLE service_requests DROP COLUMN "assignee"'))
            conn.execute(text("DROP TABLE saved_views"))
            conn.execute(t.schema_info.update().where(t.schema_info.c.key == "version")
                         .values(value="8"))
        added = store.schema.upgrade()
        assert "service_requests.assignee" in added
        assert store.db.schema_version() == t.SCHEMA_VERSION >= 9
        with store.engine.connect() as conn:
            assert "assignee" in {c["name"] for c in inspect(conn).get_columns("service_requests")}
            assert "ix_requests_assignee_requested" in {
                i["name"] for i in inspect(conn).get_indexes("service_requests")}
        assert store.queues.save_view("ann", "v", "status=open").query == "status=open"
    finally:
        store.dispose()


@pytest.mark.parametrize("ids_max", [0, 10_000])
def test_district_by_ids_or_by_join_gives_the_same_pages(seeded, monkeypatch, ids_max):
    from geo311.store import queues

    store, _ = seeded
    monkeypatch.setattr(queues, "DISTRICT_IDS_MAX", ids_max)
    rows = queue_rows(store)
    versions = {v.id: v.layer for v in store.layers.versions(active_only=True)}
    for vid, did in sorted({d for r in rows for d in r["districts"]})[:6]:
        f = QueueFilter(district=f"{versions[vid]}:{did}")
        wanted = newest_first([r for r in rows if (vid, did) in r["districts"]])
        for oldest_first in (False, True):
            pages, _last = all_pages(store, f, 2, oldest_first)
            assert [i for p in pages for i in p] == (wanted[::-1] if oldest_first else wanted)
        opened = store.queues.page(QueueFilter(district=f.district, status="open"), now=NOW)
        assert [r.id for r in opened.rows] == newest_first(
            [r for r in rows if (vid, did) in r["districts"] and r["status"] == "open"])
