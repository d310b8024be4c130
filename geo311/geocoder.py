"""The offline geocoder: addresses to points over the city's own reference layers.

A cascade tries, in order: an exact address point, interpolation between known
house numbers on the same street (same side first), a street centreline's address
range, a named intersection, and the city's address grid anchored on what is known
of the street; the first step that places the address wins. Each answer carries a
match type, a score in [0, 1] that drops with uncertainty (a guessed street type, a
corrected typo, a long interpolation gap, the grid), and a reason when nothing was
found. Everything lives in memory, so a lookup takes microseconds.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
import shapely
from rapidfuzz import fuzz, process
from scipy.spatial import cKDTree

from geo311.addresses import (
    INTERSECTION_WORDS,
    ParsedAddress,
    Street,
    clean_text,
    parse_address,
    parse_street,
)
from geo311.geocode import CHICAGO_GRID, AddressGrid

LOGGER = logging.getLogger(__name__)

MATCH_TYPES = ("exact", "interpolated", "centerline", "intersection", "grid", "none")
_M_PER_DEG_LAT = 111_132.0
_FEET_PER_MILE = 5280.0
#: Results from different candidate streets farther apart than this are ambiguous.
AMBIGUOUS_M = 150.0
#: Longest gap (house numbers) interpolation bridges; beyond it the grid is used.
MAX_INTERPOLATION_GAP = 1600
#: How far (metres) beyond a street's known extent the grid may place a number.
GRID_REACH_M = 250.0

StreetKey = tuple[str, str, str]  # (pre_dir, name without spaces, suffix)


@dataclass(frozen=True)
class Geocode:
    """Where an address is: the point, how it was found, how sure, and why not.

    ``lon``/``lat`` are None when ``match`` is ``"none"``; ``reason`` then says why.
    ``address`` is the address in normal form as matched.
    """

    lon: float | None
    lat: float | None
    match: str
    score: float
    reason: str = ""
    address: str = ""
    address_id: int | None = None

    @property
    def found(self) -> bool:
        """True when the address was placed."""
        return self.match != "none"


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


@dataclass(frozen=True)
class Suggestion:
    """One completion for an address search box."""

    address: str
    lon: float
    lat: float
    match: str
    score: float


@dataclass
class _StreetData:
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


def _none(reason: str, address: str = "") -> Geocode:
    return Geocode(None, None, "none", 0.0, reason, address)


class Geocoder:
    """Geocode addresses and intersections against in-memory reference layers.

    Parameters
    ----------
    points : DataFrame
        Address points: ``house_number, pre_dir, street_name, suffix, lon, lat`` and
        optionally ``id``.
    intersections : DataFrame
        ``street_1, street_2, lon, lat`` (street names as written, any form).
    centerlines : DataFrame
        ``street, l_from, l_to, r_from, r_to, geometry`` (TIGER-style ranges; ranges
        may be missing, as for OpenStreetMap ways, which then only shape the street).
    grid : AddressGrid
        The city's numbering rule, for parity and the grid fallback.
    zipcodes : iterable of str
        The city's ZIP codes; an address with another ZIP code is outside the city.
    city : str
        The city's name; an address naming another place is outside the city.

    Examples
    --------
    >>> g = Geocoder(points=pd.DataFrame({"house_number": [1200, 1300],
    ...     "pre_dir": ["W", "W"], "street_name": ["71ST", "71ST"], "suffix": ["ST", "ST"],
    ...     "lon": [-87.6560, -87.6584], "lat": [41.7655, 41.7655]}))
    >>> g.geocode("1250 w 71st street").match
    'interpolated'
    """

    def __init__(
        self, points: pd.DataFrame | None = None, intersections: pd.DataFrame | None = None,
        centerlines: pd.DataFrame | None = None, *, grid: AddressGrid = CHICAGO_GRID,
        zipcodes: Iterable[str] = (), city: str = "CHICAGO", state: str = "IL",
    ) -> None:
        self.grid = grid
        self.city = city.upper()
        self.state = state.upper()
        self.zipcodes = {str(z)[:5] for z in zipcodes if z and str(z).strip()}
        self._streets: dict[StreetKey, _StreetData] = {}
        self._exact: dict[str, tuple[float, float, int | None, str]] = {}
        self._crossings: dict[frozenset[StreetKey], tuple[float, float]] = {}
        self._calibration: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._streets_read: dict[tuple[str, int, int], Street] = {}
        self._crossing_list: dict[StreetKey, list[tuple[StreetKey, float, float]]] = (
            defaultdict(list))
        points = _frame_or_empty(points, ("house_number", "pre_dir", "street_name", "suffix",
                                          "lon", "lat"))
        intersections = _frame_or_empty(intersections, ("street_1", "street_2", "lon", "lat"))
        centerlines = _frame_or_empty(centerlines, ("street", "l_from", "l_to", "r_from",
                                                    "r_to", "geometry"))
        self._add_shapes(intersections, centerlines)
        self._add_points(points)
        self._finish()
        self.geocode = lru_cache(maxsize=1 << 16)(self._geocode)  # type: ignore[method-assign]
        LOGGER.info("geocoder: %s streets, %s address points, %s intersections",
                    len(self._streets), len(self._exact), len(self._crossings))

    # -- building ---------------------------------------------------------------------

    def _street(self, street: Street) -> _StreetData:
        key = (street.pre_dir, street.name_key, street.suffix)
        data = self._streets.get(key)
        if data is None:
            data = self._streets[key] = _StreetData(street)
        return data

    def _add_shapes(self, intersections: pd.DataFrame, centerlines: pd.DataFrame) -> None:
        self._shape_points: dict[StreetKey, list[tuple[float, float]]] = defaultdict(list)
        names = pd.unique(pd.concat([intersections["street_1"], intersections["street_2"],
                                     centerlines["street"]]).astype(str))
        parsed = {n: _street_of(n) for n in names}
        lon = intersections["lon"].to_numpy(dtype=float).tolist()
        lat = intersections["lat"].to_numpy(dtype=float).tolist()
        for i, (a, b) in enumerate(zip(intersections["street_1"].astype(str),
                                       intersections["street_2"].astype(str), strict=True)):
            sa, sb = parsed[a], parsed[b]
            if sa is None or sb is None or not (math.isfinite(lon[i]) and math.isfinite(lat[i])):
                continue
            ka, kb = self._street(sa), self._street(sb)
            key_a = (sa.pre_dir, sa.name_key, sa.suffix)
            key_b = (sb.pre_dir, sb.name_key, sb.suffix)
            self._crossings.setdefault(frozenset((key_a, key_b)), (lon[i], lat[i]))
            self._crossing_list[key_a].append((key_b, lon[i], lat[i]))
            self._crossing_list[key_b].append((key_a, lon[i], lat[i]))
            self._shape_points[key_a].append((lon[i], lat[i]))
            self._shape_points[key_b].append((lon[i], lat[i]))
            del ka, kb
        for row in centerlines.itertuples(index=False):
            s = parsed.get(str(row.street))
            geom = row.geometry
            if s is None or geom is None or getattr(geom, "is_empty", True):
                continue
            data = self._street(s)
            ranges = tuple(None if pd.isna(v) else int(v)
                           for v in (row.l_from, row.l_to, row.r_from, row.r_to))
            if any(v is not None for v in ranges):
                data.segments.append((*ranges, geom))  # type: ignore[arg-type]
            key = (s.pre_dir, s.name_key, s.suffix)
            self._shape_points[key].extend(
                (float(x), float(y)) for x, y in shapely.get_coordinates(geom))

    def _add_points(self, points: pd.DataFrame) -> None:
        complete: dict[tuple[str, str], list[StreetKey]] = defaultdict(list)
        for key in self._streets:
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
                s = _street_of(" ".join(p for p in (pre, name, suffix) if p))
                if s is not None and not s.suffix:
                    # "4853 S WOOD": take the street type when the name has only one.
                    known = complete.get((s.pre_dir, s.name_key), [])
                    if len(known) == 1:
                        s = self._streets[known[0]].street
                street_cache[(pre, name, suffix)] = s
            if s is None:
                continue
            key = (s.pre_dir, s.name_key, s.suffix)
            self._street(s)
            rows[key].setdefault(int(numbers[i]), (lon[i], lat[i], ids[i]))
            spelling = texts[i]
            if isinstance(spelling, str) and spelling:
                # The reference's own spelling ("3424 S STATE") is an exact match too.
                self._exact.setdefault(" ".join(spelling.upper().split()), (
                    lon[i], lat[i], ids[i], f"{int(numbers[i])} {s.label}"))
        for key, by_number in rows.items():
            data = self._streets[key]
            order = sorted(by_number)
            data.numbers = order
            data.xy = [(by_number[n][0], by_number[n][1]) for n in order]
            data.ids = [by_number[n][2] for n in order]
            for parity in (0, 1):
                nums = [n for n in order if n % 2 == parity]
                data.parity[parity] = (nums, [(by_number[n][0], by_number[n][1]) for n in nums])
            label = data.street.label
            for n, (x, y, pid) in by_number.items():
                self._exact.setdefault(f"{n} {label}", (x, y, pid, f"{n} {label}"))
            self._shape_points[key].extend(data.xy)

    def _finish(self) -> None:
        self._by_dir_name: dict[tuple[str, str], list[StreetKey]] = defaultdict(list)
        self._by_name: dict[str, list[StreetKey]] = defaultdict(list)
        for key, data in self._streets.items():
            self._by_dir_name[key[:2]].append(key)
            self._by_name[key[1]].append(key)
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
                axis = 1 if spread[1] * _M_PER_DEG_LAT > spread[0] * 83_000 else 0
            order = np.argsort(arr[:, axis], kind="stable")
            data.axis = axis
            data.shape_a = arr[order, axis]
            data.shape_b = arr[order, 1 - axis]
        self._names = sorted(self._by_name)
        self._labels = sorted({d.street.label for d in self._streets.values()})
        self._label_keys = {d.street.label: k for k, d in self._streets.items()}
        self._calibrate()
        self._build_reverse()

    def _calibrate(self) -> None:
        """Number -> lat (N/S streets) and number -> lon (E/W) from the address points."""
        for axis_name, dirs, axis in (("ns", ("N", "S"), 1), ("ew", ("E", "W"), 0)):
            nums: list[float] = []
            coords: list[float] = []
            for key, data in self._streets.items():
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
                self._calibration[axis_name] = (binned.index.to_numpy(dtype=float),
                                                binned["median"].to_numpy(dtype=float))

    def _build_reverse(self) -> None:
        xy = [xy for d in self._streets.values() for xy in d.xy]
        self._rev_labels = [f"{n} {d.street.label}" for d in self._streets.values()
                            for n in d.numbers]
        self._rev_ids = [i for d in self._streets.values() for i in d.ids]
        lat0 = float(np.median([p[1] for p in xy])) if xy else 41.85
        self._kx = _M_PER_DEG_LAT * math.cos(math.radians(lat0))
        arr = np.asarray(xy, dtype=float).reshape(-1, 2)
        self._rev_xy = arr
        self._tree = cKDTree(arr * [self._kx, _M_PER_DEG_LAT]) if len(arr) else None
        lines, names = [], []
        for d in self._streets.values():
            if len(d.shape_a) >= 2:
                coords = np.empty((len(d.shape_a), 2))
                coords[:, d.axis] = d.shape_a
                coords[:, 1 - d.axis] = d.shape_b
                lines.append(shapely.LineString(coords * [self._kx, _M_PER_DEG_LAT]))
                names.append(d.street.label)
            for seg in d.segments:
                geom = seg[4]
                scaled = shapely.transform(geom, lambda c: c * [self._kx, _M_PER_DEG_LAT])
                lines.append(scaled)
                names.append(d.street.label)
        self._line_names = names
        self._lines = shapely.STRtree(lines) if lines else None
        lon = arr[:, 0] if len(arr) else np.zeros(0)
        lat = arr[:, 1] if len(arr) else np.zeros(0)
        self.extent = ((float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
                       if len(arr) else None)

    # -- public API -------------------------------------------------------------------

    def clear_caches(self) -> None:
        """Forget every cached answer and reading (for benchmarks and memory)."""
        self.geocode.cache_clear()  # type: ignore[attr-defined]
        self._streets_read.clear()

    @property
    def size(self) -> dict[str, int]:
        """How much the geocoder knows: streets, address points, intersections."""
        return {"streets": len(self._streets), "address_points": len(self._exact),
                "intersections": len(self._crossings)}

    def _geocode(self, text: str) -> Geocode:
        """Geocode one address or intersection (cached; see the class docstring)."""
        if isinstance(text, str):
            hit = self._exact.get(" ".join(text.upper().split()))
            if hit is not None:
                return Geocode(hit[0], hit[1], "exact", 1.0, "", hit[3], hit[2])
        cleaned, reason = clean_text(text)
        if reason:
            return _none(reason)
        # "4853 S WOOD" after "4851 S WOOD": usaddress sees a number only through its
        # length and trailing zeros, so with those equal the street part is tagged the
        # same and its reading is reused (kept only for a plain number + street).
        head, _, rest = cleaned.partition(" ")
        memo = (rest, len(head), len(head) - len(head.rstrip("0")))
        street = self._streets_read.get(memo) if head.isdigit() and len(head) <= 5 else None
        if street is not None:
            parsed = ParsedAddress("address", street=street, number=int(head), number_text=head)
        else:
            parsed = parse_address(cleaned)
            if (parsed.kind == "address" and parsed.number_text == head and parsed.street
                    and not (parsed.unit or parsed.zipcode or parsed.place or parsed.state
                             or parsed.half) and len(self._streets_read) < 200_000):
                self._streets_read[memo] = parsed.street
        return self.geocode_parsed(parsed)

    def geocode_many(self, texts: Sequence[object]) -> pd.DataFrame:
        """Geocode many addresses; repeats are looked up once.

        Returns a frame with ``lon, lat, match, score, reason, address`` in input order.

        Examples
        --------
        >>> geocoder.geocode_many(["4853 S WOOD", "4853 S WOOD ST"])  # doctest: +SKIP
        """
        seen: dict[object, Geocode] = {}
        out: list[Geocode] = []
        for text in texts:
            key = text if isinstance(text, str) else None
            g = seen.get(key)
            if g is None:
                g = self.geocode(text) if isinstance(text, str) else _none(
                    "no address was given")
                seen[key] = g
            out.append(g)
        return pd.DataFrame({
            "lon": np.array([np.nan if g.lon is None else g.lon for g in out], dtype=float),
            "lat": np.array([np.nan if g.lat is None else g.lat for g in out], dtype=float),
            "match": [g.match for g in out], "score": [g.score for g in out],
            "reason": [g.reason for g in out], "address": [g.address for g in out],
        })

    def geocode_parsed(self, parsed: ParsedAddress) -> Geocode:
        """Run the cascade for an address already parsed."""
        if parsed.reason:
            return _none(parsed.reason, parsed.label)
        outside = self._outside(parsed)
        if outside:
            return _none(outside, parsed.label)
        if parsed.kind == "intersection":
            return self._intersection(parsed)
        if parsed.kind == "street" or parsed.number is None:
            assert parsed.street is not None
            cands, note = self._resolve(parsed.street)
            if not cands:
                return _none(note, parsed.label)
            return _none(f"no house number: give a number on {cands[0][0].street.label} "
                         "or a cross street", parsed.label)
        assert parsed.street is not None
        cands, note = self._resolve(parsed.street)
        if not cands:
            return _none(note, parsed.label)
        return self._address(parsed.number, cands, parsed)

    def reverse(self, lon: float, lat: float, *, max_distance_m: float = 500.0) -> ReverseGeocode:
        """The nearest known address and street to (lon, lat), with distances in metres.

        Examples
        --------
        >>> geocoder.reverse(-87.6698, 41.8058).address  # doctest: +SKIP
        '4853 S WOOD ST'
        """
        if not (math.isfinite(lon) and math.isfinite(lat)):
            return ReverseGeocode("", None, "", None)
        q = np.array([lon * self._kx, lat * _M_PER_DEG_LAT])
        address, address_d, address_id, plon, plat = "", None, None, None, None
        if self._tree is not None:
            d, i = self._tree.query(q, k=1, distance_upper_bound=max_distance_m)
            if math.isfinite(d):
                address, address_d = self._rev_labels[i], float(d)
                address_id = self._rev_ids[i]
                plon, plat = (float(v) for v in self._rev_xy[i])
        street, street_d = "", None
        if self._lines is not None:
            idx, dist = self._lines.query_nearest(shapely.Point(q), max_distance=max_distance_m,
                                                  return_distance=True)
            if len(idx):
                street, street_d = self._line_names[int(idx[0])], float(dist[0])
        return ReverseGeocode(address, address_d, street, street_d, plon, plat, address_id)

    def suggest(self, text: str, limit: int = 5) -> list[Suggestion]:
        """Complete a partly typed address into up to ``limit`` placed addresses.

        ``"4853 s wo"`` suggests ``4853 S WOOD ST`` (and other streets starting so);
        a typo in the street name is matched within bounds; ``"fullerton & pul"``
        suggests the intersections of Fullerton with streets starting with PUL.

        Examples
        --------
        >>> [s.address for s in geocoder.suggest("4853 s wo", 3)]  # doctest: +SKIP
        ['4853 S WOOD ST', '4853 S WOODLAWN AVE']
        """
        cleaned, reason = clean_text(text)
        limit = max(1, min(int(limit), 20))
        if reason or len(cleaned) < 2:
            return []
        words = cleaned.split()
        joins = [i for i, w in enumerate(words) if w in INTERSECTION_WORDS]
        if joins and 0 < joins[0] < len(words) - 1:
            return self._suggest_crossings(" ".join(words[:joins[0]]),
                                           " ".join(words[joins[0] + 1:]), limit)
        number = int(words[0]) if words[0].isdigit() and len(words[0]) <= 5 else None
        rest = " ".join(words[1:] if number is not None else words)
        out: list[Suggestion] = []
        if number is not None and not rest:
            return []
        full = self.geocode(cleaned)
        if full.found:
            out.append(Suggestion(full.address, full.lon, full.lat,  # type: ignore[arg-type]
                                  full.match, full.score))
        for label in self._street_prefix(rest, limit * 3):
            key = self._label_keys[label]
            data = self._streets[key]
            if number is None:
                if len(data.shape_a):
                    mid = len(data.shape_a) // 2
                    xy = [0.0, 0.0]
                    xy[data.axis], xy[1 - data.axis] = data.shape_a[mid], data.shape_b[mid]
                    out.append(Suggestion(label, xy[0], xy[1], "street", 0.3))
            else:
                g = self._address(number, [(data, 1.0, "")], None)
                if g.found:
                    out.append(Suggestion(g.address, g.lon, g.lat,  # type: ignore[arg-type]
                                          g.match, g.score))
            if len({s.address for s in out}) >= limit:
                break
        unique: dict[str, Suggestion] = {}
        for s in out:
            unique.setdefault(s.address, s)
        return list(unique.values())[:limit]

    def _suggest_crossings(self, first: str, prefix: str, limit: int) -> list[Suggestion]:
        street = parse_street(first)
        if street is None:
            return []
        cands, _ = self._resolve(street)
        out: dict[str, Suggestion] = {}
        for data, factor, _ in cands:
            key = (data.street.pre_dir, data.street.name_key, data.street.suffix)
            for other, x, y in self._crossing_list.get(key, []):
                label = self._streets[other].street.label
                if label.startswith(prefix) or label.split(" ", 1)[-1].startswith(prefix):
                    text = f"{data.street.label} & {label}"
                    out.setdefault(text, Suggestion(text, x, y, "intersection",
                                                    round(0.95 * factor, 3)))
        return sorted(out.values(), key=lambda s: s.address)[:limit]

    # -- the cascade --------------------------------------------------------------------

    def _outside(self, parsed: ParsedAddress) -> str:
        place = parsed.place.strip(" ,.")
        if place and self.city and place != self.city:
            return f"{parsed.label}, {place} is outside the city ({self.city.title()})"
        state = parsed.state.strip(" ,.")
        if state and self.state and state not in (self.state, "ILLINOIS"):
            return f"{parsed.label}, {state} is outside the city's state ({self.state})"
        if parsed.zipcode and self.zipcodes and parsed.zipcode not in self.zipcodes:
            return f"ZIP code {parsed.zipcode} is not one of the city's"
        return ""

    def _resolve(self, street: Street) -> tuple[list[tuple[_StreetData, float, str]], str]:
        """Known streets the typed one may be, each with a score factor; or a reason."""
        found = self._candidates(street, 1.0)
        if found:
            return found, ""
        key = street.name_key
        if len(key) >= 4 and not key.isdigit():
            cutoff = 88 if len(key) <= 6 else 82
            best = process.extract(key, self._names, scorer=fuzz.ratio, limit=2,
                                   score_cutoff=cutoff)
            if best and (len(best) == 1 or best[0][1] - best[1][1] >= 4):
                corrected = Street(street.pre_dir, best[0][0], street.suffix)
                found = self._candidates(corrected, 0.85 * best[0][1] / 100)
                if found:
                    return found, ""
            elif best:
                return [], (f"street {street.label!r} is unknown; it is as close to "
                            f"{best[0][0]} as to {best[1][0]}")
        return [], f"no street named {street.label!r} is known in the city"

    def _candidates(self, street: Street, factor: float) -> list[tuple[_StreetData, float, str]]:
        key = (street.pre_dir, street.name_key, street.suffix)
        if key in self._streets:
            return [(self._streets[key], factor, "")]
        options = self._by_dir_name.get(key[:2], []) if street.pre_dir else []
        if not options and not street.pre_dir:
            options = [k for k in self._by_name.get(street.name_key, [])
                       if not street.suffix or k[2] == street.suffix]
        if not options:
            return []
        # A typed street type that differs from the known one costs more than none.
        penalty = 0.97 if not street.suffix else 0.85
        if not street.pre_dir:
            penalty *= 0.95
        return [(self._streets[k], factor * penalty, "") for k in options]

    def _address(self, number: int, cands: list[tuple[_StreetData, float, str]],
                 parsed: ParsedAddress | None) -> Geocode:
        results: list[tuple[int, Geocode]] = []
        reasons = []
        for data, factor, _ in cands:
            g, why = self._on_street(number, data, factor)
            if g is None:
                reasons.append(why)
            else:
                results.append((MATCH_TYPES.index(g.match), g))
        label = parsed.label if parsed else f"{number} {cands[0][0].street.label}"
        if not results:
            return _none(reasons[0] if len(reasons) == 1 else "; ".join(dict.fromkeys(reasons)),
                         label)
        results.sort(key=lambda r: (r[0], -r[1].score))
        best_rank, best = results[0]
        rivals = [g for rank, g in results[1:] if rank == best_rank]
        for other in rivals:
            if _distance_m(best, other) > AMBIGUOUS_M:
                return _none(f"ambiguous: {best.address} or {other.address}; give the street "
                             "type and direction", label)
        if rivals:
            best = Geocode(best.lon, best.lat, best.match, round(best.score * 0.9, 3),
                           best.reason, best.address, best.address_id)
        return best

    def _on_street(self, number: int, data: _StreetData,
                   factor: float) -> tuple[Geocode | None, str]:
        label = f"{number} {data.street.label}"
        # 1. exact address point
        i = bisect.bisect_left(data.numbers, number)
        if i < len(data.numbers) and data.numbers[i] == number:
            x, y = data.xy[i]
            return Geocode(x, y, "exact", round(factor, 3), "", label, data.ids[i]), ""
        # 2. interpolation between known numbers, same side first
        for nums, xy, side_factor in ((*data.parity.get(number % 2, ([], [])), 1.0),
                                      (data.numbers, data.xy, 0.9)):
            j = bisect.bisect_left(nums, number)
            if 0 < j < len(nums) and nums[j] - nums[j - 1] <= MAX_INTERPOLATION_GAP:
                lo, hi = nums[j - 1], nums[j]
                t = (number - lo) / (hi - lo)
                (x0, y0), (x1, y1) = xy[j - 1], xy[j]
                score = (0.95 - min(0.35, (hi - lo) / 2000)) * side_factor * factor
                return Geocode(x0 + t * (x1 - x0), y0 + t * (y1 - y0), "interpolated",
                               round(score, 3), "", label), ""
        # 3. centreline address range
        g = self._centerline(number, data, factor, label)
        if g is not None:
            return g, ""
        # 5. the address grid, anchored on what is known of the street
        return self._grid(number, data, factor, label)

    def _centerline(self, number: int, data: _StreetData, factor: float,
                    label: str) -> Geocode | None:
        for l_from, l_to, r_from, r_to, geom in data.segments:
            for side, a, b in (("L", l_from, l_to), ("R", r_from, r_to)):
                if a is None or b is None:
                    continue
                if a % 2 != number % 2 and b % 2 != number % 2:
                    continue
                lo, hi = min(a, b), max(a, b)
                if not lo <= number <= hi:
                    continue
                t = 0.5 if hi == lo else (number - a) / (b - a)
                line = geom
                p = shapely.line_interpolate_point(line, t, normalized=True)
                x, y = p.x, p.y
                # Step 10 m off the centreline toward the side the range is on.
                coords = shapely.get_coordinates(line)
                k = min(int(t * (len(coords) - 1)), len(coords) - 2)
                dx = (coords[k + 1][0] - coords[k][0]) * self._kx
                dy = (coords[k + 1][1] - coords[k][1]) * _M_PER_DEG_LAT
                norm = math.hypot(dx, dy) or 1.0
                sign = 1.0 if side == "L" else -1.0
                x += sign * -dy / norm * 10.0 / self._kx
                y += sign * dx / norm * 10.0 / _M_PER_DEG_LAT
                return Geocode(x, y, "centerline", round(0.85 * factor, 3), "", label)
        return None

    def _grid(self, number: int, data: _StreetData, factor: float,
              label: str) -> tuple[Geocode | None, str]:
        direction = data.street.pre_dir
        if direction not in ("N", "S", "E", "W"):
            return None, f"{label}: no known address near it and the street has no direction"
        if len(data.shape_a) == 0:
            return None, f"{label}: the street's course is unknown"
        axis = 1 if direction in ("N", "S") else 0
        if axis != data.axis:
            return None, f"{label}: the street does not run {direction}"
        sign = 1 if direction in ("N", "E") else -1
        per_number = _FEET_PER_MILE * 0.3048 / self.grid.numbers_per_mile
        metres_per_deg = _M_PER_DEG_LAT if axis == 1 else self._kx
        anchored_on = ""
        if data.numbers:
            j = min(range(len(data.numbers)), key=lambda k: abs(data.numbers[k] - number))
            near = data.numbers[j]
            a = data.xy[j][axis] + sign * (number - near) * per_number / metres_per_deg
            anchored_on, gap = f"{near} {data.street.label}", abs(number - near)
        else:
            cal = self._calibration.get("ns" if axis == 1 else "ew")
            if cal is None:
                return None, f"{label}: no known address on the street to anchor the grid on"
            bins, coords = cal
            signed = sign * number
            # Beyond the calibrated numbers, the grid's own spacing carries on.
            end = 0 if signed < bins[0] else -1 if signed > bins[-1] else None
            if end is None:
                a = float(np.interp(signed, bins, coords))
            else:
                a = float(coords[end] + (signed - bins[end]) * per_number / metres_per_deg)
            gap = 800
        lo, hi = data.shape_a[0], data.shape_a[-1]
        reach = GRID_REACH_M / metres_per_deg
        if not lo - reach <= a <= hi + reach:
            return None, (f"house number {number} is beyond the known extent of "
                          f"{data.street.label}")
        b = float(np.interp(a, data.shape_a, data.shape_b))
        x, y = (b, a) if axis == 1 else (a, b)
        score = (0.6 if gap <= 200 else 0.45 if gap <= 800 else 0.3) * factor
        reason = f"placed by the address grid from {anchored_on}" if anchored_on else (
            "placed by the address grid")
        return Geocode(x, y, "grid", round(score, 3), reason, label), ""

    def _intersection(self, parsed: ParsedAddress) -> Geocode:
        assert parsed.street is not None and parsed.cross is not None
        first, why1 = self._resolve(parsed.street)
        second, why2 = self._resolve(parsed.cross)
        if not first or not second:
            return _none(why1 or why2, parsed.label)
        found = []
        for a, fa, _ in first:
            ka = (a.street.pre_dir, a.street.name_key, a.street.suffix)
            for b, fb, _ in second:
                kb = (b.street.pre_dir, b.street.name_key, b.street.suffix)
                hit = self._crossings.get(frozenset((ka, kb)))
                if hit is not None:
                    found.append((fa * fb, hit, f"{a.street.label} & {b.street.label}"))
        if not found:
            return _none(f"{parsed.label}: these streets are not known to cross", parsed.label)
        found.sort(key=lambda f: -f[0])
        score, (x, y), label = found[0]
        for _, (ox, oy), other in found[1:]:
            if math.hypot((ox - x) * self._kx, (oy - y) * _M_PER_DEG_LAT) > AMBIGUOUS_M:
                return _none(f"ambiguous: {label} or {other}; the streets cross more than "
                             "once", parsed.label)
        return Geocode(x, y, "intersection", round(0.95 * score, 3), "", label)

    def _street_prefix(self, text: str, limit: int) -> list[str]:
        """Street labels starting with ``text`` (also without their direction), or close."""
        if not text:
            return []
        out: list[str] = []
        i = bisect.bisect_left(self._labels, text)
        while i < len(self._labels) and self._labels[i].startswith(text) and len(out) < limit:
            out.append(self._labels[i])
            i += 1
        if len(out) < limit:
            for label in self._labels:
                if label.split(" ", 1)[-1].startswith(text) and label not in out:
                    out.append(label)
                    if len(out) >= limit:
                        break
        if not out and len(text) >= 4:
            out = [m[0] for m in process.extract(text, self._labels, scorer=fuzz.WRatio,
                                                 limit=limit, score_cutoff=80)]
        return out


def _street_of(text: str) -> Street | None:
    """A reference layer's street name in normal form (None if unreadable)."""
    return parse_street(text)


def _frame_or_empty(frame: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    if frame is None:
        return pd.DataFrame({c: [] for c in columns})
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"reference frame lacks columns {missing}; it has {list(frame)}")
    return frame


def _distance_m(a: Geocode, b: Geocode) -> float:
    if a.lon is None or b.lon is None or a.lat is None or b.lat is None:
        return math.inf
    kx = _M_PER_DEG_LAT * math.cos(math.radians(a.lat))
    return math.hypot((a.lon - b.lon) * kx, (a.lat - b.lat) * _M_PER_DEG_LAT)
