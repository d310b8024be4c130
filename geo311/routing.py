"""Visiting order of a crew's stops: OR-Tools on straight-line (haversine) distances.

The route is open: it starts at the crew's depot (or at whichever stop suits best
when the crew has none) and ends at its last stop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from geo311.errors import InvalidRequest
from geo311.geodesy import haversine_m

LOGGER = logging.getLogger(__name__)
#: ``greedy_descent`` stops at a local optimum (deterministic, fast); ``guided_local_search``
#: keeps improving until ``time_limit_s`` (better, but depends on the machine's speed).
SEARCHES = ("greedy_descent", "guided_local_search")


def distance_matrix_m(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """Pairwise great-circle distances in metres."""
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return haversine_m(x[:, None], y[:, None], x[None, :], y[None, :])


def _with_ends(lon: ArrayLike, lat: ArrayLike, depot: tuple[float, float] | None
               ) -> np.ndarray:
    """Distances among stops 0..n-1, a start node n and a free end node n+1."""
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    n = len(x)
    full = np.zeros((n + 2, n + 2))
    full[:n, :n] = distance_matrix_m(x, y)
    if depot is not None:
        full[n, :n] = haversine_m(depot[0], depot[1], x, y)
    full[:, n + 1] = 0.0  # ending anywhere costs nothing
    full[n + 1, :] = 0.0
    return full


def route_length_m(order: Sequence[int], lon: ArrayLike, lat: ArrayLike,
                   depot: tuple[float, float] | None = None) -> float:
    """Length of a path visiting stops in ``order`` (from the depot when given)."""
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    idx = np.asarray(order, dtype=int)
    total = float(haversine_m(x[idx[:-1]], y[idx[:-1]], x[idx[1:]], y[idx[1:]]).sum())
    if depot is not None and len(idx):
        total += float(haversine_m(depot[0], depot[1], x[idx[0]], y[idx[0]]))
    return total


def nearest_neighbour_order(lon: ArrayLike, lat: ArrayLike,
                            depot: tuple[float, float] | None = None) -> list[int]:
    """Greedy reference route: always the nearest unvisited stop (ties: lowest index)."""
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    n = len(x)
    if n == 0:
        return []
    d = distance_matrix_m(x, y)
    if depot is not None:
        current = int(np.argmin(haversine_m(depot[0], depot[1], x, y)))
    else:
        current = 0
    order, seen = [current], np.zeros(n, dtype=bool)
    seen[current] = True
    for _ in range(n - 1):
        row = np.where(seen, np.inf, d[current])
        current = int(np.argmin(row))
        order.append(current)
        seen[current] = True
    return order


def route_order(lon: ArrayLike, lat: ArrayLike, depot: tuple[float, float] | None = None,
                *, search: str = "greedy_descent", time_limit_s: float = 10.0) -> list[int]:
    """The order to visit stops in: indices into ``lon``/``lat``.

    OR-Tools' routing solver: a cheapest-arc start improved by local search
    (``search``, one of ``SEARCHES``). With ``greedy_descent`` the same stops always
    give the same order and ``time_limit_s`` only guards against a slow machine.

    Examples
    --------
    >>> order = route_order([-87.60, -87.70, -87.65], [41.80, 41.80, 41.80])
    >>> order in ([0, 2, 1], [1, 2, 0])
    True
    """
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    if search not in SEARCHES:
        raise InvalidRequest(f"search was {search!r} but is expected to be in {SEARCHES}")
    x = np.asarray(lon, dtype=float)
    n = len(x)
    if n <= 2:
        order = nearest_neighbour_order(lon, lat, depot)
        return order
    cost = np.rint(_with_ends(lon, lat, depot)).astype(np.int64)
    manager = pywrapcp.RoutingIndexManager(n + 2, 1, [n], [n + 1])
    routing = pywrapcp.RoutingModel(manager)

    def arc(i: int, j: int) -> int:
        return int(cost[manager.IndexToNode(i), manager.IndexToNode(j)])

    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitCallback(arc))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        getattr(routing_enums_pb2.LocalSearchMetaheuristic, search.upper()))
    params.time_limit.FromMilliseconds(int(time_limit_s * 1000))
    solution = routing.SolveWithParameters(params)
    if solution is None:  # pragma: no cover - an open path always exists
        LOGGER.warning("route solver found nothing; nearest neighbour used")
        return nearest_neighbour_order(lon, lat, depot)
    order = []
    index = routing.Start(0)
    while not routing.IsEnd(index):
        node = manager.IndexToNode(index)
        if node < n:
            order.append(node)
        index = solution.Value(routing.NextVar(index))
    return order
