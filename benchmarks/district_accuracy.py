"""Agreement of assigned districts with the City's own, plain and from the side of the street.

Compares the community area (``Community_Area``) and the 2003–2015 ward (``Ward``) of the
55k 2011–2013 sanitation requests, checks which house-number parity rule holds, and
breaks down the remaining disagreements by distance to the nearest edge.

    python benchmarks/district_accuracy.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUESTS = ROOT / "shapefiles/requests/chicago_311_sanitation_code_complaints_2011_2013.csv.gz"
LAYERS = {"community_areas": ("area_numbe", "Community_Area"), "wards_2003_2015": ("ward", "Ward")}
RULES = {  # (even side on N-S streets, even side on E-W streets)
    "W/N (Chicago)": ("W", "N"),
    "E/S (opposite)": ("E", "S"),
    "W/S": ("W", "S"),
    "E/N": ("E", "N"),
}


def main() -> None:
    import geopandas as gpd
    import pandas as pd
    import shapely

    from geo311.districts import DistrictIndex, DistrictLayer
    from geo311.geocode import AddressGrid, building_side

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tolerance-m", type=float, default=15.0)
    parser.add_argument("--offsets-m", type=float, nargs="+", default=[2, 5, 10, 15])
    args = parser.parse_args()

    requests = pd.read_csv(REQUESTS, usecols=["Street_Address", "Longitude", "Latitude",
                                              "Community_Area", "Ward"])
    lon, lat = requests["Longitude"].to_numpy(), requests["Latitude"].to_numpy()
    layers = []
    for name, (id_field, _) in LAYERS.items():
        gdf = gpd.read_file(ROOT / f"shapefiles/{name}/{name}.shp").to_crs(4326)
        gdf = gdf.dissolve(id_field, sort=False).reset_index()
        layers.append(DistrictLayer(name, 1, gdf[id_field].astype(str).tolist(),
                                    list(gdf.geometry.values)))
    addresses = requests["Street_Address"].tolist()
    started = time.perf_counter()
    sides = {rule: building_side(addresses, AddressGrid(*grid)) for rule, grid in RULES.items()}
    parse_s = time.perf_counter() - started
    chicago = sides["W/N (Chicago)"]
    unknown = int((np.abs(chicago).sum(axis=1) == 0).sum())
    print(f"{len(requests):,} requests, {int(np.isnan(lon).sum())} without coordinates; "
          f"side of street unknown for {unknown} addresses; parsing 4 rules took "
          f"{parse_s:.1f} s")

    started = time.perf_counter()
    index = DistrictIndex(layers, boundary_tolerance_m=args.tolerance_m)
    print(f"index built in {time.perf_counter() - started:.2f} s; tolerance "
          f"{index.boundary_tolerance_m:g} m, side offset {index.side_offset_m:g} m\n")
    plain = index.assign(lon, lat)
    by_rule = {rule: index.assign(lon, lat, side=s) for rule, s in sides.items()}

    for lay in layers:
        name = lay.name
        city_col = LAYERS[name][1]
        has_city = requests[city_col].notna().to_numpy()
        city = np.full(len(requests), None, dtype=object)
        city[has_city] = requests.loc[has_city, city_col].astype(int).astype(str).to_numpy()
        rows = has_city & ~np.isnan(lon)

        def agree(result, rows=rows, city=city, name=name):
            return float((result[name].district_id[rows] == city[rows]).mean())

        base = agree(plain)
        print(f"== {name} vs the City's {city_col} ({rows.sum():,} requests with both)")
        print(f"   plain point-in-polygon          {base:.4f}")
        for rule, result in by_rule.items():
            a = agree(result)
            print(f"   side of street, even {rule:<15} {a:.4f}  "
                  f"({(a - base) / (1 - base):+.1%} of the gap)")
        side_result = by_rule["W/N (Chicago)"]
        flagged = plain[name].boundary_case[rows].mean()
        print(f"   boundary cases (within {args.tolerance_m:g} m of an edge): {flagged:.2%}")
        outside = plain[name].district_id[rows] == None  # noqa: E711 - elementwise
        print(f"   outside the layer's union: {int(outside.sum())} plain, "
              f"{int((side_result[name].district_id[rows] == None).sum())} "  # noqa: E711
              "with the side of street")

        # the remaining disagreements: how far from an edge?
        idx = np.flatnonzero(rows & (side_result[name].district_id != city))
        geoms = np.asarray(lay.geometries, dtype=object)
        edges = gpd.GeoSeries(
            [shapely.multilinestrings(shapely.get_rings(shapely.get_parts(geoms)))], crs=4326
        ).to_crs(32616).iloc[0]
        pts = gpd.GeoSeries(gpd.points_from_xy(lon[idx], lat[idx]), crs=4326).to_crs(32616)
        dist = shapely.distance(edges, pts.values)
        no_side = np.abs(chicago[idx]).sum(axis=1) == 0
        bins = [0, 0.01, 1, 5, 15, 50, 200, np.inf]
        counts = np.histogram(dist, bins=bins)[0]
        labels = ["<1 cm", "1 cm-1 m", "1-5 m", "5-15 m", "15-50 m", "50-200 m", ">200 m"]
        print(f"   remaining disagreements: {len(idx)} "
              f"({int(side_result[name].boundary_case[idx].sum())} boundary cases, "
              f"{int(no_side.sum())} without a known side); distance to the nearest edge:")
        print("     " + ", ".join(f"{lab} {c}" for lab, c in zip(labels, counts, strict=True)))
        if len(dist):
            print(f"     median {np.median(dist):.2f} m, 90th percentile "
                  f"{np.percentile(dist, 90):.1f} m, max {dist.max():.0f} m")
        fixed = np.flatnonzero(rows & (plain[name].district_id != city)
                               & (side_result[name].district_id == city))
        broke = np.flatnonzero(rows & (plain[name].district_id == city)
                               & (side_result[name].district_id != city))
        print(f"   the side of street fixed {len(fixed)} and broke {len(broke)}\n")

    print("side offset sweep (Chicago rule): agreement community areas / wards")
    for offset in args.offsets_m:
        swept = DistrictIndex(layers, boundary_tolerance_m=args.tolerance_m,
                              side_offset_m=offset).assign(lon, lat, side=chicago)
        values = []
        for name, (_, city_col) in LAYERS.items():
            ok = requests[city_col].notna().to_numpy() & ~np.isnan(lon)
            city = requests.loc[ok, city_col].astype(int).astype(str).to_numpy()
            values.append(float((swept[name].district_id[ok] == city).mean()))
        print(f"   {offset:>4g} m: {values[0]:.4f} / {values[1]:.4f}")


if __name__ == "__main__":
    main()
