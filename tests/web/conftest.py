"""Open311 fixtures: a city with a service area, the shipped catalogue and an API key."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from shapely import box
from shapely.geometry import mapping

from geo311.catalogue import load_catalogue, read_catalogue
from geo311.intake import submit
from geo311.layers import load_layer
from geo311.model import NewRequest
from tests.prepared import prepared_state

#: Two halves of a box around Chicago, split at lon -87.69: the service area.
WEST = box(-87.95, 41.64, -87.69, 42.03)
EAST = box(-87.69, 41.64, -87.52, 42.03)
LOOP = (-87.6321, 41.8837)  # east half
PILSEN = (-87.6700, 41.8560)  # east half, about 4.6 km from LOOP
AUSTIN = (-87.7650, 41.8940)  # west half
OUTSIDE = (-88.3000, 41.7600)  # Aurora, outside the city


def write_city(path):
    features = [{"type": "Feature", "properties": {"id": name, "name": name.title()},
                 "geometry": mapping(geom)} for name, geom in (("west", WEST), ("east", EAST))]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


@prepared_state("city", fixtures=("city",))
def _city(store, workdir):
    load_layer(store, write_city(workdir / "city.geojson"), name="city", role="service_area",
               id_field="id", name_field="name", activate=True)
    load_catalogue(store, read_catalogue("chicago"), source="chicago")
    return store.accounts.create_api_key("tests")


@pytest.fixture
def city(app, prepared):
    """The app's store with a two-district service area, the Chicago catalogue and a key."""
    store = app.extensions["geo311"].store

    def report(code="SDR", at=LOOP, **kw):
        return submit(store, app.extensions["geo311"].context(),
                      NewRequest(code, lon=at[0], lat=at[1], **kw))

    return SimpleNamespace(store=store, key=prepared, report=report)
