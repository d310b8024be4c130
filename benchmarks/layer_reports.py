"""Validation reports of the shipped layers, as GIS staff see them after ``layers load``.

Loads every definition in ``layers/`` (the service area first) into a fresh SpatiaLite
file and prints one Markdown row per layer; ``--redistricting`` also imports the 2021
request sample and prints the 2015-2023 -> 2023 ward diff.

    python benchmarks/layer_reports.py [--redistricting]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.imports import import_file, read_mapping  # noqa: E402
from geo311.intake import Context  # noqa: E402
from geo311.layerdefs import read_layer_definitions  # noqa: E402
from geo311.layers import describe_layer, diff_version, load_layer  # noqa: E402
from geo311.store import open_store  # noqa: E402

SAMPLE = ROOT / "shapefiles/requests/chicago_311_all_types_2021-01-01_to_02_sample.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redistricting", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{folder}/reports.sqlite")
        store.schema.init()
        print("| layer | features | source CRS | repaired | rejected | overlaps (m²) "
              "| gaps (m²) | beyond service area (m²) | load s |")
        print("|---|---:|---|---:|---:|---|---|---|---:|")
        for d in read_layer_definitions(ROOT / "layers", ROOT):
            t0 = time.perf_counter()
            load_layer(store, d.source, name=d.name, title=d.title, role=d.role,
                       id_field=d.id_field, name_field=d.name_field, crs=d.crs,
                       activate=d.active)
            seconds = time.perf_counter() - t0
            i = describe_layer(store, d.name)
            outside = ("(service area)" if i["service_area"] is None else
                       f"{i['outside_count']} ({i['outside_area_m2']:,.0f}): "
                       + ", ".join(f"{o['district_id']} {o['outside_m2']:,.0f}"
                                   for o in i["outside"][:4]))
            gaps = ", ".join(f"{'/'.join(g['ids'])} {g['area_m2']:,.0f}" for g in i["gaps"][:4])
            print(f"| {d.name} | {i['feature_count']} | {i['source_crs']} | {i['repaired']} "
                  f"| {i['rejected']} | {i['overlap_count']} ({i['overlap_area_m2']:,.0f}) "
                  f"| {i['gap_count']} ({i['gap_area_m2']:,.0f}): {gaps} | {outside} "
                  f"| {seconds:.2f} |")
        if args.redistricting:
            ctx = Context.from_store(store)
            import_file(store, ctx, SAMPLE, read_mapping("chicago-311"))
            t0 = time.perf_counter()
            diff = diff_version(store, "wards_2023", 1, replaces="wards_2015_2023")
            print(f"\ndiff in {time.perf_counter() - t0:.2f} s")
            for line in diff.lines():
                print(line)
        store.dispose()


if __name__ == "__main__":
    main()
