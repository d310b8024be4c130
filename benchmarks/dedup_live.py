"""Time the live duplicate check against a PostGIS store holding many requests.

The check is what ``submit`` does before storing: take the per-service lock, read the
earlier requests near the new point (spatial index), decide with ``find_duplicate``.
Each check runs in its own transaction, rolled back, so the store is not changed.

    python benchmarks/import_requests.py --rows 1000000 --backends postgis   # fills geo311_bench
    python benchmarks/dedup_live.py [--checks 2000] [--radius-m 50 --window-days 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.import_requests import postgis_url  # noqa: E402
from geo311.dedup import DuplicateRule, find_duplicate  # noqa: E402
from geo311.model import DuplicateSearch  # noqa: E402
from geo311.store import open_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--radius-m", type=float, default=50.0)
    parser.add_argument("--window-days", type=float, default=30.0)
    args = parser.parse_args()
    store = open_store(postgis_url())
    stored = store.count()
    frame = store.duplicate_frame()
    rng = np.random.default_rng(5)
    picks = frame.iloc[rng.integers(0, len(frame), args.checks)]
    rule = DuplicateRule(radius_m=args.radius_m, window_days=args.window_days)
    timings, found, candidates_seen = [], 0, 0
    for row in picks.itertuples(index=False):
        when = row.requested.to_pydatetime()

        def decide(cands, requested, row=row):
            return find_duplicate(row.lon, row.lat, row.service_code, "", requested, cands, rule)

        search = DuplicateSearch((row.service_code,), rule.radius_m, rule.window_days, decide,
                                 only_open=rule.only_open)
        started = time.perf_counter()
        with store.engine.connect() as conn:
            with conn.begin() as tx:
                store._lock_for_duplicates(conn, search.codes)
                cands = store._candidates(conn, row.lon, row.lat, search, until=when)
                result = search.decide(cands, when)
                tx.rollback()
        timings.append((time.perf_counter() - started) * 1000)
        found += result is not None
        candidates_seen += len(cands)
    ms = np.array(timings)
    print(f"{stored:,} requests stored; {args.checks} live checks "
          f"(radius {rule.radius_m:g} m, window {rule.window_days:g} d)")
    print(f"  p50 {np.percentile(ms, 50):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, "
          f"p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms")
    print(f"  {found} found a group; {candidates_seen / args.checks:.1f} candidates per check")
    store.dispose()


if __name__ == "__main__":
    main()
