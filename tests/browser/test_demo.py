"""The README's first command: ``geo311 demo`` loads the shipped data and serves the map."""

import pytest

from tests.browser.test_map import COUNT_MARKERS

pytestmark = pytest.mark.browser


def test_demo_serves_the_shipped_data(serve, page, backend_url, store, demo_output):
    """On a copy of the session's demo database: ``demo`` finds it loaded, then serves."""
    base = serve(backend_url, command="demo", timeout_s=300)
    assert store.requests.count() == 55_167 + 5_000
    assert {v.layer for v in store.layers.versions(active_only=True)} == {
        "community_areas", "wards_2015_2023", "police_districts_2012"}
    page.goto(base + "/")
    page.wait_for_selector(".leaflet-container")
    assert page.evaluate(COUNT_MARKERS) == int(page.inner_text("#drawn")) == 500
    assert page.evaluate(COUNT_MARKERS.replace("L.CircleMarker", "L.Polygon")) == 77
