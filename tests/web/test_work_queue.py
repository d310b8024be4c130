"""The work queue page: roles, filters through the query string, pages, views, bulk, export."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from geo311.accounts import create_user
from tests.conftest import STAFF_PASSWORD
from tests.prepared import starts_from
from tests.queue_seed import REPORTER, expected_sla, queue_rows, seed_queue

starts_from("layered", "queue", module=__name__)
N = 55  # more than a page of fifty


@pytest.fixture
def queue(app):
    store = app.extensions["geo311"].store
    ids = seed_queue(store, n=N)
    create_user(store, "dina", STAFF_PASSWORD, "dispatcher")
    return store, ids


def shown_ids(html):
    return [int(i) for i in re.findall(r'<tr class="\w+" data-id="(\d+)">', html)]


def newest_first(rows):
    return [r["id"] for r in sorted(rows, key=lambda r: (r["requested_datetime"], r["id"]),
                                    reverse=True)]


def every_page(client, url):
    """Ids of every page, following the next-page links."""
    pages = []
    while url:
        html = client.get(url).get_data(as_text=True)
        pages.append(shown_ids(html))
        found = re.search(r'<a href="([^"]+)" rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    return pages


ROUTES = [("get", "/staff/requests"), ("get", "/staff/requests/export.csv"),
          ("post", "/staff/requests/bulk"), ("post", "/staff/requests/views"),
          ("get", "/staff/requests/views/1"), ("post", "/staff/requests/views/1/delete")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_roles_of_every_route(client, staff_client, queue, method, path):
    store, ids = queue
    store.queues.save_view("agent-user", "mine", "status=open")
    anonymous = getattr(client, method)(path)
    if method == "get":
        assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    else:
        assert anonymous.status_code == 401
    for role in ("planner", "gis"):
        assert getattr(staff_client(role), method)(path).status_code == 403
    data = {"ids": [ids[0]], "action": "unassign", "name": "v", "query": "status=open"}
    for role in ("agent", "dispatcher", "admin"):
        answer = getattr(staff_client(role), method)(path, data=data)
        if path.startswith("/staff/requests/views/1") and role != "agent":
            assert answer.status_code == 404  # another user's view
        else:
            assert answer.status_code in (200, 302), (role, path, answer.status_code)
    assert len(store.audit.entries("saved_view")) >= 1


@pytest.mark.both_backends
def test_each_filter_narrows_as_computed_from_the_rows(app, staff_client, queue):
    store, _ = queue
    client = staff_client("agent")
    rows = queue_rows(store)
    now = datetime.now(UTC)
    zone = app.extensions["geo311"].settings.zone
    versions = {v.id: v.layer for v in store.layers.versions(active_only=True)}
    vid, did = sorted(next(r for r in rows if r["districts"])["districts"])[0]
    day = (now - timedelta(days=2)).astimezone(zone).date()
    lo = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    cases = [
        ([("service", "SCB"), ("service", "PHF")], lambda r: r["service_code"] in ("SCB", "PHF")),
        ([("agency", "Transportation")], lambda r: r["agency"] == "Transportation"),
        ([("status", "closed")], lambda r: r["status"] == "closed"),
        ([("district", f"{versions[vid]}:{did}")], lambda r: (vid, did) in r["districts"]),
        ([("sla", "breached")], lambda r: expected_sla(r, now) == "breached"),
        ([("sla", "at_risk")], lambda r: expected_sla(r, now) == "at_risk"),
        ([("channel", "walk-in")], lambda r: r["source"] == "walk-in"),
        ([("from", day.isoformat()), ("to", day.isoformat())],
         lambda r: lo <= r["requested_datetime"] < lo + timedelta(days=1)),
        ([("from", day.isoformat())], lambda r: lo <= r["requested_datetime"]),
        ([("q", "graffiti")], lambda r: "graffiti" in r["description"]),
        ([("assignee", "dina")], lambda r: r["assignee"] == "dina"),
        ([("status", "open"), ("service", "INF")],
         lambda r: r["status"] == "open" and r["service_code"] == "INF"),
    ]
    for params, keep in cases:
        wanted = newest_first([r for r in rows if keep(r)])
        got = [i for p in every_page(client, "/staff/requests?" + urlencode(params)) for i in p]
        assert got == wanted, params
        assert 0 < len(wanted) < len(rows), params
    assert client.get("/staff/requests?sla=late").status_code == 400
    assert client.get("/staff/requests?from=yesterday").status_code == 400


def test_keyset_pages_cover_every_row_once_in_both_orders(staff_client, queue):
    store, _ = queue
    client = staff_client("dispatcher")
    order = newest_first(queue_rows(store))
    pages = every_page(client, "/staff/requests")
    assert [len(p) for p in pages] == [50, N - 50]
    assert [i for p in pages for i in p] == order
    oldest = every_page(client, "/staff/requests?sort=oldest")
    assert [i for p in oldest for i in p] == order[::-1]
    second = client.get(f"/staff/requests?after={pages[0][-1]}").get_data(as_text=True)
    back = re.search(r'<a href="([^"]+)" rel="prev"', second).group(1).replace("&amp;", "&")
    assert shown_ids(client.get(back).get_data(as_text=True)) == pages[0]
    html = client.get("/staff/requests").get_data(as_text=True)
    assert 'rel="prev"' not in html and f'href="/staff/requests/{order[0]}"' in html
    assert REPORTER.email not in html and REPORTER.last_name not in html


def test_saved_views_are_per_user(staff_client, queue):
    store, _ = queue
    ann, bob = staff_client("agent", "ann"), staff_client("dispatcher", "bob")
    r = ann.post("/staff/requests/views", data={"name": "Late", "query": "sla=breached&after=3"})
    assert r.status_code == 302 and r.headers["Location"] == "/staff/requests?sla=breached"
    [view] = store.queues.views("ann")
    assert view.query == "sla=breached"
    assert "Late" in ann.get("/staff/requests").get_data(as_text=True)
    assert "Late" not in bob.get("/staff/requests").get_data(as_text=True)
    opened = ann.get(f"/staff/requests/views/{view.id}")
    assert opened.headers["Location"] == "/staff/requests?sla=breached"
    assert bob.get(f"/staff/requests/views/{view.id}").status_code == 404
    assert bob.post(f"/staff/requests/views/{view.id}/delete").status_code == 404
    assert ann.post("/staff/requests/views", data={"name": "", "query": ""}).status_code == 400
    assert ann.post(f"/staff/requests/views/{view.id}/delete").status_code == 302
    assert store.queues.views("ann") == []


def test_bulk_status_and_assignment_change_the_store_and_audit(staff_client, queue):
    store, ids = queue
    client = staff_client("dispatcher", "ann")
    chosen = ids[:4]
    r = client.post("/staff/requests/bulk", data={
        "ids": chosen, "action": "status", "status": "closed", "note": "Crew cleaned it",
        "back": "status=open"})
    assert r.status_code == 302 and r.headers["Location"] == "/staff/requests?status=open"
    for rid in chosen:
        assert store.requests.get(rid).status == "closed"
        assert store.requests.get(rid).status_notes == "Crew cleaned it"
        last = store.audit.entries("request", rid)[-1]
        assert (last["action"], last["actor"]) == ("status", "ann")
    assert "4 requests set to closed" in client.get(r.headers["Location"]).get_data(as_text=True)
    client.post("/staff/requests/bulk", data={"ids": chosen, "action": "assign",
                                              "assignee": "dina"})
    assigned = {r["id"]: r["assignee"] for r in queue_rows(store)}
    assert all(assigned[i] == "dina" for i in chosen)
    assert store.audit.entries("request", chosen[1])[-1]["detail"]["to"] == "dina"
    client.post("/staff/requests/bulk", data={"ids": chosen[:2], "action": "unassign"})
    assigned = {r["id"]: r["assignee"] for r in queue_rows(store)}
    assert [assigned[i] for i in chosen] == [None, None, "dina", "dina"]
    last = store.audit.entries("request", chosen[0])[-1]
    assert (last["action"], last["actor"]) == ("unassigned", "ann")


def test_unknown_assignee_is_a_400_on_the_page_and_changes_nothing(staff_client, queue):
    store, ids = queue
    client = staff_client("agent")
    before, audit = queue_rows(store), len(store.audit.entries())
    r = client.post("/staff/requests/bulk", data={
        "ids": ids[:3], "action": "assign", "assignee": "<b>mallory</b>", "back": "status=open"})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and 'id="form-error"' in html
    assert "&lt;b&gt;mallory&lt;/b&gt;" in html and "expected to be an active staff user" in html
    assert 'id="queue"' in html  # the queue itself, with its filters
    assert queue_rows(store) == before and len(store.audit.entries()) == audit


@pytest.mark.both_backends
def test_csv_export_has_every_row_no_reporter_data_and_defused_formulas(staff_client, queue):
    store, _ = queue
    r = staff_client("agent").get("/staff/requests/export.csv?status=open")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    body = r.get_data(as_text=True)
    table = list(csv.DictReader(io.StringIO(body)))
    wanted = newest_first([row for row in queue_rows(store) if row["status"] == "open"])
    assert [int(row["id"]) for row in table] == wanted and len(wanted) > 0
    for secret in (REPORTER.first_name, REPORTER.last_name, REPORTER.email, REPORTER.phone):
        assert secret not in body
    formulas = [row["description"] for row in table if "cmd" in row["description"]]
    assert formulas and all(d.startswith("'=cmd") for d in formulas)
    assert not any(v.startswith(("=", "+", "-", "@")) for row in table for v in row.values())
