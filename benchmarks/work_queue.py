"""The work queue at scale: its page query over 1M requests in PostGIS.

Imports N requests resampled from the 2011–2013 sanitation data (as ``import_requests.py``
does), gives each a due time three days after the request and opens one in twenty again
(so "open" and "SLA breached" select 5 %), then times ``store.queues.page`` — the query
``/staff/requests`` runs, with the page's district names — for typical filters, p50 and
p95 of ``--repeat`` runs. References in the same run: a plain ``SELECT count(*)`` of the
table, and the same page query with index scans switched off (what it costs without
the indexes).

    GEO311_BENCH_POSTGIS_URL=postgresql+psycopg://postgres@127.0.0.1:5432/mydb \\
        python benchmarks/work_queue.py [--rows 1000000] [--repeat 21] [--fresh]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from import_requests import load_resampled, postgis_url  # noqa: E402

from geo311.store import Store, open_store  # noqa: E402
from geo311.store.queues import QueueFilter  # noqa: E402

#: Every request is due three days after it was made (intake writes every request's due
#: time); one in twenty is open again.
DUE = "UPDATE service_requests SET expected_datetime = requested_datetime + interval '3 days'"
OPENED = """
UPDATE service_requests SET status = 'open', closed_datetime = NULL WHERE id % 20 = 0
"""


def prepare(url: str, rows: int, fresh: bool) -> None:
    store = open_store(url)
    with store.engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    have = 0 if fresh else (store.requests.count() if store.db.schema_version() else 0)
    if have < rows:
        print(f"importing {rows:,} resampled requests (the database held {have:,}) ...")
        started = time.perf_counter()
        summary = load_resampled(store, rows)
        with store.engine.begin() as conn:
            conn.execute(text(DUE))
            conn.execute(text(OPENED))
        store.schema.init()
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE service_requests"))
            conn.execute(text("VACUUM ANALYZE request_districts"))
        print(f"  imported {summary.stored:,} in {summary.seconds:.0f} s; loaded, opened 5 % "
              f"and indexed in {time.perf_counter() - started:.0f} s")
    store.dispose()


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[max(0, round(share * len(values)) - 1)]


def timed(run, repeat: int) -> list[float]:
    run()  # warm the cache: a queue is read all day
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        out.append(time.perf_counter() - started)
    return out


def without_indexes(store: Store, f: QueueFilter, now: datetime, after: int | None):
    def run() -> None:
        with store.engine.begin() as conn:
            for name in ("indexscan", "bitmapscan", "indexonlyscan"):
                conn.execute(text(f"SET LOCAL enable_{name} = off"))
            conn.execute(store.queues.statement(conn, f, now, after=after, limit=51)).all()
    return run


def typical(store: Store) -> list[tuple[str, QueueFilter, int | None]]:
    with store.engine.connect() as conn:
        code = conn.execute(text("SELECT service_code FROM service_requests GROUP BY 1 "
                                 "ORDER BY count(*) DESC LIMIT 1")).scalar()
        ward = conn.execute(text(
            "SELECT rd.district_id FROM request_districts rd JOIN layer_versions lv "
            "ON lv.id = rd.layer_version_id JOIN layers l ON l.id = lv.layer_id "
            "WHERE l.name = 'wards_2003_2015' AND rd.request_id = 4242")).scalar()
        rare = conn.execute(text(
            "SELECT rd.district_id FROM request_districts rd JOIN layer_versions lv "
            "ON lv.id = rd.layer_version_id JOIN layers l ON l.id = lv.layer_id "
            "WHERE l.name = 'community_areas' GROUP BY 1 ORDER BY count(*), 1 LIMIT 1")).scalar()
        street = conn.execute(text(
            "SELECT split_part(address, ' ', 3) FROM service_requests WHERE id = 777")).scalar()
    second = store.queues.page(QueueFilter()).next_after
    second_open = store.queues.page(QueueFilter(status="open")).next_after
    return [
        (f"status=open&service={code}", QueueFilter(status="open", services=(str(code),)), None),
        (f"district=wards_2003_2015:{ward}",
         QueueFilter(district=f"wards_2003_2015:{ward}"), None),
        (f"district=community_areas:{rare} (fewest requests)",
         QueueFilter(district=f"community_areas:{rare}"), None),
        (f"district=wards_2003_2015:{ward}&status=open",
         QueueFilter(district=f"wards_2003_2015:{ward}", status="open"), None),
        ("sla=breached", QueueFilter(sla="breached"), None),
        (f"q={street}", QueueFilter(q=str(street)), None),
        ("second page (no filter)", QueueFilter(), second),
        ("second page of status=open", QueueFilter(status="open"), second_open),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    url = postgis_url()
    prepare(url, args.rows, args.fresh)
    store = open_store(url)
    now = datetime.now(UTC)

    def count() -> None:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM service_requests")).scalar()

    ref = statistics.median(timed(count, args.repeat))
    print(f"{store.requests.count():,} requests; reference: SELECT count(*) "
          f"median {ref * 1000:.1f} ms\n")
    print(f"{'filter':52} {'p50 ms':>8} {'p95 ms':>8} {'p50/count':>9} {'no-index p50 ms':>15} "
          f"{'rows':>5}")
    for label, f, after in typical(store):
        times = timed(lambda f=f, after=after: store.queues.page(f, now=now, after=after),
                      args.repeat)
        bare = timed(without_indexes(store, f, now, after), max(3, args.repeat // 7))
        shown = len(store.queues.page(f, now=now, after=after).rows)
        p50 = statistics.median(times)
        print(f"{label:52} {p50 * 1000:8.1f} {percentile(times, 0.95) * 1000:8.1f} "
              f"{p50 / ref:9.2f} {statistics.median(bare) * 1000:15.1f} {shown:5}")
    store.dispose()


if __name__ == "__main__":
    main()
