"""Hotspot, emerging and citizen maps in headless Chromium against a real ``geo311 run``."""

import re

import pytest

from geo311.gazetteer import learn_addresses
from geo311.geodesy import haversine_m
from geo311.imports import import_file, read_mapping
from geo311.intake import Context
from geo311.model import NewRequest, Service
from tests.conftest import SAMPLE_2021_CSV, submit_as_imported
from tests.prepared import prepared_state

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
SPOT = (-87.6321, 41.8837)  # 121 N LaSalle St, lon/lat

COUNT = """(kind) => {
  const m = window[document.querySelector('.folium-map').id];
  let n = 0;
  m.eachLayer(l => {
    const p = l.feature && l.feature.properties;
    if (kind === 'hex' && p && p.c !== undefined) n++;
    if (kind === 'emerging' && p && p.l !== undefined) n++;
    if (kind === 'district' && p && p.fill !== undefined) n++;
  });
  return n;
}"""

HOVER_HOTTEST = """() => {
  const m = window[document.querySelector('.folium-map').id];
  let best = null;
  m.eachLayer(l => {
    const p = l.feature && l.feature.properties;
    if (p && p.c !== undefined && (!best || p.r > best.feature.properties.r)) best = l;
  });
  best.fire('mouseover', {latlng: best.getBounds().getCenter()}, true);
  return best.feature.properties.r;
}"""


@prepared_state("hotspot_maps", base="layered", fixtures=("seeded_url",), module=__name__)
def _seed(store, workdir):
    ctx = Context.from_store(store)
    import_file(store, ctx, SAMPLE_2021_CSV, read_mapping("chicago-311"))
    learn_addresses(store)  # the address search geocodes against the imported history
    store.catalogue.upsert([Service("XSSV", XSS, XSS)])
    submit_as_imported(store, ctx, NewRequest("SCB", *SPOT, address="121 N LA SALLE ST",
                                              description=XSS))
    submit_as_imported(store, ctx, NewRequest("XSSV", SPOT[0] + 0.001, SPOT[1],
                                              description=XSS, address=XSS))


@pytest.fixture
def seeded_url(store, backend_url):
    return backend_url


def _watch(page):
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    # A fetch still in flight when a form submission navigates away is aborted by the
    # browser (net::ERR_ABORTED): not a fault. Anything else that fails is.
    page.on("requestfailed", lambda r: None if r.failure == "net::ERR_ABORTED"
            else problems.append(f"{r.url} {r.failure}"))
    return problems


def test_hotspot_map_draws_cells_tooltips_and_filters(serve, page, seeded_url):
    base = serve(seeded_url)
    problems = _watch(page)
    page.goto(base + "/hotspots?res=8")
    page.wait_for_selector(".leaflet-container")
    drawn = int(page.inner_text("#drawn"))
    assert drawn > 50 and page.evaluate(COUNT, "hex") == drawn
    top = page.evaluate(HOVER_HOTTEST)
    tip = page.wait_for_selector(".leaflet-tooltip").inner_text()
    assert f"{top} reporters" in tip and "Gi* z =" in tip
    assert int(page.inner_text("#hot")) > 0

    page.select_option("select[name=service]", "SCB")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r"service=SCB"))
    page.wait_for_selector(".leaflet-container")
    scb = int(page.inner_text("#drawn"))
    assert 0 < scb < drawn and page.evaluate(COUNT, "hex") == scb

    page.goto(base + "/hotspots?res=9")
    assert page.evaluate(COUNT, "hex") == int(page.inner_text("#drawn")) > drawn
    page.goto(base + "/hotspots?res=8&layer=community_areas&metric=reporters")
    assert page.evaluate(COUNT, "district") == 77
    assert page.evaluate(COUNT, "hex") == drawn
    assert page.evaluate("() => window.__xss") is None
    assert problems == []


def test_emerging_map_renders_and_filters(serve, page, seeded_url):
    base = serve(seeded_url)
    problems = _watch(page)
    page.goto(base + "/hotspots/emerging?res=8&weeks=2&end=2021-01-02")
    page.wait_for_selector(".leaflet-container")
    drawn = int(page.inner_text("#drawn"))
    assert drawn > 50 and page.evaluate(COUNT, "emerging") == drawn
    page.goto(base + "/hotspots/emerging?res=8&weeks=2&end=2021-01-02&service=SCB")
    assert 0 < page.evaluate(COUNT, "emerging") == int(page.inner_text("#drawn")) < drawn
    assert page.evaluate("() => window.__xss") is None
    assert problems == []


def test_no_payload_runs_on_any_page(serve, page, seeded_url, store):
    base = serve(seeded_url)
    problems = _watch(page)
    xss = store.requests.query(service_codes=["XSSV"], limit=1)[0]
    for path in ("/", "/hotspots", "/hotspots?service=XSSV&layer=community_areas",
                 "/hotspots/emerging?weeks=2&end=2021-01-02", f"/requests/{xss.id}", "/layers"):
        page.goto(base + path)
        page.wait_for_load_state("load")
        assert page.evaluate("() => window.__xss") is None, path
        if path.startswith("/requests/"):
            assert page.inner_text("#description") == XSS
    assert problems == []


CLICK_AT = """([lat, lon]) => {
  const m = window.geo311.map;
  const p = m.latLngToContainerPoint([lat, lon]);
  const r = m.getContainer().getBoundingClientRect();
  return [r.left + p.x, r.top + p.y];
}"""


def test_citizen_click_lists_open_requests_and_report_joins_group(serve, page, seeded_url,
                                                                  store):
    base = serve(seeded_url)
    problems = _watch(page)
    page.goto(base + "/")
    page.wait_for_selector(".leaflet-container")
    page.locator(".folium-map").scroll_into_view_if_needed()
    # Close enough that 33 m north of the seeded requests is clear of their markers (at
    # the city-wide zoom a click there lands on a marker, which takes the click).
    page.evaluate("([lat, lon]) => { window.geo311.map.setView([lat, lon], 16, "
                  "{animate: false}); }", [SPOT[1] + 0.0003, SPOT[0]])
    x, y = page.evaluate(CLICK_AT, [SPOT[1] + 0.0003, SPOT[0]])  # 33 m north: no marker there
    page.mouse.click(x, y)
    page.wait_for_function("() => window.geo311.ready")
    lat, lon = float(page.input_value("#report-lat")), float(page.input_value("#report-long"))
    assert abs(lat - SPOT[1] - 0.0003) < 2e-3 and abs(lon - SPOT[0]) < 2e-3  # a pixel at z10
    want = [r.id for r, _ in store.requests.near(lon, lat, 400, status="open", limit=10_000)
            if r.duplicate_of is None]
    markers = page.evaluate("() => window.geo311.around.getLayers().length")
    assert markers == len(want) == page.locator("#around-list > li").count() >= 2

    opened = page.evaluate("""() => {
      let done = false;
      window.geo311.around.eachLayer(l => {
        if (!done && l.getPopup().getContent().textContent.includes('onerror')) {
          l.openPopup(); done = true; }
      });
      return done;
    }""")
    assert opened
    assert "onerror=" in page.wait_for_selector(".leaflet-popup-content").inner_text()
    assert page.evaluate("() => window.__xss") is None

    known = store.addresses.trusted().iloc[0]
    page.fill("#search-q", "zzqx nowhere")
    page.click("#search button[type=submit]")
    page.wait_for_function("() => document.getElementById('search-message').textContent")
    assert page.inner_text("#search-message").startswith("Address not found:")
    page.fill("#search-q", known["address"].lower())
    page.click("#search button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('search-message').textContent.startsWith('Found')")
    centre = page.evaluate("() => window.geo311.map.getCenter()")
    assert abs(centre["lat"] - known["lat"]) < 1e-3 and abs(centre["lng"] - known["lon"]) < 1e-3
    assert page.input_value("#report-address") != ""
    page.wait_for_function("() => window.geo311.ready")
    page.evaluate("([lat, lon]) => { window.geo311.map.setView([lat, lon], 16); }",
                  [SPOT[1] + 0.0003, SPOT[0]])
    page.mouse.click(*page.evaluate(CLICK_AT, [SPOT[1] + 0.0003, SPOT[0]]))
    page.wait_for_function("() => window.geo311.ready")

    page.select_option("#report-service", "SCB")
    page.wait_for_selector("#suggestions:not([hidden])")
    assert page.locator("#suggestion-list > li").count() >= 1
    page.fill("#report-description", "still there")
    first = [r for r in store.requests.query(service_codes=["SCB"], limit=10) if r.description == XSS][0]
    page.click(f"#suggestion-list button:has-text('#{first.id}')")
    page.wait_for_selector("#outcome")
    assert page.inner_text("#outcome") == "Already reported"
    assert page.inner_text("#tracking-number") == str(first.id)
    assert page.inner_text("#reporter-count") == "2"
    assert page.evaluate("() => window.__xss") is None
    assert problems == []


def test_a_map_click_fills_in_the_nearest_address_unless_one_was_typed(serve, page,
                                                                       seeded_url, store):
    base = serve(seeded_url)
    page.goto(base + "/")
    page.wait_for_selector(".leaflet-container")
    points = store.addresses.reference_frames()["points"]
    lon_all, lat_all = points["lon"].to_numpy(float), points["lat"].to_numpy(float)
    spot = points.iloc[len(points) // 2]
    lat, lon = float(spot["lat"]) + 0.0001, float(spot["lon"])  # 11 m north of it
    # The nearest known address to the clicked place, computed here (haversine).
    nearest = points.iloc[int(haversine_m(lon_all, lat_all, lon, lat).argmin())]
    click = ("([lat, lon]) => { window.geo311.ready = false; "
             "window.geo311.map.fire('click', {latlng: L.latLng(lat, lon)}); }")
    page.evaluate(click, [lat, lon])
    page.wait_for_function("() => window.geo311.ready")
    assert page.input_value("#report-address") == nearest["address"]
    assert nearest["address"] in page.inner_text("#address-from-map")
    # Another click moves a filled-in address along; a typed one stays as typed.
    page.fill("#report-address", "the alley behind the church")
    page.evaluate(click, [float(points.iloc[0]["lat"]), float(points.iloc[0]["lon"])])
    page.wait_for_function("() => window.geo311.ready")
    assert page.input_value("#report-address") == "the alley behind the church"
    assert page.inner_text("#address-from-map") == ""
