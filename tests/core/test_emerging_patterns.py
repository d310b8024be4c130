"""Emerging hot-spot classes recovered from planted space-time patterns.

Each class is planted several times (a site: a cell and its ring) over Poisson
background noise on an H3 disk, and judged per site, as planted clusters are: a site
is found as class C when its centre cell carries C. Recall of C: its sites found as
C. Precision of C: of everything called C (sites found as C, plus clusters of cells
labelled C three or more rings from any site — noise taken for a pattern), the share
planted as C. Cells right beside a site take part of its signal and are not judged
(the edge of a growing cluster rightly looks like one that started later).
"""

from collections import Counter

import h3.api.basic_int as h3
import numpy as np
import pytest

from geo311.hotspots import HOT_PATTERNS, cells_of, emerging_hotspots, space_time_patterns

WEEKS = 20
BACKGROUND = 8  # mean requests per cell and week
ON = 20  # requests added to each cell of a site in a week it is hot


def _plan(week: int, pattern: str) -> float:
    """Requests added to each cell of a planted site in ``week`` (negative: a quiet week)."""
    last = WEEKS - 1
    return {
        "new": ON if week == last else 0,
        "consecutive": ON if week >= last - 3 else 0,
        "intensifying": ON + 1.5 * week,
        "persistent": ON,
        "diminishing": ON + 1.5 * (last - week),
        "sporadic": ON if week in (2, 7, 12, last) else 0,
        "oscillating": -1 if week in (3, 4, 5, 6) else (ON if week in (10, last) else 0),
        "historical": ON if week < last else 0,
    }[pattern]


def planted(seed: int, per_class: int = 3):
    """Requests (cell, week) with ``per_class`` sites of each class; the sites by class."""
    rng = np.random.default_rng(seed)
    centre = int(cells_of([-87.70], [41.85], 8)[0])
    study = np.array(sorted(h3.grid_disk(centre, 30)))
    # Sites six rings apart from each other and from the edge of the study area.
    candidates = [int(c) for c in rng.permutation(h3.grid_disk(centre, 24))]
    sites: list[int] = []
    for c in candidates:
        if all(h3.grid_distance(c, s) >= 6 for s in sites):
            sites.append(c)
        if len(sites) == per_class * len(HOT_PATTERNS):
            break
    assert len(sites) == per_class * len(HOT_PATTERNS)
    by_class = {p: sites[i * per_class:(i + 1) * per_class] for i, p in enumerate(HOT_PATTERNS)}
    extra: dict[tuple[int, int], float] = {}
    for pattern, centres in by_class.items():
        for site in centres:
            for cell in h3.grid_disk(site, 1):
                for week in range(WEEKS):
                    extra[cell, week] = _plan(week, pattern)
    cells, weeks = [], []
    for week in range(WEEKS):
        counts = rng.poisson(BACKGROUND, len(study))
        for i, cell in enumerate(study):
            add = extra.get((int(cell), week), 0)
            n = 0 if add < 0 else counts[i] + int(add)
            cells.extend([int(cell)] * n)
            weeks.extend([week] * n)
    return np.array(cells), np.array(weeks), study, by_class


def recovery(seeds=(1, 2, 3, 4, 5)):
    """Per class: sites planted, found as it, called it (sites and noise clusters), right."""
    tally = {p: Counter() for p in HOT_PATTERNS}
    for seed in seeds:
        cells, weeks, study, by_class = planted(seed)
        out = emerging_hotspots(cells, weeks, np.ones(len(cells)), study, n_bins=WEEKS)
        label = dict(zip(out["cell"].tolist(), out["label"].tolist(), strict=True))
        sites = [s for centres in by_class.values() for s in centres]
        for pattern, centres in by_class.items():
            for site in centres:
                tally[pattern]["planted"] += 1
                if label[site] in tally:
                    tally[label[site]]["called"] += 1
                    tally[label[site]]["right"] += label[site] == pattern
                tally[pattern]["found"] += label[site] == pattern
        far = {c for c, got in label.items() if got in tally
               and min(h3.grid_distance(c, s) for s in sites) >= 3}
        for pattern in HOT_PATTERNS:
            tally[pattern]["called"] += _clusters({c for c in far if label[c] == pattern})
    return tally


def _clusters(cells: set[int]) -> int:
    """Connected groups of neighbouring cells."""
    seen: set[int] = set()
    groups = 0
    for start in cells:
        if start in seen:
            continue
        groups += 1
        todo = [start]
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            todo.extend(n for n in h3.grid_disk(c, 1) if n in cells and n not in seen)
    return groups


def test_every_planted_class_is_recovered_with_few_false_cells():
    tally = recovery()
    for pattern, t in tally.items():
        recall = t["found"] / t["planted"]
        precision = t["right"] / t["called"] if t["called"] else 0.0
        assert recall >= 0.9, (pattern, dict(t))
        assert precision >= 0.9, (pattern, dict(t))


def test_noise_alone_shows_almost_no_pattern():
    rng = np.random.default_rng(7)
    centre = int(cells_of([-87.70], [41.85], 8)[0])
    study = np.array(sorted(h3.grid_disk(centre, 12)))
    counts = rng.poisson(BACKGROUND, (WEEKS, len(study)))
    cells = np.concatenate([np.repeat(study, counts[w]) for w in range(WEEKS)])
    weeks = np.concatenate([np.full(counts[w].sum(), w) for w in range(WEEKS)])
    out = emerging_hotspots(cells, weeks, np.ones(len(cells)), study, n_bins=WEEKS)
    assert (out["label"] != "").mean() < 0.02


@pytest.mark.parametrize("hot, cold, expected", [
    ("....H", ".....", "new"),
    ("...HH", ".....", "consecutive"),
    ("H..HH", ".....", "sporadic"),
    ("H.H.H", ".C...", "oscillating"),
    ("H.H.H", ".....", "sporadic"),
    ("HHHHHHHHHH", "..........", "persistent"),
    ("HHHHHHHHH.", "..........", "historical"),
    ("HHHHHHHH..", "..........", ""),
    (".....", "....C", "new cold"),
    ("H....", "...CC", "consecutive cold"),
    (".....", ".....", ""),
])
def test_each_pattern_follows_its_definition(hot, cold, expected):
    h = np.array([[c == "H" for c in hot]])
    c = np.array([[x == "C" for x in cold]])
    assert space_time_patterns(h, c, np.zeros(1), np.ones(1))[0] == expected


def test_trend_splits_the_mostly_hot_cells():
    h = np.ones((3, 10), bool)
    c = np.zeros((3, 10), bool)
    got = space_time_patterns(h, c, np.array([3.0, -3.0, 0.5]), np.array([0.001, 0.001, 0.6]))
    assert list(got) == ["intensifying", "diminishing", "persistent"]
