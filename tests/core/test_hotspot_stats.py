"""Hotspot statistics against their references: h3, esda's Gi*, pymannkendall."""

import h3
import numpy as np
import pandas as pd
import pytest

from geo311.errors import InvalidRequest
from geo311.hotspots import (
    cell_boundaries,
    cell_centres,
    cells_of,
    confidence_levels,
    count_cells,
    emerging_hotspots,
    gi_star,
    hotspot_cells,
    mann_kendall,
    neighbour_weights,
    parent_cells,
)
from tests.conftest import LEGACY_CSV


@pytest.fixture(scope="module")
def chicago():
    """Real request points (lon, lat) of the 2011-2013 sanitation sample."""
    frame = pd.read_csv(LEGACY_CSV, usecols=["Longitude", "Latitude", "Creation_Date"])
    frame = frame.dropna()
    return frame["Longitude"].to_numpy(), frame["Latitude"].to_numpy(), frame["Creation_Date"]


def test_cells_of_swaps_lon_lat_once():
    lon, lat = -87.6321, 41.8837
    cell = cells_of([lon], [lat], 9)[0]
    assert cell == int(h3.latlng_to_cell(lat, lon, 9), 16)
    assert cell != int(h3.latlng_to_cell(lon % 90, lat, 9), 16)
    centre_lon, centre_lat = cell_centres([cell])
    assert abs(centre_lon[0] - lon) < 0.003 and abs(centre_lat[0] - lat) < 0.003
    ring = cell_boundaries([cell])[0]
    assert ring[0] == ring[-1] and len(ring) == 7
    assert all(-88 < x < -87 and 41 < y < 42 for x, y in ring)
    assert cells_of([np.nan], [41.8], 9)[0] == 0


def test_cells_of_rejects_bad_resolution():
    with pytest.raises(InvalidRequest, match="h3_resolution was 16"):
        cells_of([-87.6], [41.8], 16)


def test_parent_bits_equal_h3_cell_to_parent(chicago):
    lon, lat, _ = chicago
    fine = cells_of(lon[:3000], lat[:3000], 15)
    for res in (5, 7, 8, 9, 10, 12):
        want = [int(h3.cell_to_parent(h3.int_to_str(int(c)), res), 16) for c in fine]
        assert parent_cells(fine, res).tolist() == want
        # H3 cells do not nest exactly: near a coarse cell's edge, the parent of a point's
        # fine cell can be the neighbour of the coarse cell holding the point.
        direct = cells_of(lon[:3000], lat[:3000], res)
        assert 0.9 < (parent_cells(fine, res) == direct).mean() <= 1


def _esda_zs(cells, values):
    from esda.getisord import G_Local
    from libpysal.weights import W

    index = {c: i for i, c in enumerate(cells.tolist())}
    neighbours = {i: [index[n] for n in (int(x, 16) for x in h3.grid_disk(h3.int_to_str(c), 1))
                      if n in index and n != c] for c, i in index.items()}
    w = W(neighbours, silence_warnings=True)
    return G_Local(values, w, transform="B", star=True, permutations=0).Zs


def test_gi_star_equals_esda_on_real_counts(chicago):
    lon, lat, _ = chicago
    counts = count_cells(cells_of(lon, lat, 8), np.ones(len(lon)))
    ours = gi_star(counts.counts, neighbour_weights(counts.cells))
    theirs = _esda_zs(counts.cells, counts.counts)
    assert len(ours) > 500
    assert np.max(np.abs(ours - theirs)) < 1e-9
    assert ours.max() > 3 and ours.min() < 0


def test_gi_star_columns_are_independent_tests(chicago):
    lon, lat, _ = chicago
    counts = count_cells(cells_of(lon[:20000], lat[:20000], 8), np.ones(20000))
    w = neighbour_weights(counts.cells)
    rng = np.random.default_rng(3)
    cube = np.column_stack([counts.counts, rng.poisson(2, len(counts.cells)), np.ones(len(counts.cells))])
    z = gi_star(cube, w)
    assert np.allclose(z[:, 0], gi_star(counts.counts, w))
    assert np.max(np.abs(z[:, 1] - _esda_zs(counts.cells, cube[:, 1].astype(float)))) < 1e-9
    assert (z[:, 2] == 0).all()  # no variation: no hot spots


def test_fdr_correction_is_stricter_than_raw_p():
    from scipy import stats

    z = np.array([4.0, 2.6, 2.0, 1.7, -2.7, 0.1] + [0.0] * 50)
    levels = confidence_levels(z)
    assert levels[0] == 99 and levels[1:4].tolist() == [0, 0, 0]
    raw = 2 * stats.norm.sf(np.abs(z))
    assert raw[1] < 0.01  # significant at 99% before the correction
    assert levels[4] == 0
    few = confidence_levels(np.array([2.7, -2.7, 1.8]))
    assert few.tolist() == [95, -95, 90]


def test_hotspot_cells_keeps_study_zeros_and_finds_the_cluster():
    centre = cells_of([-87.63], [41.88], 8)[0]
    study = np.array(sorted(int(c, 16) for c in h3.grid_disk(h3.int_to_str(int(centre)), 6)))
    core = [int(c, 16) for c in h3.grid_disk(h3.int_to_str(int(centre)), 1)]
    cells = np.array(core * 30 + study.tolist())
    result = hotspot_cells(count_cells(cells, np.ones(len(cells)), study))
    assert len(result) == len(study)
    hot = set(result.loc[result["confidence"] >= 95, "cell"])
    assert int(centre) in hot and hot <= set(int(c, 16) for c in h3.grid_disk(h3.int_to_str(int(centre)), 2))


def test_mann_kendall_equals_pymannkendall():
    import pymannkendall as mk

    rng = np.random.default_rng(5)
    series = np.vstack([rng.poisson(3, 40) + np.arange(40) * t for t in (0, 0.1, -0.1, 0.3)]
                       + [np.repeat([1.0, 2.0], 20), np.zeros(40)])
    s, z, p = mann_kendall(series)
    for i, row in enumerate(series):
        ref = mk.original_test(row)
        assert s[i] == ref.s
        assert abs(z[i] - ref.z) < 1e-9 and abs(p[i] - ref.p) < 1e-9


def _disk(cell, k=1):
    return [int(c, 16) for c in h3.grid_disk(h3.int_to_str(int(cell)), k)]


def test_emerging_labels_follow_their_definitions():
    centre = int(cells_of([-87.63], [41.88], 8)[0])
    study = np.array(sorted(_disk(centre, 9)))
    far = [int(c, 16) for c in h3.grid_ring(h3.int_to_str(centre), 6)]
    rng = np.random.default_rng(1)
    cells, bins = [], []
    weeks = 20

    def add(cell, week, k):
        for c in _disk(cell):  # a cluster: the cell and its ring
            cells.extend([c] * k)
            bins.extend([week] * k)

    for week in range(weeks):
        for c in study:  # background noise everywhere
            k = rng.poisson(1)
            cells.extend([c] * k)
            bins.extend([week] * k)
        add(centre, week, 6 + week // 2)  # intensifying
        add(far[0], week, 9)  # persistent
        add(far[12], week, 16 - week // 2)  # diminishing
    add(far[24], weeks - 1, 12)  # new: only in the final week
    out = emerging_hotspots(np.array(cells), np.array(bins), np.ones(len(cells)), study)
    label = dict(zip(out["cell"], out["label"], strict=True))
    assert label[centre] == "intensifying"
    assert label[far[0]] == "persistent"
    assert label[far[12]] == "diminishing"
    assert label[far[24]] == "new"
    quiet = [c for c in study if c not in set(_disk(centre, 2) + _disk(far[0], 2)
                                              + _disk(far[12], 2) + _disk(far[24], 2))]
    assert sum(label[c] != "" for c in quiet) <= 3


def test_cell_counts_sorted_one_pass_equals_grouping(chicago):
    from geo311.hotspots import RequestFilter, cell_counts_of, filter_parents

    lon, lat, created = chicago
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({
        "id": np.arange(len(lon)), "cell": cells_of(lon, lat, 15),
        "reporters": rng.integers(1, 4, len(lon)), "service_code": "SCB",
        "status": np.where(rng.random(len(lon)) < 0.3, "open", "closed"),
        "requested": pd.to_datetime(created).astype("int64").to_numpy() / 1e9,
        "parent": rng.random(len(lon)) < 0.9,
    })
    keep = filter_parents(frame, RequestFilter(status="open"))
    assert keep.sum() == ((frame["status"] == "open") & frame["parent"]).sum()
    shuffled = cell_counts_of(frame, keep, 8)
    order = np.argsort(frame["cell"].to_numpy(), kind="stable")
    in_order = cell_counts_of(frame.iloc[order].reset_index(drop=True), keep[order], 8)
    pd.testing.assert_frame_equal(shuffled, in_order)
    assert shuffled["reporters"].sum() == frame["reporters"][keep].sum()
