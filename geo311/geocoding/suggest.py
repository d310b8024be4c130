"""Address suggestions: complete a partly typed address or intersection in a search box.

A typed house number and the start of a street name become placed addresses on
every known street starting so (or close, within bounds); ``street & prefix``
becomes the known crossings of that street with streets starting so.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rapidfuzz import fuzz, process

from geo311.geocoding.parsing import INTERSECTION_WORDS, clean_text, parse_street

if TYPE_CHECKING:
    from geo311.geocoding.cascade import Geocoder


@dataclass(frozen=True)
class Suggestion:
    """One completion for an address search box."""

    address: str
    lon: float
    lat: float
    match: str
    score: float


def suggest(geocoder: Geocoder, text: str, limit: int = 5) -> list[Suggestion]:
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
        return _suggest_crossings(geocoder, " ".join(words[:joins[0]]),
                                  " ".join(words[joins[0] + 1:]), limit)
    number = int(words[0]) if words[0].isdigit() and len(words[0]) <= 5 else None
    rest = " ".join(words[1:] if number is not None else words)
    out: list[Suggestion] = []
    if number is not None and not rest:
        return []
    full = geocoder.geocode(cleaned)
    if full.found:
        out.append(Suggestion(full.address, full.lon, full.lat,  # type: ignore[arg-type]
                              full.match, full.score))
    for label in street_prefix(geocoder.index.labels, rest, limit * 3):
        key = geocoder.index.label_keys[label]
        data = geocoder.index.streets[key]
        if number is None:
            if len(data.shape_a):
                mid = len(data.shape_a) // 2
                xy = [0.0, 0.0]
                xy[data.axis], xy[1 - data.axis] = data.shape_a[mid], data.shape_b[mid]
                out.append(Suggestion(label, xy[0], xy[1], "street", 0.3))
        else:
            g = geocoder.place_number(number, [(data, 1.0, "")], None)
            if g.found:
                out.append(Suggestion(g.address, g.lon, g.lat,  # type: ignore[arg-type]
                                      g.match, g.score))
        if len({s.address for s in out}) >= limit:
            break
    unique: dict[str, Suggestion] = {}
    for s in out:
        unique.setdefault(s.address, s)
    return list(unique.values())[:limit]


def _suggest_crossings(geocoder: Geocoder, first: str, prefix: str, limit: int
                       ) -> list[Suggestion]:
    street = parse_street(first)
    if street is None:
        return []
    cands, _ = geocoder.resolve_street(street)
    out: dict[str, Suggestion] = {}
    for data, factor, _ in cands:
        key = (data.street.pre_dir, data.street.name_key, data.street.suffix)
        for other, x, y in geocoder.index.crossing_list.get(key, []):
            label = geocoder.index.streets[other].street.label
            if label.startswith(prefix) or label.split(" ", 1)[-1].startswith(prefix):
                text = f"{data.street.label} & {label}"
                out.setdefault(text, Suggestion(text, x, y, "intersection",
                                                round(0.95 * factor, 3)))
    return sorted(out.values(), key=lambda s: s.address)[:limit]


def street_prefix(labels: list[str], text: str, limit: int) -> list[str]:
    """Street labels starting with ``text`` (also without their direction), or close."""
    if not text:
        return []
    out: list[str] = []
    i = bisect.bisect_left(labels, text)
    while i < len(labels) and labels[i].startswith(text) and len(out) < limit:
        out.append(labels[i])
        i += 1
    if len(out) < limit:
        for label in labels:
            if label.split(" ", 1)[-1].startswith(text) and label not in out:
                out.append(label)
                if len(out) >= limit:
                    break
    if not out and len(text) >= 4:
        out = [m[0] for m in process.extract(text, labels, scorer=fuzz.WRatio,
                                             limit=limit, score_cutoff=80)]
    return out
