"""Which new district takes over from an old one: same id, else largest overlap."""

import geopandas as gpd
from shapely.geometry import box

from geo311.boundaries.succession import match_districts

# about 1.1 km squares near the Loop, in lon/lat
D = 0.01


def frame(items):
    return gpd.GeoDataFrame({"district_id": [i for i, _g in items]},
                            geometry=[g for _i, g in items], crs=4326)


OLD = frame([("1", box(-87.65, 41.88, -87.65 + D, 41.88 + D)),
             ("2", box(-87.64, 41.88, -87.64 + D, 41.88 + D)),
             ("9", box(-87.60, 41.80, -87.60 + D, 41.80 + D))])


def test_same_id_is_kept_while_it_covers_at_least_half():
    new = frame([("1", box(-87.65, 41.88, -87.65 + D * 0.6, 41.88 + D)),  # 60 % of old 1
                 ("7", box(-87.65 + D * 0.6, 41.88, -87.63, 41.88 + D))])
    got = match_districts(OLD, new, ["1"])["1"]
    assert (got.new, got.how) == ("1", "same id")
    assert abs(got.share - 0.6) < 0.01


def test_a_number_reused_elsewhere_does_not_keep_the_crew():
    new = frame([("1", box(-87.65, 41.88, -87.65 + D * 0.3, 41.88 + D)),  # 30 % of old 1
                 ("7", box(-87.65 + D * 0.3, 41.88, -87.63, 41.88 + D))])
    got = match_districts(OLD, new, ["1"])["1"]
    assert (got.new, got.how) == ("7", "largest overlap")
    assert abs(got.share - 0.7) < 0.01


def test_renumbered_goes_to_the_largest_overlap_and_far_ones_to_none():
    new = frame([("A", box(-87.65, 41.88, -87.65 + D * 0.4, 41.88 + D)),
                 ("B", box(-87.65 + D * 0.4, 41.88, -87.63, 41.88 + D))])
    got = match_districts(OLD, new)
    assert (got["1"].new, got["1"].how) == ("B", "largest overlap")
    assert abs(got["1"].share - 0.6) < 0.01
    assert (got["2"].new, got["2"].share) == ("B", 1.0)
    assert (got["9"].new, got["9"].how) == (None, "no overlap")
    assert match_districts(OLD, new, []) == {}

