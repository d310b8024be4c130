"""Notes on requests, on both backends: stored in order, audited, public ones apart."""

import pytest

from geo311.errors import InvalidRequest
from geo311.intake import submit
from geo311.model import NewRequest, Service


@pytest.fixture
def request_id(layered_store, ctx):
    layered_store.catalogue.upsert([
        Service("SCC", "Missed Garbage", "Sanitation", sla_days=4),
        Service("PHF", "Pothole", "Streets", sla_days=3, agency="CDOT")])
    return submit(layered_store, ctx, NewRequest("SCC", -87.65, 41.85)).id


def test_notes_are_kept_in_order_with_author_and_visibility(layered_store, request_id):
    store = layered_store
    first = store.notes.add(request_id, "internal", "Caller rang twice", author="ana")
    second = store.notes.add(request_id, "public", "<b>We are on it</b>", author="dina")
    notes = store.notes.of(request_id)
    assert [(n.id, n.visibility, n.body, n.author) for n in notes] == [
        (first.id, "internal", "Caller rang twice", "ana"),
        (second.id, "public", "<b>We are on it</b>", "dina")]
    assert notes[0].created.tzinfo is not None and notes[0].created <= notes[1].created
    assert [n.body for n in store.notes.public_of(request_id)] == ["<b>We are on it</b>"]
    audited = [(e["actor"], e["detail"]) for e in store.audit.entries("request", request_id)
               if e["action"] == "note_added"]
    assert audited == [("ana", {"note": first.id, "visibility": "internal"}),
                       ("dina", {"note": second.id, "visibility": "public"})]
    assert "Caller rang" not in str(store.audit.entries("request", request_id))


def test_a_note_must_have_text_and_a_known_visibility(layered_store, request_id):
    store = layered_store
    with pytest.raises(InvalidRequest, match="cannot be empty"):
        store.notes.add(request_id, "public", "  ", author="ana")
    with pytest.raises(InvalidRequest, match="expected to be in"):
        store.notes.add(request_id, "everyone", "hello", author="ana")
    assert store.notes.of(request_id) == []
    assert store.notes.of(request_id + 1000) == []


def test_forwarding_in_the_store_changes_the_service_and_audits(layered_store, request_id):
    store = layered_store
    revision_before = store.requests.get(request_id)
    moved = store.requests.set_service(request_id, "PHF", actor="ana", why="a pothole")
    assert (moved.service_code, moved.service_name) == ("PHF", "Pothole")
    assert moved.updated_datetime >= revision_before.updated_datetime
    entry = [e for e in store.audit.entries("request", request_id)
             if e["action"] == "forwarded"][-1]
    assert (entry["actor"], entry["detail"]) == ("ana", {"from": "SCC", "to": "PHF",
                                                          "why": "a pothole"})
