"""Request exports at scale: CSV and GeoParquet against PostgreSQL's own ``COPY … TO``.

Exports every request of a PostGIS database (default: the work-queue benchmark's 1M
rows, ``benchmarks/work_queue.py``) with ``geo311 export requests`` as CSV and GeoParquet,
and times beside it the reference of issue 20: ``COPY (SELECT <the same public
columns>) TO STDOUT WITH CSV`` into a file, in the same run. Prints seconds, rows per
second, file size and the ratio to the reference.

    python benchmarks/export.py [--url postgresql+psycopg://…/geo311_bench_queue]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.export import export_requests  # noqa: E402
from geo311.store import open_store  # noqa: E402

#: The public columns of an export, as the reference reads them (districts included).
REFERENCE_SQL = """
COPY (
  SELECT sr.id, sr.external_id, sr.service_code, sv.name, sr.status, sr.status_notes,
         sr.description, sr.requested_datetime, sr.updated_datetime, sr.closed_datetime,
         sr.expected_datetime, sr.address, ST_Y(sr.geom), ST_X(sr.geom), sr.geocode_match,
         sr.outside_service_area, sr.duplicate_of, sr.reporter_count, {districts}
  FROM service_requests sr JOIN services sv ON sv.code = sr.service_code {joins}
  ORDER BY sr.id
) TO STDOUT WITH (FORMAT csv, HEADER)
"""


def reference(url: str, out: Path) -> float:
    """Seconds for ``COPY … TO`` of the same columns, districts joined per active layer."""
    with psycopg.connect(url) as conn:
        versions = conn.execute(
            "SELECT lv.id, l.name FROM layer_versions lv JOIN layers l ON l.id = lv.layer_id "
            "WHERE lv.status = 'active' ORDER BY l.name").fetchall()
        joins = " ".join(
            f"LEFT JOIN request_districts d{i} ON d{i}.request_id = sr.id "
            f"AND d{i}.layer_version_id = {vid}" for i, (vid, _) in enumerate(versions))
        districts = ", ".join(f"d{i}.district_id" for i in range(len(versions))) or "NULL"
        started = time.perf_counter()
        with conn.cursor() as cur, out.open("wb") as fh:
            with cur.copy(REFERENCE_SQL.format(districts=districts, joins=joins)) as copy:
                for block in copy:
                    fh.write(block)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get(
        "GEO311_BENCH_POSTGIS_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/geo311_h_queue_bench"))
    args = parser.parse_args()
    store = open_store(args.url)
    store.schema.init()
    plain = make_url(args.url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    with tempfile.TemporaryDirectory() as folder:
        ref_path = Path(folder) / "reference.csv"
        ref_s = reference(plain, ref_path)
        rows = sum(1 for _ in ref_path.open("rb")) - 1
        print(f"{rows:,} requests; reference COPY … TO CSV: {ref_s:.1f} s "
              f"({ref_path.stat().st_size / 1e6:,.0f} MB)")
        for fmt in ("csv", "parquet"):
            path = Path(folder) / f"requests.{fmt}"
            started = time.perf_counter()
            n = export_requests(store, path, fmt)
            took = time.perf_counter() - started
            print(f"geo311 export {fmt:8} {took:6.1f} s  {n / took:10,.0f} rows/s  "
                  f"{path.stat().st_size / 1e6:6,.0f} MB  {took / ref_s:4.1f}x the reference")


if __name__ == "__main__":
    main()
