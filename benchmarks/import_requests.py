"""Import the City's sanitation requests (real, or resampled up to N rows) into each backend.

Prints rows per second, the agreement of the assigned community area and
2003-2015 ward with the City's own columns, and (PostGIS) the ratio to a plain
COPY of the same rows plus a GiST index build.

    python benchmarks/import_requests.py                       # the real 55k rows, both backends
    python benchmarks/import_requests.py --rows 1000000 --backends postgis --reference

PostGIS uses GEO311_BENCH_POSTGIS_URL (default: database geo311_bench on 127.0.0.1,
created if missing); its tables are dropped and recreated.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.imports import import_file, read_mapping  # noqa: E402
from geo311.intake import Context  # noqa: E402
from geo311.layerdefs import read_layer_definitions  # noqa: E402
from geo311.layers import load_layer  # noqa: E402
from geo311.store import open_store  # noqa: E402

LEGACY = ROOT / "shapefiles/requests/chicago_311_sanitation_code_complaints_2011_2013.csv.gz"
LAYERS = ("community_areas", "wards_2003_2015")


def resampled_csv(rows: int, dest: Path, seed: int = 11) -> Path:
    """Draw rows with replacement, give them new ids and jitter points by up to ~50 m."""
    src = pd.read_csv(LEGACY, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    pick = src.iloc[rng.integers(0, len(src), rows)].reset_index(drop=True)
    pick["Service_Request_Number"] = [f"R{i:09d}" for i in range(rows)]
    for col, scale in (("Latitude", 0.00045), ("Longitude", 0.0006)):
        values = pd.to_numeric(pick[col], errors="coerce")
        jittered = values + rng.uniform(-scale, scale, rows)
        pick[col] = jittered.map(lambda v: "" if np.isnan(v) else f"{v:.7f}")
    pick.to_csv(dest, index=False)
    return dest


def load_resampled(store, rows: int):
    """An emptied store with the benchmark layers and ``rows`` resampled requests imported."""
    store.schema.drop()
    store.schema.init()
    defs = {d.name: d for d in read_layer_definitions(ROOT / "layers", ROOT)}
    for name in LAYERS:
        d = defs[name]
        load_layer(store, d.source, name=d.name, role=d.role, id_field=d.id_field,
                   name_field=d.name_field)
    with tempfile.TemporaryDirectory() as tmp:
        source = resampled_csv(rows, Path(tmp) / "resampled.csv")
        return import_file(store, Context.from_store(store), source,
                           read_mapping("chicago-311-legacy"))


def postgis_url() -> str:
    url = os.environ.get("GEO311_BENCH_POSTGIS_URL")
    if url:
        return url
    admin = open_store("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = "SELECT 1 FROM pg_database WHERE datname='geo311_bench'"
        if not conn.execute(text(exists)).scalar():
            conn.execute(text("CREATE DATABASE geo311_bench"))
    admin.dispose()
    return "postgresql+psycopg://postgres@127.0.0.1:5432/geo311_bench"


def fresh_store(backend: str, folder: Path):
    if backend == "spatialite":
        return open_store(f"sqlite:///{folder / 'bench.sqlite'}")
    store = open_store(postgis_url())
    with store.engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    store.schema.drop()
    return store


def agreement(store, source: Path) -> dict[str, float]:
    src = pd.read_csv(source, dtype=str, usecols=["Service_Request_Number", "Community_Area",
                                                  "Ward"]).drop_duplicates(
        "Service_Request_Number", keep="last").set_index("Service_Request_Number")
    frames = pd.concat(list(store.requests.export_frames()),
                       ignore_index=True).set_index("external_id")
    joined = frames.join(src, how="inner")
    out = {}
    for column, layer in (("Community_Area", "community_areas"), ("Ward", "wards_2003_2015")):
        known = joined[joined[column].notna() & joined["long"].notna()]
        city = known[column].astype(float).astype(int).astype(str)
        out[layer] = float((known[f"district_{layer}"] == city).mean())
    return out


def reference_copy(store, source: Path) -> float:
    """Seconds for COPY of the same rows into a bare table plus a GiST index build."""
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    lon = pd.to_numeric(frame["Longitude"], errors="coerce")
    lat = pd.to_numeric(frame["Latitude"], errors="coerce")
    geom = ("SRID=4326;POINT(" + lon.astype(str) + " " + lat.astype(str) + ")").where(
        lon.notna(), "")
    body = pd.DataFrame({"id": frame["Service_Request_Number"], "status": frame["Status"],
                         "created": frame["Creation_Date"], "address": frame["Street_Address"],
                         "geom": geom})
    buf = io.StringIO()
    body.to_csv(buf, index=False, header=False)
    started = time.perf_counter()
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS copy_reference"))
        conn.execute(text("CREATE TABLE copy_reference (id text, status text, created date, "
                          "address text, geom geometry(Point, 4326))"))
        raw = conn.connection.dbapi_connection
        copy_sql = "COPY copy_reference FROM STDIN WITH (FORMAT csv)"
        with raw.cursor() as cur, cur.copy(copy_sql) as cp:
            cp.write(buf.getvalue())
        conn.execute(text("CREATE INDEX ON copy_reference USING gist (geom)"))
        conn.execute(text("DROP TABLE copy_reference"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=0, help="resample to this many rows")
    parser.add_argument("--backends", nargs="+", default=["spatialite", "postgis"])
    parser.add_argument("--reference", action="store_true", help="PostGIS: time plain COPY too")
    args = parser.parse_args()
    defs = {d.name: d for d in read_layer_definitions(ROOT / "layers", ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.rows:
            source = resampled_csv(args.rows, folder / "resampled.csv")
        else:
            source = folder / "legacy.csv"
            source.write_bytes(gzip.decompress(LEGACY.read_bytes()))
        for backend in args.backends:
            store = fresh_store(backend, folder)
            store.schema.init()
            for name in LAYERS:
                d = defs[name]
                load_layer(store, d.source, name=d.name, role=d.role, id_field=d.id_field,
                           name_field=d.name_field)
            ctx = Context.from_store(store)
            summary = import_file(store, ctx, source, read_mapping("chicago-311-legacy"))
            print(f"{backend}: {summary.rows_read:,} rows in {summary.seconds:.1f} s = "
                  f"{summary.rows_per_second:,.0f} rows/s; stored {summary.stored:,}, "
                  f"rejected {len(summary.rejected)}")
            if not args.rows:  # resampled points are jittered: agreement means nothing
                for layer, share in agreement(store, source).items():
                    print(f"  {layer}: agreement with the City's column {share:.2%}")
            if backend == "postgis" and args.reference:
                ref = reference_copy(store, source)
                print(f"  plain COPY + GiST index of the same rows: {ref:.1f} s = "
                      f"{summary.rows_read / ref:,.0f} rows/s; import/COPY ratio "
                      f"{summary.seconds / ref:.2f}x")
            store.dispose()


if __name__ == "__main__":
    main()
