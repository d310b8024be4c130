"""The per-layer grid behind ``geo311.districts.DistrictIndex``: cells, edges and look-ups.

A regular grid over the layer's extent in a local equirectangular frame: each cell
no district edge crosses answers by table look-up; points in crossed cells get an
exact test against the candidate districts, and points near an edge are flagged as
boundary cases (and nudged toward their building when its side is known).
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import numpy as np
import shapely
from numpy.typing import NDArray

from geo311.errors import LayerError

if TYPE_CHECKING:
    from geo311.districts import DistrictLayer

LOGGER = logging.getLogger(__name__)

#: Mean Earth radius (IUGG), for converting degrees to metres locally.
EARTH_RADIUS_M = 6_371_008.8
_M_PER_DEG = math.radians(1.0) * EARTH_RADIUS_M
#: A grid larger than this many cells gets coarser cells instead (memory cap).
_MAX_CELLS = 1 << 24


class LayerGrid:
    """The grid, candidate table and edge segments of one layer.

    Cell codes: ``k < K`` wholly in district ``k`` and far from every edge; ``K + k``
    wholly in district ``k`` but maybe near an edge; ``2K`` outside and far; ``2K + 1``
    outside but maybe near; ``2K + 2`` crossed by an edge (exact test needed).
    """

    def __init__(self, layer: DistrictLayer, tolerance_m: float, cell_size_m: float) -> None:
        started = time.perf_counter()
        ids, geoms = _dissolved(layer)
        k = len(ids)
        self.name = layer.name
        self.n_districts = k
        self.tolerance_m = tolerance_m
        #: district labels by index, ``None`` at index ``K`` for "no district"
        self.labels = np.empty(k + 1, dtype=object)
        self.labels[:k] = ids
        self.labels[k] = None
        self.geoms = geoms
        shapely.prepare(self.geoms)
        self._metric_tree: shapely.STRtree | None = None

        minx, miny, maxx, maxy = shapely.total_bounds(geoms)
        self.lon0 = (minx + maxx) / 2.0
        self.lat0 = (miny + maxy) / 2.0
        self.m_per_deg_lon = _M_PER_DEG * math.cos(math.radians(self.lat0))
        self.m_per_deg_lat = _M_PER_DEG
        width_m = (maxx - minx) * self.m_per_deg_lon
        height_m = (maxy - miny) * self.m_per_deg_lat
        cell_m = float(cell_size_m)
        while True:
            reach = self._reach(cell_m)
            margin = reach + 3  # points off the grid are then far outside every district
            if (width_m / cell_m + 2 * margin + 2) * (height_m / cell_m + 2 * margin + 2) \
                    <= _MAX_CELLS:
                break
            cell_m *= 1.25
        if cell_m != cell_size_m:
            LOGGER.info("layer %s: cells widened to %.1f m to stay under %d cells",
                        layer.name, cell_m, _MAX_CELLS)
        self.cell_m = cell_m
        dx = cell_m / self.m_per_deg_lon
        dy = cell_m / self.m_per_deg_lat
        self.x0 = minx - margin * dx
        self.y0 = miny - margin * dy
        self.inv_dx = 1.0 / dx
        self.inv_dy = 1.0 / dy
        self.width = int(math.ceil((maxx - self.x0) * self.inv_dx)) + margin
        self.height = int(math.ceil((maxy - self.y0) * self.inv_dy)) + margin

        self._build_tables(k, reach)
        # GEOS builds a prepared polygon's point locator on first use: build them all
        # here, in one thread, so that worker threads only ever read them.
        inner = shapely.point_on_surface(geoms)
        shapely.intersects_xy(geoms, shapely.get_x(inner), shapely.get_y(inner))
        self.build_seconds = time.perf_counter() - started
        LOGGER.info(
            "indexed layer %s v%s: %d districts, %dx%d cells of %.0f m, %d crossed, "
            "%d edge segments, %.2f s",
            layer.name, layer.version_id, k, self.width, self.height, cell_m,
            len(self.crossed_cells), len(self.seg_ax), self.build_seconds,
        )

    def nearest(self, x: NDArray[np.float64], y: NDArray[np.float64]
                ) -> tuple[NDArray[np.object_], NDArray[np.float64]]:
        """Nearest district label and distance in metres of each point (local frame)."""
        if self._metric_tree is None:  # built on first use: most points are inside
            self._metric_tree = shapely.STRtree(shapely.transform(self.geoms, self._to_metres))
        points = shapely.points(self._to_metres(np.column_stack([x, y])))
        (point_i, geom_i), metres = self._metric_tree.query_nearest(
            points, return_distance=True, all_matches=False)
        labels = np.full(len(x), None, dtype=object)
        out = np.full(len(x), np.inf)
        labels[point_i] = self.labels[geom_i]
        out[point_i] = metres
        return labels, out

    def _to_metres(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.column_stack([(xy[:, 0] - self.lon0) * self.m_per_deg_lon,
                                (xy[:, 1] - self.lat0) * self.m_per_deg_lat])

    def _reach(self, cell_m: float) -> int:
        # Edges are sampled every half cell, so each edge point is within a quarter
        # cell (per axis) of a sample; a point within the tolerance of an edge then
        # lies within this many cells of that sample's cell.
        return max(1, math.ceil(self.tolerance_m / cell_m + 0.25 + 1e-9))

    def _build_tables(self, k: int, reach: int) -> None:
        w, n_cells = self.width, self.width * self.height

        # Every edge segment of every district, in the metric frame.
        parts, part_of = shapely.get_parts(self.geoms, return_index=True)
        rings, ring_of = shapely.get_rings(parts, return_index=True)
        coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
        metric = (coords - [self.lon0, self.lat0]) * [self.m_per_deg_lon, self.m_per_deg_lat]
        same_ring = coord_ring[1:] == coord_ring[:-1]
        a, b = metric[:-1][same_ring], metric[1:][same_ring]
        seg_district = part_of[ring_of[coord_ring[:-1][same_ring]]].astype(np.int64)

        # Sample each segment every <= half a cell, ends included.
        length_cells = np.hypot(*(b - a).T) / self.cell_m
        per_seg = np.ceil(length_cells / 0.5).astype(np.int64) + 1
        seg_of = np.repeat(np.arange(len(a)), per_seg)
        first = np.cumsum(per_seg) - per_seg
        frac = (np.arange(len(seg_of)) - first[seg_of]) / np.maximum(per_seg - 1, 1)[seg_of]
        pts = a[seg_of] + (b - a)[seg_of] * frac[:, None]
        # Grid index of each sample (the metric frame is the grid scaled and shifted).
        gx = np.floor((pts[:, 0] / self.m_per_deg_lon + self.lon0 - self.x0) * self.inv_dx)
        gy = np.floor((pts[:, 1] / self.m_per_deg_lat + self.lat0 - self.y0) * self.inv_dy)
        sample_cell = gy.astype(np.int64) * w + gx.astype(np.int64)
        del pts, frac, gx, gy

        # Crossed cells and their candidate districts: 3x3 around each sample cell.
        keys = _unique(seg_district[seg_of] * n_cells + sample_cell)
        pairs = _unique((keys[:, None] + _square(1, w)[None, :]).ravel())
        crossed = np.zeros(n_cells, dtype=bool)
        crossed[pairs % n_cells] = True
        crossed_cells = np.flatnonzero(crossed)
        # ... plus any district that holds a crossed cell outright (overlaps, enclaves).
        at, holder = self._containing(crossed_cells)
        pairs = _unique(np.concatenate([pairs, holder * n_cells + crossed_cells[at]]))
        cand_cell, cand_district = pairs % n_cells, pairs // n_cells
        order = np.lexsort((cand_district, cand_cell))
        cand_cell, cand_district = cand_cell[order], cand_district[order]
        row = np.searchsorted(crossed_cells, cand_cell)
        slot = np.arange(len(row)) - np.searchsorted(row, row)
        table = np.full((len(crossed_cells), int(slot.max()) + 1), -1, dtype=np.int32)
        table[row, slot] = cand_district
        self.crossed_cells = crossed_cells
        self.candidates = table
        del pairs, cand_cell, cand_district, order, row, slot

        # Edge segments near each cell, for the boundary-case distance test. Edges
        # shared by two districts are kept once.
        ends = np.where((a[:, :1] < b[:, :1]) | ((a[:, :1] == b[:, :1]) & (a[:, 1:] <= b[:, 1:])),
                        np.hstack([a, b]), np.hstack([b, a]))
        unique_ends, canonical = np.unique(ends, axis=0, return_inverse=True)
        n_segs = len(unique_ends)
        keys = _unique(sample_cell * n_segs + canonical.ravel()[seg_of])
        near_keys = _unique((
            ((keys // n_segs)[:, None] + _square(reach, w)[None, :]) * n_segs
            + (keys % n_segs)[:, None]
        ).ravel())
        key_cell = near_keys // n_segs
        new_cell = np.flatnonzero(np.diff(key_cell, prepend=-1))
        near_cells = key_cell[new_cell]
        self.near_cells = near_cells
        self.seg_start = np.append(new_cell, len(near_keys)).astype(np.int64)
        self.seg_ids = (near_keys % n_segs).astype(np.int32)
        self.seg_ax, self.seg_ay = unique_ends[:, 0].copy(), unique_ends[:, 1].copy()
        self.seg_bx = unique_ends[:, 2] - unique_ends[:, 0]
        self.seg_by = unique_ends[:, 3] - unique_ends[:, 1]
        len2 = self.seg_bx**2 + self.seg_by**2
        self.seg_inv_len2 = np.divide(1.0, len2, out=np.zeros_like(len2), where=len2 > 0)
        del keys, near_keys, seg_of, sample_cell

        # Non-crossed cells in a row between two crossed ones share one answer:
        # label each run by a point-in-polygon test of its first cell's centre.
        starts_run = ~crossed
        starts_run[1:] &= crossed[:-1]
        starts_run[::w] = ~crossed[::w]
        run_cells = np.flatnonzero(starts_run)
        at, holder = self._containing(run_cells)
        run_label = np.full(len(run_cells), k, dtype=np.int32)
        np.minimum.at(run_label, at, holder.astype(np.int32))
        run_id = np.cumsum(starts_run, dtype=np.int32)
        del starts_run
        run_id -= 1
        np.maximum(run_id, 0, out=run_id)
        codes = run_label[run_id]
        del run_id
        out_far, out_near, cross = 2 * k, 2 * k + 1, 2 * k + 2
        codes[codes == k] = out_far
        near = np.zeros(n_cells, dtype=bool)
        near[near_cells] = True
        codes[near & (codes < k)] += k
        codes[near & (codes == out_far)] = out_near
        codes[crossed] = cross
        dtype = np.int16 if cross <= np.iinfo(np.int16).max else np.int32
        self.codes: NDArray[np.integer] = codes.astype(dtype)

        n_codes = cross + 1
        district = np.full(n_codes, k, dtype=np.intp)
        district[:k] = district[k:2 * k] = np.arange(k)
        self.code_district = district
        self.code_near = np.zeros(n_codes, dtype=bool)
        self.code_near[k:2 * k] = True
        self.code_near[out_near:] = True
        self.cross_code = cross

    def _containing(self, cells: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Pairs (position in ``cells``, district) where the district holds the cell centre."""
        iy, ix = np.divmod(cells, self.width)
        x = (ix + 0.5) / self.inv_dx + self.x0
        y = (iy + 0.5) / self.inv_dy + self.y0
        found_at, found_in = [], []
        for d, (minx, miny, maxx, maxy) in enumerate(shapely.bounds(self.geoms)):
            box = np.flatnonzero((x >= minx) & (x <= maxx) & (y >= miny) & (y <= maxy))
            hit = box[shapely.intersects_xy(self.geoms[d], x[box], y[box])]
            found_at.append(hit)
            found_in.append(np.full(len(hit), d, dtype=np.intp))
        return np.concatenate(found_at), np.concatenate(found_in)

    def _cells(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.intp]:
        fx = x - self.x0
        fx *= self.inv_dx
        fy = y - self.y0
        fy *= self.inv_dy
        off = ~((fx >= 0) & (fx < self.width) & (fy >= 0) & (fy < self.height))  # NaN too
        fx[off] = 0.0  # cell 0 is in the margin: outside, far from every edge
        fy[off] = 0.0
        cell = fy.astype(np.intp)
        cell *= self.width
        cell += fx.astype(np.intp)
        return cell

    def locate(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.intp]:
        """District index of each point (``K`` for none), edges going to the first."""
        return self._locate(x, y)[0]

    def _locate(
        self, x: NDArray[np.float64], y: NDArray[np.float64]
    ) -> tuple[NDArray[np.intp], NDArray[np.integer], NDArray[np.intp]]:
        cell = self._cells(x, y)
        code = self.codes[cell]
        district = self.code_district[code]
        hard = np.flatnonzero(code == self.cross_code)
        if len(hard):
            district[hard] = self._exact(x[hard], y[hard], cell[hard])
        return district, code, cell

    def _exact(self, x: NDArray[np.float64], y: NDArray[np.float64],
               cell: NDArray[np.intp]) -> NDArray[np.intp]:
        """Lowest-index candidate district that holds each point (``K`` for none)."""
        k = self.n_districts
        cands = self.candidates[np.searchsorted(self.crossed_cells, cell)]
        found = np.full(len(x), k, dtype=np.intp)
        for j in range(cands.shape[1]):
            col = cands[:, j]
            todo = np.flatnonzero((found == k) & (col >= 0))
            if not len(todo):
                break
            todo = todo[np.argsort(col[todo], kind="stable")]
            for group in np.split(todo, np.flatnonzero(np.diff(col[todo])) + 1):
                d = int(col[group[0]])
                hit = shapely.intersects_xy(self.geoms[d], x[group], y[group])
                found[group[hit]] = d
        return found

    def _near_edge(self, x: NDArray[np.float64], y: NDArray[np.float64],
                   cell: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Whether each point (all in near cells) is within the tolerance of an edge."""
        pos = np.searchsorted(self.near_cells, cell)
        start = self.seg_start[pos]
        count = self.seg_start[pos + 1] - start
        first = np.cumsum(count) - count
        owner = np.repeat(np.arange(len(x)), count)
        seg = self.seg_ids[np.arange(len(owner)) + (start - first)[owner]]
        px = ((x - self.lon0) * self.m_per_deg_lon)[owner] - self.seg_ax[seg]
        py = ((y - self.lat0) * self.m_per_deg_lat)[owner] - self.seg_ay[seg]
        bx, by = self.seg_bx[seg], self.seg_by[seg]
        t = (px * bx + py * by) * self.seg_inv_len2[seg]
        np.clip(t, 0.0, 1.0, out=t)
        px -= t * bx
        py -= t * by
        dist2 = px * px + py * py
        return np.minimum.reduceat(dist2, first) <= self.tolerance_m**2

    def assign(
        self,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        side: NDArray[np.float64] | None,
        offset_m: float,
    ) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """District index and boundary flag of each point of one chunk."""
        district, code, cell = self._locate(x, y)
        flag = np.zeros(len(x), dtype=bool)
        maybe = np.flatnonzero(self.code_near[code])
        if not len(maybe):
            return district, flag
        near_idx = maybe[self._near_edge(x[maybe], y[maybe], cell[maybe])]
        flag[near_idx] = True
        if side is None or offset_m == 0 or not len(near_idx):
            return district, flag
        sx, sy = side[near_idx, 0], side[near_idx, 1]
        known = np.isfinite(sx) & np.isfinite(sy) & ((sx != 0) | (sy != 0))
        moved = near_idx[known]
        if not len(moved):
            return district, flag
        sx, sy = sx[known], sy[known]
        step = offset_m / np.hypot(sx, sy)
        lat = y[moved]
        nudged = self.locate(x[moved] + sx * step / (_M_PER_DEG * np.cos(np.radians(lat))),
                             lat + sy * step / _M_PER_DEG)
        keep = nudged < self.n_districts
        district[moved[keep]] = nudged[keep]
        return district, flag


def _unique(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted distinct values (sorting is many times faster than ``np.unique`` here)."""
    values = np.sort(values)
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def _square(reach: int, width: int) -> NDArray[np.int64]:
    """Offsets of the flat cell indices in a square of ``reach`` cells around a cell."""
    steps = np.arange(-reach, reach + 1, dtype=np.int64)
    return (steps[:, None] * width + steps[None, :]).ravel()


def _dissolved(layer: DistrictLayer) -> tuple[list[str], NDArray[np.object_]]:
    """Validate a layer and merge features that share an id, keeping first-seen order."""
    ids = [str(i) for i in layer.district_ids]
    geoms = np.asarray(list(layer.geometries), dtype=object)
    if len(ids) != len(geoms):
        raise LayerError(
            f"layer {layer.name!r} has {len(ids)} district ids but {len(geoms)} geometries"
        )
    if not ids:
        raise LayerError(f"layer {layer.name!r} has no districts")
    for district_id, geom in zip(ids, geoms, strict=True):
        if not isinstance(geom, shapely.Polygon | shapely.MultiPolygon) or geom.is_empty:
            raise LayerError(
                f"district {district_id!r} of layer {layer.name!r} is "
                f"{getattr(geom, 'geom_type', type(geom).__name__)} but is expected to be a "
                "non-empty Polygon or MultiPolygon"
            )
        if not geom.is_valid:
            raise LayerError(
                f"district {district_id!r} of layer {layer.name!r} is invalid: "
                f"{shapely.is_valid_reason(geom)}"
            )
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise LayerError(
            f"layer {layer.name!r} has bounds {(minx, miny, maxx, maxy)} but is expected to "
            "be in EPSG:4326 (lon, lat degrees)"
        )
    order: dict[str, list[int]] = {}
    for i, district_id in enumerate(ids):
        order.setdefault(district_id, []).append(i)
    if len(order) == len(ids):
        return ids, geoms
    LOGGER.info("layer %s: dissolved %d features into %d districts by id",
                layer.name, len(ids), len(order))
    merged = [geoms[i[0]] if len(i) == 1 else shapely.union_all(geoms[i]) for i in order.values()]
    return list(order), np.asarray(merged, dtype=object)
