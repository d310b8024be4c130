"""geo311's own base map over HTTP: the streets of a box from the city's centrelines."""

import pytest
import shapely

from tests.call_centre import AGENT  # noqa: F401 (registers the "desk" state)
from tests.prepared import starts_from
from tests.references import TIGER, read_reference

pytestmark = pytest.mark.both_backends

starts_from("desk", "desk_city", module=__name__)


@pytest.fixture
def desk_city(app, prepared):
    return app.extensions["geo311"].store


def test_streets_of_a_box_are_the_centrelines_crossing_it(client, desk_city):
    lines = read_reference(TIGER, "centerlines")[1]
    x, y = lines.geometry.iloc[len(lines) // 2].centroid.coords[0]
    box = (x - 0.004, y - 0.003, x + 0.004, y + 0.003)
    got = client.get("/basemap/streets.geojson?bbox=" + ",".join(map(str, box)))
    assert got.status_code == 200 and "max-age" in got.headers["Cache-Control"]
    expected = sorted(str(s) for s, g in zip(lines["street"], lines.geometry, strict=True)
                      if g.intersects(shapely.box(*box)))
    assert expected and sorted(f["properties"]["name"] for f in got.get_json()["features"]) \
        == expected
    for bad in ("1,2,3", "a,b,c,d", "-88,41,-87,42"):
        refused = client.get(f"/basemap/streets.geojson?bbox={bad}")
        assert refused.status_code == 400 and "bbox" in refused.get_data(as_text=True)


def test_every_page_with_a_map_loads_the_base_map_without_a_tile_server(client, desk_city):
    page = client.get("/").get_data(as_text=True)
    assert "basemap.js" in page and 'data-streets="/basemap/streets.geojson"' in page
    assert client.get("/basemap/labels.geojson").get_json()["features"] == []  # no districts
