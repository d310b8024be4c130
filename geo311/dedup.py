"""Duplicate merging: which earlier request a new report repeats, live and in bulk.

A new request duplicates an earlier one when both are in the same scope (the
same service, or the same service group), the earlier one came in at most
``window_days`` before it, lies at most ``radius_m`` away and, when the rule
says so, was still open when the new one came in. Of the eligible requests
the nearest wins, then the oldest, then the lowest id; the new request joins
the *root* of the winner's group, so groups never nest.

``find_duplicate`` decides one new request against candidates the store has
narrowed down; ``cluster_requests`` re-decides a whole table at once, in time
order, and gives exactly the groups that calling ``find_duplicate`` for each
request in ``(requested, id)`` order would give. Both measure with the same
haversine and compare times in whole microseconds, so they cannot disagree.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from geo311.errors import InvalidRequest
from geo311.geodesy import EARTH_RADIUS_M, haversine_m
from geo311.model import Candidate, DuplicateRule

LOGGER = logging.getLogger(__name__)

#: Columns ``cluster_requests`` needs (``closed`` is optional: absent means never closed).
CLUSTER_COLUMNS = ("id", "lon", "lat", "service_code", "requested")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_NEVER = np.iinfo(np.int64).max
#: Fewest requests a time slice should hold (measured best on 1M resampled requests).
_SLICE_ROWS = 16_384


def _scope_key(scope: str, service_code: str, group: str) -> str:
    """What two requests must share to be compared; a service with no group is its own."""
    if scope == "group" and group:
        return f"g:{group}"
    return f"s:{service_code}"


def _to_us(when: datetime, what: str) -> int:
    """Microseconds since 1970 (UTC) of an aware time; naive times are refused."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidRequest(f"{what} was {when!r} but is expected to be timezone-aware")
    return (when - _EPOCH) // _ONE_US


def _bad_point(lon: float | None, lat: float | None) -> bool:
    return lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat))


def find_duplicate(
    new_lon: float | None,
    new_lat: float | None,
    new_service_code: str,
    new_group: str,
    new_requested: datetime,
    candidates: Sequence[Candidate],
    rule: DuplicateRule,
) -> tuple[int, float] | None:
    """The group a new request joins, and how far it is from its nearest repeat.

    Returns ``(root_id, distance_m)``: the root of the winning candidate's
    group and the distance to the winner itself (which may be a child of that
    root), or None when no candidate is eligible. The caller passes the
    earlier requests only (the store's ``near`` narrows them); a candidate
    requested at the same instant counts as earlier. A request without a
    point never matches.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> t = datetime(2012, 5, 1, tzinfo=UTC)
    >>> old = Candidate(7, -87.6, 41.8, "SCB", "", t, None, None)
    >>> root, distance_m = find_duplicate(-87.6, 41.8001, "SCB", "", t, [old], DuplicateRule())
    >>> root, round(distance_m, 1)
    (7, 11.1)
    """
    new_us = _to_us(new_requested, "new_requested")
    if _bad_point(new_lon, new_lat) or not candidates:
        return None
    key = _scope_key(rule.scope, new_service_code, new_group)
    same = [
        c for c in candidates
        if _scope_key(rule.scope, c.service_code, c.group) == key
        and not _bad_point(c.lon, c.lat)
    ]
    if not same:
        return None
    ids = np.array([c.id for c in same], dtype=np.int64)
    lon = np.array([c.lon for c in same], dtype=float)
    lat = np.array([c.lat for c in same], dtype=float)
    requested_us = np.array([_to_us(c.requested, "requested") for c in same], dtype=np.int64)
    closed_us = np.array(
        [_NEVER if c.closed is None or pd.isna(c.closed) else _to_us(c.closed, "closed")
         for c in same],
        dtype=np.int64,
    )
    age_us = new_us - requested_us
    ok = (age_us >= 0) & (age_us <= rule.window_us)
    if rule.only_open:
        ok &= closed_us > new_us
    if not ok.any():
        return None
    # The same function and argument order as cluster_requests: equal distances.
    distance_m = haversine_m(np.full(len(same), new_lon), np.full(len(same), new_lat), lon, lat)
    ok &= distance_m <= rule.radius_m
    if not ok.any():
        return None
    pick = np.flatnonzero(ok)
    best = pick[np.lexsort((ids[pick], requested_us[pick], distance_m[pick]))[0]]
    winner = same[best]
    root = winner.id if winner.duplicate_of is None else winner.duplicate_of
    LOGGER.info(
        "new %s request duplicates #%s (group #%s), %.1f m away",
        new_service_code, winner.id, root, distance_m[best],
    )
    return int(root), float(distance_m[best])


def match_requests(
    frame: pd.DataFrame,
    rules: Mapping[str, DuplicateRule] | DuplicateRule,
    *,
    groups: Mapping[str, str] | None = None,
    default: DuplicateRule | None = None,
) -> pd.DataFrame:
    """Re-decide every request of a table in time order; say whom each one repeats.

    The result, indexed like ``frame``, has ``duplicate_of`` (the root of the
    group a request joined, <NA> for roots), ``nearest`` (the earlier request
    it matched, whose root it joined) and ``distance_m`` (to ``nearest``).
    See ``cluster_requests`` for the arguments.

    Examples
    --------
    >>> t = pd.Timestamp("2012-05-01", tz="UTC")
    >>> frame = pd.DataFrame({"id": [1, 2, 3], "lon": [-87.6, -87.6, -87.6],
    ...                       "lat": [41.8, 41.8001, 41.8002], "service_code": "SCB",
    ...                       "requested": [t, t, t]})
    >>> match_requests(frame, DuplicateRule(radius_m=15))["nearest"].tolist()
    [<NA>, 1, 2]
    """
    rows = _validated(frame)
    n = len(rows)
    ids = rows["id"].to_numpy(dtype=np.int64)
    lon = rows["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat = rows["lat"].to_numpy(dtype=float, na_value=np.nan)
    requested_us = _column_us(rows["requested"], "requested")
    closed_us = (
        _column_us(rows["closed"], "closed", missing=_NEVER) if "closed" in rows
        else np.full(n, _NEVER, dtype=np.int64)
    )
    codes, code_names = pd.factorize(rows["service_code"])
    # Time order, ties by id: a position in this order is what "earlier" means below.
    order = _time_order(requested_us, ids)
    order = order[(np.isfinite(lon) & np.isfinite(lat))[order]]
    table = _Table.build(
        lon[order], lat[order], requested_us[order], closed_us[order], codes[order],
        [str(c) for c in code_names], rules, groups or {}, default or DuplicateRule(),
    )
    for members, asking in table.scopes():
        _match_scope(table, members, asking)
    child = table.nearest >= 0
    root = _roots(table.nearest)
    duplicate_of = np.zeros(n, dtype=np.int64)
    nearest = np.zeros(n, dtype=np.int64)
    distance_m = np.full(n, np.nan)
    is_child = np.zeros(n, dtype=bool)
    at = order[child]
    duplicate_of[at] = ids[order[root[child]]]
    nearest[at] = ids[order[table.nearest[child]]]
    distance_m[at] = table.nearest_m[child]
    is_child[at] = True
    LOGGER.info(
        "reclustered %d requests (%d without a point): %d duplicates in %d groups",
        n, n - len(order), len(at), len(np.unique(root[child])),
    )
    return pd.DataFrame(
        {
            "duplicate_of": pd.arrays.IntegerArray(duplicate_of, ~is_child),
            "nearest": pd.arrays.IntegerArray(nearest, ~is_child),
            "distance_m": distance_m,
        },
        index=frame.index,
    )


def cluster_requests(
    frame: pd.DataFrame,
    rules: Mapping[str, DuplicateRule] | DuplicateRule,
    *,
    groups: Mapping[str, str] | None = None,
    default: DuplicateRule | None = None,
) -> pd.Series:
    """Re-cluster stored requests in time order, exactly as live intake would have.

    ``frame`` has ``id``, ``lon``, ``lat``, ``service_code``, ``requested``
    (timezone-aware) and optionally ``closed`` (aware or NaT). ``rules`` is one
    rule for every service or a rule per service code; codes it lacks use
    ``default`` (``DuplicateRule()`` when None). ``groups`` maps a service code
    to its group, for rules with scope "group". The result, indexed like
    ``frame``, is the root id each duplicate joins and <NA> for roots. Rows
    without a point are never duplicates and never roots.

    Each scope is cut into time slices at least one window long and searched
    with a KD-tree per slice, so the work grows with the pairs close in both
    space and time rather than with every pair close in space. Rows already
    in ``(requested, id)`` order skip the sort.

    Examples
    --------
    >>> t = pd.Timestamp("2012-05-01", tz="UTC")
    >>> frame = pd.DataFrame({"id": [1, 2, 3], "lon": [-87.6, -87.6, -87.6],
    ...                       "lat": [41.8, 41.8001, 41.8002], "service_code": "SCB",
    ...                       "requested": [t, t, t]})
    >>> cluster_requests(frame, DuplicateRule(radius_m=15)).tolist()
    [<NA>, 1, 1]
    """
    return match_requests(frame, rules, groups=groups, default=default)["duplicate_of"]


def _time_order(t_us: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions in (time, id) order; a frame read in that order skips the sort."""
    step = np.diff(t_us)
    if np.all((step > 0) | ((step == 0) & (np.diff(ids) > 0))):
        return np.arange(len(t_us))
    return np.lexsort((ids, t_us))


def _validated(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns cluster_requests needs, checked; say what arrived when they are wrong."""
    missing = [c for c in CLUSTER_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidRequest(
            f"requests frame lacks columns {missing}; it has {list(frame.columns)}"
        )
    columns = [*CLUSTER_COLUMNS, *(["closed"] if "closed" in frame.columns else [])]
    rows = frame[columns]
    if rows["id"].isna().any():
        raise InvalidRequest("requests frame has rows without an id")
    if not pd.api.types.is_integer_dtype(rows["id"].dtype):
        raise InvalidRequest(f"id had dtype {rows['id'].dtype} but is expected to be integers")
    if rows["id"].duplicated().any():
        repeated = rows["id"][rows["id"].duplicated()].unique()[:5].tolist()
        raise InvalidRequest(f"request ids were repeated ({repeated}) but are expected unique")
    if rows["service_code"].isna().any():
        raise InvalidRequest("requests frame has rows without a service_code")
    return rows


def _column_us(values: pd.Series, name: str, missing: int | None = None) -> np.ndarray:
    """Aware times as int64 microseconds since 1970 UTC; NaT becomes ``missing``."""
    if values.isna().all() and missing is not None:
        return np.full(len(values), missing, dtype=np.int64)
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise InvalidRequest(
            f"{name} had dtype {values.dtype} but is expected to be timezone-aware datetimes"
        )
    if values.isna().any() and missing is None:
        raise InvalidRequest(f"{name} is missing in {int(values.isna().sum())} rows")
    naive = values.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("us")
    us = naive.to_numpy(dtype="datetime64[us]").view(np.int64).copy()
    if missing is not None:
        us[values.isna().to_numpy()] = missing
    return us


@dataclass
class _Table:
    """Located requests in time order, with the rule of each one's service.

    Every array is indexed by position in ``(requested, id)`` order; ``nearest``
    and ``nearest_m`` collect the answer (-1 and NaN for roots).
    """

    lon: np.ndarray
    lat: np.ndarray
    t_us: np.ndarray
    closed_us: np.ndarray
    xyz: np.ndarray
    radius_m: np.ndarray
    window_us: np.ndarray
    only_open: np.ndarray
    query_key: np.ndarray
    service_key: np.ndarray
    group_key: np.ndarray
    is_group_key: np.ndarray
    nearest: np.ndarray
    nearest_m: np.ndarray

    @classmethod
    def build(
        cls, lon: np.ndarray, lat: np.ndarray, t_us: np.ndarray, closed_us: np.ndarray,
        codes: np.ndarray, code_names: list[str],
        rules: Mapping[str, DuplicateRule] | DuplicateRule, groups: Mapping[str, str],
        default: DuplicateRule,
    ) -> _Table:
        """Look the rules and scope keys up once per service code, then per request."""
        picked = [
            rules if isinstance(rules, DuplicateRule) else rules.get(code, default)
            for code in code_names
        ]
        for code, rule in zip(code_names, picked, strict=True):
            if not isinstance(rule, DuplicateRule):
                raise InvalidRequest(
                    f"the rule for {code!r} was {rule!r} but is expected to be a DuplicateRule"
                )
        names = [_scope_key("service", c, "") for c in code_names]
        names += [_scope_key("group", c, groups.get(c, "")) for c in code_names]
        key_ids, keys = pd.factorize(pd.Series(names, dtype=object))
        k = len(code_names)
        service_key, group_key = key_ids[:k], key_ids[k:]
        is_scope_group = np.array([r.scope == "group" for r in picked], dtype=bool)
        query_key = np.where(is_scope_group, group_key, service_key)
        return cls(
            lon=lon, lat=lat, t_us=t_us, closed_us=closed_us,
            xyz=_unit_vectors(lon, lat) * EARTH_RADIUS_M,
            radius_m=np.array([r.radius_m for r in picked], dtype=float)[codes],
            window_us=np.array([r.window_us for r in picked], dtype=np.int64)[codes],
            only_open=np.array([r.only_open for r in picked], dtype=bool)[codes],
            query_key=query_key[codes], service_key=service_key[codes],
            group_key=group_key[codes],
            is_group_key=np.array([str(name).startswith("g:") for name in keys], dtype=bool),
            nearest=np.full(len(t_us), -1, dtype=np.int64),
            nearest_m=np.full(len(t_us), np.nan),
        )

    def scopes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(members, asking)`` per scope: who may be matched, and who asks (time order)."""
        if not len(self.t_us):
            return []
        out = []
        for key in np.unique(self.query_key):
            same = self.group_key if self.is_group_key[key] else self.service_key
            members = np.flatnonzero(same == key)
            out.append((members, self.query_key[members] == key))
        return out


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Points on the unit sphere: their chord length is monotone in haversine distance."""
    lam, phi = np.radians(lon), np.radians(lat)
    cos_phi = np.cos(phi)
    xyz = np.empty((len(lon), 3))
    np.multiply(cos_phi, np.cos(lam), out=xyz[:, 0])
    np.multiply(cos_phi, np.sin(lam), out=xyz[:, 1])
    np.sin(phi, out=xyz[:, 2])
    return xyz


def _chord_m(arc_m: float) -> float:
    """The straight-line length of a great-circle arc, widened far beyond rounding."""
    arc_m = min(arc_m, math.pi * EARTH_RADIUS_M)
    return 2 * EARTH_RADIUS_M * math.sin(arc_m / (2 * EARTH_RADIUS_M)) * (1 + 1e-9) + 1e-6


def _tree(points: np.ndarray) -> cKDTree:
    return cKDTree(points, balanced_tree=False, compact_nodes=False)


def _match_scope(table: _Table, members: np.ndarray, asking: np.ndarray) -> None:
    """Find each asking member's nearest eligible earlier member, in time slices.

    Slices are at least one window long, so a request's eligible earlier ones
    lie in its own slice or the one before. Pairs within a slice come from
    one tree; pairs with the slice before from a second tree over those of it
    that can still qualify (in the window, and open if every rule here asks).
    """
    if len(members) < 2 or not asking.any():
        return
    ask = members[asking]
    if float(table.radius_m[ask].max()) == 0.0:
        _match_same_point(table, members, asking)
        return
    window_max = int(table.window_us[ask].max())
    all_open = bool(table.only_open[ask].all())
    chord_m = _chord_m(float(table.radius_m[ask].max()))
    t = table.t_us[members]
    slice_us = _slice_us(t, window_max)
    slice_of = (t - t[0]) // slice_us
    starts = np.flatnonzero(np.r_[True, slice_of[1:] != slice_of[:-1]])
    ends = np.r_[starts[1:], len(members)]
    asked = np.zeros(len(table.t_us), dtype=bool)
    asked[ask] = True
    every_asks = bool(asking.all())
    for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
        here = members[start:end]
        if not every_asks and not asked[here].any():
            continue
        tree = _tree(table.xyz[here])
        pairs = tree.query_pairs(chord_m, output_type="ndarray")
        # query_pairs gives (i, j) with i < j: the earlier one first.
        earlier, later = [here[pairs[:, 0]]], [here[pairs[:, 1]]]
        if k and slice_of[starts[k - 1]] == slice_of[start] - 1:
            before = members[starts[k - 1]:start]
            first_t = table.t_us[here[0]]
            before = before[table.t_us[before] >= first_t - window_max]
            if all_open:
                before = before[table.closed_us[before] > first_t]
            if len(before):
                cross = tree.sparse_distance_matrix(_tree(table.xyz[before]), chord_m,
                                                    output_type="ndarray")
                earlier.append(before[cross["j"]])
                later.append(here[cross["i"]])
        _keep_nearest(table, np.concatenate(earlier), np.concatenate(later), asked, every_asks)


def _match_same_point(table: _Table, members: np.ndarray, asking: np.ndarray) -> None:
    """Radius 0: a request's candidates are the earlier ones at its very point.

    Grouping by exact coordinates (a hash, then a check) replaces the trees: each
    point's requests in time order give the pairs within the longest window.
    """
    ask = members[asking]
    lon, lat = table.lon[members], table.lat[members]
    bits = lon.view(np.int64) * np.int64(1_000_003) ^ lat.view(np.int64)
    codes, _ = pd.factorize(bits)
    by_point = np.argsort(codes, kind="stable")  # members are in time order already
    position = members[by_point]
    n = len(table.t_us)
    key = codes[by_point].astype(np.int64) * n + position
    earliest = np.searchsorted(table.t_us, table.t_us[position]
                               - int(table.window_us[ask].max()), side="left")
    first = np.searchsorted(key, codes[by_point].astype(np.int64) * n + earliest)
    counts = np.arange(len(key)) - first
    later = np.repeat(np.arange(len(key)), counts)
    earlier = np.arange(len(later)) - np.repeat(np.cumsum(counts) - counts - first, counts)
    earlier, later = position[earlier], position[later]
    same = (table.lon[earlier] == table.lon[later]) & (table.lat[earlier] == table.lat[later])
    asked = np.zeros(n, dtype=bool)
    asked[ask] = True
    _keep_nearest(table, earlier[same], later[same], asked, bool(asking.all()))


def _slice_us(t_us: np.ndarray, window_us: int) -> int:
    """A slice length: at least the window, and long enough that trees are not tiny.

    Slices hold about ``_SLICE_ROWS`` requests or more (judged on the central
    90 % of the times, so that a few old stragglers do not stretch them);
    shorter ones spend more on building trees than they save on pairs.
    """
    n = len(t_us)
    bulk_us = int(t_us[(19 * n) // 20] - t_us[n // 20])
    return max(window_us, bulk_us * _SLICE_ROWS // n, int(t_us[-1] - t_us[0]) // 2000, 1)


def _keep_nearest(
    table: _Table, earlier: np.ndarray, later: np.ndarray, asked: np.ndarray, every_asks: bool
) -> None:
    """Of candidate pairs (later, earlier), record each later one's nearest eligible one.

    Distances are haversine, as in ``find_duplicate``; chords only pick which
    pairs are worth measuring (the nearest by chord is the nearest by arc, up
    to rounding far below ``tolerance_m``).
    """
    keep = np.ones(len(later), dtype=bool) if every_asks else asked[later]
    keep &= table.t_us[later] - table.t_us[earlier] <= table.window_us[later]
    keep &= ~table.only_open[later] | (table.closed_us[earlier] > table.t_us[later])
    earlier, later = earlier[keep], later[keep]
    if not len(later):
        return
    diff = table.xyz[later] - table.xyz[earlier]
    chord = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    lo = int(later.min())
    shortest = np.full(int(later.max()) - lo + 1, np.inf)
    np.minimum.at(shortest, later - lo, chord)
    tolerance_m = 1e-6 + 1e-12 * shortest
    keep = chord <= (shortest + tolerance_m)[later - lo]
    earlier, later = earlier[keep], later[keep]
    arc = haversine_m(table.lon[later], table.lat[later], table.lon[earlier], table.lat[earlier])
    keep = arc <= table.radius_m[later]
    earlier, later, arc = earlier[keep], later[keep], arc[keep]
    if not len(later):
        return
    # Nearest, then oldest: the lowest position among the nearest.
    best_m = np.full(len(shortest), np.inf)
    np.minimum.at(best_m, later - lo, arc)
    tied = arc == best_m[later - lo]
    first = np.full(len(shortest), _NEVER, dtype=np.int64)
    np.minimum.at(first, later[tied] - lo, earlier[tied])
    found = np.flatnonzero(first != _NEVER)
    table.nearest[found + lo] = first[found]
    table.nearest_m[found + lo] = best_m[found]


def _roots(nearest: np.ndarray) -> np.ndarray:
    """Each position's group root, following ``nearest`` links (always to earlier ones)."""
    root = np.where(nearest >= 0, nearest, np.arange(len(nearest)))
    while True:
        hop = root[root]
        if np.array_equal(hop, root):
            return root
        root = hop
