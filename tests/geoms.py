"""Named shapes for tests, in lon/lat degrees near Chicago (compare shapely's tests/common.py).

Distances in the names are metres; ``M_LON``, ``CM_LON`` and ``M_LAT`` convert them to
degrees at ``MID_LAT`` with the same spherical Earth the code uses.
"""

from __future__ import annotations

import math

from shapely import MultiPolygon, Polygon, box

EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG_LAT = math.radians(1.0) * EARTH_RADIUS_M

#: Latitude of the middle of the named squares.
MID_LAT = 41.805
#: One metre of latitude, and one metre and one centimetre of longitude at ``MID_LAT``,
#: in degrees.
M_LAT = 1.0 / M_PER_DEG_LAT
M_LON = 1.0 / (M_PER_DEG_LAT * math.cos(math.radians(MID_LAT)))
CM_LON = M_LON / 100

# Two districts sharing an edge (lon -87.69): squares of 0.01 deg, about 830 m x 1.1 km.
EDGE_LON = -87.69
WEST = box(-87.70, 41.80, EDGE_LON, 41.81)
EAST = box(EDGE_LON, 41.80, -87.68, 41.81)
ON_EDGE = (EDGE_LON, MID_LAT)
CM_WEST_OF_EDGE = (EDGE_LON - CM_LON, MID_LAT)
CM_EAST_OF_EDGE = (EDGE_LON + CM_LON, MID_LAT)
IN_WEST = (-87.695, MID_LAT)
IN_EAST = (-87.685, MID_LAT)
#: Where the shared edge meets the outer boundary (on both squares' edges).
SHARED_CORNER = (EDGE_LON, 41.81)
#: On the outer boundary of WEST only.
ON_OUTER_EDGE = (-87.70, MID_LAT)
#: Outside both squares, 100 m, 8 m and 1 cm west of WEST, and far east.
OUTSIDE_100M_WEST = (-87.70 - 10_000 * CM_LON, MID_LAT)
OUTSIDE_1CM_WEST = (-87.70 - CM_LON, MID_LAT)
OUTSIDE_8M_WEST = (-87.70 - 800 * CM_LON, MID_LAT)
OUTSIDE_FAR = (-87.50, MID_LAT)
#: Inside WEST, 20 m and 10 m from the shared edge (tolerance tests).
WEST_20M_FROM_EDGE = (EDGE_LON - 2_000 * CM_LON, MID_LAT)
WEST_10M_FROM_EDGE = (EDGE_LON - 1_000 * CM_LON, MID_LAT)

# A district with a hole, and an enclave that fills the middle of the hole.
HOLE = box(-87.66, 41.80, -87.65, 41.81)
DONUT = Polygon(box(-87.67, 41.79, -87.64, 41.82).exterior.coords, [HOLE.exterior.coords])
ENCLAVE = box(-87.658, 41.802, -87.652, 41.808)
IN_DONUT = (-87.665, MID_LAT)
IN_HOLE_NOT_ENCLAVE = (-87.659, MID_LAT)
IN_ENCLAVE = (-87.655, MID_LAT)
ON_HOLE_EDGE = (-87.66, MID_LAT)

# A district in two separate parts.
ISLANDS = MultiPolygon([box(-87.63, 41.80, -87.62, 41.81), box(-87.61, 41.80, -87.60, 41.81)])
IN_FIRST_ISLAND = (-87.625, MID_LAT)
IN_SECOND_ISLAND = (-87.605, MID_LAT)
BETWEEN_ISLANDS = (-87.615, MID_LAT)

#: Two districts that overlap (a broken layer): the one listed first wins inside both.
OVERLAP_A = box(-87.59, 41.80, -87.58, 41.81)
OVERLAP_B = box(-87.585, 41.80, -87.575, 41.81)
IN_OVERLAP = (-87.5825, MID_LAT)

#: A sliver district a few centimetres wide (thinner than any grid cell) between two.
SLIVER_LEFT = box(-87.57, 41.80, -87.565, 41.81)
SLIVER = box(-87.565, 41.80, -87.565 + 5 * CM_LON, 41.81)
SLIVER_RIGHT = box(-87.565 + 5 * CM_LON, 41.80, -87.56, 41.81)
IN_SLIVER = (-87.565 + 2.5 * CM_LON, MID_LAT)
