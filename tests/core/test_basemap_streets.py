"""Streets drawn from intersections: in order along each street, broken at long gaps."""

import pandas as pd
import pytest
import shapely

from geo311.basemap import StreetIndex, streets_from_intersections
from geo311.errors import InvalidRequest
from geo311.geodesy import haversine_m

STEP = 0.0024  # about 200 m of latitude


def _grid():
    """Three north-south avenues crossing three east-west streets, given in shuffled order,
    and a fourth crossing of Oak far to the north (past a gap)."""
    rows = []
    for i, avenue in enumerate(["ASH AVE", "ELM AVE", "OAK AVE"]):
        for j, street in enumerate(["1ST ST", "2ND ST", "3RD ST"]):
            rows.append((avenue, street, -87.70 + i * STEP * 1.3, 41.90 + j * STEP))
    rows.append(("OAK AVE", "9TH ST", -87.70 + 2 * STEP * 1.3, 41.90 + 12 * STEP))
    frame = pd.DataFrame(rows, columns=["street_1", "street_2", "lon", "lat"])
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)


def test_each_street_is_one_line_through_its_crossings_in_order_and_gaps_break_it():
    names, lines = streets_from_intersections(_grid())
    by_name = {}
    for name, line in zip(names, lines, strict=True):
        by_name.setdefault(name, []).append(line)
    assert set(by_name) == {"ASH AVE", "ELM AVE", "OAK AVE", "1ST ST", "2ND ST", "3RD ST"}
    assert all(len(v) == 1 for k, v in by_name.items() if k != "OAK AVE")
    assert len(by_name["OAK AVE"]) == 1  # 9TH ST is 2 km on: Oak stops at 3RD ST here
    for name, (line,) in by_name.items():
        xy = shapely.get_coordinates(line)
        assert len(xy) == 3
        steps = haversine_m(xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1])
        ends = haversine_m(xy[0, 0], xy[0, 1], xy[-1, 0], xy[-1, 1])
        assert steps.sum() == pytest.approx(ends, rel=1e-6), name  # in order, no zigzag
    assert "9TH ST" not in by_name  # one crossing makes no street


def test_the_index_answers_a_box_and_refuses_one_too_large():
    index = StreetIndex.from_references(pd.DataFrame({"street": [], "geometry": []}), _grid())
    west = index.within((-87.7005, 41.899, -87.6995, 41.9060))
    assert {f["properties"]["name"] for f in west["features"]} == {
        "ASH AVE", "1ST ST", "2ND ST", "3RD ST"}
    with pytest.raises(InvalidRequest, match="at most"):
        index.within((-87.9, 41.6, -87.5, 42.0))
    with pytest.raises(InvalidRequest):
        index.within((-87.6, 41.9, -87.7, 41.95))  # west above east
