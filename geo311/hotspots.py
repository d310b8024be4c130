"""Hotspots: H3 cells, Getis-Ord Gi* with false-discovery-rate control, emerging trends.

A planner wants to know whether a cluster of requests is more than chance and whether
it is getting worse. Counts are aggregated to H3 cells (parents weighted by their
reporter counts, never children); Gi* compares each cell and its ring of neighbours
with the whole study area; the Benjamini–Hochberg procedure keeps the share of false
hot and cold spots at the stated level; a Mann–Kendall test on each cell's weekly
Gi* z-scores tells new, intensifying, persistent and diminishing hot spots apart.

Everything here takes and returns arrays; ``lon, lat`` order everywhere except inside
``cells_of`` and ``cell_centres``/``cell_boundaries``, where h3's ``lat, lng`` is met.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import h3.api.basic_int as h3
import numpy as np
import pandas as pd
import shapely
from scipy import sparse, stats

from geo311.errors import InvalidRequest

#: Resolution at which a request's cell is stored; coarser cells are bit operations.
STORED_RESOLUTION = 15
#: Resolutions a planner may pick (7: ~5 km², 8: ~0.7 km², 9: ~0.1 km², 10: ~0.015 km²).
RESOLUTIONS = (7, 8, 9, 10)
#: Confidence levels reported, as (level, alpha) from the strictest.
CONFIDENCE = ((99, 0.01), (95, 0.05), (90, 0.10))
#: Sensitive services' locations are shown as the centre of their cell at this level
#: (edge about 170 m).
MASK_RESOLUTION = 9
#: Space-time hot-spot patterns (the classes of emerging hot-spot analysis), hot first;
#: each has a cold twin, labelled with " cold" after it.
HOT_PATTERNS = ("new", "consecutive", "intensifying", "persistent", "diminishing",
                "sporadic", "oscillating", "historical")
EMERGING_LABELS = HOT_PATTERNS + tuple(f"{p} cold" for p in HOT_PATTERNS)
#: A week holding fewer requests than this share of the median busy week is a gap
#: (a sample's edge, an outage), not data to find trends in.
COVERED_WEEK_SHARE = 0.25


@dataclass(frozen=True)
class RequestFilter:
    """Which parent requests a map or export counts (empty fields: no filter).

    ``district_id`` needs ``layer_version_id``: the district of that layer version.
    """

    service_codes: tuple[str, ...] = ()
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    layer_version_id: int | None = None
    district_id: str | None = None


_RES_SHIFT = 52
_RES_MASK = 0xF << _RES_SHIFT


def cells_of(lon: Sequence[float] | np.ndarray, lat: Sequence[float] | np.ndarray,
             resolution: int = STORED_RESOLUTION) -> np.ndarray:
    """H3 cells (int64) of points given as ``lon, lat``; the one place the order swaps.

    Points without coordinates (NaN) get 0, which is never a valid cell.

    Examples
    --------
    >>> cells_of([-87.6321], [41.8837], 9)[0] == h3.latlng_to_cell(41.8837, -87.6321, 9)
    True
    """
    _check_resolution(resolution, range(0, 16))
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    out = np.zeros(len(x), dtype=np.int64)
    ok = np.isfinite(x) & np.isfinite(y)
    for i, lng, la in zip(np.flatnonzero(ok), x[ok].tolist(), y[ok].tolist(), strict=True):
        out[i] = h3.latlng_to_cell(la, lng, resolution)
    return out


def parent_bits(resolution: int) -> tuple[int, int]:
    """``(keep, set)`` masks so that ``(cell & keep) | set`` is the parent at ``resolution``.

    An H3 index holds its resolution in bits 52–55 and one 3-bit digit per finer
    resolution below; a parent has its resolution there and digits past it all 7.
    Both masks are signed 64-bit values, usable in numpy and in SQL alike.
    """
    _check_resolution(resolution, range(0, 16))
    unused = (1 << (3 * (15 - resolution))) - 1
    keep = ~(_RES_MASK | unused)  # negative in two's complement: fits int64
    return keep, (resolution << _RES_SHIFT) | unused


def parent_cells(cells: np.ndarray, resolution: int) -> np.ndarray:
    """Parents at ``resolution`` of finer cells, vectorised (0 stays 0)."""
    keep, set_ = parent_bits(resolution)
    c = np.asarray(cells, dtype=np.int64)
    return np.where(c == 0, 0, (c & np.int64(keep)) | np.int64(set_))


def masked_cell_keep(resolution: int = MASK_RESOLUTION) -> int:
    """``cell & keep`` moves a stored cell to the centre child of its parent at ``resolution``.

    Sensitive requests are shown at their ``MASK_RESOLUTION`` cell's centre; counted
    from this cell instead of their own, finer hexagons place them there too, never
    nearer their real point. Coarser parents are unchanged.
    """
    _check_resolution(resolution, range(0, 16))
    return ~((1 << (3 * (STORED_RESOLUTION - resolution))) - 1)


def cell_centres(cells: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """Centre ``lon, lat`` arrays of cells (the masked location of sensitive requests)."""
    pairs = [h3.cell_to_latlng(int(c)) if c else (np.nan, np.nan) for c in cells]
    if not pairs:
        return np.empty(0), np.empty(0)
    lat, lon = np.array(pairs, dtype=float).T
    return lon, lat


def snap_to_cell_centres(lon: Sequence[float] | np.ndarray, lat: Sequence[float] | np.ndarray,
                         resolution: int = MASK_RESOLUTION) -> tuple[np.ndarray, np.ndarray]:
    """Replace points by the centre of their H3 cell: how sensitive locations are shown.

    Every point of a cell gets the same centre, so the exact point cannot be recovered.
    """
    return cell_centres(cells_of(lon, lat, resolution))


def cell_boundaries(cells: Iterable[int]) -> list[list[tuple[float, float]]]:
    """Closed ``lon, lat`` rings of cells, ready for GeoJSON polygons."""
    rings = []
    for c in cells:
        ring = [(round(lng, 5), round(lat, 5)) for lat, lng in h3.cell_to_boundary(int(c))]
        rings.append([*ring, ring[0]])
    return rings


def cells_covering(geometry: shapely.Geometry, resolution: int) -> np.ndarray:
    """Cells whose centres lie in a lon/lat (Multi)Polygon: the study area of a city.

    The outline is simplified to a tenth of the cells' edge length first: the
    result differs only by cells cut in half by the outline, and it is many times
    faster for a city of detailed districts.
    """
    _check_resolution(resolution, RESOLUTIONS)
    edge_deg = h3.average_hexagon_edge_length(resolution, unit="m") / 111_000.0
    geometry = shapely.simplify(geometry, edge_deg / 10, preserve_topology=True)
    return np.array(sorted(h3.geo_to_cells(geometry, resolution)), dtype=np.int64)


def neighbour_weights(cells: np.ndarray, *, k: int = 1) -> sparse.csr_matrix:
    """Binary weights among ``cells``: each cell, itself included, and its ``k`` rings.

    Neighbours outside ``cells`` are left out, so the study area's edge has fewer.
    """
    index = pd.Index(np.asarray(cells, dtype=np.int64))
    disks = [h3.grid_disk(c, k) for c in index.to_numpy().tolist()]
    sizes = np.fromiter((len(d) for d in disks), dtype=np.int64, count=len(disks))
    flat = np.fromiter((c for d in disks for c in d), dtype=np.int64, count=int(sizes.sum()))
    rows_all = np.repeat(np.arange(len(index)), sizes)
    cols_all = index.get_indexer(flat)
    inside = cols_all >= 0
    rows, cols = rows_all[inside], cols_all[inside]
    n = len(index)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def gi_star(values: np.ndarray, weights: sparse.csr_matrix) -> np.ndarray:
    """Getis-Ord Gi* z-scores in closed form (Ord and Getis 1995), binary weights.

    ``weights`` must hold each cell's self-weight (``neighbour_weights`` does).
    ``values`` may be 2-D (cells × time bins): each column is tested on its own.
    Equals ``esda.G_Local(y, w, transform="B", star=True).Zs``; columns without
    variation get z = 0.

    Examples
    --------
    >>> w = neighbour_weights(cells)  # doctest: +SKIP
    >>> z = gi_star(counts, w)  # doctest: +SKIP
    """
    y = np.asarray(values, dtype=float)
    n = y.shape[0]
    total = y.sum(axis=0)
    card = np.asarray(weights.sum(axis=1)).reshape(-1)
    if y.ndim == 2:
        card = card[:, None]
    mean = total / n
    variance = (y ** 2).sum(axis=0) / n - mean ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (weights @ y) / total
        expected = card / n
        v = card * (n - card) / (n - 1) / n ** 2 * variance / mean ** 2
        z = (g - expected) / np.sqrt(v)
    return np.where(np.isfinite(z), z, 0.0)


def confidence_levels(z: np.ndarray) -> np.ndarray:
    """Signed FDR-corrected confidence per cell: ±99, ±95, ±90 (hot +, cold −) or 0.

    Two-sided p-values from the normal distribution are adjusted by Benjamini–Hochberg
    over all cells of the map (each column separately for 2-D input).
    """
    z = np.asarray(z, dtype=float)
    p = 2 * stats.norm.sf(np.abs(z))
    adjusted = stats.false_discovery_control(p, axis=0) if p.size else p
    out = np.zeros(z.shape, dtype=np.int64)
    for level, alpha in reversed(CONFIDENCE):
        out = np.where(adjusted <= alpha, level, out)
    return np.sign(z).astype(np.int64) * out


@dataclass(frozen=True)
class CellCounts:
    """Aggregated requests per cell, over the study area (zeros included)."""

    cells: np.ndarray
    counts: np.ndarray


def count_cells(cells: np.ndarray, weights: np.ndarray,
                study_cells: np.ndarray | None = None) -> CellCounts:
    """Sum weights per cell; with ``study_cells``, every study cell appears (0 if empty).

    Cells outside the study area are kept too: a request is never dropped from a map.
    """
    frame = pd.DataFrame({"cell": np.asarray(cells, dtype=np.int64),
                          "w": np.asarray(weights, dtype=float)})
    frame = frame[frame["cell"] != 0]
    summed = frame.groupby("cell", sort=True)["w"].sum()
    if study_cells is not None and len(study_cells):
        summed = summed.reindex(summed.index.union(pd.Index(study_cells)), fill_value=0.0)
    return CellCounts(summed.index.to_numpy(np.int64), summed.to_numpy(float))


def filter_parents(frame: pd.DataFrame, where: RequestFilter,
                   vocabulary: dict[str, int] | None = None) -> np.ndarray:
    """Mask of the parent requests ``where`` keeps, in a frame of ``store.hotspots.rows``.

    With ``vocabulary`` (service code to number), the frame is in its compact form:
    ``service`` holds those numbers and ``open`` is a boolean, instead of the
    ``service_code`` and ``status`` texts. District filters need the database
    (``store.hotspots.counts``).
    """
    if where.district_id is not None:
        raise InvalidRequest("a district filter is applied by the store, not in memory")
    keep = np.asarray(frame["parent"], dtype=bool).copy()
    if where.service_codes:
        if vocabulary is None:
            keep &= frame["service_code"].isin(where.service_codes).to_numpy()
        else:
            wanted = [vocabulary[c] for c in where.service_codes if c in vocabulary]
            keep &= np.isin(np.asarray(frame["service"]), np.asarray(wanted, dtype=np.int32))
    if where.status is not None:
        if vocabulary is None:
            keep &= (frame["status"] == where.status).to_numpy()
        else:
            is_open = np.asarray(frame["open"], dtype=bool)
            keep &= is_open if where.status == "open" else ~is_open
    requested = np.asarray(frame["requested"], dtype=float)
    if where.start is not None:
        keep &= requested >= where.start.timestamp()
    if where.end is not None:
        keep &= requested < where.end.timestamp()
    return keep


def cell_counts_of(frame: pd.DataFrame, keep: np.ndarray, resolution: int) -> pd.DataFrame:
    """Requests and reporters per cell at ``resolution`` among the kept rows.

    The same frame as ``store.hotspots.counts`` returns: ``cell, requests, reporters``.
    A frame sorted by cell is summed in one pass (a parent's children are contiguous
    in H3 order); any other is grouped.
    """
    fine = frame["cell"].to_numpy(dtype=np.int64)
    reporters = frame["reporters"].to_numpy(dtype=np.int64)
    keep = np.asarray(keep, dtype=bool)
    if len(fine) > 1 and bool(np.all(fine[1:] >= fine[:-1])):
        parents = parent_cells(fine, resolution)
        starts = np.flatnonzero(np.r_[True, parents[1:] != parents[:-1]])
        requests = np.add.reduceat(keep.astype(np.int64), starts)
        summed = np.add.reduceat(np.where(keep, reporters, 0), starts)
        found = requests > 0
        return pd.DataFrame({"cell": parents[starts][found], "requests": requests[found],
                             "reporters": summed[found]})
    grouped = pd.DataFrame({"cell": parent_cells(fine[keep], resolution),
                            "reporters": reporters[keep]}).groupby("cell", sort=True)
    out = grouped["reporters"].agg(["size", "sum"]).reset_index()
    out.columns = ["cell", "requests", "reporters"]
    return out.astype({"cell": np.int64, "requests": np.int64, "reporters": np.int64})


def hotspot_cells(counts: CellCounts, *, k: int = 1) -> pd.DataFrame:
    """Gi* z-score, p-value and FDR-corrected confidence of every cell.

    Returns a frame of ``cell, count, z, p, confidence`` (confidence signed: hot > 0).

    Examples
    --------
    >>> c = count_cells(cells_of(lon, lat, 8), reporters, study)  # doctest: +SKIP
    >>> hotspot_cells(c).query("confidence >= 95")  # doctest: +SKIP
    """
    if len(counts.cells) < 2:
        z = np.zeros(len(counts.cells))
    else:
        z = gi_star(counts.counts, neighbour_weights(counts.cells, k=k))
    return pd.DataFrame({
        "cell": counts.cells, "count": counts.counts, "z": z,
        "p": 2 * stats.norm.sf(np.abs(z)), "confidence": confidence_levels(z),
    })


def mann_kendall(series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mann–Kendall trend test of each row of a 2-D array (cells × time bins), vectorised.

    Returns ``(s, z, p)``: the S statistic, its continuity-corrected z-score (variance
    corrected for ties) and the two-sided p-value, as ``pymannkendall.original_test``.
    """
    x = np.atleast_2d(np.asarray(series, dtype=float))
    rows, n = x.shape
    s = np.zeros(rows)
    for i in range(n - 1):
        s += np.sign(x[:, i + 1:] - x[:, i:i + 1]).sum(axis=1)
    ordered = np.sort(x, axis=1)
    tie_term = np.zeros(rows)
    run = np.ones(rows)
    for j in range(1, n + 1):
        same = ordered[:, j] == ordered[:, j - 1] if j < n else np.zeros(rows, dtype=bool)
        ended = ~same
        tie_term += np.where(ended, run * (run - 1) * (2 * run + 5), 0.0)
        run = np.where(same, run + 1, 1.0)
    var = (n * (n - 1) * (2 * n + 5) - tie_term) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, (s - 1) / np.sqrt(var), np.where(s < 0, (s + 1) / np.sqrt(var), 0.0))
    z = np.where(np.isfinite(z), z, 0.0)
    return s, z, 2 * stats.norm.sf(np.abs(z))


def emerging_hotspots(cells: np.ndarray, bins: np.ndarray, weights: np.ndarray,
                      study_cells: np.ndarray | None = None, *, n_bins: int | None = None,
                      k: int = 1, alpha: float = 0.05,
                      persistent_share: float = 0.9) -> pd.DataFrame:
    """Label each cell's hot- and cold-spot history over time bins (weeks).

    Gi* runs on every bin (FDR-corrected per bin); a bin is hot (cold) at 90 % or
    more. Mann–Kendall on a cell's z-scores over the bins gives its trend
    (``alpha``). See ``space_time_patterns`` for the classes.

    ``bins`` numbers each request's bin from 0; returns ``cell, count, hot_bins,
    cold_bins, final_hot, trend_z, trend_p, count_trend_z, label``.
    """
    b = np.asarray(bins, dtype=np.int64)
    n = int(n_bins if n_bins is not None else (b.max() + 1 if len(b) else 0))
    totals = count_cells(cells, weights, study_cells)
    universe = totals.cells
    columns = ["cell", "count", "hot_bins", "cold_bins", "final_hot", "trend_z", "trend_p",
               "count_trend_z", "label"]
    if n < 2 or len(universe) < 2:
        return pd.DataFrame({c: [] for c in columns})
    row = pd.Index(universe).get_indexer(np.asarray(cells, dtype=np.int64))
    keep = (row >= 0) & (b >= 0) & (b < n)
    cube = np.zeros((len(universe), n))
    np.add.at(cube, (row[keep], b[keep]), np.asarray(weights, dtype=float)[keep])
    z = gi_star(cube, neighbour_weights(universe, k=k))
    level = confidence_levels(z)
    _, trend_z, trend_p = mann_kendall(z)
    _, count_z, _ = mann_kendall(cube)
    hot, cold = level >= 90, level <= -90
    label = space_time_patterns(hot, cold, trend_z, trend_p, alpha=alpha,
                                share=persistent_share)
    return pd.DataFrame({
        "cell": universe, "count": cube.sum(axis=1), "hot_bins": hot.sum(axis=1),
        "cold_bins": cold.sum(axis=1), "final_hot": hot[:, -1], "trend_z": trend_z,
        "trend_p": trend_p, "count_trend_z": count_z, "label": label,
    })


def space_time_patterns(hot: np.ndarray, cold: np.ndarray, trend_z: np.ndarray,
                        trend_p: np.ndarray, *, alpha: float = 0.05,
                        share: float = 0.9) -> np.ndarray:
    """The pattern of each row's significant bins, as emerging hot-spot analysis defines it.

    With n bins and "hot" meaning significantly hot in a bin (cold: the mirror):

    - ``new``: hot in the final bin, never before;
    - ``consecutive``: a single run of at least two hot bins ending with the final one,
      never hot before the run, hot in fewer than ``share`` of the bins;
    - ``intensifying`` / ``diminishing``: hot in at least ``share`` of the bins, the
      final one included, the z-scores rising / falling significantly (Mann–Kendall);
    - ``persistent``: hot in at least ``share`` of the bins, the final one included,
      no significant trend;
    - ``sporadic``: hot in the final bin, on and off before, fewer than ``share`` hot,
      never cold;
    - ``oscillating``: as sporadic, but cold in some earlier bin;
    - ``historical``: hot in at least ``share`` of the bins, but not in the final one.

    Cold patterns are the same with hot and cold swapped and the trend reversed,
    labelled ``"<pattern> cold"``; a row matching none is ``""``.
    """
    up = (trend_p < alpha) & (trend_z > 0)
    down = (trend_p < alpha) & (trend_z < 0)
    hot_label = _pattern(hot, cold, up, down, share)
    cold_label = _pattern(cold, hot, down, up, share)
    # Only "historical" leaves the final bin out; a pattern that includes it wins.
    take_cold = (cold_label != "") & ((hot_label == "") | (hot_label == "historical"))
    return np.array([f"{c} cold" if tc else h for h, c, tc in
                     zip(hot_label, cold_label, take_cold, strict=True)], dtype=object)


def _pattern(spot: np.ndarray, other: np.ndarray, stronger: np.ndarray, weaker: np.ndarray,
             share: float) -> np.ndarray:
    """Hot-spot pattern names of ``spot`` (a rows × bins boolean array), or ''."""
    n = spot.shape[1]
    count = spot.sum(axis=1)
    final = spot[:, -1]
    mostly = count >= share * n
    # Length of the run of spot bins that ends with the final one.
    misses = ~spot[:, ::-1]
    run = np.where(misses.any(axis=1), misses.argmax(axis=1), n)
    before_run = count - run
    ever_other = other[:, :-1].any(axis=1)
    label = np.full(spot.shape[0], "", dtype=object)
    label[~final & mostly] = "historical"
    label[final & ~mostly & (count > run) & ~ever_other] = "sporadic"
    label[final & ~mostly & (count > run) & ever_other] = "oscillating"
    label[final & ~mostly & (run >= 2) & (before_run == 0)] = "consecutive"
    label[final & mostly & ~stronger & ~weaker] = "persistent"
    label[final & mostly & stronger] = "intensifying"
    label[final & mostly & weaker] = "diminishing"
    label[final & (count == 1)] = "new"
    return label


def default_emerging_end(requested_s: np.ndarray, zone: ZoneInfo) -> datetime | None:
    """End of the last complete, covered week of the data (the Monday 00:00 local after it).

    A week is complete when the data holds its last day or goes on in the next week,
    and covered when it holds at least ``COVERED_WEEK_SHARE`` of the median busy week:
    so a two-day sample after a long gap, or the week the data stops in, does not end
    a trend by default.
    """
    t = np.asarray(requested_s, dtype=float)
    t = t[np.isfinite(t)]
    if not len(t):
        return None
    local = pd.to_datetime(t, unit="s", utc=True).tz_convert(zone).tz_localize(None)
    days = local.normalize()
    starts = days - pd.to_timedelta(days.day_of_week, unit="D")
    counts = pd.Series(1, index=starts).groupby(level=0).sum()
    counts = counts.reindex(pd.date_range(counts.index.min(), counts.index.max(), freq="7D"),
                            fill_value=0)
    covered = (counts >= COVERED_WEEK_SHARE * float(counts[counts > 0].median())).to_numpy()
    sundays = set(days[days.day_of_week == 6] - pd.Timedelta(days=6))
    reaches_sunday = np.array([w in sundays for w in counts.index])
    complete = reaches_sunday | np.append(covered[1:], False)  # or the next week goes on
    good = counts.index[covered & complete]
    if not len(good):
        return None
    end = (good[-1] + pd.Timedelta(days=7)).to_pydatetime()
    return end.replace(tzinfo=zone)


def _check_resolution(resolution: int, allowed: Iterable[int]) -> None:
    allowed = list(allowed)
    if resolution not in allowed:
        raise InvalidRequest(f"h3_resolution was {resolution!r} but is expected to be in "
                       f"[{allowed[0]}..{allowed[-1]}]")

