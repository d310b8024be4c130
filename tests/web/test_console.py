"""The staff console for one request: roles, each action stored and audited, errors on forms."""

import json
from html import unescape

import pytest

from geo311.model import Reporter
from tests.web.conftest import LOOP, PILSEN

XSS = "<script>alert(1)</script>"
ACTIONS = ("status", "notes", "forward", "unmerge", "move", "merge", "close", "reopen")


@pytest.fixture
def case(city):
    """A located sanitation report with a reporter, and a duplicate of it."""
    first = city.report("SCC", at=LOOP, description="Bags piled in the alley",
                        reporter=Reporter(first_name="Maria", last_name="Lopez",
                                          email="maria@example.com", phone="312-555-0199"),
                        media_url="https://example.org/photo.jpg")
    second = city.report("SCC", at=LOOP, description="Same bags")
    assert second.duplicate_of == first.id
    return city.store, first, second


def _staff_entries(store, request_id, action):
    return [e for e in store.audit.entries("request", request_id) if e["action"] == action]


@pytest.mark.parametrize("action", ACTIONS)
def test_every_console_route_lets_in_agents_dispatchers_and_admin_only(client, staff_client,
                                                                      case, action):
    store, first, _second = case
    page = f"/staff/requests/{first.id}"
    url = f"{page}/{action}"
    anonymous = client.get(page)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert client.post(url, data={"reason": "x"}).status_code == 401
    for role in ("planner", "gis"):
        c = staff_client(role)
        assert c.get(page).status_code == 403
        assert c.post(url, data={"status": "closed", "public_note": "x", "reason": "x",
                                 "resolution": "x", "body": "x",
                                 "visibility": "public"}).status_code == 403
    for role in ("agent", "dispatcher", "admin"):
        assert staff_client(role).get(page).status_code == 200
    assert store.requests.get(first.id).status == "open"
    assert not store.notes.of(first.id)


def test_the_console_shows_the_request_reporter_sla_group_and_media(staff_client, case):
    store, first, second = case
    html = staff_client("agent").get(f"/staff/requests/{first.id}").get_data(as_text=True)
    assert "Maria Lopez" in html and "maria@example.com" in html and "312-555-0199" in html
    assert "Streets and Sanitation" in html and "Missed Garbage Pick-Up Complaint (SCC)" in html
    assert 'href="https://example.org/photo.jpg"' in html and 'alt="Photo sent' in html
    assert f'href="/staff/requests/{second.id}"' in html  # the group's members link here
    assert 'id="sla-due"' in html and "left" in html.split('id="sla-left"')[1][:40]
    assert "4 business days" in html
    assert "America/Chicago" not in html and (" CST<" in html or " CDT<" in html)  # local
    assert "created" in html.split('id="history"')[1]


def test_a_hostile_media_url_is_not_followed(city, staff_client):
    """Intake refuses such a URL, but a legacy import may have stored one."""
    from sqlalchemy import update

    from geo311.store import tables

    r = city.report("SCC", at=PILSEN)
    with city.store.engine.begin() as conn:
        conn.execute(update(tables.service_requests).where(tables.service_requests.c.id == r.id)
                     .values(media_url="javascript:alert(1)"))
    html = staff_client("agent").get(f"/staff/requests/{r.id}").get_data(as_text=True)
    assert 'href="javascript:' not in html and "javascript:alert(1)" in html


@pytest.mark.both_backends
def test_status_change_with_notes_stores_audits_and_keeps_internal_notes_private(
        client, staff_client, case):
    store, first, second = case
    c = staff_client("agent", "zora")
    r = c.post(f"/staff/requests/{first.id}/status",
               data={"status": "closed", "public_note": f"Picked up {XSS} call 312-555-0100",
                     "internal_note": "Driver says the landlord dumps here weekly"})
    assert r.status_code == 302
    assert store.requests.get(first.id).status == "closed"
    assert store.requests.get(second.id).status == "closed"  # the group closes with its lead
    notes = store.notes.of(first.id)
    assert [(n.visibility, n.author) for n in notes] == [("public", "zora"), ("internal", "zora")]
    status = _staff_entries(store, first.id, "status")[-1]
    assert (status["actor"], status["detail"]["to"]) == ("zora", "closed")
    assert status["detail"]["note"].startswith("Picked up")
    assert {e["detail"]["visibility"] for e in _staff_entries(store, first.id, "note_added")} \
        == {"public", "internal"}

    console = c.get(f"/staff/requests/{first.id}").get_data(as_text=True)
    assert XSS not in console and "&lt;script&gt;alert(1)&lt;/script&gt;" in console
    assert "landlord dumps" in console

    public = client.get(f"/requests/{first.id}").get_data(as_text=True)
    assert "Picked up" in public and "City staff" in public
    assert "landlord dumps" not in public and "zora" not in public.split("<main>")[1]
    assert XSS not in public and "&lt;script&gt;" in public
    assert "312-555-0100" not in public and "[phone removed]" in public
    assert "internal" not in public.split('id="history"')[1]
    record = client.get(f"/open311/v2/requests/{first.id}.json")
    assert record.status_code == 200
    text = json.dumps(record.get_json())
    assert "landlord dumps" not in text and "Picked up" in text


def test_a_note_alone_public_or_internal(client, staff_client, case):
    store, first, _second = case
    c = staff_client("dispatcher", "dina")
    assert c.post(f"/staff/requests/{first.id}/notes",
                  data={"body": "Crew asked to call first", "visibility": "internal"}
                  ).status_code == 302
    assert c.post(f"/staff/requests/{first.id}/notes",
                  data={"body": "We are on it", "visibility": "public"}).status_code == 302
    assert [(n.visibility, n.body) for n in store.notes.of(first.id)] == [
        ("internal", "Crew asked to call first"), ("public", "We are on it")]
    assert [e["actor"] for e in _staff_entries(store, first.id, "note_added")] == ["dina"] * 2
    public = client.get(f"/requests/{first.id}").get_data(as_text=True)
    assert "We are on it" in public and "call first" not in public
    record = json.dumps(client.get(f"/open311/v2/requests/{first.id}.json").get_json())
    assert "call first" not in record
    api = json.dumps(client.get(f"/api/requests/{first.id}").get_json())
    assert "call first" not in api


@pytest.mark.both_backends
def test_forwarding_changes_service_department_and_due_time(staff_client, case):
    store, first, second = case
    before = store.requests.get(first.id).expected_datetime
    c = staff_client("agent", "zora")
    r = c.post(f"/staff/requests/{first.id}/forward",
               data={"service_code": "BBA", "reason": "it is a building, not the alley"})
    assert r.status_code == 302
    after = store.requests.get(first.id)
    assert after.service_code == "BBA" and after.expected_datetime > before
    # 39 business days from the same request time, as intake would set it
    from geo311 import sla
    service = store.catalogue.service("BBA")
    assert after.expected_datetime == sla.due_at(after.requested_datetime,
                                                 sla.target_for(service),
                                                 sla.calendar_of(service))
    assert store.requests.get(second.id).service_code == "BBA"  # the duplicate follows
    entry = _staff_entries(store, first.id, "forwarded")[-1]
    assert (entry["actor"], entry["detail"]["from"], entry["detail"]["to"],
            entry["detail"]["why"]) == ("zora", "SCC", "BBA", "it is a building, not the alley")
    html = c.get(f"/staff/requests/{first.id}").get_data(as_text=True)
    assert "DOB - Buildings" in html and "39 business days" in html


def test_forwarding_a_duplicate_takes_it_out_of_its_group(staff_client, case):
    store, first, second = case
    c = staff_client("agent")
    assert c.post(f"/staff/requests/{second.id}/forward",
                  data={"service_code": "PHF", "reason": "a pothole"}).status_code == 302
    moved = store.requests.get(second.id)
    assert (moved.service_code, moved.duplicate_of) == ("PHF", None)
    assert store.requests.get(first.id).service_code == "SCC"
    assert store.requests.get(first.id).reporter_count == 1


@pytest.mark.both_backends
def test_duplicate_actions_unmerge_move_and_merge(city, staff_client, case):
    store, first, second = case
    third = city.report("SCC", at=PILSEN)
    c = staff_client("dispatcher", "dina")
    assert c.post(f"/staff/requests/{second.id}/unmerge",
                  data={"reason": "different alley"}).status_code == 302
    assert store.requests.get(second.id).duplicate_of is None
    assert _staff_entries(store, second.id, "unmerged")[-1]["detail"]["why"] == "different alley"
    assert c.post(f"/staff/requests/{second.id}/move",
                  data={"into": str(third.id), "reason": "it is this one"}).status_code == 302
    assert store.requests.get(second.id).duplicate_of == third.id
    assert _staff_entries(store, second.id, "merged")[-1]["actor"] == "dina"
    assert c.post(f"/staff/requests/{first.id}/merge",
                  data={"other": str(third.id), "reason": "one pile"}).status_code == 302
    assert {store.requests.get(x.id).duplicate_of for x in (second, third)} == {first.id}
    assert store.requests.get(first.id).reporter_count == 3
    merged = _staff_entries(store, first.id, "groups_merged")[-1]
    assert (merged["actor"], merged["detail"]["why"]) == ("dina", "one pile")


@pytest.mark.both_backends
def test_close_with_resolution_then_reopen_with_reason(client, staff_client, case):
    store, first, _second = case
    c = staff_client("agent", "zora")
    assert c.post(f"/staff/requests/{first.id}/close",
                  data={"resolution": "Alley cleaned"}).status_code == 302
    closed = store.requests.get(first.id)
    assert (closed.status, closed.status_notes) == ("closed", "Alley cleaned")
    assert closed.closed_datetime is not None
    assert "Alley cleaned" in client.get(f"/requests/{first.id}").get_data(as_text=True)
    assert c.post(f"/staff/requests/{first.id}/reopen",
                  data={"reason": "resident says more bags"}).status_code == 302
    reopened = store.requests.get(first.id)
    assert (reopened.status, reopened.closed_datetime) == ("open", None)
    entry = _staff_entries(store, first.id, "status")[-1]
    assert (entry["actor"], entry["detail"]["to"], entry["detail"]["why"]) == (
        "zora", "open", "resident says more bags")
    assert "resident says more bags" not in client.get(f"/requests/{first.id}").get_data(
        as_text=True)


@pytest.mark.parametrize(("action", "data", "message"), [
    ("close", {"resolution": "  "}, "the resolution is required"),
    ("status", {"status": "closed", "internal_note": "no public one"},
     "closing a request needs a public note"),
    ("status", {"status": "open"}, "is open already"),
    ("status", {"status": "lost"}, "expected to be in"),
    ("notes", {"body": "", "visibility": "internal"}, "the note is required"),
    ("notes", {"body": "x", "visibility": "everyone"}, "expected to be in"),
    ("notes", {"body": "x" * 2001, "visibility": "public"}, "at most 2000"),
    ("forward", {"service_code": "NOPE", "reason": "x"}, "not in the service catalogue"),
    ("forward", {"service_code": "SCC", "reason": "x"}, "already"),
    ("forward", {"service_code": "BBA", "reason": ""}, "the reason is required"),
    ("move", {"into": "abc", "reason": "x"}, "expected to be a request number"),
    ("move", {"into": "999999", "reason": "x"}, "request 999999 does not exist"),
    ("merge", {"other": "", "reason": "x"}, "expected to be a request number"),
    ("reopen", {"reason": "x"}, "only a closed request reopens"),
])
def test_invalid_input_is_refused_on_the_form_and_stores_nothing(staff_client, case, action,
                                                                 data, message):
    store, first, _second = case
    before = (store.requests.get(first.id), len(store.audit.entries("request", first.id)))
    r = staff_client("agent").post(f"/staff/requests/{first.id}/{action}", data=data)
    assert r.status_code == 400
    html = unescape(r.get_data(as_text=True))
    assert 'id="form-error"' in html and message in html
    form_id = {"notes": "note"}.get(action, action)
    assert html.index('id="form-error"') > html.index(f'id="{form_id}-form"')  # on its form
    assert (store.requests.get(first.id), len(store.audit.entries("request", first.id))) \
        == before
    assert not store.notes.of(first.id)


def test_unmerging_a_request_in_no_group_is_refused_on_the_form(staff_client, case):
    store, first, _second = case
    r = staff_client("agent").post(f"/staff/requests/{first.id}/unmerge",
                                   data={"reason": "x"})
    assert r.status_code == 400 and "is not a duplicate" in r.get_data(as_text=True)


def test_a_missing_request_is_404(staff_client, city):
    assert staff_client("agent").get("/staff/requests/999999").status_code == 404
