"""Score duplicate merging against the City's own labels, sweep rules, and time reclustering.

    python benchmarks/dedup_accuracy.py                      # sweep, error analysis, timings
    python benchmarks/dedup_accuracy.py --rows 0 --sample 0  # accuracy only

Scores ``cluster_requests`` on the 2011-2013 sanitation requests against (a)
the City's ``* - Dup`` labels and (b) the operational definition (an earlier
request at the same point was still open), sweeps radius, window and
``only_open``, explains the remaining errors of the best rule, checks the
2021 sample's parent links, and times reclustering on the real rows and on N
resampled rows beside two references: a per-category cKDTree pair search and
the live path (``find_duplicate`` per request over a spatial candidate list).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.dedup import (  # noqa: E402
    cluster_requests,
    find_duplicate,
    match_requests,
)
from geo311.geodesy import EARTH_RADIUS_M, haversine_m  # noqa: E402
from geo311.model import Candidate, DuplicateRule  # noqa: E402

REQUESTS = ROOT / "shapefiles/requests"
LEGACY = REQUESTS / "chicago_311_sanitation_code_complaints_2011_2013.csv.gz"
SAMPLE_2021 = REQUESTS / "chicago_311_all_types_2021-01-01_to_02_sample.csv.gz"
RADII_M = (0, 10, 25, 50, 100)
WINDOWS_DAYS = (1, 2, 3, 5, 7, 14, 30, 60)
DAY = pd.Timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- data ---------------------------------------------------------------------------------

def load_legacy() -> tuple[pd.DataFrame, np.ndarray]:
    """The sanitation requests as a clustering frame, and the City's duplicate labels.

    Dates have no time of day: each is taken as midnight UTC (whole 24-hour days,
    no daylight-saving steps), and ``id`` is the rank by (date, request number), so
    requests of the same day are ordered by request number. A request repeated in
    the source (176 rows, re-completed later) keeps its first completion date.
    """
    raw = pd.read_csv(LEGACY, dtype=str, keep_default_na=False,
                      usecols=["Creation_Date", "Completion_Date", "Status",
                               "Service_Request_Number", "Type_of_Service_Request",
                               "Latitude", "Longitude"])
    raw = (raw.sort_values(["Service_Request_Number", "Completion_Date"])
           .drop_duplicates("Service_Request_Number"))
    raw = raw.sort_values(["Creation_Date", "Service_Request_Number"]).reset_index(drop=True)
    frame = pd.DataFrame({
        "id": np.arange(len(raw)),
        "lon": pd.to_numeric(raw["Longitude"], errors="coerce"),
        "lat": pd.to_numeric(raw["Latitude"], errors="coerce"),
        "service_code": raw["Type_of_Service_Request"],
        "requested": pd.to_datetime(raw["Creation_Date"]).dt.tz_localize("UTC"),
        "closed": pd.to_datetime(raw["Completion_Date"].replace("", None)).dt.tz_localize("UTC"),
        "number": raw["Service_Request_Number"].str.replace("-", "").astype(np.int64),
    })
    return frame, raw["Status"].str.endswith("- Dup").to_numpy()


def operational(frame: pd.DataFrame) -> np.ndarray:
    """(b): an earlier request (by date, then number) at the very same point was still open.

    Still open means not completed, or completed on a later date than the day the
    new request came in. Computed with a group-by, independently of geo311.dedup.
    """
    located = frame.dropna(subset=["lon", "lat"])
    point = pd.Series(list(zip(located["lon"], located["lat"], strict=True)), index=located.index)
    ordered = pd.DataFrame({"point": point, "closed": days(located["closed"]),
                            "id": located["id"]}).sort_values("id")
    latest = ordered.groupby("point")["closed"].transform(lambda s: s.cummax().shift(1))
    out = np.zeros(len(frame), dtype=bool)
    is_open = (latest.to_numpy() > days(located.loc[ordered.index, "requested"]))
    out[frame.index.get_indexer(ordered.index)] = is_open
    return out


def resample(frame: pd.DataFrame, rows: int, seed: int = 11) -> pd.DataFrame:
    """Draw rows with replacement, new ids, points moved up to ~50 m, times up to 3 days."""
    rng = np.random.default_rng(seed)
    out = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
    out["id"] = np.arange(rows)
    out["lon"] = out["lon"] + rng.uniform(-0.0006, 0.0006, rows)
    out["lat"] = out["lat"] + rng.uniform(-0.00045, 0.00045, rows)
    shift = pd.to_timedelta(rng.integers(-3 * 86_400, 3 * 86_400, rows), unit="s")
    out["requested"] = out["requested"] + shift
    out["closed"] = out["closed"] + shift
    return out


# -- scoring ------------------------------------------------------------------------------

def score(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((predicted & truth).sum())
    fp, fn = int((predicted & ~truth).sum()), int((~predicted & truth).sum())
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def sweep(frame: pd.DataFrame, labels: np.ndarray, truth_b: np.ndarray) -> pd.DataFrame:
    rows = []
    for only_open in (True, False):
        for radius_m in RADII_M:
            for window_days in WINDOWS_DAYS:
                rule = DuplicateRule(radius_m=radius_m, window_days=window_days,
                                     only_open=only_open)
                child = cluster_requests(frame, rule).notna().to_numpy()
                a, b = score(child, labels), score(child, truth_b)
                rows.append({
                    "only_open": only_open, "radius_m": radius_m, "window_days": window_days,
                    "children": int(child.sum()),
                    **{f"a_{k}": v for k, v in a.items()},
                    **{f"b_{k}": v for k, v in b.items()},
                })
    return pd.DataFrame(rows)


def print_grid(table: pd.DataFrame, column: str) -> None:
    for only_open in (True, False):
        part = table[table["only_open"] == only_open]
        grid = part.pivot(index="radius_m", columns="window_days", values=column)
        print(f"\n{column}, only_open={only_open} (rows: radius m, columns: window days)")
        print("| radius \\ window | " + " | ".join(f"{w} d" for w in grid.columns) + " |")
        print("|---:|" + "---:|" * len(grid.columns))
        for radius_m, values in grid.iterrows():
            best = values.max()
            cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in values]
            print(f"| {radius_m} m | " + " | ".join(cells) + " |")


def explain(frame: pd.DataFrame, labels: np.ndarray, rule: DuplicateRule) -> None:
    """Break the rule's misses and false alarms down by what the data shows."""
    got = match_requests(frame, rule)
    child = got["duplicate_of"].notna().to_numpy()
    fn, fp = labels & ~child, child & ~labels
    # Every (earlier, later) pair within the radius, earlier by (date, number).
    located = frame.dropna(subset=["lon", "lat"])
    at = located.index.to_numpy()
    pairs = cKDTree(project(located["lon"].to_numpy(), located["lat"].to_numpy())).query_pairs(
        rule.radius_m + 1e-6, output_type="ndarray")
    earlier, later = np.sort(at[pairs], axis=1).T  # index order is (date, number) order
    t, closed = days(frame["requested"]), days(frame["closed"])
    age = t[later] - t[earlier]
    open_then = closed[earlier] > t[later]
    done_that_day = closed[earlier] == t[later]
    in_window = age <= rule.window_days

    def has(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(len(frame), dtype=bool)
        out[later[mask]] = True
        return out

    no_point = frame["lon"].isna().to_numpy()
    nearby = has(np.ones(len(later), dtype=bool))
    open_old = has(open_then & ~in_window)
    that_day = has(done_that_day & in_window) & ~has(open_then)
    print(f"\nMisses (labelled, not found): {int(fn.sum())}")
    print(f"  no point: {int((fn & no_point).sum())}")
    print(f"  no earlier request within {rule.radius_m:g} m: "
          f"{int((fn & ~no_point & ~nearby).sum())}")
    print(f"  earlier one still open but older than {rule.window_days:g} d: "
          f"{int((fn & open_old).sum())}")
    print(f"  earlier one completed on the day the new one came in: {int((fn & that_day).sum())}")
    print(f"  earlier ones all completed before: "
          f"{int((fn & nearby & ~open_old & ~that_day).sum())}")
    nearest = got["nearest"].fillna(-1).astype(int).to_numpy()
    lag = np.where(child, t - t[np.maximum(nearest, 0)], -1)
    print(f"False alarms (found, not labelled): {int(fp.sum())}")
    for d in range(int(rule.window_days) + 1):
        print(f"  repeat of one {d} d old: {int((fp & (lag == d)).sum())}")
    legacy = (frame["requested"] < pd.Timestamp("2011-01-01", tz="UTC")).to_numpy()
    print(f"  created before 2011 (legacy records): {int((fp & legacy).sum())}")
    print(f"  the request repeated is itself labelled Dup: "
          f"{int((fp & child & labels[np.maximum(nearest, 0)]).sum())}")
    # Same-day repeats: how close the request numbers are (entered minutes apart?).
    same_day = child & (lag == 0)
    gap = frame["number"].to_numpy() - frame["number"].to_numpy()[np.maximum(nearest, 0)]
    print("\nSame-day repeats found, by request-number gap to the one repeated: share labelled")
    for lo, hi in ((1, 3), (4, 10), (11, 50), (51, 10**9)):
        sel = same_day & (gap >= lo) & (gap <= hi)
        print(f"  {lo}-{hi if hi < 10**9 else 'more'}: {int(sel.sum())} requests, "
              f"{labels[sel].mean():.3f} labelled")
    # Repeats at the very same point of a still-open request, by age: share labelled.
    same = (located["lon"].to_numpy()[np.searchsorted(at, later)]
            == located["lon"].to_numpy()[np.searchsorted(at, earlier)]) & (
        located["lat"].to_numpy()[np.searchsorted(at, later)]
        == located["lat"].to_numpy()[np.searchsorted(at, earlier)])
    youngest = np.full(len(frame), np.inf)
    np.minimum.at(youngest, later[same & open_then], age[same & open_then])
    print("\nRequests repeating a still-open one at the same point, by the youngest one's age:")
    for lo, hi in ((0, 0), (1, 1), (2, 2), (3, 3), (4, 7), (8, 30), (31, 10**9)):
        sel = (youngest >= lo) & (youngest <= hi)
        print(f"  {lo}-{hi if hi < 10**9 else 'more'} d: {int(sel.sum())} requests, "
              f"{labels[sel].mean():.3f} labelled")


def days(values: pd.Series) -> np.ndarray:
    """Whole days since 1970 as floats; NaT (never completed) is infinitely late."""
    out = np.full(len(values), np.inf)
    known = values.notna().to_numpy()
    out[known] = (values[known] - pd.Timestamp(0, tz="UTC")) / DAY
    return out


def project(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Local equirectangular metres (within 0.5 % over Chicago)."""
    lat0 = np.radians(np.nanmean(lat))
    return np.column_stack((EARTH_RADIUS_M * np.cos(lat0) * np.radians(lon),
                            EARTH_RADIUS_M * np.radians(lat)))


# -- the 2021 sample ------------------------------------------------------------------------

def parent_agreement(rules: list[tuple[str, DuplicateRule | dict[str, DuplicateRule]]]) -> None:
    """The 2021 sample: does a duplicate join the parent the City recorded?

    Full timestamps (local time). Information-only calls and aircraft-noise
    complaints sit at placeholder addresses, so the duplicate flag is scored
    without them.
    """
    raw = pd.read_csv(SAMPLE_2021, dtype=str, keep_default_na=False)
    frame = pd.DataFrame({
        "id": np.arange(len(raw)),
        "lon": pd.to_numeric(raw["longitude"], errors="coerce"),
        "lat": pd.to_numeric(raw["latitude"], errors="coerce"),
        "service_code": raw["sr_short_code"],
        "requested": pd.to_datetime(raw["created_date"]).dt.tz_localize("America/Chicago"),
        "closed": pd.to_datetime(raw["closed_date"].replace("", None)).dt.tz_localize(
            "America/Chicago"),
    })
    number = raw["sr_number"].to_numpy()
    flagged = raw["duplicate"].str.lower().eq("true").to_numpy()
    parent = raw["parent_sr_number"].to_numpy()
    known = flagged & np.isin(parent, number)
    real = ~raw["sr_short_code"].isin(["311IOC", "AVN"]).to_numpy()
    print(f"\n2021 sample: {len(raw)} requests, {int(flagged.sum())} flagged duplicates, "
          f"{int(known.sum())} with their parent in the file; {int(real.sum())} requests "
          f"outside placeholder types")
    for name, rule in rules:
        if isinstance(rule, DuplicateRule):
            got = cluster_requests(frame, rule)
        else:
            got = cluster_requests(frame, rule, default=rules[0][1])  # type: ignore[arg-type]
        child = got.notna().to_numpy()
        root_number = np.where(child, number[got.fillna(0).astype(int).to_numpy()], "")
        same = int((known & (root_number == parent)).sum())
        flagged_share = flagged[real & child].mean()
        print(f"  {name}: {int((known & child).sum())}/{int(known.sum())} found as duplicates, "
              f"{same} joined the City's parent; {int(child[real].sum())} children outside "
              f"placeholder types, {flagged_share:.3f} of them flagged by the City")
        # Where a found duplicate joined another group than the City's parent, why?
        other = known & child & (root_number != parent)
        root_at = got.fillna(0).astype(int).to_numpy()
        parent_at = pd.Index(number).get_indexer(np.where(other, parent, number))
        chained = other & (parent[root_at] == parent)
        younger = other & ~chained & (frame["requested"].to_numpy()[parent_at]
                                      > frame["requested"].to_numpy()[root_at])
        print(f"    joined another group: {int(other.sum())}; our root is a City duplicate of "
              f"that parent: {int(chained.sum())}; the City's parent is younger than our "
              f"root: {int(younger.sum())}")
    far = np.array([
        haversine_m(frame["lon"][i], frame["lat"][i], frame["lon"][j], frame["lat"][j])
        for i, j in zip(np.flatnonzero(known), pd.Index(number).get_indexer(parent[known]),
                        strict=True)
    ])
    print(f"  distance to the City's parent: 0 m for {int((far == 0).sum())}, <= 25 m for "
          f"{int((far <= 25).sum())}, <= 50 m for {int((far <= 50).sum())}, max {far.max():.0f} m")


# -- timing ---------------------------------------------------------------------------------

def best_of(repeat: int, call):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return min(times), result


def category_reference(frame: pd.DataFrame, radius_m: float) -> int:
    """The bare spatial join: per service code, a cKDTree over local metres, query_pairs."""
    found = 0
    for _, part in frame.dropna(subset=["lon", "lat"]).groupby("service_code"):
        xy = project(part["lon"].to_numpy(), part["lat"].to_numpy())
        found += len(cKDTree(xy).query_pairs(radius_m, output_type="ndarray"))
    return found


def live_reference(frame: pd.DataFrame, rule: DuplicateRule, roots: pd.Series, sample: int,
                   seed: int = 5) -> tuple[float, float, float, int]:
    """``find_duplicate`` per request over a spatial candidate list, for a random sample.

    A cKDTree over all points stands in for the store's spatial index (built
    once, not timed). Timed per request: the radius query, keeping the earlier
    requests, building ``Candidate`` values (times from integers, as a driver
    would), and ``find_duplicate``; the stored ``duplicate_of`` is what the bulk
    result says, as it would be at that moment. Returns requests/s, p50 and p99
    milliseconds and how many answers differ from the bulk path.
    """
    located = frame.dropna(subset=["lon", "lat"]).reset_index(drop=True)
    xy = project(located["lon"].to_numpy(), located["lat"].to_numpy())
    tree = cKDTree(xy)
    t_us = located["requested"].dt.as_unit("us").astype("int64").to_numpy()
    closed = located["closed"]
    closed_us = np.where(closed.isna(), -1, closed.dt.as_unit("us").astype("int64"))
    ids, lon, lat = located["id"].to_numpy(), located["lon"].to_numpy(), located["lat"].to_numpy()
    codes = located["service_code"].to_numpy()
    stored = roots.reindex(frame.index).to_numpy()
    stored = pd.Series(stored, index=frame["id"]).reindex(ids).to_numpy()
    search_m = rule.radius_m * 1.01 + 1.0
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(located), size=min(sample, len(located)), replace=False)
    latencies, differ = [], 0
    for i in picks:
        start = time.perf_counter()
        near = np.asarray(tree.query_ball_point(xy[i], search_m), dtype=np.int64)
        near = near[(t_us[near] < t_us[i]) | ((t_us[near] == t_us[i]) & (ids[near] < ids[i]))]
        candidates = [
            Candidate(int(ids[j]), float(lon[j]), float(lat[j]), str(codes[j]), "",
                      EPOCH + timedelta(microseconds=int(t_us[j])),
                      None if closed_us[j] < 0 else EPOCH + timedelta(
                          microseconds=int(closed_us[j])),
                      None if pd.isna(stored[j]) else int(stored[j]))
            for j in near
        ]
        found = find_duplicate(lon[i], lat[i], str(codes[i]), "",
                               EPOCH + timedelta(microseconds=int(t_us[i])), candidates, rule)
        latencies.append(time.perf_counter() - start)
        expected = None if pd.isna(stored[i]) else int(stored[i])
        differ += (None if found is None else found[0]) != expected
    total = sum(latencies)
    ms = np.array(latencies) * 1e3
    return len(picks) / total, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), differ


def timings(frame: pd.DataFrame, rows: list[int], rules: list[DuplicateRule], sample: int,
            repeat: int) -> None:
    """Best-of-``repeat`` seconds; resampled rows come shuffled, then in (requested, id) order."""
    print("\n| rows | rule | cluster_requests s | rows/s | per-category cKDTree s "
          "(pairs) | ratio | live path rows/s (p50/p99 ms; answers differing) | bulk vs live |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for n in rows:
        data = frame if n == len(frame) else resample(frame, n)
        ordered = data.sort_values(["requested", "id"]).reset_index(drop=True)
        for rule in rules:
            seconds, roots = best_of(repeat, lambda d=data, r=rule: cluster_requests(d, r))
            ref_s, pairs = best_of(repeat, lambda d=data, r=rule: category_reference(
                d, r.radius_m))
            live = speedup = ""
            if sample:
                rate, p50, p99, differ = live_reference(data, rule, roots, sample)
                live = f"{rate:,.0f} ({p50:.2f}/{p99:.2f}; {differ} of {sample:,})"
                speedup = f"{n / seconds / rate:,.0f}×"
            print(f"| {n:,} | {fmt(rule)} | {seconds:.2f} | {n / seconds / 1e6:.2f} M | "
                  f"{ref_s:.2f} ({pairs:,}) | {seconds / ref_s:.2f} | {live} | {speedup} |",
                  flush=True)
            if n != len(frame):
                in_order, _ = best_of(repeat, lambda d=ordered, r=rule: cluster_requests(d, r))
                print(f"| {n:,} in time order | {fmt(rule)} | {in_order:.2f} | "
                      f"{n / in_order / 1e6:.2f} M | | {in_order / ref_s:.2f} | | |", flush=True)


def fmt(rule: DuplicateRule) -> str:
    return (f"{rule.radius_m:g} m, {rule.window_days:g} d, "
            f"{'open only' if rule.only_open else 'open or closed'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000],
                        help="resampled sizes to time besides the real rows (0: none)")
    parser.add_argument("--sample", type=int, default=2000,
                        help="requests timed through find_duplicate one by one (0: skip)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    frame, labels = load_legacy()
    truth_b = operational(frame)
    print(f"{len(frame):,} requests ({int(frame['lon'].isna().sum())} without a point); "
          f"(a) labelled Dup: {int(labels.sum()):,}; (b) operational: {int(truth_b.sum()):,} "
          f"({int((truth_b & labels).sum()):,} of them labelled)")
    same = cluster_requests(frame, DuplicateRule(radius_m=0, window_days=100_000))
    print("rule 0 m / no window / open only reproduces (b): "
          f"{int((same.notna().to_numpy() != truth_b).sum())} differences")

    start = time.perf_counter()
    table = sweep(frame, labels, truth_b)
    print(f"sweep of {len(table)} rules in {time.perf_counter() - start:.1f} s")
    print_grid(table, "a_f1")
    print_grid(table, "b_f1")
    best = table.sort_values(["a_f1", "radius_m", "window_days"],
                             ascending=[False, True, True]).iloc[0]
    rule = DuplicateRule(radius_m=float(best["radius_m"]), window_days=float(best["window_days"]),
                         only_open=bool(best["only_open"]))
    print(f"\nbest by F1 on (a): {fmt(rule)}")
    top = table.sort_values("a_f1", ascending=False).head(8)
    print(top[["only_open", "radius_m", "window_days", "children", "a_precision", "a_recall",
               "a_f1", "b_precision", "b_recall", "b_f1"]].round(4).to_string(index=False))

    late = frame.assign(closed=frame["closed"] + DAY)
    child = cluster_requests(late, rule).notna().to_numpy()
    s = score(child, labels)
    print(f"same rule, completion taken at the end of its day: precision {s['precision']:.4f},"
          f" recall {s['recall']:.4f}, F1 {s['f1']:.4f}")
    explain(frame, labels, rule)
    parent_agreement([
        (fmt(rule), rule),
        ("25 m, 3 d, open only", DuplicateRule(radius_m=25, window_days=3)),
        ("50 m, 30 d, open only", DuplicateRule()),
        ("best, ice and snow (SDO) 200 m", {"SDO": DuplicateRule(radius_m=200,
                                                                  window_days=rule.window_days)}),
    ])

    sizes = [len(frame)] + [n for n in args.rows if n > 0]
    timings(frame, sizes, [rule, DuplicateRule(radius_m=25, window_days=3), DuplicateRule()],
            args.sample, args.repeat)


if __name__ == "__main__":
    main()
