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
from numbers import Real

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from geo311.errors import InvalidRequest
from geo311.geodesy import EARTH_RADIUS_M, haversine_m

LOGGER = logging.getLogger(__name__)

#: What a rule's ``scope`` may be: the same service code, or the same service group.
SCOPES = ("service", "group")

#: Columns ``cluster_requests`` needs (``closed`` is optional: absent means never closed).
CLUSTER_COLUMNS = ("id", "lon", "lat", "service_code", "requested")

_US_PER_DAY = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class DuplicateRule:
    """When a new request counts as a repeat of an earlier one.

    ``radius_m`` is a great-circle distance (0 means the very same point, as
    a geocoder gives one address). ``window_days`` looks back from the new
    request's time. With ``only_open`` the earlier request must still be open
    when the new one comes in, which is how the City of Chicago flags them.

    Examples
    --------
    >>> DuplicateRule(radius_m=25, window_days=3).scope
    'service'
    """

    radius_m: float = 50.0
    window_days: float = 30.0
    scope: str = "service"
    only_open: bool = True

    def __post_init__(self) -> None:
        for name in ("radius_m", "window_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise InvalidRequest(f"{name} was {value!r} but is expected to be a number")
            if not math.isfinite(value) or value < 0:
                raise InvalidRequest(f"{name} was {value!r} but is expected to be >= 0")
        if self.scope not in SCOPES:
            raise InvalidRequest(
                f"scope was {self.scope!r} but is expected to be in {list(SCOPES)}"
            )
        if not isinstance(self.only_open, bool | np.bool_):
            raise InvalidRequest(
                f"only_open was {self.only_open!r} but is expected to be True or False"
            )

    @property
    def window_us(self) -> int:
        """The window in whole microseconds, the unit both paths compare times in."""
        return round(self.window_days * _US_PER_DAY)


@dataclass(frozen=True)
class Candidate:
    """An earlier request a new one might duplicate, as the store hands it over.

    ``duplicate_of`` is the root of the group it already belongs to (None for
    a root). ``group`` is its service group ("" when the service has none).
    """

    id: int
    lon: float
    lat: float
    service_code: str
    group: str
    requested: datetime
    closed: datetime | None
    duplicate_of: int | None


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
    # Same argument order and array shapes as cluster_requests: identical distances.
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
    out = pd.DataFrame(
        {
            "duplicate_of": pd.array([None] * n, dtype="Int64"),
            "nearest": pd.array([None] * n, dtype="Int64"),
            "distance_m": np.full(n, np.nan),
        },
        index=frame.index,
    )
    if n == 0:
        return out
    ids = rows["id"].to_numpy(dtype=np.int64)
    lon = rows["lon"].to_numpy(dtype=float)
    lat = rows["lat"].to_numpy(dtype=float)
    requested_us = _column_us(rows["requested"], "requested")
    closed_us = (
        _column_us(rows["closed"], "closed", missing=_NEVER) if "closed" in rows
        else np.full(n, _NEVER, dtype=np.int64)
    )
    located = np.isfinite(lon) & np.isfinite(lat)
    # Time order, ties by id: position in this order is "earlier" for everything below.
    order = np.lexsort((ids, requested_us))
    order = order[located[order]]
    radius_m, window_us, only_open, query_key, service_key, group_key = _rule_arrays(
        rows["service_code"].to_numpy(dtype=object)[order], rules, groups, default
    )
    m = len(order)
    s_lon, s_lat, s_t, s_closed = lon[order], lat[order], requested_us[order], closed_us[order]
    xyz = _unit_vectors(s_lon, s_lat) * EARTH_RADIUS_M
    nearest = np.full(m, -1, dtype=np.int64)
    nearest_m = np.full(m, np.nan)
    for key in np.unique(query_key):
        members = np.flatnonzero((service_key == key) | (group_key == key))
        asking = query_key[members] == key
        later, earlier, dist = _pairs(
            members, asking, s_t, xyz, s_lon, s_lat, s_closed, radius_m, window_us, only_open
        )
        if len(later):
            # Nearest, then oldest (lowest position), for each later request.
            pick = np.lexsort((earlier, dist, later))
            first = np.r_[True, later[pick][1:] != later[pick][:-1]]
            pick = pick[first]
            nearest[later[pick]] = earlier[pick]
            nearest_m[later[pick]] = dist[pick]
    root = _roots(nearest)
    child = nearest >= 0
    rows_at = order[child]
    out.iloc[rows_at, 0] = ids[order[root[child]]]
    out.iloc[rows_at, 1] = ids[order[nearest[child]]]
    out.iloc[rows_at, 2] = nearest_m[child]
    LOGGER.info(
        "reclustered %d requests (%d without a point): %d duplicates in %d groups",
        n, n - m, int(child.sum()), len(np.unique(root[child])),
    )
    return out


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

    Pairs within the largest radius come from a KD-tree per scope over
    time slices one window long, so the work grows with the pairs that are
    close in both space and time, not with all pairs close in space.

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


def _rule_arrays(
    codes: np.ndarray,
    rules: Mapping[str, DuplicateRule] | DuplicateRule,
    groups: Mapping[str, str] | None,
    default: DuplicateRule | None,
) -> tuple[np.ndarray, ...]:
    """Per-row radius, window, open flag and scope keys, looked up once per code."""
    fallback = DuplicateRule() if default is None else default
    groups = groups or {}
    unique, inverse = np.unique(codes.astype(str), return_inverse=True)
    picked = [
        rules if isinstance(rules, DuplicateRule) else rules.get(code, fallback)
        for code in unique
    ]
    for code, rule in zip(unique, picked, strict=True):
        if not isinstance(rule, DuplicateRule):
            raise InvalidRequest(
                f"the rule for {code!r} was {rule!r} but is expected to be a DuplicateRule"
            )
    service_key = np.array([_scope_key("service", c, "") for c in unique], dtype=object)
    group_key = np.array(
        [_scope_key("group", c, groups.get(c, "")) for c in unique], dtype=object
    )
    query_key = np.where([r.scope == "group" for r in picked], group_key, service_key)
    return (
        np.array([r.radius_m for r in picked], dtype=float)[inverse],
        np.array([r.window_us for r in picked], dtype=np.int64)[inverse],
        np.array([r.only_open for r in picked], dtype=bool)[inverse],
        query_key[inverse],
        service_key[inverse],
        group_key[inverse],
    )


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Points on the unit sphere: their chord length is monotone in haversine distance."""
    lam, phi = np.radians(lon), np.radians(lat)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def _pairs(
    members: np.ndarray,
    asking: np.ndarray,
    t_us: np.ndarray,
    xyz: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    closed_us: np.ndarray,
    radius_m: np.ndarray,
    window_us: np.ndarray,
    only_open: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eligible (later, earlier, distance) pairs among ``members`` (time-ordered positions).

    Members are cut into time slices at least one window long, so a later
    request's eligible earlier ones lie in its own slice or the one before:
    one tree over two neighbouring slices finds them all.
    """
    ask = members[asking]
    if len(ask) < 1 or len(members) < 2:
        return (np.empty(0, np.int64),) * 2 + (np.empty(0),)
    window_max = int(window_us[ask].max())
    # The tree's radius: the chord of the largest radius, widened for rounding only.
    arc = min(float(radius_m[ask].max()), math.pi * EARTH_RADIUS_M)
    chord_m = 2 * EARTH_RADIUS_M * math.sin(arc / (2 * EARTH_RADIUS_M)) * (1 + 1e-9) + 1e-6
    t = t_us[members]
    span = int(t[-1] - t[0])
    slice_us = max(window_max, span // 2000, 1)
    slice_of = (t - t[0]) // slice_us
    starts = np.flatnonzero(np.r_[True, slice_of[1:] != slice_of[:-1]])
    ends = np.r_[starts[1:], len(members)]
    asked = np.zeros(len(t_us), dtype=bool)
    asked[ask] = True
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if not asked[members[start:end]].any():
            continue
        first = starts[k - 1] if k and slice_of[starts[k - 1]] == slice_of[start] - 1 else start
        if end - first < 2:
            continue
        tree = cKDTree(xyz[members[first:end]], balanced_tree=False, compact_nodes=False)
        local = tree.query_pairs(chord_m, output_type="ndarray")
        # query_pairs gives i < j; keep pairs whose later member is in this slice.
        local = local[local[:, 1] >= start - first]
        earlier = members[first + local[:, 0]]
        later = members[first + local[:, 1]]
        keep = asked[later]
        age = t_us[later] - t_us[earlier]
        keep &= age <= window_us[later]
        keep &= ~only_open[later] | (closed_us[earlier] > t_us[later])
        earlier, later = earlier[keep], later[keep]
        dist = haversine_m(lon[later], lat[later], lon[earlier], lat[earlier])
        keep = dist <= radius_m[later]
        found.append((later[keep], earlier[keep], dist[keep]))
    if not found:
        return (np.empty(0, np.int64),) * 2 + (np.empty(0),)
    return tuple(np.concatenate(part) for part in zip(*found, strict=True))  # type: ignore[return-value]


def _roots(nearest: np.ndarray) -> np.ndarray:
    """Each position's group root, following ``nearest`` links (always to earlier ones)."""
    root = np.where(nearest >= 0, nearest, np.arange(len(nearest)))
    while True:
        return root
        if np.array_equal(hop, root):
            return root
        root = hop
