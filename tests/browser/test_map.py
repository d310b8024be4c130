"""The request map in headless Chromium against a real ``geo311 run`` server."""

import pytest

from geo311.imports import import_file, read_mapping
from geo311.intake import Context
from geo311.model import NewRequest
from tests.conftest import SAMPLE_2021_CSV, submit_as_imported
from tests.prepared import prepared_state

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'

COUNT_MARKERS = """() => {
  const m = window[document.querySelector('.folium-map').id];
  let n = 0;
  m.eachLayer(l => { if (l instanceof L.CircleMarker) n++; });
  return n;
}"""

OPEN_XSS_POPUP = """(needle) => {
  const m = window[document.querySelector('.folium-map').id];
  let opened = false;
  m.eachLayer(l => {
    if (!opened && l instanceof L.CircleMarker && l.feature
        && l.feature.properties.popup.includes(needle)) {
      l.fire('click', {latlng: l.getLatLng()}, true);
      opened = true;
    }
  });
  return opened;
}"""


@prepared_state("map", base="layered", fixtures=("seeded_url",), module=__name__)
def _seed(store, workdir):
    ctx = Context.from_store(store)
    import_file(store, ctx, SAMPLE_2021_CSV, read_mapping("chicago-311"))
    submit_as_imported(store, ctx, NewRequest("SCB", -87.6321, 41.8837,
                                              address="121 N LA SALLE ST", description=XSS))


@pytest.fixture
def seeded_url(store, backend_url):
    return backend_url


def test_map_renders_markers_filters_and_escapes(serve, page, seeded_url, store):
    base = serve(seeded_url)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    failed = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(base + "/?limit=300")
    page.wait_for_selector(".leaflet-container")
    drawn = int(page.inner_text("#drawn"))
    assert page.evaluate(COUNT_MARKERS) == drawn
    located = [r for r in store.requests.query(limit=300) if r.lon is not None]
    assert drawn == len(located) and drawn > 250
    assert page.evaluate(COUNT_MARKERS.replace("L.CircleMarker", "L.Polygon")) == 77
    assert page.evaluate(OPEN_XSS_POPUP, "onerror") is True
    popup = page.wait_for_selector(".leaflet-popup-content")
    assert 'onerror="window.__xss=1"' in popup.inner_text()
    assert page.evaluate("() => window.__xss") is None
    assert errors == [] and failed == []

    page.goto(base + "/?status=open&limit=2000")
    page.wait_for_selector(".leaflet-container")
    open_drawn = page.evaluate(COUNT_MARKERS)
    assert open_drawn == len([r for r in store.requests.query(status="open", limit=2000)
                              if r.lon is not None])
    assert 0 < open_drawn < drawn


def test_tracking_page_shows_status_without_script(serve, page, seeded_url, store):
    base = serve(seeded_url)
    target = store.requests.query(limit=1)[0]
    page.goto(f"{base}/requests/{target.id}")
    assert page.inner_text("#tracking-number") == str(target.id)
    assert page.inner_text("#description") == XSS
    assert page.evaluate("() => window.__xss") is None


def test_on_a_phone_the_map_takes_the_width_above_the_form(serve, page, seeded_url):
    base = serve(seeded_url)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "/")
    page.wait_for_selector(".leaflet-container")
    box = page.locator(".folium-map").bounding_box()
    form = page.locator("#report-address").bounding_box()
    assert box["width"] >= 340 and box["height"] >= 0.5 * 844, box
    assert form["y"] > box["y"] + box["height"] - 1  # the form comes after the map
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 800})  # a desktop keeps them side by side
    side = page.locator("#report-address").bounding_box()
    assert side["x"] > page.locator(".folium-map").bounding_box()["x"] + 400
