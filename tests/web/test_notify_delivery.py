"""Delivering notifications to a real SMTP server on loopback, and one-click unsubscribe."""

import dataclasses
import re
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import insert

from geo311.config import Settings
from geo311.errors import ConfigError
from geo311.notifications import (
    DeliveryPolicy,
    Mailer,
    deliver_due,
    run_worker,
    unsubscribe_token,
)
from geo311.store import tables as t
from geo311.store.outbox import STOPPED_NOTE, enqueue
from geo311_web.cli import cli
from tests.prepared import starts_from
from tests.web.conftest import MAIL_FROM, PUBLIC_URL, free_port

pytestmark = pytest.mark.both_backends

# The city state (service area and Chicago catalogue) from tests/web/conftest.py.
starts_from("city", "city_mail", module=__name__)


def _text(msg):
    return msg.get_body(("plain",)).get_content()


def _html(msg):
    return msg.get_body(("html",)).get_content()


def test_once_delivers_receipts_and_status_changes_with_headers_links_and_redacted_notes(
        mail_app, city_mail, smtp):
    r = city_mail.report("ann@example.org")
    runner = mail_app.test_cli_runner()
    out = runner.invoke(cli, ["notify", "run", "--once"])
    assert out.exit_code == 0, out.output
    assert "sent 1, retried 0, failed 0" in out.output
    [received] = smtp.to("ann@example.org")
    assert received["Subject"] == f"Request #{r.id} received: Fly Dumping Complaint"
    assert received["From"] == MAIL_FROM and received["To"] == "ann@example.org"
    assert received["Content-Language"] == "en"
    row = city_mail.store.outbox.rows(r.id)[0]
    assert row["status"] == "sent" and row["sent_at"] is not None
    assert received["Message-ID"] == row["message_id"]
    assert re.fullmatch(r"<geo311\.\d+\.\d+@city\.example>", row["message_id"])
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(rf"<{re.escape(PUBLIC_URL)}/unsubscribe/[\w.-]+>",
                        received["List-Unsubscribe"].strip())  # may be folded
    assert f"{PUBLIC_URL}/requests/{r.id}" in _text(received)
    assert "ann@example.org" not in received["List-Unsubscribe"]

    city_mail.store.requests.set_status(
        r.id, "closed", note="Cleared. Questions: 312-555-0199 <script>alert(1)</script>")
    out = runner.invoke(cli, ["notify", "run", "--once"])
    assert "sent 1, retried 0, failed 0" in out.output
    closed = smtp.to("ann@example.org")[1]
    assert closed["Subject"] == f"Request #{r.id} closed: Fly Dumping Complaint"
    body, html = _text(closed), _html(closed)
    assert "[phone removed]" in body and "312-555-0199" not in body + html
    assert "<script>" in body  # plain text shows it as typed; it is not markup there
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f'href="{PUBLIC_URL}/requests/{r.id}"' in html
    assert closed["Message-ID"] != received["Message-ID"]
    # Nothing due: a second pass sends nothing.
    assert "sent 0, retried 0, failed 0" in runner.invoke(cli, ["notify", "run", "--once"]).output


@pytest.mark.parametrize("language, subject", [
    ("es", "Solicitud #{id} actualizada: cerrada"),
    ("pl", "Zgłoszenie #{id} zaktualizowane: zamknięte"),
    ("zh-Hans", "请求 #{id} 已更新：已关闭"),
    ("fr", "Request #{id} updated: closed"),  # no French phrases: the city's default
])
def test_messages_are_written_in_the_row_language(city_mail, smtp, language, subject):
    r = city_mail.report("")
    with city_mail.store.db.begin() as conn:
        conn.execute(insert(t.reporters).values(request_id=r.id, email="eva@example.org",
                                                created=datetime.now(UTC)))
        enqueue(conn, "status", r.id, event="e", language=language,
                detail={"status": "closed", "note": "Listo"})
    assert deliver_due(city_mail.store, city_mail.mailer).sent == 1
    [msg] = smtp.to("eva@example.org")
    assert msg["Subject"] == subject.format(id=r.id)
    assert msg["Content-Language"] == (language if language in ("es", "pl") else
                                       "zh-Hans" if language.startswith("zh") else "en")
    assert "Listo" in _text(msg)


def test_a_451_is_retried_with_backoff_and_later_sent(city_mail, smtp):
    r = city_mail.report("ann@example.org")
    smtp.answers.append("451 4.3.0 Try again later")
    t0 = datetime.now(UTC)
    first = deliver_due(city_mail.store, city_mail.mailer, now=t0)
    assert (first.sent, first.retried, first.failed) == (0, 1, 0)
    row = city_mail.store.outbox.rows(r.id)[0]
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["next_attempt_at"] == t0 + timedelta(minutes=1)
    assert row["last_error"].startswith("451")
    assert smtp.messages == []
    assert deliver_due(city_mail.store, city_mail.mailer, now=t0 + timedelta(seconds=30)).sent == 0
    smtp.answers.append("451 4.3.0 Still busy")
    second = deliver_due(city_mail.store, city_mail.mailer, now=t0 + timedelta(minutes=1))
    assert second.retried == 1
    row = city_mail.store.outbox.rows(r.id)[0]
    assert row["next_attempt_at"] == t0 + timedelta(minutes=1) + timedelta(minutes=2)  # doubled
    later = deliver_due(city_mail.store, city_mail.mailer, now=t0 + timedelta(minutes=4))
    assert later.sent == 1 and len(smtp.to("ann@example.org")) == 1
    assert city_mail.store.outbox.rows(r.id)[0]["status"] == "sent"


def test_temporary_failures_become_permanent_after_the_last_attempt(city_mail, smtp):
    r = city_mail.report("ann@example.org")
    policy = DeliveryPolicy(max_attempts=2)
    t0 = datetime.now(UTC)
    smtp.answers += ["421 4.7.0 busy", "421 4.7.0 busy"]
    assert deliver_due(city_mail.store, city_mail.mailer, policy, now=t0).retried == 1
    assert deliver_due(city_mail.store, city_mail.mailer, policy,
                       now=t0 + timedelta(hours=1)).failed == 1
    row = city_mail.store.outbox.rows(r.id)[0]
    assert row["status"] == "failed" and row["last_error"].startswith("gave up after 2 attempts")


def test_a_550_fails_for_good(city_mail, smtp):
    r = city_mail.report("nobody@example.org")
    smtp.answers.append("550 5.1.1 No such user")
    t0 = datetime.now(UTC)
    done = deliver_due(city_mail.store, city_mail.mailer, now=t0)
    assert (done.sent, done.retried, done.failed) == (0, 0, 1)
    row = city_mail.store.outbox.rows(r.id)[0]
    assert row["status"] == "failed" and row["last_error"].startswith("550")
    assert deliver_due(city_mail.store, city_mail.mailer, now=t0 + timedelta(days=1)).sent == 0
    assert smtp.messages == []


def test_an_unreachable_server_is_a_temporary_failure(city_mail):
    r = city_mail.report("ann@example.org")
    closed_port = free_port()  # nothing listens there
    mailer = dataclasses.replace(city_mail.mailer, port=closed_port)
    done = deliver_due(city_mail.store, mailer, now=datetime.now(UTC))
    assert (done.sent, done.retried) == (0, 1)
    assert "Connection" in city_mail.store.outbox.rows(r.id)[0]["last_error"]


def test_two_workers_at_once_send_each_message_exactly_once(city_mail, smtp):
    emails = [f"resident{i}@example.org" for i in range(24)]
    for email in emails:
        city_mail.report(email)
    barrier = threading.Barrier(2)
    results = [None, None]
    policy = DeliveryPolicy(batch=3)

    def work(i):
        barrier.wait()
        results[i] = deliver_due(city_mail.store, city_mail.mailer, policy)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert results[0].sent + results[1].sent == len(emails)
    got = sorted(r for rcpts, _ in smtp.messages for r in rcpts)
    assert got == sorted(emails)
    ids = [m["Message-ID"] for _, m in smtp.messages]
    assert len(set(ids)) == len(ids) == len(emails)
    assert city_mail.store.outbox.counts()["sent"] == len(emails)


def test_a_row_left_in_sending_by_a_stopped_worker_is_not_resent(city_mail, smtp):
    r = city_mail.report("ann@example.org")
    t0 = datetime.now(UTC)
    # A worker claims the row, then dies before it records anything.
    claim = city_mail.store.outbox.claim(t0, limit=10, per_address=10,
                                         window=timedelta(hours=1),
                                         stopped_after=timedelta(minutes=15))
    assert [row["id"] for row in claim.rows] == [city_mail.store.outbox.rows(r.id)[0]["id"]]
    restarted = deliver_due(city_mail.store, city_mail.mailer, now=t0 + timedelta(minutes=5))
    assert restarted.sent == 0 and city_mail.store.outbox.rows(r.id)[0]["status"] == "sending"
    later = deliver_due(city_mail.store, city_mail.mailer, now=t0 + timedelta(minutes=16))
    assert (later.sent, later.stopped) == (0, 1)
    row = city_mail.store.outbox.rows(r.id)[0]
    assert row["status"] == "failed" and row["last_error"] == STOPPED_NOTE
    assert smtp.messages == []


def test_an_address_gets_at_most_ten_messages_an_hour(city_mail, smtp):
    for _ in range(12):
        city_mail.report("busy@example.org")
    t0 = datetime.now(UTC)
    first = deliver_due(city_mail.store, city_mail.mailer, now=t0)
    assert (first.sent, first.deferred) == (10, 2)
    assert deliver_due(city_mail.store, city_mail.mailer,
                       now=t0 + timedelta(minutes=30)).sent == 0
    assert len(smtp.to("busy@example.org")) == 10
    later = deliver_due(city_mail.store, city_mail.mailer, now=t0 + timedelta(minutes=61))
    assert later.sent == 2 and len(smtp.to("busy@example.org")) == 12


def _unsubscribe_path(msg):
    return urlsplit(msg["List-Unsubscribe"].strip().strip("<>")).path


def test_unsubscribe_link_asks_then_stops_further_mail(mail_app, city_mail, smtp):
    r = city_mail.report("ann.lee@example.org")
    deliver_due(city_mail.store, city_mail.mailer)
    path = _unsubscribe_path(smtp.to("ann.lee@example.org")[0])
    client = mail_app.test_client()
    page = client.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "a***@example.org" in html and "ann.lee" not in html
    assert 'type="submit"' in html and 'method="post"' in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert not city_mail.store.outbox.is_unsubscribed("ann.lee@example.org")  # GET changes nothing
    # A mail client's RFC 8058 one-click POST: no session, no CSRF token.
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "no more messages" in done.get_data(as_text=True)
    assert city_mail.store.outbox.is_unsubscribed("ann.lee@example.org")
    city_mail.store.requests.set_status(r.id, "closed", note="done")
    assert [row["kind"] for row in city_mail.store.outbox.rows(r.id)] == ["received"]
    assert deliver_due(city_mail.store, city_mail.mailer).sent == 0
    assert len(smtp.to("ann.lee@example.org")) == 1


def test_unsubscribing_stops_waiting_mail_and_a_tampered_link_is_a_400(mail_app, city_mail,
                                                                        smtp):
    r = city_mail.report("bob@example.org")
    row = city_mail.store.outbox.rows(r.id)[0]
    token = unsubscribe_token(row["id"], mail_app.secret_key)
    client = mail_app.test_client()
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/unsubscribe/{tampered}").status_code == 400
    assert client.post(f"/unsubscribe/{tampered}").status_code == 400
    forged = unsubscribe_token(row["id"], "another-secret-of-some-length")
    assert client.post(f"/unsubscribe/{forged}").status_code == 400
    unknown = unsubscribe_token(row["id"] + 1000, mail_app.secret_key)
    assert client.get(f"/unsubscribe/{unknown}").status_code == 400
    assert city_mail.store.outbox.rows(r.id)[0]["status"] == "pending"
    assert client.post(f"/unsubscribe/{token}").status_code == 200
    assert city_mail.store.outbox.rows(r.id)[0]["status"] == "unsubscribed"
    assert deliver_due(city_mail.store, city_mail.mailer).sent == 0
    assert smtp.messages == []
    again = client.get(f"/unsubscribe/{token}")
    assert "no more messages" in again.get_data(as_text=True)


def test_mail_settings_are_read_and_checked():
    s = Settings.from_env({"GEO311_SMTP_HOST": "mail.city.example", "GEO311_SMTP_PORT": "587",
                           "GEO311_SMTP_STARTTLS": "yes", "GEO311_SMTP_USER": "geo311",
                           "GEO311_SMTP_PASSWORD": "hunter2-hunter2",
                           "GEO311_MAIL_FROM": MAIL_FROM, "GEO311_PUBLIC_URL": PUBLIC_URL,
                           "GEO311_SECRET_KEY": "x" * 32})
    assert (s.smtp_port, s.smtp_starttls, s.smtp_user) == (587, True, "geo311")
    assert "hunter2" not in repr(s) and "x" * 32 not in repr(s)
    mailer = Mailer.from_settings(s)
    assert mailer.domain == "city.example" and "hunter2" not in repr(mailer)
    with pytest.raises(ConfigError, match="GEO311_SMTP_STARTTLS was 'maybe'"):
        Settings.from_env({"GEO311_SMTP_STARTTLS": "maybe"})
    with pytest.raises(ConfigError, match="GEO311_SMTP_HOST is not set"):
        Mailer.from_settings(dataclasses.replace(s, smtp_host=""))
    with pytest.raises(ConfigError, match="GEO311_PUBLIC_URL was 'city.example'"):
        Mailer.from_settings(dataclasses.replace(s, public_url="city.example"))


def test_notify_run_without_a_server_says_which_setting_is_missing(runner):
    out = runner.invoke(cli, ["notify", "run", "--once"])
    assert out.exit_code != 0 and "GEO311_SMTP_HOST is not set" in out.output


def test_a_report_that_joins_an_earlier_one_says_which(city_mail, smtp):
    first = city_mail.report("first@example.org")
    second = city_mail.report("second@example.org")
    assert second.duplicate_of == first.id
    assert deliver_due(city_mail.store, city_mail.mailer).sent == 2
    [msg] = smtp.to("second@example.org")
    assert f"same problem as request #{first.id}" in _text(msg)
    assert "same problem" not in _text(smtp.to("first@example.org")[0])


def test_the_worker_loop_delivers_until_stopped(city_mail, smtp):
    city_mail.report("ann@example.org")
    stop = threading.Event()
    seen = []

    def report(summary):
        seen.append(summary.line())
        stop.set()

    worker = threading.Thread(target=run_worker, args=(city_mail.store, city_mail.mailer),
                              kwargs={"poll_s": 0.05, "stop": stop, "report": report})
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive() and seen == ["sent 1, retried 0, failed 0"]
    assert len(smtp.to("ann@example.org")) == 1
