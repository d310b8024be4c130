"""A city for the call-taker desk: service area, Chicago catalogue and knowledge base,
address points (Hermosa and the Loop) and one agent; built once per session and backend."""

from __future__ import annotations

import json
from pathlib import Path

from shapely import box
from shapely.geometry import mapping

from geo311.accounts import create_user
from geo311.layers import load_layer
from tests.conftest import STAFF_PASSWORD
from tests.prepared import prepared_state
from tests.references import load_subset

#: The service area: one box around Chicago.
CITY = box(-87.95, 41.64, -87.52, 42.03)
#: An address point of the loaded subset, and a point 30 m east of it.
DIVERSEY = (-87.712901, 41.931853)
AGENT = "ana"


@prepared_state("desk", base="kb", fixtures=("desk_city",))
def _desk(store, workdir: Path) -> None:
    path = workdir / "city.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "city", "name": "City"},
         "geometry": mapping(CITY)}]}))
    load_layer(store, path, name="city", role="service_area", id_field="id",
               name_field="name", activate=True)
    load_subset(store)
    create_user(store, AGENT, STAFF_PASSWORD, "agent")
