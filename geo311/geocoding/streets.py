"""The geocoder's street index: every known street, its address points, course and ranges.

Built once from the reference layers (address points, intersections, centrelines):
streets are keyed by direction, name and type in the normal form of
``geo311.geocoding.parsing``; each keeps its address points sorted by number (and
by parity), the points along its course sorted on its main axis, and its TIGER-style
address ranges. The cascade, suggestions and reverse geocoding all read this index.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from geo311.geocoding.parsing import Street, parse_street

M_PER_DEG_LAT = 111_132.0

StreetKey = tuple[str, str, str]  # (pre_dir, name without spaces, suffix)


@dataclass
class StreetData:
    """What is known of one street: its address points, its course and its ranges."""

    street: Street
    # Address points: numbers sorted, per parity and all together.
    numbers: list[int] = field(default_factory=list)
    xy: list[tuple[float, float]] = field(default_factory=list)
    ids: list[int | None] = field(default_factory=list)
    parity: dict[int, tuple[list[int], list[tuple[float, float]]]] = field(default_factory=dict)
    # Shape of the street: points along it sorted on its main axis.
    axis: int = 1  # 1: lat (north-south street), 0: lon (east-west street)
    shape_a: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shape_b: np.ndarray = field(default_factory=lambda: np.zeros(0))
    segments: list[tuple[int | None, int | None, int | None, int | None, object]] = field(
        default_factory=list)


class StreetIndex:
    """The known streets of the reference layers, indexed for the cascade.

    Parameters
    ----------
    points, intersections, centerlines : DataFrame
        As for ``Geocoder``; each must have the columns listed there.
    """

    def __init__(self, points: pd.DataFrame | None = None,
                 intersections: pd.DataFrame | None = None,
                 centerlines: pd.DataFrame | None = None) -> None:
        self.streets: dict[StreetKey, StreetData] = {}
        self.exact: dict[str, tuple[float, float, int | None, str]] = {}
        self.crossings: dict[frozenset[StreetKey], tuple[float, float]] = {}
        self.calibration: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.crossing_list: dict[StreetKey, list[tuple[StreetKey, float, float]]] = (
            defaultdict(list))
        points = frame_or_empty(points, ("house_number", "pre_dir", "street_name", "suffix",
                                         "lon", "lat"))
        intersections = frame_or_empty(intersections, ("street_1", "street_2", "lon", "lat"))
        centerlines = frame_or_empty(centerlines, ("street", "l_from", "l_to", "r_from",
                                                   "r_to", "geometry"))
        self._add_shapes(intersections, centerlines)
        self._add_points(points)
        self._finish()

    def street_data(self, street: Street) -> StreetData:
        """The entry of a street, made empty on first use."""
        key = (street.pre_dir, street.name_key, street.suffix)
        data = self.streets.get(key)
        if data is None:
            data = self.streets[key] = StreetData(street)
        return data

    def _add_shapes(self, intersections: pd.DataFrame, centerlines: pd.DataFrame) -> None:
        self._shape_points: dict[StreetKey, list[tuple[float, float]]] = defaultdict(list)
        names = pd.unique(pd.concat([intersections["street_1"], intersections["street_2"],
                                     centerlines["street"]]).astype(str))
        parsed = {n: street_of(n) for n in names}
        lon = intersections["lon"].to_numpy(dtype=float).tolist()
        lat = intersections["lat"].to_numpy(dtype=float).tolist()
        for i, (a, b) in enumerate(zip(intersections["street_1"].astype(str),
                                       intersections["street_2"].astype(str), strict=True)):
            sa, sb = parsed[a], parsed[b]
            if sa is None or sb is None or not (math.isfinite(lon[i]) and math.isfinite(lat[i])):
                continue
            ka, kb = self.street_data(sa), self.street_data(sb)
            key_a = (sa.pre_dir, sa.name_key, sa.suffix)
            key_b = (sb.pre_dir, sb.name_key, sb.suffix)
            self.crossings.setdefault(frozenset((key_a, key_b)), (lon[i], lat[i]))
            self.crossing_list[key_a].append((key_b, lon[i], lat[i]))
            self.crossing_list[key_b].append((key_a, lon[i], lat[i]))
            self._shape_points[key_a].append((lon[i], lat[i]))
            self._shape_points[key_b].append((lon[i], lat[i]))
            del ka, kb
        for row in centerlines.itertuples(index=False):
            s = parsed.get(str(row.street))
            geom = row.geometry
            if s is None or geom is None or getattr(geom, "is_empty", True):
                continue
            data = self.street_data(s)
            ranges = tuple(None if pd.isna(v) else int(v)
                           for v in (row.l_from, row.l_to, row.r_from, row.r_to))
            if any(v is not None for v in ranges):
                data.segments.append((*ranges, geom))  # type: ignore[arg-type]
            key = (s.pre_dir, s.name_key, s.suffix)
            self._shape_points[key].extend(
                (float(x), float(y)) for x, y in shapely.get_coordinates(geom))

    def _add_points(self, points: pd.DataFrame) -> None:
        complete: dict[tuple[str, str], list[StreetKey]] = defaultdict(list)
        for key in self.streets:
            complete[key[:2]].append(key)
        ids = points["id"].tolist() if "id" in points else [None] * len(points)
        texts = points["address"].tolist() if "address" in points else [None] * len(points)
        numbers = pd.to_numeric(points["house_number"], errors="coerce").to_numpy()
        lon = points["lon"].to_numpy(dtype=float).tolist()
        lat = points["lat"].to_numpy(dtype=float).tolist()
        street_cache: dict[tuple[str, str, str], Street | None] = {}
        rows: dict[StreetKey, dict[int, tuple[float, float, int | None]]] = defaultdict(dict)
        for i, (pre, name, suffix) in enumerate(zip(
                points["pre_dir"].fillna("").astype(str), points["street_name"].astype(str),
                points["suffix"].fillna("").astype(str), strict=True)):
            if not (math.isfinite(numbers[i]) and math.isfinite(lon[i])
                    and math.isfinite(lat[i])):
                continue
            s = street_cache.get((pre, name, suffix), ...)  # type: ignore[arg-type]
            if s is ...:
                s = street_of(" ".join(p for p in (pre, name, suffix) if p))
                if s is not None and not s.suffix:
                    # "4853 S WOOD": take the street type when the name has only one.
                    known = complete.get((s.pre_dir, s.name_key), [])
                    if len(known) == 1:
                        s = self.streets[known[0]].street
                street_cache[(pre, name, suffix)] = s
            if s is None:
                continue
            key = (s.pre_dir, s.name_key, s.suffix)
            self.street_data(s)
            rows[key].setdefault(int(numbers[i]), (lon[i], lat[i], ids[i]))
            spelling = texts[i]
            if isinstance(spelling, str) and spelling:
                # The reference's own spelling ("3424 S STATE") is an exact match too.
                self.exact.setdefault(" ".join(spelling.upper().split()), (
                    lon[i], lat[i], ids[i], f"{int(numbers[i])} {s.label}"))
        for key, by_number in rows.items():
            data = self.streets[key]
            order = sorted(by_number)
            data.numbers = order
            data.xy = [(by_number[n][0], by_number[n][1]) for n in order]
            data.ids = [by_number[n][2] for n in order]
            for parity in (0, 1):
                nums = [n for n in order if n % 2 == parity]
                data.parity[parity] = (nums, [(by_number[n][0], by_number[n][1]) for n in nums])
            label = data.street.label
            for n, (x, y, pid) in by_number.items():
                self.exact.setdefault(f"{n} {label}", (x, y, pid, f"{n} {label}"))
            self._shape_points[key].extend(data.xy)

    def _finish(self) -> None:
        self.by_dir_name: dict[tuple[str, str], list[StreetKey]] = defaultdict(list)
        self.by_name: dict[str, list[StreetKey]] = defaultdict(list)
        for key, data in self.streets.items():
            self.by_dir_name[key[:2]].append(key)
            self.by_name[key[1]].append(key)
            pts = self._shape_points.get(key, [])
            if not pts:
                continue
            arr = np.asarray(pts, dtype=float)
            if data.street.pre_dir in ("N", "S"):
                axis = 1
            elif data.street.pre_dir in ("E", "W"):
                axis = 0
            else:
                spread = arr.max(axis=0) - arr.min(axis=0)
                axis = 1 if spread[1] * M_PER_DEG_LAT > spread[0] * 83_000 else 0
            order = np.argsort(arr[:, axis], kind="stable")
            data.axis = axis
            data.shape_a = arr[order, axis]
            data.shape_b = arr[order, 1 - axis]
        self.names = sorted(self.by_name)
        self.labels = sorted({d.street.label for d in self.streets.values()})
        self.label_keys = {d.street.label: k for k, d in self.streets.items()}
        xy = [xy for d in self.streets.values() for xy in d.xy]
        lat0 = float(np.median([p[1] for p in xy])) if xy else 41.85
        self.kx = M_PER_DEG_LAT * math.cos(math.radians(lat0))
        self._calibrate()

    def _calibrate(self) -> None:
        """Number -> lat (N/S streets) and number -> lon (E/W) from the address points."""
        for axis_name, dirs, axis in (("ns", ("N", "S"), 1), ("ew", ("E", "W"), 0)):
            nums: list[float] = []
            coords: list[float] = []
            for key, data in self.streets.items():
                if key[0] not in dirs or not data.numbers:
                    continue
                sign = 1 if key[0] in ("N", "E") else -1
                nums.extend(sign * n for n in data.numbers)
                coords.extend(xy[axis] for xy in data.xy)
            if len(nums) < 20:
                continue
            frame = pd.DataFrame({"bin": np.round(np.asarray(nums) / 200) * 200, "c": coords})
            binned = frame.groupby("bin")["c"].agg(["median", "size"])
            binned = binned[binned["size"] >= 3]
            if len(binned) >= 2:
                self.calibration[axis_name] = (binned.index.to_numpy(dtype=float),
                                                binned["median"].to_numpy(dtype=float))

    @property
    def size(self) -> dict[str, int]:
        """How much the index knows: streets, address points, intersections."""
        return {"streets": len(self.streets), "address_points": len(self.exact),
                "intersections": len(self.crossings)}


def street_of(text: str) -> Street | None:
    """A reference layer's street name in normal form (None if unreadable)."""
    return parse_street(text)


def frame_or_empty(frame: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    """An empty frame for a missing layer; a layer lacking columns is refused."""
    if frame is None:
        return pd.DataFrame({c: [] for c in columns})
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"reference frame lacks columns {missing}; it has {list(frame)}")
    return frame


def twin_addresses(points: pd.DataFrame | None, apart_m: float) -> dict[str, tuple[str, ...]]:
    """Addresses whose reference points lie in different ZIP codes more than ``apart_m`` apart."""
    if points is None or not len(points) or "zipcode" not in points or "address" not in points:
        return {}
    zips = points["zipcode"].fillna("").astype(str).str[:5].to_numpy()
    rows = points.assign(zipcode=zips)[zips != ""]
    rows = rows[rows["address"].duplicated(keep=False).to_numpy()]
    if rows.empty:
        return {}
    twins = {}
    for address, group in rows.groupby("address", sort=False):
        if group["zipcode"].nunique() < 2:
            continue
        lat = group["lat"].to_numpy(float)
        kx = M_PER_DEG_LAT * math.cos(math.radians(float(np.nanmean(lat))))
        span = math.hypot(np.ptp(group["lon"].to_numpy(float)) * kx, np.ptp(lat) * M_PER_DEG_LAT)
        if span > apart_m:
            twins[str(address)] = tuple(sorted(set(group["zipcode"])))
    return twins
