"""Records staff: the holds page (roles, CSRF, ids, search, release) and the records commands."""

from __future__ import annotations

import json
import re
from datetime import UTC, timedelta

import pytest

from geo311.holds import find_requests
from geo311.model import RecordQuery
from geo311_web.cli import cli
from tests import records_seed
from tests.prepared import starts_from

starts_from("records", "records_app", module=__name__)  # built by records_seed

HOSTILE = '<script>alert("x")</script> Claim & co'


@pytest.fixture
def records_app(app, prepared):
    return app


def test_only_records_staff_and_admin_open_the_holds_page(records_app, staff_client):
    assert staff_client("agent").get("/staff/holds").status_code == 403
    assert staff_client("gis").get("/staff/holds").status_code == 403
    assert staff_client("admin").get("/staff/holds").status_code == 200
    page = staff_client("records").get("/staff/holds")
    assert page.status_code == 200 and 'id="hold-by-search"' in page.get_data(as_text=True)
    anonymous = records_app.test_client().get("/staff/holds")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_a_form_without_its_csrf_token_is_refused(records_app, staff_client):
    client = staff_client("records")
    del client.environ_base["HTTP_X_CSRFTOKEN"]
    r = client.post("/staff/holds", data={"by": "ids", "ids": "1", "reason": "x"})
    assert r.status_code == 400
    assert records_app.extensions["geo311"].store.holds.holds() == []


def test_hold_by_ids_then_release_all_audited_and_escaped(records_app, staff_client):
    store = records_app.extensions["geo311"].store
    client = staff_client("records", "rita")
    r = client.post("/staff/holds", data={"by": "ids", "ids": "3, 1,2", "reason": HOSTILE})
    assert r.status_code == 302
    (hold,) = store.holds.holds()
    assert r.headers["Location"].endswith(f"/staff/holds/{hold.id}")
    assert (hold.owner, hold.reason, store.holds.requests_of(hold.id)) == ("rita", HOSTILE,
                                                                          [1, 2, 3])
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert re.findall(r'href="/staff/requests/(\d+)"', page) == ["1", "2", "3"]
    listing = client.get("/staff/holds").get_data(as_text=True)
    assert "3 requests are held" in listing and "&lt;script&gt;" in listing

    r = client.post(f"/staff/holds/{hold.id}/release")
    assert r.status_code == 302
    after = store.holds.get(hold.id)
    assert not after.active and after.released_by == "rita"
    assert [e["action"] for e in store.audit.entries("hold", hold.id)] == [
        "hold_placed", "hold_released"]
    assert client.post(f"/staff/holds/{hold.id}/release").status_code == 400


def test_hold_by_search_counts_first_then_holds_what_it_found(records_app, staff_client):
    store = records_app.extensions["geo311"].store
    client = staff_client("records")
    form = {"by": "search", "services": ["SCB", "PHF"], "text": "w test st",
            "reporter_phone": "312-555-0142", "reason": "FOIA 88"}
    expected = find_requests(store, RecordQuery(services=("SCB", "PHF"), text="w test st",
                                                reporter_phone="312-555-0142"), UTC)
    assert expected
    preview = client.post("/staff/holds", data={**form, "action": "preview"})
    assert preview.status_code == 200 and store.holds.holds() == []
    html = preview.get_data(as_text=True)
    assert f"The search finds {len(expected)} requests." in html
    assert 'value="SCB" selected' in html and 'value="312-555-0142"' in html

    r = client.post("/staff/holds", data={**form, "action": "hold"})
    assert r.status_code == 302
    (hold,) = store.holds.holds()
    assert store.holds.requests_of(hold.id) == expected
    assert 'services = ["SCB", "PHF"]' in hold.query


@pytest.mark.parametrize(("form", "message"), [
    ({"by": "ids", "ids": "1, two", "reason": "x"}, "&#39;two&#39; is not one"),
    ({"by": "ids", "ids": "1, 999999", "reason": "x"}, "requests [999999] do not exist"),
    ({"by": "ids", "ids": "1", "reason": ""}, "a hold needs a reason"),
    ({"by": "search", "districts": "wards", "reason": "x"}, "is expected as LAYER:ID"),
    ({"by": "search", "from": "2026-02-30", "reason": "x"}, "is expected to be a day"),
    ({"by": "search", "reason": "x"}, "it would take every request"),
    ({"by": "nothing"}, "expected to be ids or search"),
])
def test_bad_forms_say_what_arrived_and_store_nothing(records_app, staff_client, form,
                                                      message):
    r = staff_client("records").post("/staff/holds", data=form)
    assert r.status_code in (400, 404)
    html = r.get_data(as_text=True)
    assert 'id="form-error"' in html and message in html
    assert records_app.extensions["geo311"].store.holds.holds() == []


def test_holds_commands(records_app, runner, tmp_path):
    store = records_app.extensions["geo311"].store
    query = tmp_path / "claim.toml"
    query.write_text('[query]\nservices = ["PHF"]\nstatus = "closed"\n')
    r = runner.invoke(cli, ["holds", "add", "--reason", "Claim 7", "--query", str(query),
                            "--owner", "rita"])
    assert r.exit_code == 0, r.output
    expected = find_requests(store, RecordQuery(services=("PHF",), status="closed"), UTC)
    assert f"placed on {len(expected)} requests by rita" in r.output
    r = runner.invoke(cli, ["holds", "add", "--reason", "FOIA", "--ids", "4,5"])
    assert r.exit_code == 0 and "placed on 2 requests by cli" in r.output
    r = runner.invoke(cli, ["holds", "add", "--reason", "x", "--ids", "4", "--query", str(query)])
    assert r.exit_code != 0 and "exactly one of --ids or --query" in r.output
    r = runner.invoke(cli, ["holds", "add", "--reason", "x", "--ids", "4,nope"])
    assert r.exit_code == 1 and "'nope' is not one" in r.output

    listed = json.loads(runner.invoke(cli, ["holds", "list", "--json"]).output)
    assert [(h["reason"], h["requests"], h["owner"]) for h in listed] == [
        ("FOIA", 2, "cli"), ("Claim 7", len(expected), "rita")]
    r = runner.invoke(cli, ["holds", "release", str(listed[0]["id"]), "--by", "sam"])
    assert r.exit_code == 0 and "released" in r.output
    assert "FOIA" not in runner.invoke(cli, ["holds", "list"]).output
    assert "released" in runner.invoke(cli, ["holds", "list", "--all"]).output


def test_retention_commands_dry_run_then_run_then_nothing(records_app, runner, prepared):
    day = (prepared.closed_at + timedelta(days=6 * 366)).strftime("%Y-%m-%d")
    dry = json.loads(runner.invoke(cli, ["retention", "run", "--dry-run", "--json",
                                         "--as-of", day]).output)
    r = runner.invoke(cli, ["retention", "run", "--as-of", day, "--batch-size", "7"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    closed = records_seed.N - len(prepared.open_ids)
    assert lines[0].startswith(f"retention run as of {day} 00:00 UTC: {closed} closed requests")
    assert any(line.startswith("public records:") for line in lines)
    for kind in ("contact", "text", "media"):
        applied = dry["rules"][kind]["applied"]
        assert applied > 0
        (line,) = [x for x in lines if x.startswith(f"  {kind} ")]
        assert f"applied to {applied:,} requests" in line
    again = json.loads(runner.invoke(cli, ["retention", "run", "--json", "--as-of", day]).output)
    assert all(again["rules"][k]["applied"] == 0 for k in ("contact", "text", "media"))
    assert again["rules"]["contact"]["done_before"] == dry["rules"]["contact"]["applied"]
