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
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd
import shapely
from rapidfuzz import fuzz, process

from geo311.geocoding.approximate import closest_approach, nearest_number
from geo311.geocoding.parsing import ParsedAddress, Street, clean_text, parse_address
from geo311.geocoding.reverse import ReverseGeocode, ReverseIndex
from geo311.geocoding.side import AddressGrid
from geo311.geocoding.streets import M_PER_DEG_LAT, StreetData, StreetIndex, twin_addresses
from geo311.geocoding.suggest import Suggestion, suggest

LOGGER = logging.getLogger(__name__)

MATCH_TYPES = ("exact", "interpolated", "centerline", "intersection", "grid", "nearby", "none")
_FEET_PER_MILE = 5280.0
#: Results from different candidate streets farther apart than this are ambiguous.
AMBIGUOUS_M = 150.0
#: Longest gap (house numbers) interpolation bridges; beyond it the grid is used.
MAX_INTERPOLATION_GAP = 1600
#: How far (metres) beyond a street's known extent the grid may place a number.
GRID_REACH_M = 250.0
#: Full state names written for the two-letter codes.
STATE_NAMES = {
    "ALABAMA": "AL", "ALASKA": "AK", "ARIZONA": "AZ", "ARKANSAS": "AR", "CALIFORNIA": "CA",
    "COLORADO": "CO", "CONNECTICUT": "CT", "DELAWARE": "DE", "DISTRICT OF COLUMBIA": "DC",
    "FLORIDA": "FL", "GEORGIA": "GA", "HAWAII": "HI", "IDAHO": "ID", "ILLINOIS": "IL",
    "INDIANA": "IN", "IOWA": "IA", "KANSAS": "KS", "KENTUCKY": "KY", "LOUISIANA": "LA",
    "MAINE": "ME", "MARYLAND": "MD", "MASSACHUSETTS": "MA", "MICHIGAN": "MI",
    "MINNESOTA": "MN", "MISSISSIPPI": "MS", "MISSOURI": "MO", "MONTANA": "MT",
    "NEBRASKA": "NE", "NEVADA": "NV", "NEW HAMPSHIRE": "NH", "NEW JERSEY": "NJ",
    "NEW MEXICO": "NM", "NEW YORK": "NY", "NORTH CAROLINA": "NC", "NORTH DAKOTA": "ND",
    "OHIO": "OH", "OKLAHOMA": "OK", "OREGON": "OR", "PENNSYLVANIA": "PA", "PUERTO RICO": "PR",
    "RHODE ISLAND": "RI", "SOUTH CAROLINA": "SC", "SOUTH DAKOTA": "SD", "TENNESSEE": "TN",
    "TEXAS": "TX", "UTAH": "UT", "VERMONT": "VT", "VIRGINIA": "VA", "WASHINGTON": "WA",
    "WEST VIRGINIA": "WV", "WISCONSIN": "WI", "WYOMING": "WY",
}
#: "…, NORTH END, MA 02113": a place, then optionally a state and a ZIP code, at the end.
_PLACE_TAIL = re.compile(r"^(?P<head>.+?)\s*,\s*(?P<place>[A-Z][A-Z .'-]*?)"
                         r"(?:\s*,?\s+(?P<state>[A-Z]{2}))?"
                         r"(?:\s*,?\s+(?P<zip>\d{5})(?:-\d{4})?)?\s*$")

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
    grid : AddressGrid, optional
        The city's numbering rule, for the grid fallback; None (a city without one)
        places no number by the grid.
    zipcodes : iterable of str
        The city's ZIP codes; an address with another ZIP code is outside the city.
    city : str
        The city's name, named in every refusal ("outside the city (Springfield)").
    state : str
        The city's state (two letters); an address naming another is refused.
    places : iterable of str
        Place names accepted besides ``city`` (neighbourhood names among them); an
        address naming another place is outside the city. Empty: only ``city``.
    neighbourhoods : mapping of str to iterable of str
        The ZIP codes each neighbourhood name covers: an address that names one (or
        gives a ZIP code) is looked up among the references of those ZIP codes first,
        which chooses between streets of the same name.
    areas : mapping of str to shapely geometry
        The area a neighbourhood covers (districts of a layer), beside or instead of
        its ZIP codes: references within it count as the neighbourhood's.

    Examples
    --------
    >>> g = Geocoder(points=pd.DataFrame({"house_number": [29, 41],
    ...     "pre_dir": ["", ""], "street_name": ["MAIN", "MAIN"], "suffix": ["ST", "ST"],
    ...     "lon": [-72.5900, -72.5904], "lat": [42.1010, 42.1012]}),
    ...     city="Springfield", state="MA")
    >>> g.geocode("35 main street, springfield").match
    'interpolated'
    >>> g.geocode("35 main street, Boston").reason
    '35 MAIN ST, BOSTON is outside the city (Springfield)'
    """

    def __init__(
        self, points: pd.DataFrame | None = None, intersections: pd.DataFrame | None = None,
        centerlines: pd.DataFrame | None = None, *, grid: AddressGrid | None = None,
        zipcodes: Iterable[str] = (), city: str = "", state: str = "",
        places: Iterable[str] = (), neighbourhoods: Mapping[str, Iterable[str]] | None = None,
        areas: Mapping[str, shapely.Geometry] | None = None,
    ) -> None:
        self.grid = grid
        self.city = city.upper()
        self.city_name = city.strip()
        self.state = state.upper()
        self.places = frozenset(p.upper() for p in (*places, city) if p)
        self.neighbourhoods = {" ".join(k.upper().split()): frozenset(str(z)[:5] for z in v)
                               for k, v in (neighbourhoods or {}).items()}
        self.areas = {" ".join(k.upper().split()): v for k, v in (areas or {}).items()}
        self.places |= frozenset(self.neighbourhoods) | frozenset(self.areas)
        self.zipcodes = {str(z)[:5] for z in zipcodes if z and str(z).strip()}
        # "A & B  DORCHESTER  MA 02124": a known place at the end, written without a comma.
        names = "|".join(re.escape(p) for p in sorted(self.places, key=len, reverse=True))
        self._place_end = re.compile(
            rf"^(?P<head>.+?)\s+(?P<place>{names})(?:\s+(?P<state>[A-Z]{{2}}))?"
            rf"(?:\s+(?P<zip>\d{{5}})(?:-\d{{4}})?)?\s*$") if names else None
        self._frames = (points, intersections, centerlines)
        self._zoned: dict[tuple[frozenset[str], str], Geocoder | None] = {}
        self._zoned_lock = threading.Lock()
        self.index = StreetIndex(points, intersections, centerlines)
        self._twins = twin_addresses(points, AMBIGUOUS_M)
        self._streets_read: dict[tuple[str, int, int], Street] = {}
        self._reverse = ReverseIndex(self.index)
        self.extent = self._reverse.extent
        self.geocode = lru_cache(maxsize=1 << 16)(self._geocode)  # type: ignore[method-assign]
        LOGGER.info("geocoder: %s streets, %s address points, %s intersections",
                    len(self.index.streets), len(self.index.exact), len(self.index.crossings))

    # -- public API -------------------------------------------------------------------

    def clear_caches(self) -> None:
        """Forget every cached answer and reading (for benchmarks and memory)."""
        self.geocode.cache_clear()  # type: ignore[attr-defined]
        self._streets_read.clear()

    @property
    def size(self) -> dict[str, int]:
        """How much the geocoder knows: streets, address points, intersections."""
        return self.index.size

    def _geocode(self, text: str) -> Geocode:
        """Geocode one address or intersection (cached; see the class docstring)."""
        if isinstance(text, str):
            hit = self.index.exact.get(" ".join(text.upper().split()))
            if hit is not None:
                return self._unless_twin(Geocode(hit[0], hit[1], "exact", 1.0, "", hit[3],
                                                 hit[2]))
        cleaned, reason = clean_text(text)
        if reason:
            return _none(reason)
        tail = _PLACE_TAIL.match(cleaned) if "," in cleaned else None
        if tail is None and self._place_end is not None:
            tail = self._place_end.match(" ".join(cleaned.split()))
        if tail is not None and " ".join(tail["place"].split()) in self.places:
            # "29 MAIN ST, NORTH END 02113": the city's own place names are read here,
            # not by the tagger, which takes many a neighbourhood name for a street part.
            parsed = parse_address(tail["head"])
            if parsed.kind in ("address", "intersection", "street") and not parsed.reason:
                parsed = replace(parsed, place=" ".join(tail["place"].split()),
                                 state=tail["state"] or parsed.state,
                                 zipcode=tail["zip"] or parsed.zipcode)
            return self.geocode_parsed(parsed)
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
        """Run the cascade for an address already parsed.

        A ZIP code or neighbourhood in the address looks among that part's references
        first, so it chooses between streets of the same name; the whole city's are
        the fallback.
        """
        if parsed.reason:
            return _none(parsed.reason, parsed.label)
        outside = self._outside(parsed)
        if outside:
            return _none(outside, parsed.label)
        zone = self._zone_of(parsed)
        zoned = self._zoned_geocoder(zone) if zone[0] or zone[1] else None
        if zoned is None:
            return self._unless_twin(self._cascade(parsed))
        near = zoned._cascade(parsed)
        if near.found and near.match != "grid":
            return near
        anywhere = self._cascade(parsed)
        return anywhere if anywhere.found or not near.found else near

    def _unless_twin(self, found: Geocode) -> Geocode:
        """Refuse an address the city has twice (two MAIN STs), when nothing chose one."""
        zips = self._twins.get(found.address) if found.match == "exact" else None
        if not zips:
            return found
        return _none(f"ambiguous: {found.address} is in ZIP codes {' and '.join(zips)} of "
                     f"{self._city_label}; give the ZIP code or the neighbourhood",
                     found.address)

    def _zone_of(self, parsed: ParsedAddress) -> tuple[frozenset[str], str]:
        place = " ".join(parsed.place.strip(" ,.").split())
        zips = set(self.neighbourhoods.get(place, ()))
        if parsed.zipcode:
            zips = {parsed.zipcode} if not zips or parsed.zipcode in zips else zips
        return frozenset(zips), place if place in self.areas else ""

    def _zoned_geocoder(self, zone: tuple[frozenset[str], str]) -> Geocoder | None:
        """A geocoder over the references of a zone only: its ZIP codes, its area (None: none)."""
        with self._zoned_lock:
            if zone in self._zoned:
                return self._zoned[zone]
        zips, area_name = zone
        area = self.areas.get(area_name)
        points, crossings, centerlines = self._frames
        parts: list[pd.DataFrame | None] = []
        for f in (points, crossings):
            if f is None or not len(f):
                parts.append(None)
                continue
            keep = np.zeros(len(f), dtype=bool)
            if "zipcode" in f:
                keep |= f["zipcode"].fillna("").astype(str).str[:5].isin(zips).to_numpy()
            if area is not None:
                keep |= shapely.contains_xy(area, f["lon"].to_numpy(float),
                                            f["lat"].to_numpy(float))
            parts.append(f[keep])
        zoned = None
        if any(p is not None and len(p) for p in parts):
            zoned = Geocoder(parts[0], parts[1], centerlines, grid=self.grid, city=self.city_name,
                             state=self.state)
        with self._zoned_lock:
            if len(self._zoned) > 256:
                self._zoned.clear()
            self._zoned[zone] = zoned
        return zoned

    def _cascade(self, parsed: ParsedAddress) -> Geocode:
        if parsed.kind == "intersection":
            return self._intersection(parsed)
        if parsed.kind == "street" or parsed.number is None:
            assert parsed.street is not None
            cands, note = self.resolve_street(parsed.street)
            if not cands:
                return _none(note, parsed.label)
            return _none(f"no house number: give a number on {cands[0][0].street.label} "
                         "or a cross street", parsed.label)
        assert parsed.street is not None
        cands, note = self.resolve_street(parsed.street)
        if not cands:
            return _none(note, parsed.label)
        return self.place_number(parsed.number, cands, parsed)

    def reverse(self, lon: float, lat: float, *, max_distance_m: float = 500.0) -> ReverseGeocode:
        """The nearest known address and street to (lon, lat), with distances in metres.

        Examples
        --------
        >>> geocoder.reverse(-87.6698, 41.8058).address  # doctest: +SKIP
        '4853 S WOOD ST'
        """
        return self._reverse.nearest(lon, lat, max_distance_m=max_distance_m)

    def suggest(self, text: str, limit: int = 5) -> list[Suggestion]:
        """Complete a partly typed address into up to ``limit`` placed addresses.

        See ``geo311.geocoding.suggest.suggest``.

        Examples
        --------
        >>> [s.address for s in geocoder.suggest("4853 s wo", 3)]  # doctest: +SKIP
        ['4853 S WOOD ST', '4853 S WOODLAWN AVE']
        """
        return suggest(self, text, limit)

    # -- the cascade --------------------------------------------------------------------

    @property
    def _city_label(self) -> str:
        """The city as refusals name it: "Springfield", or "the city" when unnamed."""
        if not self.city_name:
            return "the city"
        return self.city_name.title() if self.city_name.isupper() else self.city_name

    def _outside(self, parsed: ParsedAddress) -> str:
        city = self._city_label
        place = " ".join(parsed.place.strip(" ,.").split())
        if place and self.places and place not in self.places:
            return f"{parsed.label}, {place} is outside the city ({city})"
        state = parsed.state.strip(" ,.")
        if state and self.state and STATE_NAMES.get(state, state) != self.state:
            return f"{parsed.label}, {state} is outside the city's state ({self.state}, {city})"
        if parsed.zipcode and self.zipcodes and parsed.zipcode not in self.zipcodes:
            return f"ZIP code {parsed.zipcode} is not one of the city's ({city})"
        return ""

    def resolve_street(self, street: Street) -> tuple[list[tuple[StreetData, float, str]], str]:
        """Known streets the typed one may be, each with a score factor; or a reason."""
        found = self._candidates(street, 1.0)
        if found:
            return found, ""
        key = street.name_key
        if len(key) >= 4 and not key.isdigit():
            cutoff = 88 if len(key) <= 6 else 82
            best = process.extract(key, self.index.names, scorer=fuzz.ratio, limit=2,
                                   score_cutoff=cutoff)
            if best and (len(best) == 1 or best[0][1] - best[1][1] >= 4):
                corrected = Street(street.pre_dir, best[0][0], street.suffix)
                found = self._candidates(corrected, 0.85 * best[0][1] / 100)
                if found:
                    return found, ""
            elif best:
                return [], (f"street {street.label!r} is unknown; it is as close to "
                            f"{best[0][0]} as to {best[1][0]}")
        return [], f"no street named {street.label!r} is known in {self._city_label}"

    def _candidates(self, street: Street, factor: float) -> list[tuple[StreetData, float, str]]:
        key = (street.pre_dir, street.name_key, street.suffix)
        if key in self.index.streets:
            return [(self.index.streets[key], factor, "")]
        options = self.index.by_dir_name.get(key[:2], []) if street.pre_dir else []
        if not options and not street.pre_dir:
            options = [k for k in self.index.by_name.get(street.name_key, [])
                       if not street.suffix or k[2] == street.suffix]
        if not options:
            return []
        # A typed street type that differs from the known one costs more than none.
        penalty = 0.97 if not street.suffix else 0.85
        if not street.pre_dir:
            penalty *= 0.95
        return [(self.index.streets[k], factor * penalty, "") for k in options]

    def place_number(self, number: int, cands: list[tuple[StreetData, float, str]],
                     parsed: ParsedAddress | None) -> Geocode:
        """Place a house number on the best of the candidate streets, or say why not."""
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

    def _on_street(self, number: int, data: StreetData,
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

    def _centerline(self, number: int, data: StreetData, factor: float,
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
                dx = (coords[k + 1][0] - coords[k][0]) * self.index.kx
                dy = (coords[k + 1][1] - coords[k][1]) * M_PER_DEG_LAT
                norm = math.hypot(dx, dy) or 1.0
                sign = 1.0 if side == "L" else -1.0
                x += sign * -dy / norm * 10.0 / self.index.kx
                y += sign * dx / norm * 10.0 / M_PER_DEG_LAT
                return Geocode(x, y, "centerline", round(0.85 * factor, 3), "", label)
        return None

    def _grid(self, number: int, data: StreetData, factor: float,
              label: str) -> tuple[Geocode | None, str]:
        direction = data.street.pre_dir
        if self.grid is None:
            return self._nearby(number, data, factor, label)
        if direction not in ("N", "S", "E", "W"):
            return None, f"{label}: no known address near it and the street has no direction"
        if len(data.shape_a) == 0:
            return None, f"{label}: the street's course is unknown"
        axis = 1 if direction in ("N", "S") else 0
        if axis != data.axis:
            return None, f"{label}: the street does not run {direction}"
        sign = 1 if direction in ("N", "E") else -1
        per_number = _FEET_PER_MILE * 0.3048 / self.grid.numbers_per_mile
        metres_per_deg = M_PER_DEG_LAT if axis == 1 else self.index.kx
        anchored_on = ""
        if data.numbers:
            j = min(range(len(data.numbers)), key=lambda k: abs(data.numbers[k] - number))
            near = data.numbers[j]
            a = data.xy[j][axis] + sign * (number - near) * per_number / metres_per_deg
            anchored_on, gap = f"{near} {data.street.label}", abs(number - near)
        else:
            cal = self.index.calibration.get("ns" if axis == 1 else "ew")
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

    def _approach(self, first: list[tuple[StreetData, float, str]],
                  second: list[tuple[StreetData, float, str]], label: str) -> Geocode:
        """Where two streets' known addresses come closest, when no crossing is known."""
        best = closest_approach(((a, b, fa * fb) for a, fa, _ in first for b, fb, _ in second),
                                self.index.kx)
        if best is None:
            return _none(f"{label}: these streets are not known to cross", label)
        streets = f"{best.first.street.label} & {best.second.street.label}"
        return Geocode(best.lon, best.lat, "intersection", round(0.6 * best.score, 3),
                       f"placed where the known addresses of {streets} come closest "
                       f"({best.gap_m:.0f} m apart)", streets)

    def _nearby(self, number: int, data: StreetData, factor: float,
                label: str) -> tuple[Geocode | None, str]:
        """The nearest known number on the street, if it is a few doors off."""
        if number < 1:
            return None, f"{label}: no house number (0 stands for an unknown one)"
        near = nearest_number(number, data)
        if near is None:
            return None, (f"{label}: no known address near it (the city has no address "
                          "grid to place it by)")
        known, x, y = near
        return Geocode(x, y, "nearby", round(0.4 * factor, 3),
                       f"placed at {known} {data.street.label}, the nearest known number",
                       label), ""

    def _intersection(self, parsed: ParsedAddress) -> Geocode:
        assert parsed.street is not None and parsed.cross is not None
        first, why1 = self.resolve_street(parsed.street)
        second, why2 = self.resolve_street(parsed.cross)
        if not first or not second:
            return _none(why1 or why2, parsed.label)
        found = []
        for a, fa, _ in first:
            ka = (a.street.pre_dir, a.street.name_key, a.street.suffix)
            for b, fb, _ in second:
                kb = (b.street.pre_dir, b.street.name_key, b.street.suffix)
                hit = self.index.crossings.get(frozenset((ka, kb)))
                if hit is not None:
                    found.append((fa * fb, hit, f"{a.street.label} & {b.street.label}"))
        if not found:
            return self._approach(first, second, parsed.label)
        found.sort(key=lambda f: -f[0])
        score, (x, y), label = found[0]
        for _, (ox, oy), other in found[1:]:
            if math.hypot((ox - x) * self.index.kx, (oy - y) * M_PER_DEG_LAT) > AMBIGUOUS_M:
                return _none(f"ambiguous: {label} or {other}; the streets cross more than "
                             "once", parsed.label)
        return Geocode(x, y, "intersection", round(0.95 * score, 3), "", label)

def _distance_m(a: Geocode, b: Geocode) -> float:
    if a.lon is None or b.lon is None or a.lat is None or b.lat is None:
        return math.inf
    kx = M_PER_DEG_LAT * math.cos(math.radians(a.lat))
    return math.hypot((a.lon - b.lon) * kx, (a.lat - b.lat) * M_PER_DEG_LAT)
