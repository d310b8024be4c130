"""Work orders, SLA clocks at intake, suggestions, routes and KPIs on both backends."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from geo311 import business_calendar, sla
from geo311 import dispatch as core
from geo311.errors import InvalidRequest, NotFound
from geo311.intake import submit
from geo311.kpi import kpi_table
from geo311.model import Crew, NewRequest, Service

CHI = ZoneInfo("America/Chicago")
LOOP = (-87.6321, 41.8837)  # 121 N La Salle St, ward 42 (2015-2023)
LAYER = "wards_2015_2023"


@pytest.fixture
def sla_store(layered_store):
    layered_store.catalogue.upsert([
        Service("SCB", "Sanitation Code Violation", "Sanitation", sla_days=3),
        Service("PHF", "Pothole in Street", "Streets", sla_hours=4, sla_clock="24x7"),
        Service("INF", "Information Only", "Info"),
    ])
    return layered_store


def new(code, lon, lat, when=None, **kw):
    return NewRequest(code, lon=lon, lat=lat, requested_datetime=when, **kw)


def ward_of(store, request_id):
    return store.requests.get(request_id).districts[LAYER]


def test_intake_fills_expected_datetime_on_the_business_calendar(sla_store, ctx):
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=CHI)  # Thanksgiving is on Thursday
    r = submit(sla_store, ctx, new("SCB", *LOOP, monday))
    assert r.expected_datetime.astimezone(CHI) == datetime(2026, 11, 27, 9, 0, tzinfo=CHI)
    assert sla_store.requests.get(r.id).expected_datetime == r.expected_datetime
    p = submit(sla_store, ctx, new("PHF", *LOOP, monday))
    assert p.expected_datetime - monday == timedelta(hours=4)
    assert submit(sla_store, ctx, new("INF", *LOOP, monday)).expected_datetime is None


def test_pause_and_resume_move_the_due_time(sla_store, ctx):
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=CHI)
    r = submit(sla_store, ctx, new("SCB", *LOOP, monday))
    sla.pause(sla_store, r.id, "waiting_for_resident", actor="ada",
              now=datetime(2026, 11, 24, 9, 0, tzinfo=CHI))
    assert sla_store.requests.get(r.id).expected_datetime is None
    board = sla.sla_board(sla_store, states=("paused",))
    assert [b.request_id for b in board] == [r.id]
    with pytest.raises(InvalidRequest, match="paused already"):
        sla.pause(sla_store, r.id, "on_hold")
    due = sla.resume(sla_store, r.id, actor="ada", now=datetime(2026, 11, 25, 9, 0, tzinfo=CHI))
    assert due.astimezone(CHI) == datetime(2026, 11, 30, 9, 0, tzinfo=CHI)  # one business day on
    assert sla_store.requests.get(r.id).expected_datetime == due
    with pytest.raises(InvalidRequest, match="not paused"):
        sla.resume(sla_store, r.id)
    with pytest.raises(InvalidRequest, match="reason"):
        sla.pause(sla_store, r.id, "lunch")
    actions = [e["action"] for e in sla_store.audit.entries("request", r.id)]
    assert actions[-2:] == ["sla_paused", "sla_resumed"]


def test_breached_and_at_risk_board(sla_store, ctx):
    now = datetime.now(UTC)
    late = submit(sla_store, ctx, new("PHF", *LOOP, now - timedelta(hours=5)))
    risky = submit(sla_store, ctx, new("PHF", -87.65, 41.90, now - timedelta(hours=3, minutes=30)))
    fine = submit(sla_store, ctx, new("PHF", -87.66, 41.91, now - timedelta(minutes=10)))
    board = {b.request_id: b.state for b in sla.sla_board(sla_store, now=now)}
    assert board == {late.id: "breached", risky.id: "at_risk"}
    assert fine.id not in board
    sla_store.requests.set_status(late.id, "closed", note="fixed")
    assert late.id not in {b.request_id for b in sla.sla_board(sla_store, now=now)}


def test_work_order_lifecycle_closes_the_whole_group_and_is_audited(sla_store, ctx):
    first = submit(sla_store, ctx, new("SCB", *LOOP))
    repeat = submit(sla_store, ctx, new("SCB", *LOOP))
    other = submit(sla_store, ctx, new("SCB", -87.6500, 41.9000))
    assert repeat.duplicate_of == first.id
    crew = core.create_crew(sla_store, Crew("Loop", LAYER, (ward_of(sla_store, first.id),),
                                            ("Sanitation",), 4), actor="ada")
    spare = core.create_crew(sla_store, Crew("Spare", LAYER, (), (), 4))
    order = core.create_work_order(sla_store, "Loop", [repeat.id, other.id], actor="ada")
    assert order.request_ids == tuple(sorted((first.id, other.id)))  # a group is one stop
    assert order.status == "assigned" and order.crew_id == crew.id
    with pytest.raises(InvalidRequest, match="already on an open work order"):
        core.create_work_order(sla_store, spare.id, [first.id])
    with pytest.raises(InvalidRequest, match="resolution"):
        core.set_work_order_status(sla_store, order.id, "done")
    started = core.set_work_order_status(sla_store, order.id, "in_progress", actor="ada")
    assert started.started is not None and started.finished is None
    core.add_note(sla_store, order.id, "<b>gate locked</b>", author="ada")
    moved = sla_store.dispatch.reassign_work_order(order.id, spare.id, actor="ada")
    assert moved.crew_id == spare.id
    done = core.set_work_order_status(sla_store, order.id, "done",
                                      resolution="Cleaned the alley", actor="ada")
    assert done.finished is not None and done.resolution == "Cleaned the alley"
    assert done.notes[0][1:] == ("ada", "<b>gate locked</b>")
    for rid in (first.id, repeat.id, other.id):
        r = sla_store.requests.get(rid)
        assert r.status == "closed" and r.status_notes == "Cleaned the alley"
        assert r.closed_datetime is not None
    with pytest.raises(InvalidRequest, match="cannot become"):
        core.set_work_order_status(sla_store, order.id, "assigned")
    with pytest.raises(InvalidRequest, match="not open"):
        core.create_work_order(sla_store, crew.id, [first.id])
    history = [(e["action"], e["actor"]) for e in sla_store.audit.entries("work_order", order.id)]
    assert history == [("created", "ada"), ("status", "ada"), ("note", "ada"),
                       ("reassigned", "ada"), ("status", "ada")]
    closed = [e for e in sla_store.audit.entries("request", repeat.id) if e["action"] == "status"]
    assert closed[-1]["detail"]["note"] == "Cleaned the alley"


def test_crews_are_checked(sla_store):
    with pytest.raises(InvalidRequest, match=r"districts \['999'\]"):
        core.create_crew(sla_store, Crew("X", LAYER, ("999",)))
    with pytest.raises(NotFound):
        core.create_crew(sla_store, Crew("X", "no_such_layer"))
    with pytest.raises(InvalidRequest, match="capacity"):
        core.create_crew(sla_store, Crew("X", LAYER, capacity_per_day=0))
    core.create_crew(sla_store, Crew("X", LAYER))
    with pytest.raises(InvalidRequest, match="exists already"):
        core.create_crew(sla_store, Crew("X", LAYER))
    with pytest.raises(NotFound):
        core.create_work_order(sla_store, "X", [12345])


def seed_open(store, ctx, n, seed=0):
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    out = []
    for k in range(n):
        lon, lat = -87.72 + rng.random() * 0.07, 41.88 + rng.random() * 0.07
        when = now - timedelta(hours=int(rng.integers(1, 120)))
        out.append(submit(store, ctx, new("SCB", lon, lat, when, description=f"#{k}")))
    return out


def test_suggestions_are_deterministic_and_accepting_assigns(sla_store, ctx):
    seeded = seed_open(sla_store, ctx, 14)
    wards = sorted({ward_of(sla_store, r.id) for r in seeded})
    core.create_crew(sla_store, Crew("A", LAYER, tuple(wards[: len(wards) // 2]),
                                     ("Sanitation",), 2, depot_lon=-87.68, depot_lat=41.88))
    core.create_crew(sla_store, Crew("B", LAYER, (), ("Sanitation",), 3))
    now = datetime.now(UTC)
    first = core.suggest(sla_store, LAYER, now=now, horizon_days=2)
    assert first == core.suggest(sla_store, LAYER, now=now, horizon_days=2)
    assert {s.request_id for s in first} == {r.id for r in seeded}
    assigned = [s for s in first if s.crew_id is not None]
    assert len(assigned) == 10  # (2 + 3) a day for two days
    one_ward = core.suggest(sla_store, LAYER, district=wards[0], now=now)
    assert {s.request_id for s in one_ward} == {r.id for r in seeded
                                                if ward_of(sla_store, r.id) == wards[0]}
    picks = [(s.request_id, s.crew_id, s.scheduled_date) for s in assigned[:3]]
    picks[0] = (picks[0][0], sla_store.dispatch.crew("B").id, picks[0][2])  # the dispatcher overrides
    orders = core.accept(sla_store, picks, actor="ada")
    # one work order per crew and day, holding exactly that crew's picks of the day
    assert sorted((o.crew_id, o.scheduled_date) for o in orders) == sorted(
        {(p[1], p[2]) for p in picks})
    for o in orders:
        assert set(o.request_ids) == {p[0] for p in picks
                                      if (p[1], p[2]) == (o.crew_id, o.scheduled_date)}
    left = core.suggest(sla_store, LAYER, now=now)
    assert {s.request_id for s in left} == {r.id for r in seeded} - {p[0] for p in picks}


def test_route_order_is_stored_and_audited(sla_store, ctx):
    seeded = seed_open(sla_store, ctx, 7, seed=3)
    crew = core.create_crew(sla_store, Crew("A", LAYER, (), (), 10,
                                            depot_lon=-87.70, depot_lat=41.85))
    for r in seeded:
        core.create_work_order(sla_store, crew.id, [r.id], scheduled="2026-11-24")
    routed = core.order_route(sla_store, crew.id, "2026-11-24", actor="ada")
    assert sorted(o.route_position for o in routed) == list(range(1, 8))
    assert [o.route_position for o in routed] == list(range(1, 8))  # listed in route order
    again = core.order_route(sla_store, crew.id, "2026-11-24")
    assert [o.id for o in again] == [o.id for o in routed]
    assert any(e["action"] == "route_ordered" for e in sla_store.audit.entries("work_order"))
    assert core.order_route(sla_store, crew.id, "2026-11-25") == []


def test_one_work_order_per_crew_and_day_is_routed_stop_by_stop(sla_store, ctx):
    seeded = seed_open(sla_store, ctx, 7, seed=3)
    crew = core.create_crew(sla_store, Crew("A", LAYER, (), (), 10,
                                            depot_lon=-87.70, depot_lat=41.85))
    day = "2026-11-24"
    made = core.accept(sla_store, [(r.id, crew.id, day) for r in seeded[:4]], actor="ada")
    more = core.accept(sla_store, [(r.id, crew.id, day) for r in seeded[4:]], actor="ada")
    assert len(made) == len(more) == 1 and made[0].id == more[0].id  # stops appended
    assert sorted(more[0].request_ids) == sorted(r.id for r in seeded)
    assert any(e["action"] == "stops_added"
               for e in sla_store.audit.entries("work_order", made[0].id))
    with pytest.raises(InvalidRequest, match="already on an open work order"):
        core.accept(sla_store, [(seeded[0].id, crew.id, "2026-11-25")])
    routed = core.order_route(sla_store, crew.id, day, actor="ada")
    assert len(routed) == 1 and routed[0].route_position == 1
    # the same stops as seven one-stop work orders (routed as before) give the same visit order
    sla_store.dispatch.set_work_order_status(routed[0].id, "cancelled", resolution="split")
    for r in seeded:
        core.create_work_order(sla_store, crew.id, [r.id], scheduled=day)
    single = core.order_route(sla_store, crew.id, day)
    assert list(routed[0].request_ids) == [o.request_ids[0] for o in single]


def test_kpis_count_group_roots_only(sla_store, ctx):
    now = datetime.now(UTC)
    met = submit(sla_store, ctx, new("SCB", *LOOP, now - timedelta(hours=2)))
    submit(sla_store, ctx, new("SCB", *LOOP, now - timedelta(hours=1)))  # duplicate of met
    missed = submit(sla_store, ctx, new("PHF", -87.65, 41.90, now - timedelta(hours=30)))
    backlog = submit(sla_store, ctx, new("SCB", -87.66, 41.91, now - timedelta(hours=1)))
    late_open = submit(sla_store, ctx, new("PHF", -87.67, 41.92, now - timedelta(hours=9)))
    sla_store.requests.set_status(met.id, "closed", note="done")
    sla_store.requests.set_status(missed.id, "closed", note="done")
    version = sla_store.layers.version(LAYER)
    frame = sla_store.hotspots.kpi_frame(version.id)
    assert len(frame) == 4
    by_service = kpi_table(frame, "service", now).set_index("service")
    scb, phf, total = (by_service.loc[k] for k in ("Sanitation Code Violation",
                                                   "Pothole in Street", "all"))
    assert (scb.volume, scb.closed, scb.backlog, scb.sla_met, scb.sla_judged) == (2, 1, 1, 1, 1)
    assert (phf.volume, phf.closed, phf.backlog, phf.sla_met, phf.sla_judged) == (2, 1, 1, 0, 2)
    assert total.volume == 4 and total.sla_share == pytest.approx(1 / 3)
    assert phf.median_days_to_close == pytest.approx(30 / 24, abs=0.01)
    by_ward = kpi_table(frame, "district", now).set_index("district")
    assert by_ward.loc[ward_of(sla_store, met.id)].volume >= 1
    assert int(by_ward.drop(index="all")["volume"].sum()) == 4
    assert backlog.id != late_open.id


def test_import_fills_due_times_and_a_new_target_recomputes_them(sla_store, ctx, tmp_path):
    from dataclasses import replace

    from geo311.imports import import_file, read_mapping
    from tests.conftest import LEGACY_CSV, csv_head

    summary = import_file(sla_store, ctx, csv_head(LEGACY_CSV, tmp_path / "head.csv", 300),
                          read_mapping("chicago-311-legacy"))
    codes = {r.service_code for r in sla_store.requests.query(limit=1000)}
    assert codes == {"SCB"}  # the mapping's code, which has a 3 business day SLA here
    assert summary.expected_set == summary.stored > 250
    cal = business_calendar.load_calendar()
    rows = sla_store.requests.query(limit=1000)
    for r in rows[:40]:
        assert r.expected_datetime == business_calendar.add_clock(r.requested_datetime, 3 * 86400,
                                                    "business_days", cal)
    sla_store.catalogue.upsert([replace(sla_store.catalogue.service("SCB"), sla_days=5)])
    assert sla.fill_expected(sla_store, codes=["SCB"], recompute=True) == len(rows)
    for r in sla_store.requests.query(limit=40):
        assert r.expected_datetime == business_calendar.add_clock(r.requested_datetime, 5 * 86400,
                                                    "business_days", cal)
