"""Legal holds and the records search on both backends, against the rows read directly."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest
from sqlalchemy import select

from geo311.errors import InvalidRequest, NotFound
from geo311.holds import find_requests, place_hold, query_toml, read_query_file
from geo311.model import RecordQuery
from geo311.store import tables as t
from tests.prepared import starts_from
from tests.records_seed import snapshot

starts_from("records", "records_store", module=__name__)


@pytest.fixture
def records_store(store):
    return store


def _rows(store):
    """Requests with their districts, reporters and notes, read with plain SQL."""
    snap = snapshot(store)
    with store.engine.connect() as conn:
        lv, ly = t.layer_versions.c, t.layers.c
        active = dict(conn.execute(select(lv.id, ly.name).join(t.layers, ly.id == lv.layer_id)
                                   .where(lv.status == "active")).all())
    out = {}
    for r in snap["service_requests"]:
        out[r[0]] = {"code": r[1], "status": r[2], "notes": r[3], "description": r[4],
                     "address": r[5], "requested": r[7], "districts": set(),
                     "emails": set(), "phones": set(), "note_bodies": []}
    for rid, version, district in snap["request_districts"]:
        if version in active:
            out[rid]["districts"].add((active[version], district))
    for r in snap["reporters"]:
        out[r[1]]["emails"].add(r[4].lower())
        out[r[1]]["phones"].add(re.sub(r"\D", "", r[5])[-10:])
    for r in snap["request_notes"]:
        out[r[1]]["note_bodies"].append(r[3])
    return out


def test_search_by_every_key_matches_the_rows_read_directly(records_store):
    store = records_store
    rows = _rows(store)
    layer, district = sorted(next(iter(rows.values()))["districts"])[0]
    times = sorted(r["requested"] for r in rows.values())
    day = times[len(times) // 2]
    day = day if isinstance(day, str) else day.isoformat(sep=" ")
    queries = {
        "service": (RecordQuery(services=("PHF",)), lambda r: r["code"] == "PHF"),
        "district": (RecordQuery(districts=((layer, district),)),
                     lambda r: (layer, district) in r["districts"]),
        "text in a note": (RecordQuery(text="ABOUT 1"),  # "about 1", "about 10".."about 19"
                           lambda r: any("about 1" in b for b in r["note_bodies"])),
        "text in the address": (RecordQuery(text="104 w"),
                                lambda r: "104 w" in r["address"].lower()),
        "email": (RecordQuery(reporter_email="ADA7@example.com"),
                  lambda r: "ada7@example.com" in r["emails"]),
        "phone": (RecordQuery(reporter_phone="+1 (312) 555 0142"),
                  lambda r: "3125550142" in r["phones"]),
        "status and service": (RecordQuery(services=("SCB", "INF"), status="open"),
                               lambda r: r["code"] in ("SCB", "INF") and r["status"] == "open"),
    }
    for name, (query, keep) in queries.items():
        expected = sorted(i for i, r in rows.items() if keep(r))
        assert expected, name
        assert find_requests(store, query, UTC) == expected, name
    # a local day range: the day of the middle request, in UTC
    from datetime import date
    middle = date.fromisoformat(day[:10])
    found = find_requests(store, RecordQuery(start_day=middle, end_day=middle), UTC)
    assert found == sorted(i for i, r in rows.items() if str(r["requested"])[:10] == day[:10])


def test_a_hold_by_query_keeps_its_ids_and_query_and_is_audited(records_store, tmp_path):
    store = records_store
    path = tmp_path / "claim.toml"
    path.write_text('# a claim\n[query]\nservices = ["SCB"]\nreporter_phone = "312 555 0142"\n'
                    '[package]\nformat = "zip"\n')
    query = read_query_file(path)
    hold = place_hold(store, reason="  Claim 2026-114 ", owner="rita", zone=UTC, query=query)
    expected = find_requests(store, query, UTC)
    assert hold.request_count == len(expected) > 0 and hold.reason == "Claim 2026-114"
    assert store.holds.requests_of(hold.id) == expected
    assert hold.query == query_toml(query) and read_query_file(_write(tmp_path, hold.query)) \
        == query
    assert store.holds.held_among(range(1, 100)) == set(expected)
    (entry,) = store.audit.entries("hold", hold.id)
    assert entry["actor"] == "rita" and entry["detail"]["ids"] == expected
    assert entry["detail"]["created"] == hold.created.isoformat()

    released = store.holds.release(hold.id, by="sam")
    assert not released.active and released.released_by == "sam"
    assert released.released - hold.created < timedelta(minutes=5)
    assert store.holds.held_among(expected) == set()
    with pytest.raises(InvalidRequest, match="already released"):
        store.holds.release(hold.id, by="sam")
    assert [e["action"] for e in store.audit.entries("hold", hold.id)] == [
        "hold_placed", "hold_released"]

    # a deleting change asks the store first, inside its own transaction
    other = store.holds.place([4, 5], reason="Claim 9", owner="rita")
    with store.engine.begin() as conn:
        store.holds.refuse_if_held(conn, [1, 2, 3], "deleting")  # none held: passes
        with pytest.raises(InvalidRequest, match=r"requests \[5\] are under a legal hold"):
            store.holds.refuse_if_held(conn, [5, 6], "deleting")
    store.holds.release(other.id, by="rita")
    with store.engine.begin() as conn:
        store.holds.refuse_if_held(conn, [5, 6], "deleting")


def _write(tmp_path, text):
    path = tmp_path / "again.toml"
    path.write_text(text)
    return path


def test_bad_holds_store_nothing(records_store):
    store = records_store
    with pytest.raises(NotFound, match=r"requests \[99999\] do not exist"):
        place_hold(store, reason="x", owner="rita", zone=UTC, ids=[1, 99999])
    with pytest.raises(InvalidRequest, match="needs a reason"):
        place_hold(store, reason="  ", owner="rita", zone=UTC, ids=[1])
    with pytest.raises(InvalidRequest, match="not in the service catalogue"):
        place_hold(store, reason="x", owner="rita", zone=UTC, query=RecordQuery(services=("NOPE",)))
    with pytest.raises(InvalidRequest, match="matched no request"):
        place_hold(store, reason="x", owner="rita", zone=UTC,
                   query=RecordQuery(reporter_email="nobody@example.org"))
    with pytest.raises(InvalidRequest, match="not an active layer"):
        find_requests(store, RecordQuery(districts=(("atlantis", "1"),)), UTC)
    with pytest.raises(InvalidRequest, match="every request"):
        find_requests(store, RecordQuery(), UTC)
    with pytest.raises(NotFound):
        store.holds.release(12345, by="x")
    assert store.holds.holds() == [] and store.audit.entries("hold") == []
    with store.engine.connect() as conn:
        assert conn.execute(select(t.legal_hold_requests)).all() == []

