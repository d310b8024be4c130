"""Area notices in Chromium: the banner on the citizen map and tracking page inside the
area and not outside it; the emergency managers' page drawn and posted by keyboard;
axe-core finds nothing serious on either."""

import pytest
import shapely
from axe_playwright_python.sync_playwright import Axe

from geo311.accounts import create_user
from geo311.intake import Context, submit
from geo311.model import NewRequest, Service
from geo311.notices import Area, post_notice
from tests.conftest import STAFF_PASSWORD
from tests.prepared import starts_from

pytestmark = pytest.mark.browser
starts_from("layered", "notice_url", module=__name__)

LOOP = (-87.6321, 41.8837)  # inside AREA
AUSTIN = (-87.7650, 41.8940)  # outside it
AREA = shapely.box(-87.645, 41.875, -87.620, 41.895)
XSS = '<img src=x onerror="window.__xss=1">'
CLICK_AT = """([lat, lon]) => {
  const m = window.geo311.map;
  m.setView([lat, lon], 16, {animate: false});
  const p = m.latLngToContainerPoint([lat, lon]);
  const r = m.getContainer().getBoundingClientRect();
  window.geo311.ready = false;
  return [r.left + p.x, r.top + p.y];
}"""


@pytest.fixture
def notice_url(store, backend_url):
    """Community areas as the service area, two services, a notice around the Loop."""
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation"),
                            Service("SDR", "Street Light Out", "Streets")])
    create_user(store, "em", STAFF_PASSWORD, "emergency")
    return backend_url


def _serious(page):
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, results.generate_report()


def _click(page, at):
    page.mouse.click(*page.evaluate(CLICK_AT, [at[1], at[0]]))
    page.wait_for_function("() => window.geo311.ready")


def test_the_banner_shows_inside_the_area_and_not_outside(serve, page, notice_url, store):
    ctx = Context.from_store(store)
    inside = submit(store, ctx, NewRequest("SDR", *LOOP))
    outside = submit(store, ctx, NewRequest("SDR", *AUSTIN))
    notice = post_notice(store, messages={"en": f"Flooding {XSS}", "es": "Inundación"},
                         severity="Severe", area=Area(AREA, "Loop"), suspend=["SCB"],
                         actor="em")
    base = serve(notice_url)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/")
    page.wait_for_selector(".leaflet-container")
    page.locator(".folium-map").scroll_into_view_if_needed()
    assert page.locator("#area-notices .area-notice").count() == 0

    _click(page, (LOOP[0] + 0.004, LOOP[1] + 0.004))  # inside, clear of the request's marker
    banner = page.locator("#area-notices .area-notice")
    assert banner.count() == 1 and banner.get_attribute("data-notice") == str(notice.id)
    text = banner.inner_text()
    assert f"Severe notice for this area: Flooding {XSS}" in text
    assert "Reports of Sanitation Code Violation are not taken here" in text
    assert page.evaluate("() => window.__xss") is None
    _serious(page)

    _click(page, (AUSTIN[0] + 0.004, AUSTIN[1]))  # outside: the banner goes
    assert page.locator("#area-notices .area-notice").count() == 0

    page.goto(f"{base}/requests/{inside.id}")
    assert page.locator("#area-notices .area-notice").count() == 1
    _serious(page)
    page.goto(f"{base}/requests/{outside.id}")
    assert page.locator("#area-notices .area-notice").count() == 0
    spanish = page.context.browser.new_context(locale="es-ES").new_page()
    spanish.goto(f"{base}/requests/{inside.id}")
    assert spanish.inner_text("#area-notices .area-notice-message") == "Inundación"
    spanish.context.close()
    assert errors == []


def test_an_emergency_manager_draws_and_posts_a_notice_by_keyboard(serve, page, notice_url,
                                                                  store):
    base = serve(notice_url)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/login")
    page.focus("input[name=username]")
    page.keyboard.type("em")
    page.keyboard.press("Tab")
    page.keyboard.type(STAFF_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/staff/notices")
    page.wait_for_selector("#notice-map.leaflet-container")
    _serious(page)

    page.focus("#message-en")
    page.keyboard.type("Boil water advisory")
    page.focus("#notice-map")
    for key in ("Enter", "ArrowRight", "Enter", "ArrowDown", "Enter"):  # three corners
        page.keyboard.press(key)
        if key.startswith("Arrow"):
            page.wait_for_function("() => !window.geo311Notices.map._panAnim || "
                                   "!window.geo311Notices.map._panAnim._inProgress")
    assert page.evaluate("() => window.geo311Notices.corners()") == 3
    assert "the area is drawn" in page.inner_text("#draw-status")
    page.focus("#post-notice")
    page.keyboard.press("Enter")
    page.wait_for_selector("p.notice[role=status]")
    assert "Notice 1 posted (Moderate, drawn area)." in page.inner_text("main")
    [notice] = store.notices.all()
    assert notice.messages == {"en": "Boil water advisory"} and notice.created_by == "em"
    assert notice.area.area > 0 and len(notice.area.geoms[0].exterior.coords) == 4
    _serious(page)
    assert errors == []


def test_the_desk_reads_the_notice_for_the_callers_place(serve, page, notice_url, store):
    create_user(store, "ana", STAFF_PASSWORD, "agent")
    notice = post_notice(store, messages={"en": "Flooding: no street-light reports"},
                         severity="Extreme", area=Area(AREA, "Loop"), suspend=["SDR"],
                         actor="em")
    base = serve(notice_url)
    page.goto(base + "/login")
    page.focus("input[name=username]")
    page.keyboard.type("ana")
    page.keyboard.press("Tab")
    page.keyboard.type(STAFF_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/staff/intake")
    page.wait_for_selector("#desk-map.leaflet-container")
    for at, expected in ((AUSTIN, 0), (LOOP, 1)):
        page.evaluate("([lat, lon]) => window.geo311Desk.map.setView([lat, lon], 16, "
                      "{animate: false})", [at[1], at[0]])
        page.focus("#desk-map")
        page.keyboard.press("Enter")  # the call-taker places the report at the map's centre
        page.wait_for_function(f"() => window.geo311Desk.busy === 0 && "
                               f"Math.abs(document.getElementById('lat').value - {at[1]}) "
                               f"< 1e-4")
        page.wait_for_function(f"() => document.querySelectorAll('#desk-notices "
                               f".area-notice').length === {expected}")
    text = page.inner_text("#desk-notices")
    assert f"Extreme notice #{notice.id} here: Flooding: no street-light reports" in text
    assert "Suspended here: Street Light Out." in text
