"""The crew map and the KPI page in headless Chromium, after logging in through the form."""

from datetime import UTC, datetime, timedelta

import pytest

from geo311 import dispatch as core
from geo311.accounts import create_user
from geo311.dispatch import Crew
from geo311.intake import Context, submit
from geo311.model import NewRequest, Service
from tests.conftest import STAFF_PASSWORD
from tests.prepared import starts_from

pytestmark = pytest.mark.browser
DAY = "2026-11-24"
LAYER = "wards_2015_2023"
XSS = '<img src=x onerror="window.__xss=1">'

FEATURES = """(kind) => {
  const m = window[document.querySelector('.folium-map').id];
  const out = [];
  m.eachLayer(l => { if (l.feature && l.feature.properties && l.feature.properties.kind === kind
                         && l instanceof L.CircleMarker)
                       out.push({crew: l.feature.properties.crew || null,
                                 colour: l.options.color, pos: l.feature.properties.position}); });
  return out;
}"""
ROUTES = """() => {
  const m = window[document.querySelector('.folium-map').id];
  let n = 0;
  m.eachLayer(l => { if (l.feature && l.feature.properties.kind === 'route' && l instanceof L.Polyline) n++; });
  return n;
}"""
OPEN_STOP = """() => {
  const m = window[document.querySelector('.folium-map').id];
  let done = false;
  m.eachLayer(l => { if (!done && l.feature && l.feature.properties.kind === 'stop'
                         && l instanceof L.CircleMarker) { l.fire('click', {latlng: l.getLatLng()}, true); done = true; } });
  return done;
}"""


starts_from("layered", "seeded_url", module=__name__)


@pytest.fixture
def seeded_url(store, backend_url):
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation",
                                   sla_hours=4, sla_clock="24x7")])
    ctx = Context.from_store(store)
    now = datetime.now(UTC)
    made = []
    ages_h = [0.2, 0.4, 3.5, 5, 6, 7, 8, 9, 10, 11, 12, 13]  # 4 h target: 9 late, 1 at risk
    for k, age in enumerate(ages_h):
        lon, lat = -87.72 + (k % 4) * 0.02, 41.88 + (k // 4) * 0.02
        made.append(submit(store, ctx, NewRequest(
            "SCB", lon, lat, requested_datetime=now - timedelta(hours=age))))
    north = core.create_crew(store, Crew(XSS, LAYER, (), ("Sanitation",), 8,
                                         depot_lon=-87.70, depot_lat=41.90))
    south = core.create_crew(store, Crew("South", LAYER, (), ("Sanitation",), 8))
    for r in made[:4]:
        core.create_work_order(store, north.id, [r.id], scheduled=DAY)
    for r in made[4:7]:
        core.create_work_order(store, south.id, [r.id], scheduled=DAY)
    core.order_route(store, north.id, DAY)
    core.order_route(store, south.id, DAY)
    create_user(store, "dina", STAFF_PASSWORD, "dispatcher")
    return backend_url


def test_dispatch_map_and_kpi_after_login(serve, page, seeded_url, store):
    base = serve(seeded_url)
    errors, failed = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(f"{base}/dispatch?date={DAY}&layer={LAYER}")
    assert "/login" in page.url
    page.fill("input[name=username]", "dina")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector(".leaflet-container")
    assert "/dispatch" in page.url and f"date={DAY}" in page.url
    stops = page.evaluate(FEATURES, "stop")
    assert len(stops) == int(page.inner_text("#drawn-stops")) == 7
    by_crew = {}
    for s in stops:
        by_crew.setdefault(s["crew"], []).append(s)
    assert sorted(len(v) for v in by_crew.values()) == [3, 4]
    colours = {c: {s["colour"] for s in v} for c, v in by_crew.items()}
    assert all(len(v) == 1 for v in colours.values())
    assert len(set.union(*colours.values())) == 2  # each crew in its own colour
    assert sorted(s["pos"] for s in by_crew["South"]) == [1, 2, 3]
    assert page.evaluate(ROUTES) == 2
    unassigned = page.evaluate(FEATURES, "unassigned")
    assert len(unassigned) == int(page.inner_text("#drawn-unassigned")) == 5
    breached = page.evaluate(FEATURES, "breached")
    assert len(breached) == int(page.inner_text("#breached")) == 9
    assert len(page.evaluate(FEATURES, "at_risk")) == int(page.inner_text("#at-risk")) == 1
    assert page.evaluate(OPEN_STOP) is True
    popup = page.wait_for_selector(".leaflet-popup-content")
    assert "work order" in popup.inner_text()
    assert page.evaluate("() => window.__xss") is None
    assert XSS in page.inner_text("#crews")  # the crew name shown as text, not run

    page.goto(f"{base}/kpi?layer={LAYER}")
    total = page.locator("#kpi-service tr.total")
    assert total.locator("td.volume").inner_text() == str(store.requests.count())
    assert total.locator("td.backlog").inner_text() == "12"
    assert page.locator("#kpi-district tr").count() >= 3
    assert not errors and not failed, (errors, failed)
