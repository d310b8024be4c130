"""The validation report page's map in headless Chromium against a real server."""

import geopandas as gpd
import pytest
import shapely

from geo311.accounts import create_user
from geo311.layers import load_layer
from tests.conftest import SHAPEFILES, STAFF_PASSWORD, load_shipped

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__xss=1">'

COUNT = """(kind) => {
  const m = window[document.querySelector('.folium-map').id];
  let n = 0;
  m.eachLayer(l => { if (l instanceof L[kind] && !(kind === 'Polygon' && l instanceof L.Rectangle)) n++; });
  return n;
}"""

TOOLTIPS = """() => {
  const m = window[document.querySelector('.folium-map').id];
  const out = [];
  m.eachLayer(l => { if (l instanceof L.Polygon && l.feature) out.push(l.feature.properties.label); });
  return out;
}"""


def test_report_map_shows_the_layer_and_its_findings(serve, page, store, backend_url, tmp_path):
    load_shipped(store, "community_areas")
    load_layer(store, SHAPEFILES / "wards_2023", name="wards_2023", id_field="ward",
               activate=False)
    evil = gpd.GeoDataFrame({"ward": ["1", XSS]}, crs=4326, geometry=[
        shapely.box(-87.70, 41.80, -87.69, 41.81), shapely.box(-87.69, 41.80, -87.68, 41.81)])
    evil.to_file(tmp_path / "evil.geojson")
    load_layer(store, tmp_path / "evil.geojson", name="evil", title=XSS, id_field="ward",
               activate=False)
    info = store.layers.version("wards_2023").report
    create_user(store, "gina", STAFF_PASSWORD, "gis")
    base = serve(backend_url)
    errors, failed = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(base + "/gis/layers/wards_2023/versions/1/report")
    assert "/login" in page.url  # GIS pages are for staff
    page.fill("input[name=username]", "gina")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector(".leaflet-container")
    assert page.evaluate(COUNT, "Polygon") == 50 == int(page.inner_text("#feature-count"))
    findings = len(info["gaps"]) + len(info["overlaps"]) + len(info["outside"])
    assert findings > 0
    assert page.evaluate(COUNT, "CircleMarker") == findings
    assert sorted(page.evaluate(TOOLTIPS), key=int) == [str(i) for i in range(1, 51)]
    assert errors == [] and failed == []

    page.goto(base + "/gis/layers/evil/versions/1/report")
    page.wait_for_selector(".leaflet-container")
    assert page.evaluate(COUNT, "Polygon") == 2
    labels = page.evaluate(TOOLTIPS)
    assert any("onerror" in label for label in labels)
    page.evaluate("""() => {
      const m = window[document.querySelector('.folium-map').id];
      m.eachLayer(l => { if (l instanceof L.Polygon && l.feature
          && l.feature.properties.label.includes('onerror'))
        l.fire('mouseover', {latlng: l.getCenter()}, true); });
    }""")
    tooltip = page.wait_for_selector(".leaflet-tooltip")
    assert 'onerror="window.__xss=1"' in tooltip.inner_text()
    assert XSS in page.inner_text("#summary")  # the title, shown as text
    assert page.evaluate("() => window.__xss") is None
