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
    # Open311 answers at once: records the background refresh has not built yet are built
    # by the reader, and every record is the request's.
    listed = page.request.get(base + "/open311/v2/requests.json?page_size=50&start_date="
                              "2021-01-01T00:00:00Z&end_date=2021-01-03T00:00:00Z").json()
    assert len(listed) == 50 and all(r["service_request_id"] for r in listed)
