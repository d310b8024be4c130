"""geo311's own base map in Chromium: district names on the map, streets once zoomed in."""

import pytest

from tests.prepared import starts_from

pytestmark = pytest.mark.browser

starts_from("layered", "map_url", module=__name__)


@pytest.fixture
def map_url(store, backend_url):
    return backend_url


def test_the_citizen_map_shows_district_names_and_asks_for_streets_when_zoomed_in(
        serve, page, store, map_url):
    base = serve(map_url)
    page.goto(base + "/")
    expected = page.evaluate("async () => (await (await fetch('/basemap/labels.geojson'))"
                             ".json()).features.map(f => f.properties.name).sort()")
    assert len(expected) > 10
    page.wait_for_function(f"() => document.querySelectorAll('.district-label').length "
                           f"=== {len(expected)}")
    shown = sorted(page.locator(".district-label").all_inner_texts())
    assert shown == expected
    assert page.locator(".district-label[tabindex]").count() == 0  # not in the Tab order
    assert page.get_attribute(".folium-map", "data-streets") is None  # zoomed out: none
    # The page opens with an animated fit to the city; if it is still running, its end
    # puts its own zoom back, so zoom in again until the map stays there.
    page.wait_for_function("() => { const m = window.geo311.map; if (m.getZoom() !== 15) "
                           "m.setView(m.getCenter(), 15, {animate: false}); "
                           "return m.getZoom() === 15; }", polling=500)
    page.wait_for_function("() => document.querySelector('.folium-map').dataset.streets "
                           "!== undefined")
