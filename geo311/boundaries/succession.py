"""Which district of a new map takes over from each district of the old one.

Things that point at districts (a crew's home districts) must follow when a new map
comes into force. A district whose id is still on the new map keeps it; one whose id
is gone goes to the new district covering most of its area, measured in metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np


@dataclass(frozen=True)
class Successor:
    """The district of the new map that takes over from ``old``.

    ``new`` is None when no new district overlaps ``old`` at all. ``how`` is ``"same
    id"`` or ``"largest overlap"``; ``share`` is the part of the old district's area
    that lies in ``new`` (0 to 1).
    """

    old: str
    new: str | None
    how: str
    share: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"old": self.old, "new": self.new, "how": self.how, "share": self.share}


#: Share of an old district its namesake must cover for the crew to keep the id.
KEEP_ID_SHARE = 0.5


def match_districts(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame,
                    wanted: list[str] | None = None) -> dict[str, Successor]:
    """Map district ids of ``old`` to ids of ``new``: same id, else largest overlap.

    The same id is kept when the new district of that id covers at least
    ``KEEP_ID_SHARE`` of the old one: a redistricting that reuses a number on the other
    side of the city (in the demo city, ward 34 of 2015 and of 2023 do not touch) must not send
    a crew there.

    Both frames have ``district_id`` and a geometry with a CRS. ``wanted`` limits the
    old ids looked at (default: all). Overlaps are measured in the UTM zone of the
    old map; ties go to the smaller new id as text.

    Examples
    --------
    >>> match_districts(wards_2015, wards_2023, ["42"])["42"].new  # doctest: +SKIP
    '42'
    """
    old_ids = old["district_id"].astype(str).to_numpy()
    new_ids = new["district_id"].astype(str).to_numpy()
    keys = sorted(set(old_ids) if wanted is None else set(map(str, wanted)))
    if not keys:
        return {}
    utm = old.estimate_utm_crs() if len(old) else None
    old_m = old.to_crs(utm) if utm is not None else old
    new_m = new.to_crs(utm) if utm is not None else new
    old_geom = {i: g for i, g in zip(old_ids, old_m.geometry.make_valid(), strict=True)}
    new_geom = new_m.geometry.make_valid().to_numpy()
    tree = new_m.sindex
    new_index = {i: k for k, i in enumerate(new_ids)}
    out: dict[str, Successor] = {}
    for key in keys:
        geom = old_geom.get(key)
        area = float(geom.area) if geom is not None else 0.0
        if key in new_index:  # the namesake keeps the crew when it covers enough
            shared = (float(geom.intersection(new_geom[new_index[key]]).area)
                      if geom is not None and area else 0.0)
            if area and shared / area >= KEEP_ID_SHARE:
                out[key] = Successor(key, key, "same id", round(shared / area, 4))
                continue
        overlaps: dict[str, float] = {}
        if geom is not None and area > 0:
            for k in tree.query(geom, predicate="intersects"):
                shared = float(geom.intersection(new_geom[k]).area)
                overlaps[new_ids[k]] = overlaps.get(new_ids[k], 0.0) + shared
        if not overlaps or max(overlaps.values()) <= 0:
            out[key] = Successor(key, None, "no overlap", 0.0)
            continue
        best = sorted(overlaps.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        out[key] = Successor(key, best[0], "largest overlap",
                             round(float(np.clip(best[1] / area, 0, 1)), 4))
    return out
