"""Time the live duplicate check against a PostGIS store holding many requests.

The check is what ``submit`` does before storing: take the per-service lock, read the
earlier requests near the new point (spatial index), decide with ``find_duplicate``.
Each check runs in its own transaction, rolled back, so the store is not changed.

    python benchmarks/import_requests.py --rows 1000000 --backends postgis   # fills geo311_bench
    python benchmarks/dedup_live.py [--checks 2000] [--radius-m 50 --window-days 30]
    python benchmarks/dedup_live.py --now   # live reports now, in the Open311 load database
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.import_requests import postgis_url  # noqa: E402
from benchmarks.open311_load import bench_url as open311_bench_url  # noqa: E402
from geo311.dedup import find_duplicate  # noqa: E402
from geo311.model import DuplicateRule, DuplicateSearch  # noqa: E402
from geo311.store import (  # noqa: E402
    Store,
    open_store,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--radius-m", type=float, default=50.0)
    parser.add_argument("--window-days", type=float, default=30.0)
    parser.add_argument("--now", action="store_true",
                        help="live reports made now, at the points of the last 30 days' "
                             "requests, in the Open311 load database (its times end today)")
    args = parser.parse_args()
    store = open_store(open311_bench_url() if args.now else postgis_url())
    stored = store.requests.count()
    since = datetime.now(UTC) - timedelta(days=30) if args.now else None
    frame = store.duplicates.frame(since=since)
    rng = np.random.default_rng(5)
    picks = frame.iloc[rng.integers(0, len(frame), args.checks)]
    rule = DuplicateRule(radius_m=args.radius_m, window_days=args.window_days)
    # The reference is the portable path every store has: lock, then a SQLAlchemy query.
    methods = {"one call (PostGIS function)": store.db.dialect.duplicate_candidates,
               "lock, then query (reference)":
                   lambda *a, **k: Store._duplicate_candidates(store, *a, **k)}
    print(f"{stored:,} requests stored; {args.checks} live checks per method, "
          f"{'made now' if args.now else 'each at the time of a stored request'} "
          f"(radius {rule.radius_m:g} m, window {rule.window_days:g} d), interleaved")
    timings = {name: [] for name in methods}
    found = dict.fromkeys(methods, 0)
    seen = dict.fromkeys(methods, 0)
    for row in picks.itertuples(index=False):
        when = None if args.now else row.requested.to_pydatetime()

        def decide(cands, requested, row=row):
            return find_duplicate(row.lon, row.lat, row.service_code, "", requested, cands, rule)

        search = DuplicateSearch((row.service_code,), rule.radius_m, rule.window_days, decide,
                                 only_open=rule.only_open)
        for name, read in methods.items():
            started = time.perf_counter()
            with store.engine.connect() as conn:
                with conn.begin() as tx:
                    cands = read(conn, row.lon, row.lat, search, requested=when)
                    result = search.decide(cands, when or datetime.now(UTC))
                    tx.rollback()
            timings[name].append((time.perf_counter() - started) * 1000)
            found[name] += result is not None
            seen[name] += len(cands)
    p99 = {}
    for name, values in timings.items():
        ms = np.array(values)
        p99[name] = np.percentile(ms, 99)
        print(f"  {name}: p50 {np.percentile(ms, 50):.2f} ms, p95 {np.percentile(ms, 95):.2f} "
              f"ms, p99 {p99[name]:.2f} ms, max {ms.max():.2f} ms; {found[name]} found a "
              f"group, {seen[name] / args.checks:.1f} candidates per check")
    one, ref = p99.values()
    print(f"  p99 ratio one call / reference: {one / ref:.2f}")
    if len(set(found.values())) != 1:
        raise SystemExit("the two methods found different groups")
    store.dispose()


if __name__ == "__main__":
    main()
