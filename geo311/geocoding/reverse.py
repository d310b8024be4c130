"""Reverse geocoding: the nearest known address and the nearest street to a point.

Distances are measured on a local plane (metres east and north of the city's mean
latitude), where a k-d tree finds the nearest address point and an STR tree the
nearest street course or centreline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree

from geo311.geocoding.streets import M_PER_DEG_LAT, StreetIndex


@dataclass(frozen=True)
class ReverseGeocode:
    """The nearest known address and the nearest street to a point, with distances."""

    address: str
    address_distance_m: float | None
    street: str
    street_distance_m: float | None
    lon: float | None = None
    lat: float | None = None
    address_id: int | None = None


class ReverseIndex:
    """Address points and street lines of a street index, on the local metre plane."""

    def __init__(self, index: StreetIndex) -> None:
        xy = [xy for d in index.streets.values() for xy in d.xy]
        self._labels = [f"{n} {d.street.label}" for d in index.streets.values()
                            for n in d.numbers]
        self._ids = [i for d in index.streets.values() for i in d.ids]
        self.kx = index.kx
        arr = np.asarray(xy, dtype=float).reshape(-1, 2)
        self._xy = arr
        self._tree = cKDTree(arr * [self.kx, M_PER_DEG_LAT]) if len(arr) else None
        lines, names = [], []
        for d in index.streets.values():
            if len(d.shape_a) >= 2:
                coords = np.empty((len(d.shape_a), 2))
                coords[:, d.axis] = d.shape_a
                coords[:, 1 - d.axis] = d.shape_b
                lines.append(shapely.LineString(coords * [self.kx, M_PER_DEG_LAT]))
                names.append(d.street.label)
            for seg in d.segments:
                geom = seg[4]
                scaled = shapely.transform(geom, lambda c: c * [self.kx, M_PER_DEG_LAT])
                lines.append(scaled)
                names.append(d.street.label)
        self._line_names = names
        self._lines = shapely.STRtree(lines) if lines else None
        lon = arr[:, 0] if len(arr) else np.zeros(0)
        lat = arr[:, 1] if len(arr) else np.zeros(0)
        self.extent = ((float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
                       if len(arr) else None)

    def nearest(self, lon: float, lat: float, *, max_distance_m: float = 500.0
                ) -> ReverseGeocode:
        """The nearest known address and street to (lon, lat), with distances in metres.

        Examples
        --------
        >>> geocoder.reverse(-87.6698, 41.8058).address  # doctest: +SKIP
        '4853 S WOOD ST'
        """
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return ReverseGeocode("", None, "", None)
        q = np.array([lon * self.kx, lat * M_PER_DEG_LAT])
        address, address_d, address_id, plon, plat = "", None, None, None, None
        if self._tree is not None:
            d, i = self._tree.query(q, k=1, distance_upper_bound=max_distance_m)
            if math.isfinite(d):
                address, address_d = self._labels[i], float(d)
                address_id = self._ids[i]
                plon, plat = (float(v) for v in self._xy[i])
        street, street_d = "", None
        if self._lines is not None:
            idx, dist = self._lines.query_nearest(shapely.Point(q), max_distance=max_distance_m,
                                                  return_distance=True)
            if len(idx):
                street, street_d = self._line_names[int(idx[0])], float(dist[0])
        return ReverseGeocode(address, address_d, street, street_d, plon, plat, address_id)
