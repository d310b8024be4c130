"""Load an Open311 server (gunicorn, 2 workers, loopback) backed by 1M requests in PostGIS.

Times POST requests through the whole intake (API key, attribute check, districts,
service area, duplicate check under the lock, insert) and GET requests by bbox
(``extensions=true``, default 90-day window), each against ``/healthz`` on the same
server in the same run as the reference (the cost of HTTP, WSGI and Flask alone).

Before the load, ``refresh_records`` builds every stale stored record, as ``geo311
records refresh`` does; then GET's own work is timed in process on 300 boxes two ways:
every record built from the rows (the reference: what GET did before records were
stored, and what a reader does for stale ones) and read from ``public_records``.
``--records cold`` makes every record stale before the HTTP load (as a catalogue load
or layer activation does), so its GETs build and store what they serve.

    python benchmarks/open311_load.py --rows 1000000          # fills geo311_bench_open311
    python benchmarks/open311_load.py --skip-load --posts 3000 --gets 3000

The 2011-2013 sanitation requests are resampled to N rows (ids renewed, points moved
up to ~50 m) and their dates shifted so the newest is today: the last 90 days then
hold the share of requests a live city would have. PostGIS uses
GEO311_BENCH_POSTGIS_URL (default: database geo311_bench_open311 on 127.0.0.1,
created if missing).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import requests
from sqlalchemy import select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.catalogue import load_catalogue, read_catalogue  # noqa: E402
from geo311.imports import import_file, read_mapping  # noqa: E402
from geo311.intake import Context  # noqa: E402
from geo311.layerdefs import read_layer_definitions  # noqa: E402
from geo311.layers import load_layer  # noqa: E402
from geo311.open311_records import build_records, refresh_records, request_page  # noqa: E402
from geo311.store import Store, open_store  # noqa: E402
from geo311.store import tables as t  # noqa: E402
from geo311.store.rows import now_utc  # noqa: E402

LEGACY = ROOT / "shapefiles/requests/chicago_311_sanitation_code_complaints_2011_2013.csv.gz"
LAYERS = ("community_areas", "wards_2015_2023")
DB = "geo311_bench_open311"


def bench_url() -> str:
    url = os.environ.get("GEO311_BENCH_POSTGIS_URL")
    if url:
        return url
    admin = open_store("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(text(f"SELECT 1 FROM pg_database WHERE datname='{DB}'")).scalar():
            conn.execute(text(f"CREATE DATABASE {DB}"))
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB}"


def resampled_recent_csv(rows: int, dest: Path, seed: int = 17) -> Path:
    """Real rows drawn with replacement, new ids, jittered, dates shifted to end today."""
    src = pd.read_csv(LEGACY, dtype=str, keep_default_na=False)
    src = src[src["Latitude"] != ""]
    rng = np.random.default_rng(seed)
    pick = src.iloc[rng.integers(0, len(src), rows)].reset_index(drop=True)
    pick["Service_Request_Number"] = [f"B{i:09d}" for i in range(rows)]
    for col, scale in (("Latitude", 0.00045), ("Longitude", 0.0006)):
        values = pd.to_numeric(pick[col]) + rng.uniform(-scale, scale, rows)
        pick[col] = values.map(lambda v: f"{v:.7f}")
    created = pd.to_datetime(pick["Creation_Date"], errors="coerce")
    shift = pd.Timestamp(date.today()) - created.max()
    for col in ("Creation_Date", "Completion_Date"):
        moved = pd.to_datetime(pick[col], errors="coerce") + shift
        pick[col] = moved.dt.strftime("%Y-%m-%d").fillna("")
    # A live city's rows arrive in time order, and so does the table's heap.
    pick = pick.sort_values("Creation_Date", kind="stable")
    pick.to_csv(dest, index=False)
    return dest


def fill(url: str, rows: int) -> None:
    store = open_store(url)
    with store.engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    store.schema.drop()
    store.schema.init()
    defs = {d.name: d for d in read_layer_definitions(ROOT / "layers", ROOT)}
    for name in LAYERS:
        d = defs[name]
        load_layer(store, d.source, name=d.name, role=d.role, id_field=d.id_field,
                   name_field=d.name_field)
    load_catalogue(store, read_catalogue("chicago"), source="chicago")
    with tempfile.TemporaryDirectory() as tmp:
        source = resampled_recent_csv(rows, Path(tmp) / "recent.csv")
        summary = import_file(store, Context.from_store(store), source,
                              read_mapping("chicago-311-legacy"))
    print(f"filled: {summary.stored:,} requests in {summary.seconds:.0f} s")
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    store.dispose()


def serve(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GEO311_DATABASE_URL": url, "GEO311_OPEN311_POST_LIMIT": "1000000/1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
         f"127.0.0.1:{port}", "--log-level", "warning", "geo311_web:create_app()"],
        cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(base + "/healthz", timeout=10).ok:
                return proc, base
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("gunicorn did not start")


def run(calls: list[tuple[str, str, dict | None]], concurrency: int) -> tuple[np.ndarray, float,
                                                                             list[int]]:
    """Send calls from ``concurrency`` threads; return latencies (ms), wall s, statuses."""
    latencies = np.zeros(len(calls))
    statuses = [0] * len(calls)
    nxt = iter(range(len(calls)))
    errors: dict[int, str] = {}
    lock = threading.Lock()

    def worker() -> None:
        session = requests.Session()
        while True:
            with lock:
                i = next(nxt, None)
            if i is None:
                return
            method, url, data = calls[i]
            started = time.perf_counter()
            r = session.request(method, url, data=data, timeout=30)
            latencies[i] = (time.perf_counter() - started) * 1000
            statuses[i] = r.status_code
            if not r.ok and r.status_code not in errors:
                errors[r.status_code] = r.text[:300]

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for status, body in errors.items():
        print(f"  first {status} answer: {body}")
    return latencies, time.perf_counter() - started, statuses


def time_pages(store: Store, boxes: list[tuple[float, float, float, float]], *,
               build: bool) -> tuple[np.ndarray, np.ndarray]:
    """In-process ms and rows of GET's work (query, records, JSON) for each box.

    ``build``: the reference, every record built from the rows (as GET did before
    records were stored, and as a reader does for stale ones), nothing written.
    """
    zone = ZoneInfo("America/Chicago")
    now = now_utc()
    window = {"start": now - pd.Timedelta(days=90), "end": now}
    sr = t.service_requests.c
    ms, rows = [], []
    for box in boxes:
        started = time.perf_counter()
        if build:
            with store.engine.connect() as conn:
                ids = conn.execute(store.search.statement(base=select(sr.id), bbox=box, **window)
                                   .limit(1000)).scalars().all()
                conn.rollback()
                built = build_records(store, conn, ids, zone)
            body = ("[" + ",".join(built[i][2] for i in ids) + "]").encode()
            n = len(ids)
        else:
            page = request_page(store, zone, bbox=box, **window)
            body = page.json(extensions=True)
            n = len(page)
        assert body.startswith(b"[")
        ms.append((time.perf_counter() - started) * 1000)
        rows.append(n)
    return np.array(ms), np.array(rows)


def report_pages(name: str, ms: np.ndarray, rows: np.ndarray,
                 reference: np.ndarray | None = None) -> None:
    full = rows >= 800
    line = (f"{name:<34} p50 {np.percentile(ms, 50):5.1f} ms  p99 {np.percentile(ms, 99):5.1f}"
            f"  max {ms.max():5.1f}  pages of 800+ rows ({full.sum()}): mean "
            f"{ms[full].mean() if full.any() else float('nan'):5.1f} ms")
    if reference is not None:
        line += (f"  p99 {np.percentile(reference, 99) / np.percentile(ms, 99):.1f}x faster, "
                 f"800+ rows {reference[full].mean() / ms[full].mean():.1f}x")
    print(line)


def report(name: str, ms: np.ndarray, wall: float, statuses: list[int],
           reference: np.ndarray | None = None) -> None:
    ok = sum(200 <= s < 300 for s in statuses)
    failed = {s: statuses.count(s) for s in set(statuses) if not 200 <= s < 300}
    line = (f"{name:<26} n={len(ms):>5}  p50 {np.percentile(ms, 50):6.1f} ms  "
            f"p95 {np.percentile(ms, 95):6.1f}  p99 {np.percentile(ms, 99):6.1f}  "
            f"max {ms.max():6.1f}  {len(ms) / wall:6.0f} req/s  ok {ok}/{len(ms)}")
    if reference is not None:
        line += (f"  p50 {np.percentile(ms, 50) / np.percentile(reference, 50):.1f}x "
                 f"/healthz")
    print(line + (f"  failed {failed}" if failed else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-load", action="store_true", help="reuse the filled database")
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--box-m", type=float, default=500.0, help="bbox side in metres")
    parser.add_argument("--page-size", type=int, default=0,
                        help="GET page_size (default: none, so up to 1,000 per response)")
    parser.add_argument("--format", choices=("json", "xml"), default="json",
                        help="format of the GETs")
    parser.add_argument("--records", choices=("refresh", "cold"), default="refresh",
                        help="refresh: every stored record current before the load; cold: "
                             "all stale, so GETs build them")
    args = parser.parse_args()
    url = bench_url()
    if not args.skip_load:
        fill(url, args.rows)
    store = open_store(url)
    store.schema.init()  # a database filled by an older geo311 is upgraded
    stored = store.requests.count()
    frame = store.duplicates.frame()
    recent = frame[frame["requested"] >= frame["requested"].max() - pd.Timedelta(days=90)]
    key = store.accounts.create_api_key(f"bench-{time.time_ns()}")

    dlat = args.box_m / 111_000 / 2
    rng = np.random.default_rng(5)
    boxes = []
    for _, c in recent.iloc[rng.integers(0, len(recent), 300)].iterrows():
        dlon = dlat / np.cos(np.radians(c.lat))
        boxes.append((c.lon - dlon, c.lat - dlat, c.lon + dlon, c.lat + dlat))
    started = time.perf_counter()
    built, current = refresh_records(store, ZoneInfo("America/Chicago"))
    print(f"refresh_records: {built:,} built, {current:,} current, "
          f"{time.perf_counter() - started:.1f} s")
    if built > 100_000:  # start from a settled table, as autovacuum leaves it
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE public_records"))
            conn.execute(text("CHECKPOINT"))  # its writes reach the disk before the load
    built_ms, rows = time_pages(store, boxes, build=True)
    report_pages("in process, records built (ref.)", built_ms, rows)
    read_ms, rows = time_pages(store, boxes, build=False)
    report_pages("in process, stored records", read_ms, rows, built_ms)
    if args.records == "cold":  # reloading the catalogue makes every record stale
        store.catalogue.upsert(store.catalogue.services())
    store.dispose()
    print(f"{stored:,} requests stored ({len(recent):,} in the last 90 days); gunicorn "
          f"{args.workers} workers, {args.concurrency} client threads, loopback, 2 shared "
          f"cores; load average before: {os.getloadavg()[0]:.1f}")

    rng = np.random.default_rng(3)
    proc, base = serve(url, args.workers)
    try:
        v2 = base + "/open311/v2"
        natures = ["garbage_in_yard", "garbage_in_alley", "overflowing_carts", "other"]
        recent_open = recent[recent["closed"].isna()]
        pool = recent_open if len(recent_open) else recent
        same_spot = rng.random(args.posts) < 0.3  # some repeat an open request: duplicates
        exact = pool.iloc[rng.integers(0, len(pool), args.posts)][["lon", "lat"]].to_numpy()
        anywhere = frame.iloc[rng.integers(0, len(frame), args.posts)][["lon", "lat"]].to_numpy()
        points = np.where(same_spot[:, None], exact, anywhere)
        posts = []
        for (lon, lat), on_spot in zip(points, same_spot, strict=True):
            if not on_spot:
                lon += rng.uniform(-0.0006, 0.0006)
                lat += rng.uniform(-0.00045, 0.00045)
            posts.append(("POST", f"{v2}/requests.json", {
                "api_key": key, "service_code": "SCB", "lat": f"{lat:.7f}",
                "long": f"{lon:.7f}", "description": "Bench report",
                "attribute[nature]": natures[int(rng.integers(0, 4))],
                "email": "bench@example.org"}))
        centres = recent.iloc[rng.integers(0, len(recent), args.gets)]
        gets = []
        for _, c in centres.iterrows():
            dlon = dlat / np.cos(np.radians(c.lat))
            bbox = f"{c.lon - dlon:.6f},{c.lat - dlat:.6f},{c.lon + dlon:.6f},{c.lat + dlat:.6f}"
            paging = f"&page_size={args.page_size}" if args.page_size else ""
            gets.append(("GET", f"{v2}/requests.{args.format}?extensions=true&bbox={bbox}{paging}",
                         None))
        health = [("GET", base + "/healthz", None)] * max(args.gets, args.posts)

        run(health[:200] + gets[:100], args.concurrency)  # warm up both workers
        ref, ref_wall, ref_status = run(health, args.concurrency)
        report("GET /healthz (reference)", ref, ref_wall, ref_status)
        post_ms, post_wall, post_status = run(posts, args.concurrency)
        report("POST requests.json", post_ms, post_wall, post_status, ref)
        get_ms, get_wall, get_status = run(gets, args.concurrency)
        label = f"GET bbox {args.box_m:g} m {args.format}" + (
            f" page {args.page_size}" if args.page_size else "")
        report(label, get_ms, get_wall, get_status, ref)
        sizes = [len(requests.get(u.replace(f"requests.{args.format}", "requests.json")).json())
                 for _, u, _ in gets[:200]]
        print(f"  bbox results: mean {np.mean(sizes):.1f} requests, max {max(sizes)}")
        store = open_store(url)
        with store.engine.connect() as conn:
            dups = conn.execute(text(
                "SELECT count(*) FROM service_requests WHERE source = 'open311' "
                "AND duplicate_of IS NOT NULL")).scalar()
        store.dispose()
        print(f"  POSTs merged into an earlier open request so far: {dups}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
