"""The dispatch board reads right: crews edited, words for durations, local times, errors on forms."""

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest

from geo311 import dispatch as core
from geo311 import sla
from geo311.intake import submit
from geo311.model import Crew, NewRequest, Service
from geo311_web.cli import cli
from tests.prepared import starts_from

LAYER = "wards_2015_2023"
CHI = ZoneInfo("America/Chicago")
XSS = '<script>window.__xss=1</script>'

starts_from("layered", "board", module=__name__)


@pytest.fixture
def board(app):
    """Six sanitation requests 1 to 6 days old on a 4-hour clock (all breached), two crews."""
    s = app.extensions["geo311"]
    store = s.store
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation",
                                    sla_hours=4, sla_clock="24x7")])
    now = datetime.now(UTC)
    made = [submit(store, s.context(), NewRequest(
        "SCB", -87.70 + 0.01 * k, 41.88 + 0.005 * k, requested_datetime=now - timedelta(days=k)))
        for k in range(1, 7)]
    north = core.create_crew(store, Crew("North", LAYER, (), ("Sanitation",), 8,
                                         depot_lon=-87.66, depot_lat=41.90))
    south = core.create_crew(store, Crew("South", LAYER, ("3",), ("Sanitation",), 8))
    return store, made, north, south


@pytest.mark.parametrize("path", ["/dispatch/crews/1"])
def test_crew_page_roles(client, staff_client, board, path):
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert client.post(path, data={"name": "x"}).status_code in (302, 401)
    planner = staff_client("planner")
    assert planner.get(path).status_code == 403
    assert planner.post(path, data={"name": "Hijack", "layer": LAYER}).status_code == 403
    assert board[0].dispatch.crew(1).name == "North"
    assert staff_client("dispatcher").get(path).status_code == 200
    assert staff_client("admin").get(path).status_code == 200


def test_crew_edit_form_saves_audits_and_shows_errors_on_the_form(app, staff_client, board):
    store, _made, north, _south = board
    c = staff_client("dispatcher")
    listing = c.get("/dispatch/crews").get_data(as_text=True)
    assert f'href="/dispatch/crews/{north.id}"' in listing
    form = {"name": XSS, "layer": LAYER, "districts": "42, 2", "service_groups": "Sanitation,Streets",
            "capacity_per_day": "5", "calendar": "chicago", "depot_lon": "-87.63",
            "depot_lat": "41.88"}  # "active" unticked
    saved = c.post(f"/dispatch/crews/{north.id}", data=form)
    assert saved.status_code == 302
    crew = store.dispatch.crew(north.id)
    assert (crew.name, crew.districts, crew.service_groups, crew.capacity_per_day, crew.depot,
            crew.active) == (XSS, ("42", "2"), ("Sanitation", "Streets"), 5, (-87.63, 41.88),
                             False)
    edits = [e for e in store.audit.entries("crew", north.id) if e["action"] == "crew_edited"]
    assert edits[-1]["detail"]["capacity_per_day"] == {"from": 8, "to": 5}
    assert edits[-1]["detail"]["active"] == {"from": True, "to": False}
    page = c.get(f"/dispatch/crews/{north.id}").get_data(as_text=True)
    assert "<script>window.__xss" not in page and "&lt;script&gt;" in page
    assert "capacity per day: 8 → 5" in unescape(page)

    bad = c.post(f"/dispatch/crews/{north.id}", data={**form, "districts": "42,99",
                                                      "active": "1"})
    assert bad.status_code == 400
    body = bad.get_data(as_text=True)
    assert 'id="form-error"' in body and "districts [&#39;99&#39;] are not in layer" in body
    assert 'value="42,99"' in body and 'id="crew-form"' in body  # the form, as typed
    assert store.dispatch.crew(north.id).districts == ("42", "2")  # nothing saved


def run(runner, *args):
    return runner.invoke(cli, list(map(str, args)))


def test_crews_edit_command(runner, board):
    store, _made, north, _south = board
    out = run(runner, "crews", "edit", "North", "--districts", "40,47", "--groups", "Sanitation",
              "--capacity", "12", "--calendar", "chicago", "--depot", "41.95,-87.65",
              "--inactive")
    assert out.exit_code == 0, out.output
    crew = store.dispatch.crew(north.id)
    assert (crew.districts, crew.capacity_per_day, crew.depot, crew.active) == (
        ("40", "47"), 12, (-87.65, 41.95), False)
    assert "depot 41.95,-87.65; inactive" in out.output
    assert "(inactive)" in run(runner, "crews", "list").output
    assert run(runner, "crews", "edit", str(north.id), "--active").exit_code == 0
    assert store.dispatch.crew(north.id).active
    swapped = run(runner, "crews", "edit", "North", "--depot", "-87.65,41.95")
    assert swapped.exit_code == 1 and "swapped" in swapped.output
    assert run(runner, "crews", "edit", "North", "--depot", "north").exit_code == 2
    assert run(runner, "crews", "edit", "North").exit_code == 2  # nothing to change
    unknown = run(runner, "crews", "edit", "North", "--districts", "77")
    assert unknown.exit_code == 1 and "not in layer" in unknown.output
    assert store.dispatch.crew(north.id).districts == ("40", "47")
    assert run(runner, "crews", "create", "East", "--layer", LAYER).exit_code == 0  # kept


def test_accepting_together_makes_one_work_order_per_crew_and_day(app, staff_client, board):
    store, made, north, south = board
    c = staff_client("dispatcher")
    page = c.get(f"/dispatch/suggestions?layer={LAYER}").get_data(as_text=True)
    now = datetime.now(UTC)
    for r in made:  # durations in words, checked against the stored due time
        overdue_days = int((now - r.expected_datetime).total_seconds() // 86_400)
        assert f"{overdue_days} day{'s' if overdue_days != 1 else ''} overdue" in page \
            or overdue_days < 2
    assert "Hours left" not in page and not re.search(r"<td[^>]*>-\d+\.\d+</td>", page)
    tomorrow = (datetime.now(CHI).date() + timedelta(days=1)).isoformat()
    form = {"layer": LAYER, "accept": [str(r.id) for r in made]}
    for r in made:
        form[f"crew_{r.id}"] = str(north.id if r.id % 2 else south.id)
        form[f"date_{r.id}"] = tomorrow
    done = c.post("/dispatch/suggestions", data=form)
    assert done.status_code == 302 and f"date={tomorrow}" in done.headers["Location"]
    orders = store.dispatch.work_orders()
    assert sorted((o.crew_id, len(o.request_ids)) for o in orders) == sorted(
        [(north.id, sum(r.id % 2 == 1 for r in made)), (south.id, sum(r.id % 2 == 0
                                                                      for r in made))])
    assert {o.scheduled_date for o in orders} == {tomorrow}
    # a later acceptance for the same crew and day joins its work order
    extra = submit(store, app.extensions["geo311"].context(), NewRequest("SCB", -87.64, 41.89))
    c.post("/dispatch/suggestions", data={"layer": LAYER, "accept": [str(extra.id)],
                                          f"crew_{extra.id}": str(north.id),
                                          f"date_{extra.id}": tomorrow})
    assert len(store.dispatch.work_orders()) == 2
    assert extra.id in store.dispatch.work_orders(crew_id=north.id)[0].request_ids
    body = c.get(done.headers["Location"]).get_data(as_text=True)
    assert f"<small>{tomorrow}" in body
    assert re.search(r'id="drawn-stops">7<', body)  # every stop of both work orders drawn
    assert f">{tomorrow} (2)</a>" in body


def test_done_without_note_is_shown_on_the_form(staff_client, board):
    store, made, north, _south = board
    order = core.create_work_order(store, north.id, [made[0].id], scheduled="2026-12-08")
    c = staff_client("dispatcher")
    r = c.post(f"/dispatch/work-orders/{order.id}/status", data={"status": "done",
                                                                  "resolution": "  "})
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert 'id="status-form"' in body and 'id="form-error"' in body
    assert "closing a work order needs a resolution note" in body
    assert '<option value="done" selected>' in body
    assert store.dispatch.work_order(order.id).status == "assigned"
    assert store.requests.get(made[0].id).status == "open"


def test_sla_board_in_local_time_with_readable_reasons(staff_client, board):
    store, made, _north, _south = board
    sla.pause(store, made[0].id, "waiting_for_resident", actor="ada")
    body = staff_client("dispatcher").get("/dispatch/sla").get_data(as_text=True)
    due = store.requests.get(made[1].id).expected_datetime.astimezone(CHI)
    assert f"{due:%Y-%m-%d %H:%M} {due.tzname()}" in body  # CST or CDT, not UTC
    assert due.tzname() in ("CST", "CDT") and "+00:00" not in body and " UTC" not in body
    assert "Paused: Waiting for resident" in body
    assert ">Waiting for another agency</option>" in body
    assert ">waiting_for_resident<" not in body and ">at_risk<" not in body
    assert "5 days overdue" in body and "Breached" in body


def test_remaining_words():
    assert sla.remaining_words(-135306.94 * 3600) == "5637 days overdue"
    assert sla.remaining_words(5.5 * 3600) == "5 hours left"
    assert sla.remaining_words(-3 * 86_400 - 5) == "3 days overdue"
    assert sla.remaining_words(47 * 3600) == "47 hours left"
    assert sla.remaining_words(3600) == "1 hour left"
    assert sla.remaining_words(-125) == "2 minutes overdue"
    assert sla.remaining_words(30) == "due now"
    assert sla.remaining_words(None) == "no SLA"


def test_gis_diff_cli_and_dispatch_pages_after_the_2023_wards(app, runner, staff_client, board):
    from geo311.layers import load_layer
    from tests.conftest import SHAPEFILES

    store, made, north, south = board
    load_layer(store, SHAPEFILES / "wards_2023", name="wards_2023", id_field="ward",
               activate=False)
    gis = staff_client("gis")
    page = gis.get("/gis/layers/wards_2023/versions/1/report?replaces=wards_2015_2023")
    table = page.get_data(as_text=True).split('id="crew-moves"', 1)[1].split("</table>", 1)[0]
    assert "North" in table and "South" in table and "3 → 3 (same id" in table
    dry = run(runner, "layers", "diff", "wards_2023", "--version", "1", "--replaces", LAYER,
              "--json")
    assert dry.exit_code == 0, dry.output
    import json
    crews = {m["crew"]: m for m in json.loads(dry.output)["crews"]}
    assert crews["South"]["districts_to"] == ["3"] and crews["North"]["layer_to"] == "wards_2023"
    done = run(runner, "layers", "activate", "wards_2023", "--version", "1", "--replaces", LAYER)
    assert done.exit_code == 0 and "crews follow: North, South" in done.output
    shown = json.loads(run(runner, "layers", "show", "wards_2023", "--json").output)
    assert {m["crew"] for m in shown["crews"]} == {"North", "South"}
    c = staff_client("dispatcher")
    suggestions = c.get("/dispatch/suggestions")  # the crews' layer is the active one
    assert suggestions.status_code == 200
    assert "layer wards_2023" in suggestions.get_data(as_text=True)
    assert c.get("/api/dispatch/suggestions?layer=wards_2023").status_code == 200
    assert c.get("/dispatch").status_code == 200
    crew_page = c.get(f"/dispatch/crews/{south.id}").get_data(as_text=True)
    assert "crew remapped" in crew_page and "wards_2015_2023 → wards_2023" in unescape(crew_page)


def test_new_crew_refused_on_the_form(staff_client, board):
    c = staff_client("dispatcher")
    r = c.post("/dispatch/crews", data={"name": "West", "layer": LAYER, "districts": "1,99",
                                        "capacity_per_day": "4"})
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert 'id="new-crew"' in body and 'id="form-error"' in body and 'value="West"' in body
    assert "are not in layer" in body
    assert [x.name for x in board[0].dispatch.crews(active_only=False)] == ["North", "South"]
    suggestions = c.get(f"/api/dispatch/suggestions?layer={LAYER}").get_json()
    assert suggestions and all(s["time_left"].endswith("overdue") for s in suggestions)
