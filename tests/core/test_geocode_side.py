"""Side of the street from an address: house-number parity and the pre-directional."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from geo311.config import PROJECT_ROOT
from geo311.errors import ConfigError
from geo311.geocoding.side import EVEN_WEST_NORTH, AddressGrid, building_side, toward_building

EAST, WEST, NORTH, SOUTH, UNKNOWN = (1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (0.0, 0.0)
REQUESTS = (PROJECT_ROOT / "shapefiles/requests"
            / "chicago_311_sanitation_code_complaints_2011_2013.csv.gz")


@pytest.mark.parametrize(("address", "expected"), [
    # north-south streets: even numbers on the west side
    ("6927 S JUSTINE ST", EAST),
    ("6914 S JUSTINE ST", WEST),
    ("2237 N HAMLIN AVE", EAST),
    ("176 N LA CROSSE AVE", WEST),
    # east-west streets: even numbers on the north side
    ("2314 W 48TH ST", NORTH),
    ("4951 W MEDILL AVE", SOUTH),
    ("2818 E 97TH ST", NORTH),
    ("21 E 120TH ST", SOUTH),
    # no street type
    ("4853 S WOOD", EAST),
    ("4952 S LAFLIN", WEST),
    # ranges: the first number counts
    ("2430-2432 N CLARK ST", WEST),
    ("2431-2433 N CLARK ST", EAST),
    # half addresses count as the whole number
    ("1234 1/2 W MADISON ST", NORTH),
    ("1235 1/2 W MADISON ST", SOUTH),
    # letters after the number
    ("1234-B W MADISON ST", NORTH),
    # spelled-out and dotted directions, lower case
    ("6927 South Justine St", EAST),
    ("2314 w. 48th st", NORTH),
    # a lettered avenue
    ("12345 S AVENUE L", EAST),
    # nothing to go on
    ("N CLARK ST", UNKNOWN),
    ("1234 CLARK ST", UNKNOWN),
    ("junk", UNKNOWN),
    ("", UNKNOWN),
    (None, UNKNOWN),
])
def test_building_side(address, expected):
    assert tuple(building_side([address])[0]) == expected


def test_result_is_a_float_array_of_unit_or_zero_vectors():
    out = building_side(["6927 S JUSTINE ST", None, "2314 W 48TH ST"])
    assert out.shape == (3, 2) and out.dtype == np.float64
    assert building_side([]).shape == (0, 2)


def test_other_grids_flip_the_sides():
    flipped = AddressGrid(even_side_ns="E", even_side_ew="S")
    assert tuple(building_side(["6914 S JUSTINE ST"], flipped)[0]) == EAST
    assert tuple(building_side(["2314 W 48TH ST"], flipped)[0]) == SOUTH
    assert EVEN_WEST_NORTH == AddressGrid("W", "N")


@pytest.mark.parametrize("bad", [dict(even_side_ns="N"), dict(even_side_ew="W")])
def test_a_grid_must_name_a_side_across_the_street(bad):
    with pytest.raises(ConfigError, match="expected to be"):
        AddressGrid(**bad)


H = 0.5**0.5


@pytest.mark.parametrize(("address", "expected"), [
    # the 8700 block starts at 87th St and runs south: west side, south of 87th
    ("8700 S KIMBARK AVE", (-H, -H)),
    ("8701 S KIMBARK AVE", (H, -H)),
    # 3999 W is the end of its block, just east of 4000 W
    ("3999 W ADDISON ST", (H, -H)),
    # 1800 W starts its block, west of 1800 W (even: north side)
    ("1800 W GRANVILLE AVE", (-H, H)),
    # cross streets may also fall on x50
    ("2649 N CLARK ST", (H, -H)),
    ("2650 N CLARK ST", (-H, H)),
    (None, (0.0, 0.0)),
    ("junk", (0.0, 0.0)),
])
def test_toward_building_leans_into_the_block(address, expected):
    assert toward_building([address])[0] == pytest.approx(expected)


def test_cross_street_spacing_is_part_of_the_grid():
    every_100 = AddressGrid(cross_street_every=100)
    assert every_100.into_block(2649, "N") == "N"
    assert EVEN_WEST_NORTH.into_block(2649, "N") == "S"
    with pytest.raises(ConfigError, match="cross_street_every"):
        AddressGrid(cross_street_every=0)


def test_all_real_addresses_in_a_few_seconds():
    addresses = pd.read_csv(REQUESTS, usecols=["Street_Address"])["Street_Address"].tolist()
    started = time.perf_counter()
    out = building_side(addresses)
    assert time.perf_counter() - started < 10
    known = np.abs(out).sum(axis=1) > 0
    assert known.mean() > 0.99
    assert (np.hypot(out[known, 0], out[known, 1]) == 1).all()
