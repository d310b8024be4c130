"""store.contacts on both backends: contacts, a caller's requests, the table's upgrade."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from geo311 import contacts
from geo311.errors import InvalidRequest, NotFound
from geo311.model import NewRequest, Placement, Reporter, Service
from geo311.store import open_store
from geo311.store import tables as t

LON, LAT = -87.65, 41.85


@pytest.fixture
def catalogued(store):
    store.catalogue.upsert([Service("PHF", "Pothole in Street Complaint", "Streets"),
                            Service("SCB", "Sanitation Code Violation", "Sanitation")])
    return store


def _add(store, code="PHF", when=None, **reporter):
    return store.requests.add(NewRequest(code, LON, LAT, requested_datetime=when,
                                         reporter=Reporter(**reporter)),
                              Placement(LON, LAT, "reported"))


def test_contacts_are_stored_read_back_and_audited(catalogued):
    r = _add(catalogued)
    info = catalogued.contacts.add(agent="ana", channel="phone", kind="info",
                                   topic="Property tax", outcome="transferred")
    made = catalogued.contacts.add(agent="ben", channel="walk-in", kind="request",
                                   topic="Pothole", outcome="request made", request_id=r.id,
                                   callback="phone")
    assert catalogued.contacts.get(info.id) == info
    assert (info.kind, info.request_id, info.callback, info.agent) == ("info", None, "none", "ana")
    assert info.created.tzinfo is not None
    assert datetime.now(UTC) - info.created < timedelta(minutes=5)
    assert catalogued.contacts.of_request(r.id) == [made]
    assert [c.id for c in catalogued.contacts.recent()] == [made.id, info.id]
    assert catalogued.contacts.recent(agent="ana") == [info]
    [entry] = catalogued.audit.entries("contact", made.id)
    assert entry["actor"] == "ben" and entry["action"] == "contact_logged"
    assert entry["detail"]["request_id"] == r.id and entry["detail"]["channel"] == "walk-in"
    with pytest.raises(NotFound):
        catalogued.contacts.get(999)


@pytest.mark.parametrize("bad", [{"channel": "fax"}, {"kind": "gossip"},
                                 {"callback": "pigeon"}, {"kind": "request"},
                                 {"kind": "info", "request_id": 1}])
def test_contacts_refuse_what_the_desk_does_not_know(catalogued, bad):
    fields = {"agent": "ana", "channel": "phone", "kind": "info", **bad}
    with pytest.raises(InvalidRequest):
        catalogued.contacts.add(**fields)
    assert catalogued.contacts.recent() == []


def test_a_caller_is_found_by_any_spelling_of_their_phone_or_their_email(catalogued):
    start = datetime(2024, 5, 1, tzinfo=UTC)
    a = _add(catalogued, when=start, phone="(312) 555-0100", first_name="Pat")
    b = _add(catalogued, "SCB", when=start + timedelta(days=1), email="Pat@Example.ORG")
    c = _add(catalogued, when=start + timedelta(days=2), phone="+1 312.555.0100")
    _add(catalogued, when=start + timedelta(days=3), phone="312-555-0199",
         email="someone@example.org")
    _add(catalogued, when=start + timedelta(days=4))  # anonymous
    found = catalogued.contacts.caller_requests(phone="312/555 0100")
    assert [r.id for r in found] == [c.id, a.id]
    assert found[1].service_name == "Pothole in Street Complaint"
    assert found[1].requested_datetime == start and found[1].status == "open"
    assert [r.id for r in catalogued.contacts.caller_requests(email=" pat@example.org ")] == \
        [b.id]
    both = catalogued.contacts.caller_requests(phone="3125550100", email="pat@example.org")
    assert [r.id for r in both] == [c.id, b.id, a.id]
    assert catalogued.contacts.caller_requests(phone="3125550111") == []
    for phone, email in (("", ""), ("12-34", "")):
        with pytest.raises(InvalidRequest):
            catalogued.contacts.caller_requests(phone=phone, email=email)


def test_information_contacts_need_a_topic_and_a_known_outcome(catalogued):
    with pytest.raises(InvalidRequest, match="topic is required"):
        contacts.log_information(catalogued, agent="ana", channel="phone", topic=" ",
                                 outcome="answered")
    with pytest.raises(InvalidRequest, match="outcome was 'shrugged'"):
        contacts.log_information(catalogued, agent="ana", channel="phone", topic="Tax",
                                 outcome="shrugged")
    with pytest.raises(InvalidRequest, match="control character"):
        contacts.log_information(catalogued, agent="ana", channel="phone", topic="a\x00b",
                                 outcome="answered")
    done = contacts.log_information(catalogued, agent="ana", channel="email", topic="Tax",
                                    outcome="referred elsewhere", callback="email")
    assert (done.kind, done.outcome, done.callback) == ("info", "referred elsewhere", "email")


def test_init_db_adds_the_contacts_table_to_a_version_8_database(backend_url):
    store = open_store(backend_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(text(f'DROP TABLE "contacts"{store.db.dialect.cascade}'))
            conn.execute(t.schema_info.update().where(t.schema_info.c.key == "version")
                         .values(value="8"))
        store.schema.upgrade()
        assert store.db.schema_version() == t.SCHEMA_VERSION >= 9
        with store.engine.connect() as conn:
            assert "contacts" in set(inspect(conn).get_table_names())
        store.catalogue.upsert([Service("PHF", "Pothole in Street Complaint", "Streets")])
        assert store.contacts.add(agent="ana", channel="phone", kind="info", topic="x",
                                  outcome="answered").id == 1
    finally:
        store.schema.drop()
        store.schema.init()
        store.dispose()
