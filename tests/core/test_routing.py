"""Route order with OR-Tools against the greedy reference, on straight-line distances."""

import numpy as np
import pytest

from geo311.errors import InvalidRequest
from geo311.routing import nearest_neighbour_order, route_length_m, route_order


def scatter(n, seed):
    rng = np.random.default_rng(seed)
    return -87.75 + rng.random(n) * 0.2, 41.75 + rng.random(n) * 0.2


def test_route_visits_every_stop_once_and_is_deterministic():
    lon, lat = scatter(40, 3)
    first = route_order(lon, lat)
    assert sorted(first) == list(range(40))
    assert route_order(lon, lat) == first


def test_route_is_shorter_than_the_greedy_reference_on_random_stops():
    wins = 0
    for seed in range(5):
        lon, lat = scatter(30, seed)
        solved = route_length_m(route_order(lon, lat), lon, lat)
        greedy = route_length_m(nearest_neighbour_order(lon, lat), lon, lat)
        assert solved <= greedy * 1.02
        wins += solved < greedy
    assert wins >= 3


def test_points_on_a_line_are_visited_end_to_end_from_the_depot():
    lon = np.array([-87.60, -87.64, -87.62, -87.66, -87.61])
    lat = np.full(5, 41.85)
    order = route_order(lon, lat, depot=(-87.59, 41.85))
    assert [float(lon[i]) for i in order] == sorted(lon.tolist(), reverse=True)


def test_small_and_bad_inputs():
    assert route_order([], []) == []
    assert route_order([-87.6], [41.8]) == [0]
    with pytest.raises(InvalidRequest, match="search"):
        route_order(*scatter(5, 1), search="annealing")
