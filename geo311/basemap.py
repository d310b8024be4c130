"""A base map from the city's own references: streets and district labels, no tile server.

Where the city loaded street centrelines they are the streets. Otherwise streets are
drawn from its intersections: the crossings of one street, put in order along the
street, joined where neighbours are close (a gap longer than ``max_gap_m`` is a break:
a park, a river, a street that stops and starts again).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from shapely import STRtree
from shapely.geometry import LineString

from geo311.errors import InvalidRequest
from geo311.geodesy import haversine_m

#: Intersections further apart than this along a street are not joined.
MAX_GAP_M = 450.0
#: Most street segments one answer may hold (a view zoomed out that far gets none).
MAX_SEGMENTS = 6000
#: A box wider or taller than this (degrees) asks for too much street detail.
MAX_BOX_DEG = 0.12


def streets_from_intersections(crossings: pd.DataFrame, max_gap_m: float = MAX_GAP_M
                               ) -> tuple[list[str], list[LineString]]:
    """Street lines drawn through each street's intersections, in order along it.

    ``crossings`` has ``street_1, street_2, lon, lat``. Returns names and lines.

    Examples
    --------
    >>> names, lines = streets_from_intersections(frames["intersections"])  # doctest: +SKIP
    """
    points: dict[str, set[tuple[float, float]]] = defaultdict(set)
    lon, lat = crossings["lon"].to_numpy(float), crossings["lat"].to_numpy(float)
    for column in ("street_1", "street_2"):
        for name, x, y in zip(crossings[column].astype(str), lon, lat, strict=True):
            if name and np.isfinite(x) and np.isfinite(y):
                points[name].add((round(x, 6), round(y, 6)))
    names: list[str] = []
    lines: list[LineString] = []
    for name, found in sorted(points.items()):
        if len(found) < 2:
            continue
        xy = np.array(sorted(found))
        ordered = xy[np.argsort(_along(xy))]
        gaps = haversine_m(ordered[:-1, 0], ordered[:-1, 1], ordered[1:, 0], ordered[1:, 1])
        breaks = np.flatnonzero(gaps > max_gap_m) + 1
        for run in np.split(ordered, breaks):
            if len(run) >= 2:
                names.append(name)
                lines.append(LineString(run))
    return names, lines


def _along(xy: np.ndarray) -> np.ndarray:
    """Each point's position along the main direction of the points (their first axis)."""
    scaled = xy - xy.mean(axis=0)
    scaled[:, 0] *= np.cos(np.radians(xy[:, 1].mean()))  # degrees of longitude shrink
    _, _, axes = np.linalg.svd(scaled, full_matrices=False)
    return scaled @ axes[0]  # type: ignore[no-any-return]


@dataclass
class StreetIndex:
    """Street lines and a spatial index over them, for the boxes a map asks for."""

    names: list[str]
    lines: list[LineString]
    tree: STRtree = field(init=False)

    def __post_init__(self) -> None:
        self.tree = STRtree(self.lines)

    @classmethod
    def from_references(cls, centerlines: pd.DataFrame, crossings: pd.DataFrame
                        ) -> StreetIndex:
        """Centrelines when the city loaded them, else streets drawn from intersections."""
        if len(centerlines):
            names = [str(s) for s in centerlines["street"]]
            lines = [g for g in centerlines["geometry"]]
            return cls(names, lines)
        return cls(*streets_from_intersections(crossings))

    def within(self, box: Sequence[float], limit: int = MAX_SEGMENTS) -> dict[str, object]:
        """The streets crossing a lon/lat box as a GeoJSON FeatureCollection.

        A box larger than ``MAX_BOX_DEG`` on a side is refused: the map asks again when
        zoomed in.
        """
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x0 < x1 and y0 < y1) or x1 - x0 > MAX_BOX_DEG or y1 - y0 > MAX_BOX_DEG:
            raise InvalidRequest(f"bbox was {x0},{y0},{x1},{y1} but is expected as "
                                 f"min_long,min_lat,max_long,max_lat at most {MAX_BOX_DEG} "
                                 "degrees on a side")
        hits = self.tree.query(shapely.box(x0, y0, x1, y1), predicate="intersects")[:limit]
        return {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": self.names[i]},
             "geometry": {"type": "LineString",
                          "coordinates": np.round(shapely.get_coordinates(self.lines[i]), 6)
                          .tolist()}}
            for i in sorted(int(h) for h in hits)]}
