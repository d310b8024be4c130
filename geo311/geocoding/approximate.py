"""Placements for what the city's references do not hold exactly, in a city without a grid.

A house number a few doors past the last known one on its street, and two streets whose
crossing was never recorded: both are common in a city's own 311 history (Boston's 2015
export: 456 of 7,053 addresses and 131 of 1,911 intersections), and both have an honest
answer from the known address points alone, given with a lower score and its reason.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from geo311.geocoding.streets import M_PER_DEG_LAT, StreetData

#: A number this close to a known one on its street is placed at it (match "nearby").
#: Measured on Boston's 2015 requests: 89 % of such placements within 100 m of the
#: City's own point.
NEARBY_NUMBERS = 20
#: Two streets whose known address points come this close are taken to cross there.
#: Measured on Boston's 2015 requests: 128 of 131 such intersections within 100 m.
APPROACH_M = 60.0


def nearest_number(number: int, data: StreetData) -> tuple[int, float, float] | None:
    """``(known number, lon, lat)`` nearest to ``number`` on the street, same side first."""
    for nums, xy in (data.parity.get(number % 2, ([], [])), (data.numbers, data.xy)):
        if not len(nums):
            continue
        j = bisect.bisect_left(nums, number)
        k = min((i for i in (j - 1, j) if 0 <= i < len(nums)),
                key=lambda i: abs(nums[i] - number))
        if abs(nums[k] - number) <= NEARBY_NUMBERS:
            x, y = xy[k]
            return nums[k], x, y
    return None


@dataclass(frozen=True)
class Approach:
    """Where two streets' known addresses come closest: the midpoint and the gap."""

    lon: float
    lat: float
    gap_m: float
    score: float
    first: StreetData
    second: StreetData


def closest_approach(pairs: Iterable[tuple[StreetData, StreetData, float]],
                     kx: float) -> Approach | None:
    """The closest approach within ``APPROACH_M`` over candidate street pairs, or None.

    ``pairs`` are (street, cross street, score); ``kx`` is metres per degree of longitude.
    """
    best: Approach | None = None
    scale = np.array([kx, M_PER_DEG_LAT])
    for a, b, score in pairs:
        if not len(a.xy) or not len(b.xy):
            continue
        pa, pb = np.asarray(a.xy, float), np.asarray(b.xy, float)
        gaps, nearest = cKDTree(pb * scale).query(pa * scale)
        k = int(np.argmin(gaps))
        if gaps[k] <= APPROACH_M and (best is None or gaps[k] < best.gap_m):
            x, y = (pa[k] + pb[nearest[k]]) / 2
            best = Approach(float(x), float(y), float(gaps[k]), score, a, b)
    return best
