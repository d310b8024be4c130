"""Time crews following a new ward map, and count where "same id" and "largest overlap" differ.

A fresh SpatiaLite store gets the 2015–2023 wards, 50 crews (one home ward each) and
the shipped 2023 wards, inactive. Timed: the crews' dry run (``crew_moves``) and the
whole activation with ``replaces`` (requests are few, so it is mostly the crews).
Then, for every 2015–2023 ward, the 2023 ward covering most of it: how often that
is another number than its own, and the share the same-numbered ward covers (the
rule keeps the id when the new map has it). Last, the same crews against a copy of
the 2023 map with every id renamed, so each takes the largest-overlap path.

    python benchmarks/crew_remap.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311 import dispatch as core  # noqa: E402
from geo311.boundaries.succession import match_districts  # noqa: E402
from geo311.layers import activate_version, crew_moves, load_layer  # noqa: E402
from geo311.model import Crew  # noqa: E402
from geo311.store import open_store  # noqa: E402

OLD, NEW = "wards_2015_2023", "wards_2023"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'bench.sqlite'}")
        store.schema.init()
        load_layer(store, ROOT / "shapefiles" / OLD, name=OLD, id_field="ward")
        load_layer(store, ROOT / "shapefiles" / NEW, name=NEW, id_field="ward", activate=False)
        renamed = gpd.read_file(ROOT / "shapefiles" / NEW)[["ward", "geometry"]]
        renamed["ward"] = "N" + renamed["ward"].astype(int).astype(str)
        renamed.to_file(Path(folder) / "renamed.gpkg", driver="GPKG")
        load_layer(store, Path(folder) / "renamed.gpkg", name="renamed", id_field="ward",
                   activate=False)
        wards = list(store.layers.features(OLD)["district_id"])
        for w in wards:
            core.create_crew(store, Crew(f"Ward {w}", OLD, (w,), ("Sanitation",), 8))

        t0 = time.perf_counter()
        dry = crew_moves(store, NEW, 1, replaces=OLD)
        t_dry = time.perf_counter() - t0
        t0 = time.perf_counter()
        renamed_moves = crew_moves(store, "renamed", 1, replaces=OLD)
        t_renamed = time.perf_counter() - t0
        overlap = match_districts(store.layers.features(OLD), store.layers.features("renamed"))
        same_share = np.array([m["successors"][0]["share"] for m in dry])
        elsewhere = sum(f"N{w}" != overlap[w].new for w in wards)
        t0 = time.perf_counter()
        _v, _n, diff = activate_version(store, NEW, 1, actor="bench", replaces=OLD)
        t_activate = time.perf_counter() - t0
        store.dispose()

    print(f"crews: {len(dry)}; dry run (same id) {t_dry * 1000:.0f} ms; renamed ids (largest "
          f"overlap) {t_renamed * 1000:.0f} ms; activation with replaces {t_activate:.2f} s")
    print(f"crews that follow on activation: {len(diff.crews)}, all on {NEW}: "
          f"{all(m['layer_to'] == NEW for m in diff.crews)}")
    print(f"share of a 2015-2023 ward inside the 2023 ward of the same number: median "
          f"{np.median(same_share):.2f}, min {same_share.min():.2f}, "
          f"{int((same_share < 0.5).sum())} of {len(same_share)} below 0.5")
    print(f"wards whose largest 2023 overlap has another number: {elsewhere} of {len(wards)}")
    shares = np.array([m["successors"][0]["share"] for m in renamed_moves])
    print(f"renamed ids: largest-overlap share median {np.median(shares):.2f}, "
          f"min {shares.min():.2f}")


if __name__ == "__main__":
    main()
