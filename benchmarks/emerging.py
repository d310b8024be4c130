"""Emerging hotspots: planted-pattern recovery, and what the view finds on real data.

Prints precision and recall per class on the planted patterns of
``tests/core/test_emerging_patterns.py`` (five seeds), then loads the shipped
2011–2013 sanitation requests and the 2021 sample into a fresh SpatiaLite file and
prints the default emerging view (26 weekly bins ending with the last complete week)
at levels 8 and 9: the period chosen and the cells of each class.

    python benchmarks/emerging.py
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.config import Settings  # noqa: E402
from geo311.hotspots import EMERGING_LABELS, HOT_PATTERNS  # noqa: E402
from geo311.imports import import_file, read_mapping  # noqa: E402
from geo311.intake import Context  # noqa: E402
from geo311.layerdefs import read_layer_definitions  # noqa: E402
from geo311.layers import load_layer  # noqa: E402
from tests.core.test_emerging_patterns import recovery  # noqa: E402

REQUESTS = ROOT / "shapefiles" / "requests"


def planted_table() -> None:
    started = time.perf_counter()
    tally = recovery()
    print(f"planted patterns, 5 seeds × 3 sites per class ({time.perf_counter() - started:.1f} s)")
    print(f"{'class':14} {'planted':>7} {'found':>5} {'called':>6} {'recall':>6} {'precision':>9}")
    for pattern in HOT_PATTERNS:
        t = tally[pattern]
        recall = t["found"] / t["planted"]
        precision = t["right"] / t["called"] if t["called"] else float("nan")
        print(f"{pattern:14} {t['planted']:7} {t['found']:5} {t['called']:6} {recall:6.2f} "
              f"{precision:9.2f}")


def real_data() -> None:
    from geo311_web import create_app

    folder = Path(tempfile.mkdtemp())
    settings = Settings(database_url=f"sqlite:///{folder / 'emerging.sqlite'}",
                        instance_path=folder)
    app = create_app(settings)
    store = app.extensions["geo311"].store
    store.schema.init()
    defs = {d.name: d for d in read_layer_definitions(ROOT / "layers", ROOT)}
    d = defs["community_areas"]
    load_layer(store, d.source, name=d.name, role=d.role, id_field=d.id_field,
               name_field=d.name_field)
    ctx = Context.from_store(store)
    for name, mapping in (("chicago_311_sanitation_code_complaints_2011_2013.csv.gz",
                           "chicago-311-legacy"),
                          ("chicago_311_all_types_2021-01-01_to_02_sample.csv.gz", "chicago-311")):
        summary = import_file(store, ctx, REQUESTS / name, read_mapping(mapping))
        print(f"imported {summary.stored:,} from {name}")
    client = app.test_client()
    for res, end in ((8, ""), (9, ""), (8, "2013-06-30"), (9, "2013-06-30")):
        started = time.perf_counter()
        body = client.get(f"/hotspots/emerging?res={res}&weeks=26"
                          + (f"&end={end}" if end else "")).get_data(as_text=True)
        took = time.perf_counter() - started
        period = re.search(r"weekly bins from (\S+) to (\S+)", body).groups()
        counts = {label: int(m.group(1)) for label in EMERGING_LABELS
                  if (m := re.search(rf'id="n-{label.replace(" ", "-")}">(\d+)<', body))}
        found = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "none"
        print(f"level {res}: weeks {period[0]} to {period[1]} ({took:.1f} s): {found}")


if __name__ == "__main__":
    planted_table()
    print()
    real_data()
