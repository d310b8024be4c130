"""Area alerts: double opt-in, one digest per day and area, stop links, never a sensitive service."""

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from shapely.geometry import Point, mapping

from geo311.area_alerts import deliver_area_mail, queue_digests, subscribe
from geo311.errors import InvalidRequest
from geo311.model import Service
from geo311_web.cli import cli
from tests.conftest import csrf_ready
from tests.prepared import starts_from
from tests.web.conftest import AUSTIN, LOOP, PILSEN, PUBLIC_URL

pytestmark = pytest.mark.both_backends

starts_from("city", "city_mail", module=__name__)

DAY = date(2026, 3, 3)
NOON = datetime(2026, 3, 3, 18, tzinfo=UTC)  # noon in Chicago


def _text(msg):
    return msg.get_body(("plain",)).get_content()


def _link(msg, path):
    found = re.search(re.escape(PUBLIC_URL) + rf"(/alerts/{path}/\S+)", _text(msg))
    return found.group(1) if found else None


def _seed(city_mail):
    """Requests of DAY: two in the east half (one sensitive), one in the west half."""
    store = city_mail.store
    store.catalogue.upsert([Service("SHELTER", "Shelter request", "Human services")])
    store.catalogue.set_sensitive("SHELTER", True)
    east = city_mail.report("a@example.org", at=LOOP, requested_datetime=NOON)
    pilsen = city_mail.report("b@example.org", at=PILSEN, requested_datetime=NOON)
    west = city_mail.report("c@example.org", at=AUSTIN, requested_datetime=NOON)
    hidden = city_mail.report("d@example.org", code="SHELTER", at=(LOOP[0], LOOP[1] + 0.01),
                              requested_datetime=NOON)
    return east, pilsen, west, hidden


def test_a_district_alert_is_confirmed_then_sends_one_digest_a_day_until_stopped(
        mail_app, city_mail, smtp):
    east, pilsen, west, hidden = _seed(city_mail)
    store, zone = city_mail.store, mail_app.extensions["geo311"].settings.zone
    client = csrf_ready(mail_app, mail_app.test_client())
    page = client.get("/alerts").get_data(as_text=True)
    assert 'value="city:east"' in page and "Shelter request" in page
    asked = client.post("/alerts", data={"email": "Club@Example.org", "district": "city:east"})
    assert asked.status_code == 302 and "asked=1" in asked.headers["Location"]
    again = client.post("/alerts", data={"email": "club@example.org", "district": "city:east"})
    assert again.headers["Location"] == asked.headers["Location"]  # the same answer

    assert queue_digests(store, DAY, zone).subscriptions == 0  # nothing before confirming
    assert deliver_area_mail(store, city_mail.mailer).sent == 1
    [confirmation] = smtp.to("club@example.org")
    assert confirmation["Subject"] == "Confirm: alerts for city East"
    link = _link(confirmation, "confirm")
    stop = _link(confirmation, "stop")
    assert link and stop and confirmation["List-Unsubscribe"].strip() == f"<{PUBLIC_URL}{stop}>"
    assert "c***@example.org" in client.get(link).get_data(as_text=True)
    assert store.areas.confirmed() == []  # a GET confirms nothing
    assert 'id="area-done"' in client.post(link).get_data(as_text=True)

    first = queue_digests(store, DAY, zone)
    assert (first.subscriptions, first.queued) == (1, 1)
    assert queue_digests(store, DAY, zone).already == 1  # a second run queues nothing
    deliver_area_mail(store, city_mail.mailer)
    digest = smtp.to("club@example.org")[-1]
    body = _text(digest)
    assert digest["Subject"] == "city East, Tuesday 3 March: 2 new, 0 closed"
    assert f"/requests/{east.id}" in body and f"/requests/{pilsen.id}" in body
    assert f"/requests/{west.id}" not in body and "Shelter" not in body
    assert f"/requests/{hidden.id}" not in body

    store.requests.set_status(east.id, "closed", note="done")
    today = datetime.now(zone).date()
    queue_digests(store, today, zone)
    deliver_area_mail(store, city_mail.mailer)
    closed = smtp.to("club@example.org")[-1]
    assert closed["Subject"].endswith(": 0 new, 1 closed")
    assert f"/requests/{east.id}" in _text(closed)

    assert 'id="area-done"' in client.post(stop).get_data(as_text=True)
    assert queue_digests(store, today + timedelta(days=1), zone).subscriptions == 0
    public = client.get("/").get_data(as_text=True) + client.get(f"/requests/{east.id}"
                                                                  ).get_data(as_text=True)
    assert "club" not in public.lower()


def test_a_drawn_area_and_chosen_services_narrow_the_digest(mail_app, city_mail, smtp):
    east, pilsen, _west, _hidden = _seed(city_mail)
    store, zone = city_mail.store, mail_app.extensions["geo311"].settings.zone
    ring = json.dumps(mapping(Point(PILSEN).buffer(0.005)))
    assert subscribe(store, "pilsen@example.org", "es", area=ring, services=["SDR"])
    [sub_id] = [s.id for s in store.areas._select(True)]
    store.areas.set_status(sub_id, "confirmed")
    assert queue_digests(store, DAY, zone).queued == 1
    deliver_area_mail(store, city_mail.mailer)
    digest = smtp.to("pilsen@example.org")[-1]
    assert digest["Subject"].endswith(": 1 nuevas, 0 cerradas")
    assert f"/requests/{pilsen.id}" in _text(digest) and f"/requests/{east.id}" not in _text(digest)

    out = mail_app.test_cli_runner().invoke(cli, ["notify", "digest", "--day", "2026-03-03"])
    assert out.exit_code == 0 and "1 queued before" in out.output


@pytest.mark.parametrize(("form", "said"), [
    ({"email": "x@example.org"}, "choose a district or draw an area"),
    ({"email": "x@example.org", "district": "city:east",
      "area": '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}'}, "one of the two"),
    ({"email": "not-mail", "district": "city:east"}, "not an address"),
    ({"email": "x@example.org", "district": "city:north"}, "LAYER:ID of an active layer"),
    ({"email": "x@example.org", "district": "city:east", "services": ["NOPE"]},
     "not in the catalogue"),
    ({"email": "x@example.org", "area": "<script>alert(1)</script>"}, "not a GeoJSON polygon"),
    ({"email": "x@example.org", "area": '{"type":"Point","coordinates":[-87.6,41.8]}'},
     "is a Point"),
    ({"email": "x@example.org", "area": json.dumps(
        {"type": "Polygon", "coordinates": [[[-87.7, 41.8], [-87.6, 41.9], [-87.6, 41.8],
                                             [-87.7, 41.9], [-87.7, 41.8]]]})},
     "not a valid polygon"),
    ({"email": "x@example.org", "area": json.dumps(mapping(Point(-87.6, 41.8).buffer(1.0)))},
     "km2 but at most"),
])
def test_a_bad_subscription_is_refused_saying_why_and_nothing_is_stored(
        mail_app, city_mail, form, said):
    client = csrf_ready(mail_app, mail_app.test_client())
    refused = client.post("/alerts", data=form)
    assert refused.status_code == 400 and said in refused.get_data(as_text=True)
    assert "<script>alert" not in refused.get_data(as_text=True)
    assert city_mail.store.areas._select(True) == []
    with pytest.raises(InvalidRequest):
        subscribe(city_mail.store, form["email"], district=form.get("district", ""),
                  area=form.get("area", ""), services=form.get("services", ()))
