"""The KPI page at scale: 1M requests in PostGIS (the hotspot benchmark's database).

Prints the /kpi page's server time for a few views a CitiStat meeting uses — cold
(just after a request changed status, so the tables are rebuilt from the database)
and warm (cached until the next audited change) — beside the reference: the plain SQL
``GROUP BY`` of the same group roots by district, the least an uncached view must do.

    python benchmarks/kpi.py                # reuses geo311_bench_hotspots (hotspots.py)
    python benchmarks/kpi.py --rows 1000000 --fresh
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from hotspots import bench_url, prepare, touch  # noqa: E402

from geo311.accounts import create_user  # noqa: E402
from geo311.config import Settings  # noqa: E402

VIEWS = ["/kpi?layer=wards_2003_2015",
         "/kpi?layer=community_areas&period=month",
         "/kpi?layer=wards_2003_2015&start=2013-01-01&end=2013-03-31"]
REFERENCE = """
SELECT rd.district_id, count(*), count(sr.closed_datetime),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY sr.closed_datetime - sr.requested_datetime)
FROM service_requests sr
LEFT JOIN request_districts rd ON rd.request_id = sr.id AND rd.layer_version_id = :v
WHERE sr.duplicate_of IS NULL GROUP BY rd.district_id
"""


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    url = bench_url()
    prepare(url, args.rows, args.fresh)

    from geo311_web import create_app

    app = create_app(Settings(database_url=url, instance_path=Path(tempfile.mkdtemp())))
    store = app.extensions["geo311"].store
    try:
        create_user(store, "bench-planner", "bench-password-123", "planner")
    except Exception:  # noqa: BLE001 - kept from an earlier run
        pass
    client = app.test_client()
    with app.test_request_context():  # a session CSRF token, sent as the form would
        from flask import session
        from flask_wtf.csrf import generate_csrf
        token, raw = generate_csrf(), session["csrf_token"]
    with client.session_transaction() as sess:
        sess["csrf_token"] = raw
    client.environ_base["HTTP_X_CSRFTOKEN"] = token
    assert client.post("/login", data={"username": "bench-planner",
                                       "password": "bench-password-123"}).status_code == 302
    victim = store.requests.query(limit=1)[0]
    flip = [victim.status]
    version = store.layers.version("wards_2003_2015").id

    reference = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        with store.engine.connect() as conn:
            conn.execute(text(REFERENCE), {"v": version}).all()
        reference.append(time.perf_counter() - started)
    ref = statistics.median(reference)
    print(f"{store.requests.count():,} requests; reference (SQL GROUP BY of group roots by "
          f"ward, median of {args.repeat}): {ref:.3f} s\n")
    print(f"{'view':62} {'cold med':>8} {'warm p50':>8} {'warm p95':>8} {'warm/ref':>8}")
    for path in VIEWS:
        assert client.get(path).status_code == 200
        cold, warm = [], []
        for _ in range(args.repeat):
            touch(store, victim.id, flip)
            started = time.perf_counter()
            assert client.get(path).status_code == 200
            cold.append(time.perf_counter() - started)
        for _ in range(args.repeat * 3):
            started = time.perf_counter()
            client.get(path)
            warm.append(time.perf_counter() - started)
        print(f"{path:62} {statistics.median(cold):8.3f} {statistics.median(warm):8.3f} "
              f"{p95(warm):8.3f} {statistics.median(warm) / ref:8.3f}")
    if flip[0] != victim.status:
        touch(store, victim.id, flip)
    store.dispose()


if __name__ == "__main__":
    main()
