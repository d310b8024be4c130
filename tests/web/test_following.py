"""Following a request by email: double opt-in, then the reporters' updates, never shown publicly."""

import re

import pytest

from geo311.accounts import create_user
from geo311.following import ask_to_follow
from geo311.notifications import deliver_due, follow_token
from geo311.store.followers import MAX_PENDING
from tests.conftest import STAFF_PASSWORD, csrf_ready
from tests.prepared import starts_from
from tests.web.conftest import PUBLIC_URL

pytestmark = pytest.mark.both_backends

starts_from("city", "city_mail", module=__name__)


def _agent(app):
    create_user(app.extensions["geo311"].store, "agent-f", STAFF_PASSWORD, "agent")
    client = csrf_ready(app, app.test_client())
    client.post("/login", data={"username": "agent-f", "password": STAFF_PASSWORD})
    return client


def _deliver(city_mail):
    return deliver_due(city_mail.store, city_mail.mailer)


def _text(msg):
    return msg.get_body(("plain",)).get_content()


def _link(msg, path):
    found = re.search(re.escape(PUBLIC_URL) + rf"(/{path}/\S+)", _text(msg))
    return found.group(1) if found else None


def test_a_follower_confirms_then_hears_what_reporters_hear(mail_app, city_mail, smtp):
    r = city_mail.report("ann@example.org")
    resident = csrf_ready(mail_app, mail_app.test_client())
    asked = resident.post(f"/requests/{r.id}/follow", data={"email": "Bob.Smith@Example.org"})
    assert asked.status_code == 302 and asked.headers["Location"].endswith("follow=asked#follow")
    page = resident.get(asked.headers["Location"]).get_data(as_text=True)
    assert 'id="follow-asked"' in page and "bob" not in page.lower()

    city_mail.store.requests.set_status(r.id, "open", note="Crew booked")
    _deliver(city_mail)
    [confirmation] = smtp.to("bob.smith@example.org")  # nothing else before confirming
    assert confirmation["Subject"] == f"Confirm: follow request #{r.id} (Fly Dumping Complaint)"
    link = _link(confirmation, "follow")
    assert link and _link(confirmation, "unsubscribe")

    shown = resident.get(link)  # a mail scanner's GET confirms nothing
    assert shown.status_code == 200 and "b***@example.org" in shown.get_data(as_text=True)
    assert city_mail.store.followers.get(r.id, "bob.smith@example.org").status == "pending"
    done = resident.post(link)
    assert done.status_code == 200 and 'id="follow-confirmed"' in done.get_data(as_text=True)
    assert resident.post(link).status_code == 200  # a second press changes nothing
    confirmed = [e for e in city_mail.store.audit.entries("request", r.id)
                 if e["action"] == "follow_confirmed"]
    assert len(confirmed) == 1 and "bob" not in str(confirmed[0]["detail"]).lower()

    city_mail.store.requests.set_status(r.id, "closed", note="Cleared")
    _deliver(city_mail)
    to_bob = smtp.to("bob.smith@example.org")
    assert [m["Subject"] for m in to_bob[1:]] == [f"Request #{r.id} closed: Fly Dumping Complaint"]
    assert _link(to_bob[1], "survey") is None  # the survey is the reporters' to answer
    assert _link(smtp.to("ann@example.org")[-1], "survey")

    staff = _agent(mail_app).get(f"/staff/requests/{r.id}").get_data(as_text=True)
    assert "bob.smith@example.org (confirmed)" in staff
    public = resident.get(f"/requests/{r.id}").get_data(as_text=True)
    assert "bob" not in public.lower() and "follow_" not in public
    assert "bob" not in resident.get(f"/open311/v2/requests/{r.id}.json?extensions=true"
                                     ).get_data(as_text=True).lower()


def test_the_answer_is_the_same_whoever_follows_and_addresses_are_not_flooded(
        mail_app, city_mail, smtp):
    # Seven requests 3 km apart: none joins another's group.
    made = [city_mail.report(f"r{i}@example.org", at=(-87.60, 41.70 + 0.03 * i))
            for i in range(MAX_PENDING + 2)]
    assert all(m.duplicate_of is None for m in made)
    client = csrf_ready(mail_app, mail_app.test_client())
    answers = {client.post(f"/requests/{m.id}/follow", data={"email": "eve@example.org"}
                           ).headers["Location"].split("?")[1] for m in made}
    again = client.post(f"/requests/{made[0].id}/follow", data={"email": "eve@example.org"})
    assert answers == {again.headers["Location"].split("?")[1]} == {"follow=asked#follow"}
    rows = [n for m in made for n in city_mail.store.outbox.rows(m.id) if n["kind"] == "follow"]
    assert len(rows) == MAX_PENDING  # one per request, and no more than MAX_PENDING waiting

    city_mail.store.outbox.unsubscribe("zed@example.org")
    assert ask_to_follow(city_mail.store, made[0].id, "zed@example.org") is False


@pytest.mark.parametrize("email", ["", "not-an-address", "<script>@x", "a@b", "x" * 250 + "@e.org"])
def test_an_address_that_cannot_receive_mail_is_refused_and_nothing_is_stored(
        mail_app, city_mail, email):
    r = city_mail.report("ann@example.org")
    client = csrf_ready(mail_app, mail_app.test_client())
    refused = client.post(f"/requests/{r.id}/follow", data={"email": email})
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    assert 'id="follow-error"' in body and "<script>@x" not in body
    assert city_mail.store.followers.of_request(r.id) == []
    assert client.post("/requests/999999/follow",
                       data={"email": "ann@example.org"}).status_code == 404


def test_followers_of_a_duplicate_hear_of_its_group(city_mail, smtp):
    first = city_mail.report("ann@example.org")
    second = city_mail.report("cy@example.org")
    assert second.duplicate_of == first.id
    ask_to_follow(city_mail.store, second.id, "dee@example.org", "es")
    row = next(n for n in city_mail.store.outbox.rows(second.id) if n["kind"] == "follow")
    assert row["language"] == "es"
    token = follow_token(row["id"], city_mail.mailer.secret)
    from geo311.following import confirm_follow
    confirm_follow(city_mail.store, token, city_mail.mailer.secret)
    city_mail.store.requests.set_status(first.id, "closed", note="Listo")
    _deliver(city_mail)
    subjects = [m["Subject"] for m in smtp.to("dee@example.org")]
    assert subjects[-1] == f"Solicitud #{first.id} cerrada: Fly Dumping Complaint"


def test_forged_and_wrong_links_confirm_nothing(mail_app, city_mail):
    r = city_mail.report("ann@example.org")
    client = mail_app.test_client()
    receipt = city_mail.store.outbox.rows(r.id)[0]
    assert receipt["kind"] == "received"
    assert client.post(f"/follow/{follow_token(receipt['id'], city_mail.mailer.secret)}"
                       ).status_code == 404
    assert client.post(f"/follow/{follow_token(receipt['id'], 'another-secret')}"
                       ).status_code == 400
