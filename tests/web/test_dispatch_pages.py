"""Dispatch pages, JSON and commands through the Flask test client and Click's runner."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from geo311.model import NewRequest, Reporter, Service
from geo311_web.cli import cli
from tests.conftest import submit_as_imported
from tests.prepared import starts_from

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
LAYER = "wards_2015_2023"


starts_from("layered", "seeded", module=__name__)


@pytest.fixture
def seeded(app):
    s = app.extensions["geo311"]
    s.store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation",
                                     sla_hours=4, sla_clock="24x7")])
    now = datetime.now(UTC)
    points = [(-87.6321, 41.8837), (-87.6500, 41.9000), (-87.6600, 41.9100), (-87.6700, 41.8900)]
    made = [submit_as_imported(s.store, s.context(), NewRequest(
        "SCB", lon, lat, description=XSS, requested_datetime=now - timedelta(hours=h),
        reporter=Reporter("Zed", "Quill", "zed@example.org")))
        for (lon, lat), h in zip(points, (5, 3.5, 1, 0.5), strict=True)]
    return made


def test_crew_form_suggestions_override_and_close(app, staff_client, seeded):
    c = staff_client("dispatcher")
    r = c.post("/dispatch/crews", data={"name": XSS, "layer": LAYER, "districts": "",
                                        "service_groups": "Sanitation", "capacity_per_day": "3",
                                        "depot_lon": "-87.64", "depot_lat": "41.88"})
    assert r.status_code == 302
    c.post("/dispatch/crews", data={"name": "Spare", "layer": LAYER, "capacity_per_day": "5"})
    store = app.extensions["geo311"].store
    xss_crew, spare = store.dispatch.crews()
    page = c.get("/dispatch/suggestions").get_data(as_text=True)
    assert "<script>window.__xss" not in page and "&lt;script&gt;" in page
    suggestions = c.get(f"/api/dispatch/suggestions?layer={LAYER}").get_json()
    assert [s["request_id"] for s in suggestions][:2] == [seeded[0].id, seeded[1].id]
    form = {"layer": LAYER, "accept": [str(seeded[0].id), str(seeded[1].id)],
            f"crew_{seeded[0].id}": str(spare.id),  # overridden
            f"crew_{seeded[1].id}": str(xss_crew.id), f"date_{seeded[1].id}": "2026-11-24"}
    assert c.post("/dispatch/suggestions", data=form).status_code == 302
    orders = c.get("/api/dispatch/work-orders").get_json()
    assert {(o["request_ids"][0], o["crew_id"]) for o in orders} == {
        (seeded[0].id, spare.id), (seeded[1].id, xss_crew.id)}
    made = c.post("/api/dispatch/work-orders",
                  json={"crew_id": spare.id, "request_ids": [seeded[2].id]})
    assert made.status_code == 201
    order_id = made.get_json()["id"]
    assert c.post(f"/dispatch/work-orders/{order_id}/notes", data={"text": XSS}).status_code == 302
    detail = c.get(f"/dispatch/work-orders/{order_id}").get_data(as_text=True)
    assert "&lt;script&gt;window.__xss=1" in detail and "zed@example.org" not in detail
    closed = c.post(f"/dispatch/work-orders/{order_id}/status",
                    data={"status": "done", "resolution": "Picked up"})
    assert closed.status_code == 302
    assert store.requests.get(seeded[2].id).status == "closed"
    api = c.post(f"/api/dispatch/work-orders/{order_id}/status", json={"status": "assigned"})
    assert api.status_code == 400 and "cannot become assigned" in api.get_json()[0]["description"]
    assert c.post("/dispatch/route", data={"crew_id": spare.id}).status_code == 302


def test_dispatch_map_and_sla_board(app, staff_client, seeded):
    c = staff_client("dispatcher")
    body = c.get("/dispatch").get_data(as_text=True)
    assert "/static/vendor/leaflet/leaflet.js" in body and "https://" not in body
    assert re.search(r'id="drawn-unassigned">4<', body)
    assert re.search(r'id="breached">1<', body) and re.search(r'id="at-risk">1<', body)
    assert "zed@example.org" not in body and "<script>window.__xss" not in body
    board = c.get("/api/dispatch/sla").get_json()
    assert [(b["request_id"], b["state"]) for b in board] == [
        (seeded[0].id, "breached"), (seeded[1].id, "at_risk")]
    assert c.post(f"/dispatch/requests/{seeded[1].id}/pause",
                  data={"reason": "waiting_for_resident"}).status_code == 302
    assert "paused" in c.get("/dispatch/sla").get_data(as_text=True)
    assert app.extensions["geo311"].store.requests.get(seeded[1].id).expected_datetime is None
    assert c.post(f"/dispatch/requests/{seeded[1].id}/resume").status_code == 302
    assert app.extensions["geo311"].store.requests.get(seeded[1].id).expected_datetime is not None


def test_kpi_page_for_planners(app, staff_client, seeded):
    store = app.extensions["geo311"].store
    store.requests.set_status(seeded[3].id, "closed", note="done")  # closed within its 4 hours
    body = staff_client("planner").get(f"/kpi?layer={LAYER}").get_data(as_text=True)
    total = re.search(r'<tr class="total"><td>all</td><td class="volume">(\d+)</td>.*?'
                      r'<td class="backlog">(\d+)</td>.*?<td class="sla-share">([^<]+)</td>',
                      body, re.S)
    assert total.groups() == ("4", "3", "50%")  # met 1 of 2 judged (one open breached)
    assert staff_client("planner").get("/kpi?start=2026-13-01").status_code == 400


def run(runner, *args, input=None):
    return runner.invoke(cli, list(map(str, args)), input=input)


def test_crews_sla_and_dispatch_commands(runner, app, seeded):
    out = run(runner, "crews", "create", "North", "--layer", LAYER, "--groups", "Sanitation",
              "--capacity", "2", "--depot", "-87.64", "41.88")
    assert out.exit_code == 0, out.output
    assert "crew 1 North" in out.output
    assert "North" in run(runner, "crews", "list").output
    sla_out = run(runner, "sla", "set", "SCB", "--business-days", "2")
    assert sla_out.exit_code == 0 and "2 business days; due times of 4 requests set" in \
        sla_out.output
    assert run(runner, "sla", "set", "SCB", "--days", "1", "--hours", "2").exit_code == 2
    sug = run(runner, "dispatch", "suggest", "--layer", LAYER, "--accept")
    assert sug.exit_code == 0, sug.output
    # 2 a day for the 5-day horizon: one work order per crew and day
    assert "4 suggestions accepted on 2 work orders" in sug.output
    first_day = app.extensions["geo311"].store.dispatch.work_order(1).scheduled_date  # a business day
    route = run(runner, "dispatch", "route", "--crew", "North", "--date", first_day)
    assert route.exit_code == 0 and "  1. work order" in route.output
    done = run(runner, "dispatch", "status", "1", "done", "--resolution", "Fixed")
    assert done.exit_code == 0 and "work order 1 done" in done.output
    bad = run(runner, "dispatch", "status", "1", "in_progress")
    assert bad.exit_code == 1 and "cannot become in_progress" in bad.output
    listing = run(runner, "sla", "list", "--json")
    assert listing.exit_code == 0
