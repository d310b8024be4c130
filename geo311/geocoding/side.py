"""Geocoding helpers: where an address's building is relative to its geocoded point.

On a grid city's streets, house-number parity tells the side: in many grid cities even
numbers are on the west side of north–south streets and on the north side of east–west
ones; a city profile's ``[numbering]`` says which (or that the city has no such rule).
A geocoder that interpolates along street centrelines puts the point on the
centreline, which is often a district boundary, and the first or last number of a
block on the cross street, which may be one too. Unit vectors from the point toward
the building let district assignment decide such points.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import takewhile

import numpy as np
import usaddress
from numpy.typing import NDArray

from geo311.errors import ConfigError

LOGGER = logging.getLogger(__name__)

_UNIT = {"N": (0.0, 1.0), "S": (0.0, -1.0), "E": (1.0, 0.0), "W": (-1.0, 0.0)}
_OPPOSITE = {"N": "S", "S": "N", "E": "W", "W": "E"}
_HALF_SQRT2 = 0.5**0.5
_DIRECTION = {"N": "N", "NORTH": "N", "S": "S", "SOUTH": "S",
              "E": "E", "EAST": "E", "W": "W", "WEST": "W"}


@dataclass(frozen=True)
class AddressGrid:
    """A city's house-numbering rule, as data.

    ``even_side_ns`` is the side ("E" or "W") of even numbers on streets numbered
    north–south (addresses with an N or S pre-directional, e.g. ``6927 S JUSTINE
    ST``); ``even_side_ew`` is the side ("N" or "S") of even numbers on streets
    numbered east–west (E or W pre-directional). Cross streets may fall on every
    multiple of ``cross_street_every`` (with 800 numbers a mile, streets every 1/8 or
    1/16 mile fall on multiples of 50). ``numbers_per_mile`` scales the grid fallback
    of the geocoder.
    """

    even_side_ns: str = "W"
    even_side_ew: str = "N"
    cross_street_every: int = 50
    numbers_per_mile: int = 800

    def __post_init__(self) -> None:
        if self.even_side_ns not in ("E", "W"):
            raise ConfigError(
                f"`even_side_ns` was {self.even_side_ns!r} but is expected to be 'E' or 'W'"
            )
        if self.even_side_ew not in ("N", "S"):
            raise ConfigError(
                f"`even_side_ew` was {self.even_side_ew!r} but is expected to be 'N' or 'S'"
            )
        if self.cross_street_every < 2:
            raise ConfigError(
                f"`cross_street_every` was {self.cross_street_every} but is expected to be >= 2"
            )

    def side(self, number: int, pre_directional: str) -> str:
        """Return the side ("N", "S", "E" or "W") of the building at ``number``."""
        even = self.even_side_ns if pre_directional in ("N", "S") else self.even_side_ew
        return even if number % 2 == 0 else _OPPOSITE[even]

    def into_block(self, number: int, pre_directional: str) -> str:
        """Return the direction along the street from the nearest cross street to ``number``.

        Numbers grow in the direction of the pre-directional, so a number just past a
        cross street lies further that way and one just short of it lies back.
        """
        past = number % self.cross_street_every < self.cross_street_every / 2
        return pre_directional if past else _OPPOSITE[pre_directional]


#: Even numbers on the west side of north–south streets, north of east–west; 800 a mile.
EVEN_WEST_NORTH = AddressGrid()


def building_side(
    addresses: Sequence[str | None], grid: AddressGrid | None = EVEN_WEST_NORTH
) -> NDArray[np.float64]:
    """Return unit vectors (east, north) from the street centreline toward each building.

    The house number (the first of a range such as ``2430-2432``; ``1234 1/2`` counts
    as 1234) and the pre-directional are read with ``usaddress``. Addresses without
    either, and anything unparseable, get (0, 0).

    Parameters
    ----------
    addresses : sequence of str or None
        Street addresses such as ``"6927 S JUSTINE ST"``.
    grid : AddressGrid or None
        The city's numbering rule; None (a city without one) gives (0, 0) everywhere.

    Returns
    -------
    ndarray of shape (n, 2)
        Float unit vectors (east, north), or (0, 0) where the side is unknown.

    Examples
    --------
    >>> building_side(["6927 S JUSTINE ST", "2314 W 48TH ST", "junk", None]).tolist()
    [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    """
    return _vectors(addresses, grid, into_block=False)


def toward_building(
    addresses: Sequence[str | None], grid: AddressGrid | None = EVEN_WEST_NORTH
) -> NDArray[np.float64]:
    """Return unit vectors from each geocoded point toward its building, diagonally.

    Like ``building_side``, plus a lean along the street into the block: a geocoder
    puts the first and last numbers of a block on the cross street, itself often a
    district boundary, and the building is then across the street *and* in the block.
    A point mid-block moves a little along its street, which changes nothing there.

    Parameters
    ----------
    addresses : sequence of str or None
        Street addresses such as ``"8700 S KIMBARK AVE"``.
    grid : AddressGrid or None
        The city's numbering rule; None (a city without one) gives (0, 0) everywhere.

    Returns
    -------
    ndarray of shape (n, 2)
        Float unit vectors (east, north), or (0, 0) where unknown.

    Examples
    --------
    >>> toward_building(["8700 S KIMBARK AVE"]).round(3).tolist()  # west, and south of 87th
    [[-0.707, -0.707]]
    """
    return _vectors(addresses, grid, into_block=True)


def _vectors(
    addresses: Sequence[str | None], grid: AddressGrid | None, *, into_block: bool
) -> NDArray[np.float64]:
    out = np.zeros((len(addresses), 2), dtype=np.float64)
    if grid is None:
        return out
    seen: dict[str, tuple[float, float]] = {}
    for i, address in enumerate(addresses):
        if not isinstance(address, str):
            continue
        vector = seen.get(address)
        if vector is None:
            vector = _vector(address, grid, into_block)
            seen[address] = vector
        out[i] = vector
    return out


def _vector(address: str, grid: AddressGrid, into_block: bool) -> tuple[float, float]:
    parsed = _number_and_direction(address)
    if parsed is None:
        return (0.0, 0.0)
    sx, sy = _UNIT[grid.side(*parsed)]
    if not into_block:
        return (sx, sy)
    ax, ay = _UNIT[grid.into_block(*parsed)]
    return (_HALF_SQRT2 * (sx + ax), _HALF_SQRT2 * (sy + ay))


@lru_cache(maxsize=1 << 16)
def _number_and_direction(address: str) -> tuple[int, str] | None:
    """House number and pre-directional ("N", "S", "E" or "W"), or None."""
    number = direction = None
    for token, label in usaddress.parse(address):
        token = token.strip(".,").upper()
        if label == "AddressNumber" and number is None:
            digits = "".join(takewhile(str.isdigit, token))
            number = int(digits) if digits else None
        elif label == "StreetNamePreDirectional" and direction is None:
            direction = _DIRECTION.get(token)
    if number is None or direction is None:
        return None
    return number, direction
