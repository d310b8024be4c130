"""The dispatch board fixes in headless Chromium: accept together, rings under stops, form errors."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from geo311 import dispatch as core
from geo311.accounts import create_user
from geo311.dispatch import Crew
from geo311.intake import Context, submit
from geo311.model import NewRequest, Service
from tests.conftest import STAFF_PASSWORD
from tests.prepared import starts_from

pytestmark = pytest.mark.browser
LAYER = "wards_2015_2023"
CHI = ZoneInfo("America/Chicago")

starts_from("layered", "late_url", module=__name__)

# The centres of the stops, in page coordinates, with the map scrolled into view.
STOP_CENTRES = """() => {
  const m = window[document.querySelector('.folium-map').id];
  m.getContainer().scrollIntoView();
  const box = m.getContainer().getBoundingClientRect();
  const out = [];
  m.eachLayer(l => {
    if (!(l.feature && l.feature.properties.kind === 'stop' && l instanceof L.CircleMarker)) return;
    const p = m.latLngToContainerPoint(l.getLatLng());
    out.push([box.left + p.x, box.top + p.y]);
  });
  return out;
}"""
COUNT = """(kind) => {
  const m = window[document.querySelector('.folium-map').id];
  let n = 0;
  m.eachLayer(l => { if (l.feature && l.feature.properties.kind === kind && l instanceof L.CircleMarker) n++; });
  return n;
}"""


@pytest.fixture
def late_url(store, backend_url):
    """Six sanitation requests 5 to 10 hours old on a 4-hour clock: all late."""
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation",
                                    sla_hours=4, sla_clock="24x7")])
    ctx = Context.from_store(store)
    now = datetime.now(UTC)
    for k in range(6):
        submit(store, ctx, NewRequest("SCB", -87.70 + (k % 3) * 0.03, 41.88 + (k // 3) * 0.03,
                                      requested_datetime=now - timedelta(hours=5 + k)))
    core.create_crew(store, Crew("North", LAYER, (), ("Sanitation",), 8,
                                 depot_lon=-87.66, depot_lat=41.92))
    core.create_crew(store, Crew("South", LAYER, (), ("Sanitation",), 8,
                                 depot_lon=-87.66, depot_lat=41.85))
    create_user(store, "dina", STAFF_PASSWORD, "dispatcher")
    return backend_url


def test_dispatch_board_reads_right(serve, page, late_url, store):
    base = serve(late_url)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "dina")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.goto(f"{base}/dispatch/suggestions?layer={LAYER}")
    cells = page.locator("#suggestions td.time-left").all_inner_texts()
    assert len(cells) == 6 and all(c.endswith("hour overdue") or c.endswith("hours overdue")
                                   for c in cells), cells
    page.click("#accept")  # all six ticked, as suggested
    page.wait_for_selector(".leaflet-container")
    orders = store.dispatch.work_orders()
    assert sum(len(o.request_ids) for o in orders) == 6
    per_crew_day = {(o.crew_id, o.scheduled_date) for o in orders}
    assert len(orders) == len(per_crew_day)  # one work order per crew and day
    first = min(o.scheduled_date for o in orders)
    assert f"date={first}" in page.url
    assert page.inner_text("#accepted").startswith("6 suggestions accepted")
    on_first = [o for o in orders if o.scheduled_date == first]
    assert int(page.inner_text("#drawn-stops")) == sum(len(o.request_ids) for o in on_first)
    assert page.locator("#day-orders tr").count() == 1 + len(on_first)

    # every stop is late, so each sits on a ring: the stop is on top, before and after toggling
    assert page.evaluate(COUNT, "breached") == int(page.inner_text("#breached")) == 6
    _click_each_stop(page)
    page.hover(".leaflet-control-layers")
    toggle = page.locator(".leaflet-control-layers-overlays label",
                          has_text="Late and at risk (SLA)").locator("input")
    toggle.uncheck()
    assert page.evaluate(COUNT, "breached") == 0
    assert page.evaluate(COUNT, "stop") == int(page.inner_text("#drawn-stops"))
    toggle.check()
    assert page.evaluate(COUNT, "breached") == 6
    _click_each_stop(page)  # the rings came back under the stops

    # "done" without a note: the message on the form, the work order unchanged
    order = on_first[0]
    page.goto(f"{base}/dispatch/work-orders/{order.id}")
    page.select_option("#status-form select[name=status]", "done")
    page.click("#status-form button")
    assert page.locator("#form-error").is_visible()
    assert "needs a resolution note" in page.inner_text("#status-form")
    assert page.inner_text("#wo-status") == "assigned"
    page.fill("#status-form input[name=resolution]", "Picked up")
    page.click("#status-form button")
    assert page.inner_text("#wo-status") == "done"

    # the SLA board in the city's time, with words and readable reasons
    page.goto(f"{base}/dispatch/sla")
    late = [r for r in store.requests.query(limit=10) if r.status == "open"][0]
    due = late.expected_datetime.astimezone(CHI)
    row = page.locator(f"#sla-board tr:has(a[href$='/{late.id}'])")
    assert row.locator("td.due").inner_text() == f"{due:%Y-%m-%d %H:%M} {due.tzname()}"
    assert "overdue" in row.locator("td.time-left").inner_text()
    assert "Waiting for resident" in page.locator("#sla-board select").first.inner_text()
    assert not errors, errors


def _click_each_stop(page):
    """Click the centre of every stop: the stop's popup opens, not its ring's."""
    page.wait_for_timeout(1500)  # let the map settle: an early click opens no popup
    centres = page.evaluate(STOP_CENTRES)
    assert centres
    for x, y in centres:
        page.mouse.click(x, y)
        popup = page.wait_for_selector(".leaflet-popup-content", timeout=5000)
        text = popup.inner_text()
        assert "work order" in text and "breached" not in text, text
        page.keyboard.press("Escape")
        page.evaluate("() => window[document.querySelector('.folium-map').id].closePopup()")
