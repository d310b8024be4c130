"""Hotspot map at scale: 1M requests resampled from the real data, in PostGIS.

Prints the /hotspots page's server time (cold: just after a change to the data, so
SQL, Gi* and the map are all recomputed; warm: the cached result), its size, the time
until the map is drawn in headless Chromium, and the largest difference between our
closed-form Gi* z-scores and esda's on the same cells, with the speed ratio.

    python benchmarks/hotspots.py                       # 1M rows, reusing the bench database
    python benchmarks/hotspots.py --rows 1000000 --fresh

Uses GEO311_BENCH_POSTGIS_URL (default: database geo311_bench_hotspots on 127.0.0.1,
created if missing). Its tables are dropped and refilled only with --fresh or when it
holds fewer than --rows requests.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from import_requests import load_resampled  # noqa: E402

from geo311.config import Settings  # noqa: E402
from geo311.hotspots import (  # noqa: E402
    RequestFilter,
    cells_covering,
    count_cells,
    gi_star,
    neighbour_weights,
)
from geo311.store import open_store  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/geo311_bench_hotspots"


def bench_url() -> str:
    url = os.environ.get("GEO311_BENCH_POSTGIS_URL")
    if url:
        return url
    admin = open_store("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(text(
                "SELECT 1 FROM pg_database WHERE datname='geo311_bench_hotspots'")).scalar():
            conn.execute(text("CREATE DATABASE geo311_bench_hotspots"))
    admin.dispose()
    return DEFAULT_URL


def prepare(url: str, rows: int, fresh: bool) -> None:
    store = open_store(url)
    with store.engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    have = 0 if fresh else (store.requests.count() if store.db.schema_version() else 0)
    if have < rows:
        print(f"importing {rows:,} resampled requests (the database held {have:,}) ...")
        summary = load_resampled(store, rows)
        print(f"  imported {summary.stored:,} in {summary.seconds:.0f} s")
    store.schema.init()
    started = time.perf_counter()
    filled = store.hotspots.fill_cells()
    if filled:
        print(f"  stored H3 cells of {filled:,} requests in {time.perf_counter() - started:.1f} s"
              " (once; new requests are filled as they come)")
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(
            "CREATE INDEX IF NOT EXISTS ix_requests_hotspots ON service_requests (h3_cell) "
            "INCLUDE (reporter_count, service_code, status, requested_datetime, id) "
            "WHERE duplicate_of IS NULL"))
        conn.execute(text("CREATE INDEX IF NOT EXISTS ix_requests_updated "
                          "ON service_requests (updated_datetime)"))
        conn.execute(text("VACUUM ANALYZE service_requests"))
    print(f"  {store.requests.count():,} requests, of which parents: "
          f"{store.hotspots.counts(8, RequestFilter())['requests'].sum():,}")
    store.dispose()


def touch(store, request_id: int, state: list[str]) -> None:
    """A real change: one request's status flips (audited), so every map recomputes."""
    state[0] = "open" if state[0] == "closed" else "closed"
    store.requests.set_status(request_id, state[0], note="benchmark")


def server_times(url: str, paths: list[str], repeat: int) -> None:
    from geo311_web import create_app

    app = create_app(Settings(database_url=url, instance_path=Path(tempfile.mkdtemp())))
    client = app.test_client()
    store = app.extensions["geo311"].store
    victim = store.requests.query(limit=1)[0]
    flip = [victim.status]
    started = time.perf_counter()
    client.get("/hotspots?res=10&status=closed")
    print(f"\nfirst request of a process (loads {store.requests.count():,} requests' cells "
          "into memory, "
          f"builds the level-10 study area): {time.perf_counter() - started:.2f} s")
    print("\nserver time of a page (Flask test client, in process), seconds; cold = just after "
          "a request changed status, so rows catch up and SQL/Gi*/map are recomputed")
    print(f"{'page':58} {'cold best':>9} {'median':>7} {'max':>6} {'warm':>6} {'bytes':>10}")
    for path in paths:
        first = client.get(path)  # the first request also builds the study area of its level
        assert first.status_code == 200, first.get_data(as_text=True)[:500]
        cold = []
        for _ in range(repeat):
            touch(store, victim.id, flip)
            started = time.perf_counter()
            answer = client.get(path)
            cold.append(time.perf_counter() - started)
        warm = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(path)
            warm.append(time.perf_counter() - started)
        print(f"{path:58} {min(cold):9.3f} {statistics.median(cold):7.3f} {max(cold):6.3f} "
              f"{statistics.median(warm):6.3f} {len(answer.data):10,}")
    touch(store, victim.id, flip) if flip[0] != victim.status else None
    store.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MAP_READY = """() => {
  const div = document.querySelector('.folium-map');
  const m = div && window[div.id];
  if (!m || !m.eachLayer) return null;
  let n = 0;
  m.eachLayer(l => { if (l.feature && l.feature.properties.c !== undefined) n++; });
  const want = Number(document.getElementById('drawn').textContent);
  return n === want && n > 0 ? [performance.now(), n] : null;
}"""


def browser_times(url: str, path: str, repeat: int) -> None:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "GEO311_DATABASE_URL": url}
    server = subprocess.Popen([sys.executable, "-m", "geo311_web", "run", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        urllib.request.urlopen(base + path, timeout=120).read()  # study area of the level
        store = open_store(url)
        victim = store.requests.query(limit=1)[0]
        flip = [victim.status]
        print(f"\nmap ready in Chromium ({path}): ms from navigation start to every cell drawn")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            for label, changed in (("server result cold", True),
                                   ("server result cached", False)):
                ready = []
                for _ in range(repeat):
                    if changed:
                        touch(store, victim.id, flip)
                    page = browser.new_page()
                    page.goto(base + path, wait_until="commit")
                    handle = page.wait_for_function(MAP_READY, polling=10, timeout=60_000)
                    at, drawn = handle.json_value()
                    ready.append(at)
                    page.close()
                print(f"  {label:22} best {min(ready):6.0f}  median {statistics.median(ready):6.0f}"
                      f"  max {max(ready):6.0f}  ({drawn} cells)")
            browser.close()
        touch(store, victim.id, flip) if flip[0] != victim.status else None
        store.dispose()
    finally:
        server.terminate()
        server.wait(timeout=30)


def gi_against_esda(url: str, resolution: int) -> None:
    import h3
    from esda.getisord import G_Local
    from libpysal.weights import W

    store = open_store(url)
    found = store.hotspots.counts(resolution, RequestFilter())
    features = store.layers.features(store.layers.versions(active_only=True)[0].layer)
    study = cells_covering(shapely.union_all(features.geometry.values), resolution)
    counts = count_cells(found["cell"].to_numpy(), found["reporters"].to_numpy(), study)
    started = time.perf_counter()
    ours = gi_star(counts.counts, neighbour_weights(counts.cells))
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    index = {c: i for i, c in enumerate(counts.cells.tolist())}
    neighbours = {
        i: [index[n] for n in (int(x, 16) for x in h3.grid_disk(h3.int_to_str(c), 1))
            if n in index and n != c]
        for c, i in index.items()}
    w = W(neighbours, silence_warnings=True)
    theirs = G_Local(counts.counts.astype(float), w, transform="B", star=True,
                     permutations=0).Zs
    esda_s = time.perf_counter() - started
    print(f"\nGi* at level {resolution} over {len(counts.cells):,} cells "
          f"({int(counts.counts.sum()):,} reporters): max |z - esda z| = "
          f"{np.max(np.abs(ours - theirs)):.2e}; closed form {ours_s * 1000:.1f} ms "
          f"(weights included), esda {esda_s * 1000:.0f} ms (weights included): "
          f"{esda_s / ours_s:.1f}x faster")
    store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true", help="re-import even if rows exist")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    url = bench_url()
    prepare(url, args.rows, args.fresh)
    paths = ["/hotspots", "/hotspots?res=9", "/hotspots?res=7", "/hotspots?res=10",
             "/hotspots?res=8&status=open&start=2012-01-01&end=2012-12-31",
             "/hotspots?res=8&service=SCB&layer=community_areas&district=25",
             "/hotspots?res=8&layer=community_areas&metric=median_days",
             "/hotspots/emerging?res=8&weeks=26",
             "/hotspots/export.geojson?res=8"]
    server_times(url, paths, args.repeat)
    if not args.no_browser:
        browser_times(url, "/hotspots", args.repeat)
        browser_times(url, "/hotspots?res=9", args.repeat)
    for res in (8, 9):
        gi_against_esda(url, res)


if __name__ == "__main__":
    main()
