"""The survey on close: mailed link, one answer per link, ratings on /kpi and Open311, comments for staff."""

import csv
import io
import re

import numpy as np
import pandas as pd
import pytest

from geo311.accounts import create_user
from geo311.kpi import satisfaction_table
from geo311.notifications import deliver_due, survey_token
from tests.conftest import STAFF_PASSWORD, csrf_ready
from tests.prepared import starts_from
from tests.web.conftest import AUSTIN, LOOP, PUBLIC_URL

pytestmark = pytest.mark.both_backends

starts_from("city", "city_mail", module=__name__)

PHONE = "312-555-0199"


def _survey_path(msg):
    text = msg.get_body(("plain",)).get_content()
    found = re.search(re.escape(PUBLIC_URL) + r"(/survey/\S+)", text)
    assert found, text
    assert found.group(0) in msg.get_body(("html",)).get_content()
    return found.group(1)


def _closed_with_survey(city_mail, smtp, email, at=LOOP, language=""):
    r = city_mail.report(email, at=at, language=language)
    city_mail.store.requests.set_status(r.id, "closed", note="Cleared")
    deliver_due(city_mail.store, city_mail.mailer)
    mails = smtp.to(email)
    closing = [m for m in mails if "closed" in m["Subject"] or "cerrada" in m["Subject"]]
    assert len(closing) == 1 and all("/survey/" not in m.get_body(("plain",)).get_content()
                                      for m in mails if m is not closing[0])
    return r, _survey_path(closing[0])


def _staff(app, role):
    create_user(app.extensions["geo311"].store, f"{role}-s", STAFF_PASSWORD, role)
    client = csrf_ready(app, app.test_client())
    assert client.post("/login", data={"username": f"{role}-s",
                                       "password": STAFF_PASSWORD}).status_code == 302
    return client


def test_a_closed_request_is_rated_once_and_the_rating_reaches_kpi_and_open311(
        mail_app, city_mail, smtp):
    r, path = _closed_with_survey(city_mail, smtp, "ann@example.org")
    resident = mail_app.test_client()
    page = resident.get(path)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert f"request #{r.id}" in html and html.count('name="rating"') == 5

    comment = f"Slow. Call me at {PHONE} <script>alert(1)</script>"
    done = resident.post(path, data={"rating": "2", "comment": comment})
    assert done.status_code == 200
    assert "your answer about request" in done.get_data(as_text=True)
    again = resident.post(path, data={"rating": "5"})
    assert again.status_code == 409 and "answered already" in again.get_data(as_text=True)
    assert "answered already" in resident.get(path).get_data(as_text=True)

    [answer] = city_mail.store.surveys.of_request(r.id)
    assert (answer.rating, answer.comment) == (2, comment)  # staff keep it as written

    console = _staff(mail_app, "agent").get(f"/staff/requests/{r.id}").get_data(as_text=True)
    assert "2 of 5" in console and PHONE in console and "<script>alert" not in console

    planner = _staff(mail_app, "planner")
    kpi = planner.get("/kpi?layer=city").get_data(as_text=True)
    table = re.search(r'<table id="kpi-satisfaction">(.*?)</table>', kpi, re.S).group(1)
    assert re.search(r"<td>district</td><td>east</td><td class=\"answers\">1</td>"
                     r"<td class=\"mean-rating\">2.00</td>", table), table
    exported = list(csv.DictReader(io.StringIO(planner.get(
        "/kpi/export.csv?layer=city&table=satisfaction").get_data(as_text=True))))
    assert {(e["by"], e["key"], e["answers"]) for e in exported} >= {
        ("district", "east", "1"), ("service", "Fly Dumping Complaint", "1"), ("all", "all", "1")}

    public = mail_app.test_client().get("/open311/v2/satisfaction.json?layer=city")
    assert public.status_code == 200
    body = public.get_data(as_text=True)
    assert PHONE not in body and "Slow" not in body
    rows = {(e["by"], e["key"]): e for e in public.get_json()}
    assert rows[("district", "east")]["mean_rating"] == 2.0
    assert rows[("all", "all")]["dissatisfied_share"] == 1.0


def test_the_survey_speaks_the_reporters_language(mail_app, city_mail, smtp):
    _, path = _closed_with_survey(city_mail, smtp, "eva@example.org", language="es")
    html = mail_app.test_client().get(path).get_data(as_text=True)
    assert '<html lang="es">' in html and "¿Cómo lo hicimos?" in html


def test_bad_answers_and_forged_links_store_nothing(mail_app, city_mail, smtp):
    r, path = _closed_with_survey(city_mail, smtp, "bob@example.org", at=AUSTIN)
    client = mail_app.test_client()
    for rating in ("", "0", "6", "4.5", "<b>5</b>"):
        refused = client.post(path, data={"rating": rating})
        assert refused.status_code == 400 and "Choose a rating" in refused.get_data(as_text=True)
    long = client.post(path, data={"rating": "3", "comment": "x" * 2001})
    assert long.status_code == 400 and "2001 characters" in long.get_data(as_text=True)
    assert city_mail.store.surveys.of_request(r.id) == []

    forged = path[:-3] + ("aaa" if not path.endswith("aaa") else "bbb")
    assert client.get(forged).status_code == 400
    assert client.post(forged, data={"rating": "5"}).status_code == 400
    # A validly signed link to a notification that is not a closing one opens nothing.
    receipt = next(n for n in city_mail.store.outbox.rows(r.id) if n["kind"] == "received")
    token = survey_token(receipt["id"], city_mail.mailer.secret)
    assert client.post(f"/survey/{token}", data={"rating": "5"}).status_code == 404
    assert city_mail.store.surveys.of_request(r.id) == []


def test_satisfaction_table_agrees_with_counting_by_hand():
    rng = np.random.default_rng(7)
    n = 400
    answers = pd.DataFrame({
        "rating": rng.integers(1, 6, n),
        "service_name": rng.choice(["Potholes", "Graffiti", "Rats"], n),
        "agency": rng.choice(["Streets", "Health"], n),
        "district": rng.choice(["1", "2", "3", "(none)"], n)})
    table = satisfaction_table(answers)
    for by, column in (("district", "district"), ("service", "service_name"),
                       ("agency", "agency")):
        block = table[table["by"] == by]
        assert list(block["answers"]) == sorted(block["answers"], reverse=True)
        for key in set(answers[column]):
            ratings = [int(x) for x, k in zip(answers["rating"], answers[column], strict=True)
                       if k == key]
            row = block[block["key"] == key].iloc[0]
            assert row["answers"] == len(ratings)
            assert row["mean_rating"] == pytest.approx(sum(ratings) / len(ratings))
            assert row["satisfied_share"] == pytest.approx(
                sum(x >= 4 for x in ratings) / len(ratings))
            assert row["dissatisfied_share"] == pytest.approx(
                sum(x <= 2 for x in ratings) / len(ratings))
    total = table[table["by"] == "all"].iloc[0]
    assert total["answers"] == n and total["mean_rating"] == pytest.approx(
        answers["rating"].mean())
    empty = satisfaction_table(answers.iloc[:0])
    assert list(empty["by"]) == ["all"] and empty["answers"].iloc[0] == 0
