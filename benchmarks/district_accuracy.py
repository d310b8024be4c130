"""Agreement of assigned districts with the City's own, plain and from the side of the street.

Compares the community area (``Community_Area``) and the 2003–2015 ward (``Ward``) of the
55k 2011–2013 sanitation requests, checks which house-number rules hold, and breaks
down the remaining disagreements by distance to the nearest edge.

    python benchmarks/district_accuracy.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.districts import DistrictIndex, DistrictLayer  # noqa: E402
from geo311.geocoding.side import AddressGrid, building_side, toward_building  # noqa: E402

REQUESTS = ROOT / "shapefiles/requests/chicago_311_sanitation_code_complaints_2011_2013.csv.gz"
LAYERS = {"community_areas": ("area_numbe", "Community_Area"), "wards_2003_2015": ("ward", "Ward")}
SIDE = "side, even W/N (Chicago)"
TOWARD = "side + into the block (toward_building)"
BINS = [0, 0.01, 1, 5, 15, 50, 200, np.inf]
BIN_LABELS = ["<1 cm", "1 cm-1 m", "1-5 m", "5-15 m", "15-50 m", "50-200 m", ">200 m"]


def load_layers() -> list[DistrictLayer]:
    layers = []
    for name, (id_field, _) in LAYERS.items():
        gdf = gpd.read_file(ROOT / f"shapefiles/{name}/{name}.shp").to_crs(4326)
        gdf = gdf.dissolve(id_field, sort=False).reset_index()
        layers.append(DistrictLayer(name, 1, gdf[id_field].astype(str).tolist(),
                                    list(gdf.geometry.values)))
    return layers


def direction_sets(addresses: list[str]) -> dict[str, np.ndarray]:
    """Every rule worth comparing, including the wrong ones (the empirical check)."""
    sets = {
        SIDE: building_side(addresses),
        "side, even E/S (both flipped)": building_side(addresses, AddressGrid("E", "S")),
        "side, even W/S": building_side(addresses, AddressGrid("W", "S")),
        "side, even E/N": building_side(addresses, AddressGrid("E", "N")),
        TOWARD: toward_building(addresses),
    }
    # the same lean along the street but the wrong way: checks which way numbers grow
    sets["side + out of the block"] = np.sqrt(2) * sets[SIDE] - sets[TOWARD]
    for every in (25, 100):
        sets[f"side + into the block, streets every {every}"] = toward_building(
            addresses, AddressGrid(cross_street_every=every))
    return sets


def breakdown(label, name, result, plain, city, rows, geoms, known, lon, lat) -> None:
    """Print what is left after deciding boundary cases with one set of directions."""
    got = result[name].district_id
    left = np.flatnonzero(rows & (got != city))
    edges = gpd.GeoSeries(
        [shapely.multilinestrings(shapely.get_rings(shapely.get_parts(geoms)))], crs=4326
    ).to_crs(32616).iloc[0]
    pts = gpd.GeoSeries(gpd.points_from_xy(lon[left], lat[left]), crs=4326).to_crs(32616)
    dist = shapely.distance(edges, pts.values)
    counts = np.histogram(dist, bins=BINS)[0]
    fixed = int((rows & (plain != city) & (got == city)).sum())
    broke = int((rows & (plain == city) & (got != city)).sum())
    print(f"   -- {label}: fixed {fixed}, broke {broke}; {len(left)} disagreements left "
          f"({int(result[name].boundary_case[left].sum())} boundary cases, "
          f"{int((~known[left]).sum())} without a known side, "
          f"{int((got[left] == None).sum())} outside the union)")  # noqa: E711
    print("      distance to the nearest edge: "
          + ", ".join(f"{lab} {c}" for lab, c in zip(BIN_LABELS, counts, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tolerance-m", type=float, default=15.0)
    parser.add_argument("--offsets-m", type=float, nargs="+", default=[2, 5, 10, 15])
    args = parser.parse_args()

    requests = pd.read_csv(REQUESTS, usecols=["Street_Address", "Longitude", "Latitude",
                                              "Community_Area", "Ward"])
    lon, lat = requests["Longitude"].to_numpy(), requests["Latitude"].to_numpy()
    layers = load_layers()
    addresses = requests["Street_Address"].tolist()
    started = time.perf_counter()
    building_side(addresses)
    parse_s = time.perf_counter() - started
    sets = direction_sets(addresses)
    known = np.abs(sets[SIDE]).sum(axis=1) > 0
    print(f"{len(requests):,} requests, {int(np.isnan(lon).sum())} without coordinates; "
          f"side of street unknown for {int((~known).sum())} addresses; "
          f"building_side took {parse_s:.1f} s")

    started = time.perf_counter()
    index = DistrictIndex(layers, boundary_tolerance_m=args.tolerance_m)
    print(f"index built in {time.perf_counter() - started:.2f} s; tolerance "
          f"{index.boundary_tolerance_m:g} m, side offset {index.side_offset_m:g} m\n")
    plain = index.assign(lon, lat)
    results = {label: index.assign(lon, lat, side=vectors) for label, vectors in sets.items()}

    for lay in layers:
        name, city_col = lay.name, LAYERS[lay.name][1]
        has_city = requests[city_col].notna().to_numpy()
        city = np.full(len(requests), None, dtype=object)
        city[has_city] = requests.loc[has_city, city_col].astype(int).astype(str).to_numpy()
        rows = has_city & ~np.isnan(lon)
        base = float((plain[name].district_id[rows] == city[rows]).mean())
        print(f"== {name} vs the City's {city_col} ({rows.sum():,} requests with both)")
        print(f"   {'plain point-in-polygon':<48} {base:.4f}")
        for label, result in results.items():
            a = float((result[name].district_id[rows] == city[rows]).mean())
            print(f"   {label:<48} {a:.4f}  ({(a - base) / (1 - base):+.1%} of the gap)")
        flagged = plain[name].boundary_case[rows]
        outside = plain[name].district_id[rows] == None  # noqa: E711 - elementwise
        print(f"   boundary cases (within {args.tolerance_m:g} m of an edge): "
              f"{flagged.mean():.2%}; outside the union: {int(outside.sum())}")
        geoms = np.asarray(lay.geometries, dtype=object)
        breakdown("plain", name, plain, plain[name].district_id, city, rows, geoms, known,
                  lon, lat)
        for label in (SIDE, TOWARD):
            breakdown(label, name, results[label], plain[name].district_id, city, rows, geoms,
                      known, lon, lat)
        print()

    print("side offset sweep: agreement community areas / wards, side only | toward building")
    for offset in args.offsets_m:
        swept = DistrictIndex(layers, boundary_tolerance_m=args.tolerance_m,
                              side_offset_m=offset)
        cells = []
        for label in (SIDE, TOWARD):
            out = swept.assign(lon, lat, side=sets[label])
            values = []
            for name, (_, city_col) in LAYERS.items():
                ok = requests[city_col].notna().to_numpy() & ~np.isnan(lon)
                city = requests.loc[ok, city_col].astype(int).astype(str).to_numpy()
                values.append(float((out[name].district_id[ok] == city).mean()))
            cells.append(f"{values[0]:.4f} / {values[1]:.4f}")
        print(f"   {offset:>4g} m: {cells[0]} | {cells[1]}")


if __name__ == "__main__":
    main()
