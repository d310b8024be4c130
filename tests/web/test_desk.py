"""The call-taker desk, /staff/intake: roles, caller search, contacts, requests, duplicates."""

import base64

import geopandas as gpd
import numpy as np
import pytest

from geo311.accounts import ROLES
from geo311.intake import submit
from geo311.model import NewRequest, Reporter
from tests.call_centre import AGENT, DIVERSEY
from tests.conftest import STAFF_PASSWORD, csrf_ready
from tests.core.test_photos import phone_photo
from tests.references import subset

API = "/api/staff/intake"
HOSTILE = '<script>alert("desk")</script><img src=x onerror=alert(1)>'
GETS = ["/staff/intake", f"{API}/callers?phone=3125550100", f"{API}/kb?q=rats",
        f"{API}/kb/rats-and-rodents", f"{API}/services/PHF",
        f"{API}/reverse?lat={DIVERSEY[1]}&long={DIVERSEY[0]}",
        f"{API}/duplicates?service_code=PHF&lat={DIVERSEY[1]}&long={DIVERSEY[0]}"]
POSTS = {f"{API}/info": {"channel": "phone", "topic": "Property tax", "outcome": "answered"},
         f"{API}/request": {"channel": "phone", "service_code": "PHF", "lat": DIVERSEY[1],
                            "long": DIVERSEY[0]}}


@pytest.fixture
def desk_city(app, prepared):
    """The app's store: service area, catalogue, knowledge base, address points, agent."""
    return app.extensions["geo311"].store


@pytest.fixture
def agent(app, desk_city):
    client = csrf_ready(app, app.test_client())
    r = client.post("/login", data={"username": AGENT, "password": STAFF_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == "/staff/intake"
    return client


def _report(app, code="PHF", at=DIVERSEY, **kw):
    return submit(app.extensions["geo311"].store, app.extensions["geo311"].context(),
                  NewRequest(code, lon=at[0], lat=at[1], **kw))


@pytest.mark.parametrize("role", ROLES)
def test_every_desk_route_lets_in_agents_dispatchers_and_admins_only(app, desk_city,
                                                                    staff_client, role):
    client = staff_client(role)
    allowed = role in ("agent", "dispatcher", "admin")
    for url in GETS:
        status = client.get(url).status_code
        assert status == (200 if allowed else 403), (role, url, status)
    for url, body in POSTS.items():
        status = client.post(url, json=body).status_code
        assert status == (201 if allowed else 403), (role, url, status)


def test_anonymous_callers_go_to_login_or_get_401(app, desk_city):
    client = csrf_ready(app, app.test_client())
    page = client.get("/staff/intake")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    for url in GETS[1:]:
        assert client.get(url).status_code == 401, url
    for url, body in POSTS.items():
        assert client.post(url, json=body).status_code == 401, url
    assert desk_city.contacts.recent() == [] and desk_city.requests.count() == 0


@pytest.mark.both_backends
def test_caller_search_finds_earlier_requests_by_phone_and_by_email(app, desk_city, agent,
                                                                   staff_client):
    mine = [_report(app, reporter=Reporter(first_name="Pat", phone="(312) 555-0100")),
            _report(app, "SDR", reporter=Reporter(email="Pat.Lee@Example.org")),
            _report(app, "SFD", reporter=Reporter(phone="+1 312.555.0100",
                                                 email="pat.lee@example.org"))]
    other = _report(app, reporter=Reporter(phone="312-555-0199", email="kim@example.org"))
    by_phone = agent.get(f"{API}/callers?phone=312 555 0100").get_json()
    assert {r["id"] for r in by_phone} == {mine[0].id, mine[2].id}
    assert by_phone[0]["id"] == mine[2].id  # newest first
    row = by_phone[0]
    assert row["service_name"] == "Street Light Out Complaint" and row["status"] == "open"
    assert row["requested"] and set(row) >= {"id", "service_name", "status", "requested",
                                              "address"}
    by_email = agent.get(f"{API}/callers?email=PAT.LEE@example.org").get_json()
    assert {r["id"] for r in by_email} == {mine[1].id, mine[2].id}
    both = agent.get(f"{API}/callers?email=kim@example.org&phone=3125550100").get_json()
    assert {r["id"] for r in both} == {mine[0].id, mine[2].id, other.id}
    assert agent.get(f"{API}/callers?phone=555").status_code == 400
    assert agent.get(f"{API}/callers").status_code == 400
    # staff only: not the public, not a planner
    anonymous = csrf_ready(app, app.test_client())
    assert anonymous.get(f"{API}/callers?phone=3125550100").status_code == 401
    assert staff_client("planner").get(f"{API}/callers?phone=3125550100").status_code == 403
    assert "555-0100" not in anonymous.get(f"/api/requests/{mine[0].id}").get_data(as_text=True)


def test_an_information_contact_stores_a_contacts_row_and_no_request(app, desk_city, agent):
    before = desk_city.requests.count()
    r = agent.post(f"{API}/info", json={"channel": "walk-in", "topic": "Property tax bills",
                                        "outcome": "referred elsewhere", "callback": "none"})
    assert r.status_code == 201
    contact = desk_city.contacts.get(r.get_json()["contact_id"])
    assert (contact.kind, contact.channel, contact.topic, contact.outcome, contact.agent,
            contact.request_id) == ("info", "walk-in", "Property tax bills",
                                    "referred elsewhere", AGENT, None)
    assert desk_city.requests.count() == before
    audit = desk_city.audit.entries("contact", contact.id)
    assert [(e["action"], e["actor"]) for e in audit] == [("contact_logged", AGENT)]
    bad = agent.post(f"{API}/info", json={"channel": "fax", "topic": "x", "outcome": "answered"})
    assert bad.status_code == 400 and "channel was 'fax'" in bad.get_json()[0]["description"]
    assert agent.post(f"{API}/info", json={"channel": "phone", "topic": "",
                                           "outcome": "answered"}).status_code == 400
    assert len(desk_city.contacts.recent()) == 1


@pytest.mark.both_backends
def test_a_desk_request_stores_channel_reporter_contact_and_audit(app, desk_city, agent,
                                                                 client):
    body = {"channel": "phone", "name": "Pat", "phone": "312-555-0100",
            "email": "pat@example.org", "callback": "email", "service_code": "SGA",
            "lat": DIVERSEY[1], "long": DIVERSEY[0], "address": "3415 W DIVERSEY AVE",
            "description": "Rats by the garage", "topic": "rats"}
    # the service's required questions: refused with the words Open311 uses
    refused = agent.post(f"{API}/request", json=body)
    key = desk_city.accounts.create_api_key("desk-test")
    open311 = client.post("/open311/v2/requests.json", data={
        "api_key": key, "service_code": "SGA", "lat": DIVERSEY[1], "long": DIVERSEY[0]})
    assert refused.status_code == open311.status_code == 400
    said = refused.get_json()[0]["description"]
    assert "attribute[signs] is required" in said and "attribute[where] is required" in said
    assert said == open311.get_json()[0]["description"]
    wrong = agent.post(f"{API}/request", json={**body, "answers": {"signs": ["rats"],
                                                                    "where": ["moon"]}})
    assert wrong.status_code == 400 and "attribute[where] was ['moon']" in \
        wrong.get_json()[0]["description"]
    assert desk_city.requests.count() == 0 and desk_city.contacts.recent() == []

    made = agent.post(f"{API}/request", json={**body, "answers": {"signs": ["rats", "burrows"],
                                                                   "where": "alley"}})
    assert made.status_code == 201, made.get_data(as_text=True)
    out = made.get_json()
    assert out["url"] == f"/staff/requests/{out['id']}"
    stored = desk_city.requests.get(out["id"])
    assert stored.service_code == "SGA" and stored.address == "3415 W DIVERSEY AVE"
    with desk_city.engine.connect() as conn:
        from sqlalchemy import select

        from geo311.store import tables as t
        source = conn.execute(select(t.service_requests.c.source)
                              .where(t.service_requests.c.id == stored.id)).scalar_one()
    assert source == "phone"
    assert desk_city.requests.reporters_of(stored.id) == [
        Reporter(first_name="Pat", phone="312-555-0100", email="pat@example.org")]
    assert desk_city.requests.answers(stored.id) == {"signs": ["rats", "burrows"],
                                                     "where": ["alley"]}
    [contact] = desk_city.contacts.of_request(stored.id)
    assert (contact.kind, contact.channel, contact.callback, contact.agent, contact.id) == \
        ("request", "phone", "email", AGENT, out["contact_id"])
    actions = {(e["action"], e["actor"]) for e in desk_city.audit.entries("request", stored.id)}
    assert ("created", AGENT) in actions
    assert ("contact_logged", AGENT) in {
        (e["action"], e["actor"]) for e in desk_city.audit.entries("contact", contact.id)}
    # a callback by phone needs a phone number
    no_phone = agent.post(f"{API}/request", json={**body, "phone": "", "callback": "phone",
                                                  "answers": {"signs": "rats",
                                                              "where": "alley"}})
    assert no_phone.status_code == 400 and "phone" in no_phone.get_json()[0]["description"]
    # an address alone is geocoded as on every channel
    by_address = agent.post(f"{API}/request", json={
        "channel": "walk-in", "service_code": "PHF", "address": "3415 w diversey avenue"})
    assert by_address.status_code == 201, by_address.get_data(as_text=True)
    placed = desk_city.requests.get(by_address.get_json()["id"])
    assert abs(placed.lat - DIVERSEY[1]) < 1e-5 and abs(placed.lon - DIVERSEY[0]) < 1e-5


def test_the_callers_language_is_the_reporters_and_mail_follows_it(app, desk_city, agent):
    body = {"channel": "phone", "name": "Ana", "email": "ana@example.org",
            "service_code": "PHF", "lat": DIVERSEY[1], "long": DIVERSEY[0],
            "address": "3415 W DIVERSEY AVE", "language": "es"}
    made = agent.post(f"{API}/request", json=body)
    assert made.status_code == 201, made.get_data(as_text=True)
    request_id = made.get_json()["id"]
    assert desk_city.requests.reporters_of(request_id)[0].language == "es"
    assert [r["language"] for r in desk_city.outbox.rows(request_id)] == ["es"]
    wrong = agent.post(f"{API}/request", json={**body, "language": "xx"})
    assert wrong.status_code == 400 and "language was 'xx'" in \
        wrong.get_json()[0]["description"]
    assert 'id="caller-language"' in agent.get("/staff/intake").get_data(as_text=True)


def test_a_photo_the_caller_sent_is_attached_stripped_and_a_bad_one_refused(app, desk_city,
                                                                          agent):
    body = {"channel": "email", "service_code": "PHF", "lat": DIVERSEY[1],
            "long": DIVERSEY[0]}
    photo = "data:image/jpeg;base64," + base64.b64encode(phone_photo()).decode()
    for bad, said in (("data:image/jpeg;base64,!!!", "damaged"), ("http://x/y.jpg", "data: URL"),
                      ("data:text/plain;base64," + base64.b64encode(b"hello").decode(),
                       "not an image")):
        refused = agent.post(f"{API}/request", json={**body, "photo": bad})
        assert refused.status_code == 400 and said in refused.get_json()[0]["description"]
    assert desk_city.requests.count() == 0
    made = agent.post(f"{API}/request", json={**body, "photo": photo})
    assert made.status_code == 201, made.get_data(as_text=True)
    url = desk_city.requests.get(made.get_json()["id"]).media_url
    kept = agent.get(url.replace("http://localhost", "")).get_data()
    assert b"PhoneMaker" not in kept and kept.startswith(b"\xff\xd8")


def test_joining_a_duplicate_group_links_the_new_request_to_it(app, desk_city, agent):
    first = _report(app, "PHF", reporter=Reporter(email="first@example.org"))
    far = (DIVERSEY[0] + 0.004, DIVERSEY[1])  # about 330 m east: beyond the rule's radius
    listed = agent.get(f"{API}/duplicates?service_code=PHF&lat={DIVERSEY[1]}"
                       f"&long={DIVERSEY[0] + 0.0003}").get_json()
    assert [g["id"] for g in listed] == [first.id] and listed[0]["automatic"]
    assert agent.get(f"{API}/duplicates?service_code=PHF&lat={far[1]}&long={far[0]}"
                     ).get_json() == []
    body = {"channel": "phone", "service_code": "PHF", "lat": far[1], "long": far[0],
            "name": "Second caller", "phone": "773-555-0123"}
    alone = agent.post(f"{API}/request", json=body).get_json()
    assert alone["duplicate_of"] is None
    joined = agent.post(f"{API}/request", json={**body, "join_group": first.id}).get_json()
    assert joined["duplicate_of"] == first.id
    assert desk_city.requests.get(joined["id"]).duplicate_of == first.id
    assert desk_city.requests.get(first.id).reporter_count == 2
    assert desk_city.requests.reporters_of(joined["id"])[0].first_name == "Second caller"
    merged = [e for e in desk_city.audit.entries("request", joined["id"])
              if e["action"] == "merged"]
    assert merged[0]["detail"]["into"] == first.id and merged[0]["actor"] == AGENT
    # naming a member of the group joins its first request
    via_member = agent.post(f"{API}/request", json={**body, "join_group": joined["id"]})
    assert via_member.get_json()["duplicate_of"] == first.id
    other = _report(app, "SFD")
    wrong = agent.post(f"{API}/request", json={**body, "join_group": other.id})
    assert wrong.status_code == 400 and "cannot join its group" in \
        wrong.get_json()[0]["description"]
    desk_city.requests.set_status(first.id, "closed")
    closed = agent.post(f"{API}/request", json={**body, "join_group": first.id})
    assert closed.status_code == 400 and "closed" in closed.get_json()[0]["description"]
    assert agent.post(f"{API}/request", json={**body, "join_group": "x1"}).status_code == 400


def test_reverse_geocoding_returns_the_nearest_address_point(app, desk_city, agent):
    points = subset()["points"]
    frame = gpd.GeoDataFrame(points, geometry=gpd.points_from_xy(points["lon"], points["lat"]),
                             crs="EPSG:4326")
    metric = frame.to_crs(frame.estimate_utm_crs())
    rng = np.random.default_rng(7)
    picks = rng.choice(len(points), 30, replace=False)
    lons = [*(points["lon"].iloc[picks] + rng.uniform(-8e-4, 8e-4, 30)), -87.67, -87.68]
    lats = [*(points["lat"].iloc[picks] + rng.uniform(-8e-4, 8e-4, 30)), 41.90, 41.91]
    checked = misses = 0
    for lon, lat in zip(lons, lats, strict=True):
        here = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs="EPSG:4326").to_crs(
            metric.crs).iloc[0]
        distance = metric.distance(here)
        order = np.argsort(distance.to_numpy())
        nearest_m = float(distance.iloc[order[0]])
        found = agent.get(f"{API}/reverse?lat={lat}&long={lon}").get_json()
        if nearest_m > 101:
            assert found["address"] is None or found["distance_m"] <= 100
            misses += found["address"] is None
            continue
        if nearest_m < 99:
            assert found["address"] is not None, (lon, lat, nearest_m)
            assert abs(found["distance_m"] - nearest_m) <= max(0.5, 0.005 * nearest_m)
            runner_up = float(distance.iloc[order[1]])
            if runner_up - nearest_m > 0.5:  # a clear winner: the same address point
                assert found["address"] == points["address"].iloc[order[0]], (lon, lat)
            checked += 1
    assert checked >= 20 and misses >= 2
    bad = agent.get(f"{API}/reverse?lat=91&long=0")
    assert bad.status_code == 400


def test_only_services_taking_requests_are_offered_and_staff_see_internal_articles(
        app, desk_city, agent):
    hits = agent.get(f"{API}/kb?q=tree trim").get_json()
    assert "SEF" not in {h.get("service_code") for h in hits if h["kind"] == "service"}
    assert agent.get(f"{API}/services/SEF").status_code == 400
    rats = agent.get(f"{API}/kb?q=rats").get_json()
    assert "SGA" in {h.get("service_code") for h in rats if h["kind"] == "service"}
    questions = agent.get(f"{API}/services/SGA").get_json()["questions"]
    assert [(q["code"], q["required"]) for q in questions] == [("signs", True), ("where", True)]
    internal = [a for a in desk_city.kb.articles() if not a.public][0]
    found = agent.get(f"{API}/kb", query_string={"q": internal.title}).get_json()
    assert internal.slug in {h.get("slug") for h in found}
    article = agent.get(f"{API}/kb/rats-and-rodents").get_json()
    assert article["script"] == desk_city.kb.article("rats-and-rodents").script
    assert article["service"]["code"] == "SGA"


def test_hostile_text_is_escaped_on_the_desk(app, desk_city, agent):
    r = agent.post(f"{API}/info", json={"channel": "phone", "topic": f"Rats {HOSTILE}"[:200],
                                        "outcome": "answered"})
    assert r.status_code == 201
    page = agent.get("/staff/intake").get_data(as_text=True)
    assert HOSTILE not in page and "&lt;script&gt;alert(" in page
    assert "<img src=x" not in page
    hostile = _report(app, reporter=Reporter(first_name=HOSTILE[:100], phone="3125550100"))
    found = agent.get(f"{API}/callers?phone=3125550100")
    assert found.mimetype == "application/json" and found.get_json()[0]["id"] == hostile.id
    refused = agent.post(f"{API}/request", json={
        "channel": "phone", "service_code": "PHF", "lat": DIVERSEY[1], "long": DIVERSEY[0],
        "description": HOSTILE})
    assert refused.status_code == 400 and "HTML" in refused.get_json()[0]["description"]
