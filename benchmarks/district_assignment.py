"""Throughput of DistrictIndex.assign beside geopandas.sjoin, on resampled real requests.

Each (size, method, threads) runs in its own subprocess so its peak RSS is its own.

    python benchmarks/district_assignment.py --points 1000000 5000000 --threads 1 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUESTS = ROOT / "shapefiles/requests/chicago_311_sanitation_code_complaints_2011_2013.csv.gz"
ID_FIELDS = {
    "community_areas": "area_numbe",
    "wards_2003_2015": "ward",
    "wards_2015_2023": "ward",
    "wards_2023": "ward",
    "police_districts_2012": "DIST_NUM",
}
EDGE_DEG = 1e-9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_layers(names: list[str]):
    import geopandas as gpd

    from geo311.districts import DistrictLayer

    layers = []
    for name in names:
        gdf = gpd.read_file(ROOT / f"shapefiles/{name}/{name}.shp")
        gdf = gdf.to_crs(4326).dissolve(ID_FIELDS[name], sort=False).reset_index()
        ids = gdf[ID_FIELDS[name]].astype(str).tolist()
        layers.append(DistrictLayer(name, 1, ids, list(gdf.geometry.values)))
    return layers


def make_points(n: int, jitter_m: float = 50.0, seed: int = 311) -> tuple[np.ndarray, np.ndarray]:
    """Resample the real request points to ``n``, each moved up to ``jitter_m`` per axis."""
    import pandas as pd

    real = pd.read_csv(REQUESTS, usecols=["Longitude", "Latitude"]).dropna()
    lon0, lat0 = real["Longitude"].to_numpy(), real["Latitude"].to_numpy()
    del real
    rng = np.random.default_rng(seed)
    lon, lat = np.empty(n), np.empty(n)
    m_per_deg = 111_195.0
    step_deg = jitter_m / m_per_deg
    for start in range(0, n, 1 << 20):  # in slices, so only the result takes memory
        part = slice(start, min(start + (1 << 20), n))
        pick = rng.integers(0, len(lon0), part.stop - part.start)
        lat[part] = lat0[pick] + rng.uniform(-step_deg, step_deg, len(pick))
        lon[part] = lon0[pick] + rng.uniform(-step_deg, step_deg, len(pick)) / np.cos(
            np.radians(lat[part]))
    return lon, lat


def worker(args: argparse.Namespace) -> None:
    layers = load_layers(args.layers)
    lon, lat = make_points(args.points)
    base_mb = peak_rss_mb()
    out: dict = {"points": args.points, "method": args.method, "threads": args.threads}
    if args.method == "index":
        from geo311.districts import DistrictIndex

        started = time.perf_counter()
        index = DistrictIndex(layers)
        out["build_s"] = time.perf_counter() - started
        out["build_layer_s"] = index.build_seconds
        times, cpu = [], []
        for _ in range(args.repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            result = index.assign(lon, lat, threads=args.threads)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            flags = {n: float(a.boundary_case.mean()) for n, a in result.items()}
            if _ < args.repeat - 1:
                del result
        out["seconds"] = min(times)
        out["first_seconds"] = times[0]
        out["cpu_per_wall"] = cpu[times.index(min(times))] / min(times)
        out["boundary_share"] = flags
        labels = {n: a.district_id for n, a in result.items()}
    else:
        import geopandas as gpd

        started = time.perf_counter()
        points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
        out["make_points_s"] = time.perf_counter() - started
        polygons = {
            layer.name: gpd.GeoDataFrame(
                {"district": layer.district_ids}, geometry=list(layer.geometries), crs=4326
            )
            for layer in layers
        }
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            joined = {
                name: gpd.sjoin(points, poly, predicate="within", how="left")
                for name, poly in polygons.items()
            }
            times.append(time.perf_counter() - started)
        out["seconds"] = min(times)
        labels = {}
        for name, j in joined.items():
            j = j[~j.index.duplicated()]
            labels[name] = j["district"].to_numpy(dtype=object)
    out["peak_rss_mb"] = peak_rss_mb()
    out["base_rss_mb"] = base_mb
    if args.save:
        for name, lab in labels.items():
            np.save(Path(args.save) / f"{args.method}-{name}.npy",
                    np.array([x if isinstance(x, str) else "" for x in lab]))
    print(json.dumps(out))


def run_child(args: argparse.Namespace, method: str, n: int, threads: int, save: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--points", str(n),
           "--threads", str(threads), "--repeat", str(args.repeat), "--save", save,
           "--layers", *args.layers]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(save: str, layers: list[str], n: int) -> dict[str, tuple[int, int, float]]:
    """Disagreements with sjoin per layer: (count, count farther than EDGE_DEG, max distance)."""
    import shapely

    lon, lat = make_points(n)
    out = {}
    for layer in load_layers(layers):
        a = np.load(Path(save) / f"index-{layer.name}.npy")
        b = np.load(Path(save) / f"sjoin-{layer.name}.npy")
        bad = np.flatnonzero(a != b)
        edges = shapely.multilinestrings(
            shapely.get_rings(shapely.get_parts(np.asarray(layer.geometries, dtype=object))))
        dist = shapely.distance(edges, shapely.points(lon[bad], lat[bad]))
        far = int((dist > EDGE_DEG).sum())
        out[layer.name] = (len(bad), far, float(dist.max()) if len(bad) else 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--layers", nargs="+", default=["community_areas", "wards_2015_2023"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-sjoin", action="store_true", help="skip the sjoin baseline")
    parser.add_argument("--worker", choices=["index", "sjoin"], help=argparse.SUPPRESS)
    parser.add_argument("--save", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.method = args.worker
        args.points = args.points[0]
        args.threads = args.threads[0]
        worker(args)
        return
    print(f"layers: {', '.join(args.layers)}; best of {args.repeat}")
    for n in args.points:
        with tempfile.TemporaryDirectory() as save:
            base = None if args.no_sjoin else run_child(args, "sjoin", n, 1, save)
            if base:
                print(f"{n:>9,} sjoin     {n / base['seconds'] / 1e6:6.2f} M points/s "
                      f"({base['seconds']:.2f} s; +{base['make_points_s']:.2f} s making points)"
                      f"  peak RSS {base['peak_rss_mb']:.0f} MB")
            for threads in args.threads:
                r = run_child(args, "index", n, threads, save)
                ratio = f"  {base['seconds'] / r['seconds']:5.1f}x sjoin" if base else ""
                build = ", ".join(f"{k} {v:.2f} s" for k, v in r["build_layer_s"].items())
                print(f"{n:>9,} index t={threads} {n / r['seconds'] / 1e6:6.2f} M points/s "
                      f"({r['seconds']:.3f} s){ratio}  peak RSS {r['peak_rss_mb']:.0f} MB "
                      f"(before assigning {r['base_rss_mb']:.0f} MB)  build: {build}")
                print(f"{'':>9}   first call {n / r['first_seconds'] / 1e6:.2f} M points/s; "
                      f"CPU/wall {r['cpu_per_wall']:.2f}; "
                      "boundary cases: "
                      + ", ".join(f"{k} {v:.1%}" for k, v in r["boundary_share"].items()))
            if base:
                for name, (bad, far, worst) in compare(save, args.layers, n).items():
                    print(f"{'':>9}   {name}: {n - bad:,} of {n:,} agree with sjoin; "
                          f"{bad:,} differ, {far} of them farther than {EDGE_DEG:g} deg "
                          f"from an edge (max {worst:.1e} deg)")


if __name__ == "__main__":
    main()
