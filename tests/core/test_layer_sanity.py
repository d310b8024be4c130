"""Districts no city has are findings; the shipped layers of both cities have none."""

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import box

from geo311.boundaries.quality import layer_quality, sanity_findings
from geo311.boundaries.reading import read_layer
from geo311.layerdefs import read_layer_definitions
from tests.conftest import PROJECT_ROOT


def _frame(items):
    return gpd.GeoDataFrame({"district_id": [i for i, _g in items],
                             "name": [None] * len(items)},
                            geometry=[g for _i, g in items], crs=4326)


def _grid(n=6, size=0.01):
    """n × n 1 km-ish squares on Chicago's West Side."""
    return [(f"{r}-{c}", box(-87.75 + c * size, 41.85 + r * size, -87.75 + (c + 1) * size,
                             41.85 + (r + 1) * size)) for r in range(n) for c in range(n)]


def _kinds(found):
    return {(f["district_id"], f["kind"]) for f in found}


def test_a_good_grid_has_no_findings():
    city = _frame(_grid())
    assert sanity_findings(city) == []
    assert sanity_findings(city, shapely.union_all(city.geometry.to_numpy())) == []


def test_a_polygon_at_zero_zero_is_far_outside_with_or_without_a_service_area():
    items = [*_grid(), ("bad", box(0, 0, 0.7, 0.7))]  # about 6,000 km² in the Gulf of Guinea
    city = _frame(items)
    area = shapely.union_all(_frame(_grid()).geometry.to_numpy())
    for found in (sanity_findings(city, area), sanity_findings(city)):
        assert ("bad", "far_outside") in _kinds(found)
        far = next(f for f in found if f["kind"] == "far_outside")
        assert "km from" in far["detail"] and int(far["detail"].split()[0].replace(",", "")) > 9000
    assert ("bad", "implausible_area") in _kinds(sanity_findings(city))


def test_empty_slivers_and_districts_drawn_twice_are_findings():
    grid = _grid()
    sliver = ("sliver", box(-87.75 - 5e-5, 41.85, -87.75, 41.85 + 5e-5))  # 23 m²
    twice = ("twice", box(-87.75, 41.85, -87.75 + 0.01, 41.85 + 0.01))  # = district 0-0
    empty = ("empty", shapely.Polygon())
    city = _frame([*grid, sliver, twice, empty])
    overlaps, _gaps = layer_quality(city.iloc[:-1])
    found = _kinds(sanity_findings(city, None, overlaps))
    assert {("sliver", "implausible_area"), ("twice", "overlapping"), ("0-0", "overlapping"),
            ("empty", "empty")} <= found
    assert not any(d.startswith(("1-", "2-", "3-")) for d, _k in found)


def _shipped():
    for folder in (PROJECT_ROOT / "layers", PROJECT_ROOT / "layers" / "boston"):
        yield from read_layer_definitions(folder, folder.parent if folder.name == "boston"
                                          else PROJECT_ROOT)


@pytest.mark.parametrize("definition", list(_shipped()), ids=lambda d: d.name)
def test_shipped_layers_have_no_findings(definition):
    loaded = read_layer(definition.source, id_field=definition.id_field,
                        name_field=definition.name_field, crs=definition.crs,
                        id_rule=definition.id_rule)
    overlaps = loaded.report.overlaps
    assert sanity_findings(loaded.features, None, overlaps) == []
