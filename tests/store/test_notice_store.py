"""Area notices on both backends: stored, found by place and time, ended, suspending
services in intake, and acknowledging the requests of an incident in one action."""

import json
from datetime import timedelta

import pytest
import shapely
from sqlalchemy import select, update

from geo311.errors import InvalidRequest, NotFound, ServiceSuspended
from geo311.intake import Context, submit
from geo311.layers import load_layer
from geo311.model import CLOSED, NewRequest, Reporter, Service
from geo311.notices import (
    Area,
    acknowledge_requests,
    area_from_districts,
    end_notice,
    notices_at,
    post_notice,
)
from geo311.store import tables as t
from geo311.store.rows import now_utc
from tests.prepared import prepared_state

#: The city: two halves of a box around Chicago, split at lon -87.69.
WEST = shapely.box(-87.95, 41.64, -87.69, 42.03)
EAST = shapely.box(-87.69, 41.64, -87.52, 42.03)
LOOP = (-87.6321, 41.8837)  # City Hall, east: inside AREA
PILSEN = (-87.6700, 41.8560)  # east, about 4.6 km away: outside AREA
AUSTIN = (-87.7650, 41.8940)  # west
AREA = shapely.box(-87.645, 41.875, -87.620, 41.895)
MESSAGES = {"en": "Flooding on Lower Wacker: stay away", "es": "Inundación: manténgase lejos"}


@prepared_state("notice_city", fixtures=("catalogued",), module=__name__)
def _city(store, workdir):
    """A small city (two districts, west and east of -87.69) and two services."""
    path = workdir / "city.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": name, "name": name.title()},
         "geometry": shapely.geometry.mapping(geom)}
        for name, geom in (("west", WEST), ("east", EAST))]}))
    load_layer(store, path, name="city", role="service_area", id_field="id",
               name_field="name", activate=True)
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation"),
                            Service("SDR", "Street Light Out", "Streets")])


@pytest.fixture
def catalogued(store):
    return store


@pytest.fixture
def ctx(catalogued):
    return Context.from_store(catalogued)


def _post(store, **kw):
    args = {"messages": MESSAGES, "severity": "Severe", "area": Area(AREA, "drawn area"),
            "suspend": ["SCB"], "actor": "em", **kw}
    return post_notice(store, **args)


def test_a_notice_round_trips_with_its_messages_area_and_audit(catalogued):
    posted = _post(catalogued)
    again = catalogued.notices.get(posted.id)
    assert again == posted and again.messages == MESSAGES
    assert again.area.equals(AREA) and again.area.geom_type == "MultiPolygon"
    assert (again.severity, again.suspended, again.ends, again.created_by) == \
        ("Severe", ("SCB",), None, "em")
    assert abs((again.starts - now_utc()).total_seconds()) < 60
    assert [n.id for n in catalogued.notices.all()] == [posted.id]
    [entry] = catalogued.audit.entries("notice", posted.id)
    assert (entry["action"], entry["actor"], entry["detail"]["suspended"]) == \
        ("posted", "em", ["SCB"])
    with pytest.raises(NotFound, match="notice 999 does not exist"):
        catalogued.notices.get(999)


def test_only_notices_in_force_whose_area_holds_the_point_are_found(catalogued):
    now = now_utc()
    current = _post(catalogued)
    later = _post(catalogued, starts=now + timedelta(days=1), severity="Extreme")
    assert [n.id for n in notices_at(catalogued, *LOOP)] == [current.id]
    assert notices_at(catalogued, *PILSEN) == []
    corner = (-87.645, 41.885)  # on the area's west edge: inside
    assert [n.id for n in notices_at(catalogued, *corner)] == [current.id]
    # tomorrow both are in force, the more severe first
    tomorrow = now + timedelta(days=1, hours=1)
    assert [n.id for n in notices_at(catalogued, *LOOP, at=tomorrow)] == [later.id, current.id]
    end_notice(catalogued, current.id, actor="em")
    assert notices_at(catalogued, *LOOP) == []
    assert [n.id for n in notices_at(catalogued, *LOOP, at=tomorrow)] == [later.id]


def test_districts_of_an_active_layer_make_an_area(catalogued):
    area = area_from_districts(catalogued, "city", ["east"])
    assert area.geometry.equals(EAST) and area.desc == "city: East"
    assert area.layer == "city" and area.districts == ("east",)
    notice = _post(catalogued, area=area)
    assert notice.layer == "city" and notice.districts == ("east",)
    assert [n.id for n in notices_at(catalogued, *LOOP)] == [notice.id]
    assert notices_at(catalogued, *AUSTIN) == []
    both = area_from_districts(catalogued, "city", ["west", " east "])
    assert both.geometry.equals(WEST.union(EAST)) and both.desc == "city: West, East"
    with pytest.raises(InvalidRequest, match="has no district '999'; it has east, west"):
        area_from_districts(catalogued, "city", ["999"])
    with pytest.raises(NotFound, match="'nope' does not exist"):
        area_from_districts(catalogued, "nope", ["1"])


#: Notices that must be refused, and what the refusal must say.
BAD_NOTICES = [
    ({"severity": "Bad"}, "severity was 'Bad'"),
    ({"messages": {"es": "solo español"}}, r"default language \(en\) is required"),
    ({"messages": {"en": "ok", "fr": "non"}}, "language was 'fr'"),
    ({"messages": {"en": "bell\x07"}}, "control character"),
    ({"suspend": ["NOPE"]}, "'NOPE' is not in the catalogue"),
    ({"starts_in_h": -3, "ends_in_h": -1}, "has already passed"),
    ({"starts_in_h": 5, "ends_in_h": 2}, "expected to be after the start"),
]


def test_bad_notices_are_refused_and_nothing_is_stored(catalogued):
    for change, needle in BAD_NOTICES:
        now, change = now_utc(), dict(change)
        if "ends_in_h" in change:
            change["ends"] = now + timedelta(hours=change.pop("ends_in_h"))
        if "starts_in_h" in change:
            change["starts"] = now + timedelta(hours=change.pop("starts_in_h"))
        with pytest.raises(InvalidRequest, match=needle):
            _post(catalogued, **change)
    assert catalogued.notices.all() == [] and catalogued.audit.entries("notice") == []


def test_a_suspended_service_gets_the_notice_inside_and_a_ticket_outside(catalogued, ctx):
    notice = _post(catalogued)
    with pytest.raises(ServiceSuspended) as refused:
        submit(catalogued, ctx, NewRequest("SCB", *LOOP))
    said = refused.value.message
    assert refused.value.status == 422
    assert f"notice {notice.id} (Severe)" in said and MESSAGES["en"] in said
    assert "'SCB' (Sanitation Code Violation) is suspended" in said and \
        "until further notice" in said
    spanish = pytest.raises(ServiceSuspended, submit, catalogued, ctx,
                            NewRequest("SCB", *LOOP, reporter=Reporter(language="es")))
    assert MESSAGES["es"] in spanish.value.message
    assert catalogued.requests.count() == 0
    assert submit(catalogued, ctx, NewRequest("SDR", *LOOP)).service_code == "SDR"
    assert submit(catalogued, ctx, NewRequest("SCB", *PILSEN)).service_code == "SCB"
    end_notice(catalogued, notice.id, actor="em")
    assert submit(catalogued, ctx, NewRequest("SCB", *LOOP)).service_code == "SCB"
    assert catalogued.requests.count() == 3


def test_an_ending_time_is_named_in_the_citys_zone(catalogued, ctx):
    ends = now_utc() + timedelta(hours=3)
    _post(catalogued, ends=ends)
    local = ends.astimezone(__import__("zoneinfo").ZoneInfo("America/Chicago"))
    with pytest.raises(ServiceSuspended, match=f"until {local:%Y-%m-%d %H:%M} C[DS]T by"):
        submit(catalogued, ctx, NewRequest("SCB", *LOOP))


def test_ending_is_audited_and_refused_twice(catalogued):
    notice = _post(catalogued)
    ended = end_notice(catalogued, notice.id, actor="boss")
    assert ended.ended_by == "boss" and ended.ends <= now_utc()
    assert [e["action"] for e in catalogued.audit.entries("notice", notice.id)] == \
        ["posted", "ended"]
    with pytest.raises(InvalidRequest, match=f"notice {notice.id} already ended"):
        end_notice(catalogued, notice.id, actor="boss")


def test_bulk_acknowledgement_groups_the_open_requests_and_mails_their_reporters(catalogued,
                                                                                  ctx):
    notice = _post(catalogued, suspend=[], starts=now_utc() - timedelta(hours=1))

    def report(code, at, email=""):
        return submit(catalogued, ctx, NewRequest(code, *at, reporter=Reporter(email=email)))

    first = report("SCB", LOOP, "ann@example.org")
    flood = report("SCB", (LOOP[0] + 0.0001, LOOP[1]), "bo@example.org")  # its duplicate
    quiet = report("SCB", (LOOP[0] - 0.003, LOOP[1] + 0.002))
    outside = report("SCB", PILSEN, "far@example.org")
    other_service = report("SDR", LOOP, "light@example.org")
    closed = report("SCB", (LOOP[0], LOOP[1] - 0.002), "done@example.org")
    catalogued.requests.set_status(closed.id, CLOSED, note="fixed")
    before = report("SCB", (LOOP[0] + 0.002, LOOP[1]), "early@example.org")
    with catalogued.engine.begin() as conn:  # reported before the notice began
        conn.execute(update(t.service_requests).where(t.service_requests.c.id == before.id)
                     .values(requested_datetime=notice.starts - timedelta(days=1)))
    assert flood.duplicate_of == first.id
    # the reference: open SCB requests inside the area, made since the notice began
    expected = sorted(r.id for r in catalogued.requests.query(limit=100)
                      if r.service_code == "SCB" and r.status == "open"
                      and AREA.intersects(shapely.Point(r.lon, r.lat))
                      and r.requested_datetime >= notice.starts)
    assert expected == sorted([first.id, flood.id, quiet.id])

    note = "Known flooding: crews are pumping, no need to report again"
    done = acknowledge_requests(catalogued, notice.id, ["SCB"], note, actor="em")
    assert done.acknowledged == expected and done.found == 3
    assert catalogued.notices.acknowledged(notice.id) == expected
    for rid in expected:
        r = catalogued.requests.get(rid)
        assert r.status == "open" and r.status_notes == note
        assert [n.body for n in catalogued.notes.public_of(rid)] == [note]
        assert ("acknowledged", "em") in {(e["action"], e["actor"])
                                          for e in catalogued.audit.entries("request", rid)}
    for untouched in (outside, other_service, closed, before):
        assert catalogued.notes.public_of(untouched.id) == []
        assert "acknowledged" not in {e["action"]
                                      for e in catalogued.audit.entries("request", untouched.id)}
    mails = [(r["request_id"], r["email"], r["event"]) for r in catalogued.outbox.rows()
             if r["kind"] == "status"]
    assert sorted(mails) == sorted([(first.id, "ann@example.org", f"notice:{notice.id}"),
                                    (flood.id, "bo@example.org", f"notice:{notice.id}")])
    # a second run finds the same requests and changes nothing
    rows_before = len(catalogued.outbox.rows())
    again = acknowledge_requests(catalogued, notice.id, ["SCB"], note, actor="em")
    assert again.acknowledged == [] and again.found == 3
    assert "3 already were" in again.line
    assert len(catalogued.outbox.rows()) == rows_before
    with catalogued.engine.connect() as conn:
        assert conn.execute(select(t.notice_requests.c.request_id)).scalars().all() != []
    assert [e["detail"]["count"] for e in catalogued.audit.entries("notice", notice.id)
            if e["action"] == "acknowledged_requests"] == [3, 0]


def test_a_bad_acknowledgement_changes_nothing(catalogued):
    notice = _post(catalogued, suspend=[])
    for codes, note, needle in [([], "note", "choose the services"),
                                (["SCB"], "  ", "a public note is required"),
                                (["NOPE"], "note", "'NOPE' is not in the catalogue")]:
        with pytest.raises(InvalidRequest, match=needle):
            acknowledge_requests(catalogued, notice.id, codes, note, actor="em")
    assert catalogued.notices.acknowledged(notice.id) == []


def test_a_notice_posted_or_ended_elsewhere_is_seen_at_once(catalogued, backend_url):
    from geo311.store import open_store

    other = open_store(backend_url)  # another process's view of the same database
    try:
        assert notices_at(catalogued, *LOOP) == []  # read, and kept
        posted = _post(other)
        assert [n.id for n in notices_at(catalogued, *LOOP)] == [posted.id]
        end_notice(other, posted.id, actor="em")
        assert notices_at(catalogued, *LOOP) == []
        second = _post(other, severity="Minor")
        assert [n.id for n in notices_at(catalogued, *LOOP)] == [second.id]
    finally:
        other.dispose()
