"""Area alerts in Chromium: a district by keyboard, an area drawn by clicks, axe-clean, on a phone."""

import json

import pytest
from shapely.geometry import Point, shape

from tests.browser.accessibility import axe_clean
from tests.prepared import starts_from

pytestmark = pytest.mark.browser

starts_from("layered", "alerts_url", module=__name__)


@pytest.fixture
def alerts_url(store, backend_url):
    return backend_url



def _tab_to(page, element_id):
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} was not reached with Tab")


def test_a_district_alert_by_keyboard_on_a_phone(serve, page, store, alerts_url):
    base = serve(alerts_url)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/alerts")
    axe_clean(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _tab_to(page, "alerts-email")
    page.keyboard.type("block.club@example.org")
    _tab_to(page, "alerts-district")
    first = page.eval_on_selector("#alerts-district option[value*=':']", "o => o.value")
    page.select_option("#alerts-district", first)  # as arrow keys on the focused select do
    _tab_to(page, "alerts-send")
    page.keyboard.press("Enter")
    page.wait_for_selector("#alerts-asked")
    axe_clean(page)
    [sub] = store.areas._select(True)
    assert (sub.email, f"{sub.layer}:{sub.district_id}", sub.status) == (
        "block.club@example.org", first, "pending")


def test_an_area_is_drawn_with_clicks(serve, page, store, alerts_url):
    base = serve(alerts_url)
    page.goto(f"{base}/alerts")
    page.wait_for_function("() => window.geo311 && window.geo311.ready")
    centre = page.evaluate("() => { const c = window.geo311.map.getCenter(); "
                           "return [c.lng, c.lat]; }")
    # Four corners about 300 m around the centre, clicked as a resident would.
    for dx, dy in ((-0.004, -0.003), (0.004, -0.003), (0.004, 0.003), (-0.004, 0.003)):
        page.evaluate("([lat, lon]) => window.geo311.map.fire('click', "
                      "{latlng: L.latLng(lat, lon)})", [centre[1] + dy, centre[0] + dx])
    page.click("#area-finish")
    drawn = json.loads(page.input_value("#alerts-area"))
    assert drawn["type"] == "Polygon" and len(drawn["coordinates"][0]) == 5
    assert shape(drawn).contains(Point(centre))
    page.fill("#alerts-email", "drawn@example.org")
    page.click("#alerts-send")
    page.wait_for_selector("#alerts-asked, #alerts-error")
    assert page.locator("#alerts-error").count() == 0, page.inner_text("#alerts-error")
    [sub] = store.areas._select(True)
    assert sub.area and shape(json.loads(sub.area)).contains(Point(centre))
