"""Time crew suggestions for 10k open requests and 50 crews, and a 60-stop route order.

Suggestions: a fresh store (SpatiaLite in a temporary folder; PostGIS with --postgis)
gets the 2015–2023 wards and N open requests resampled from the real 2011–2013 request
points, four service groups with SLAs of 2–7 business days, and 50 crews (two home
wards and two service groups each, 8 stops a day). Timed: reading the open unassigned
requests (``dispatch_frame``), ``suggest_crews`` alone, and the whole ``suggest``;
beside them, in the same run, a first-fit reference (requests in id order, the
lowest-id crew with room). Quality: how many of the overdue requests get a crew.

Routes: for each of --routes crews, the 60 open requests nearest its depot are
ordered by OR-Tools (greedy descent, deterministic; guided local search with a time
limit) and by greedy nearest neighbour; times and straight-line route lengths.

    python benchmarks/dispatch.py [--requests 10000] [--crews 50] [--stops 60] [--postgis]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.district_assignment import make_points  # noqa: E402
from geo311 import dispatch as core  # noqa: E402
from geo311.dispatch import suggest_crews  # noqa: E402
from geo311.districts import DistrictIndex  # noqa: E402
from geo311.layerdefs import read_layer_definitions  # noqa: E402
from geo311.layers import load_layer  # noqa: E402
from geo311.model import Crew, Service  # noqa: E402
from geo311.routing import nearest_neighbour_order, route_length_m, route_order  # noqa: E402
from geo311.sla import fill_expected  # noqa: E402
from geo311.store import open_store  # noqa: E402
from geo311.store.requests import BULK_COLUMNS  # noqa: E402

LAYER = "wards_2015_2023"
GROUPS = ("Sanitation", "Streets", "Forestry", "Water")


def bench_url(postgis: bool, folder: Path) -> str:
    if not postgis:
        return f"sqlite:///{folder / 'bench.sqlite'}"
    from sqlalchemy import text

    admin = open_store("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname="
                                 "'geo311_bench_dispatch'")).scalar():
            conn.execute(text("CREATE DATABASE geo311_bench_dispatch"))
    admin.dispose()
    return "postgresql+psycopg://postgres@127.0.0.1:5432/geo311_bench_dispatch"


def seed(store, n: int, n_crews: int, now: datetime) -> list[Crew]:
    store.schema.drop()
    store.schema.init()
    d = {x.name: x for x in read_layer_definitions(ROOT / "layers", ROOT)}[LAYER]
    load_layer(store, d.source, name=d.name, title=d.title, role=d.role, id_field=d.id_field,
               name_field=d.name_field, crs=d.crs, activate=True)
    store.catalogue.upsert([Service(f"S{k}", f"{g} problem", g, sla_days=float(2 + k * 1.5))
                           for k, g in enumerate(GROUPS)])
    lon, lat = make_points(n, seed=6)
    rng = np.random.default_rng(7)
    requested = [now - timedelta(hours=float(h)) for h in rng.uniform(1, 240, n)]
    frame = pd.DataFrame({
        "external_id": [f"B{i}" for i in range(n)], "external_parent_id": None,
        "source": "bench", "service_code": rng.choice([f"S{k}" for k in range(4)], n),
        "status": "open", "status_notes": "", "description": "", "address": "",
        "zipcode": "", "geocode_match": "reported", "outside_service_area": False,
        "requested_datetime": requested, "updated_datetime": now, "closed_datetime": pd.NaT,
        "lon": lon, "lat": lat,
    })[list(BULK_COLUMNS)]
    frame["closed_datetime"] = pd.to_datetime(frame["closed_datetime"], utc=True)
    frame["requested_datetime"] = pd.to_datetime(frame["requested_datetime"], utc=True)
    frame["updated_datetime"] = pd.to_datetime(frame["updated_datetime"], utc=True)
    index = DistrictIndex(store.layers.active_district_layers())
    found = index.assign(lon, lat)
    version = store.layers.version(LAYER)
    a = found[LAYER]
    store.requests.add_many(frame, {version.id: (a.district_id, a.boundary_case)})
    fill_expected(store)
    wards = store.layers.features(LAYER)
    wards["c"] = wards.to_crs(3435).centroid.to_crs(4326)
    ids = sorted(wards["district_id"], key=int)
    crews = []
    for k in range(n_crews):
        home = (ids[k % len(ids)], ids[(k + 1) % len(ids)])
        centre = wards.loc[wards["district_id"] == home[0], "c"].iloc[0]
        crews.append(core.create_crew(store, Crew(
            f"Crew {k + 1}", LAYER, home, (GROUPS[k % 4], GROUPS[(k + 1) % 4]), 8,
            depot_lon=float(centre.x), depot_lat=float(centre.y))))
    return crews


def first_fit(frame: pd.DataFrame, crews: list[Crew], horizon_days: int) -> list[int | None]:
    """Reference: requests in id order, each to the lowest-id crew that fits and has room."""
    room = {c.id: c.capacity_per_day * horizon_days for c in crews}
    out: list[int | None] = []
    for g, d in zip(frame["group"], frame["district_id"], strict=True):
        pick = None
        for c in crews:
            if room[c.id] > 0 and g in c.service_groups and d in c.districts:
                pick = c.id
                room[c.id] -= 1
                break
        out.append(pick)
    return out


def best_of(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--crews", type=int, default=50)
    parser.add_argument("--stops", type=int, default=60)
    parser.add_argument("--routes", type=int, default=5)
    parser.add_argument("--horizon-days", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgis", action="store_true")
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(bench_url(args.postgis, Path(folder)))
        t = time.perf_counter()
        crews = seed(store, args.requests, args.crews, now)
        print(f"backend {store.backend}: seeded {args.requests} open requests, {len(crews)} "
              f"crews in {time.perf_counter() - t:.1f} s")
        version = store.layers.version(LAYER)
        t_read, frame = best_of(lambda: store.dispatch.frame(version.id), args.repeat)
        loads = store.dispatch.crew_loads()
        days = {c.id: core.crew_business_days(c, now.date(), args.horizon_days) for c in crews}
        t_core, found = best_of(lambda: suggest_crews(frame, crews, loads, now,
                                                      horizon_days=args.horizon_days,
                                                      business_days=days), args.repeat)
        t_full, full = best_of(lambda: core.suggest(store, LAYER, now=now,
                                                    horizon_days=args.horizon_days), args.repeat)
        t_ref, ref = best_of(lambda: first_fit(frame, crews, args.horizon_days), args.repeat)
        again = suggest_crews(frame.sample(frac=1, random_state=1), crews[::-1], loads, now,
                              horizon_days=args.horizon_days, business_days=days)
        hours = ((pd.to_datetime(frame["expected"], utc=True) - pd.Timestamp(now))
                 .dt.total_seconds() / 3600).to_numpy()
        overdue = set(frame["id"][hours < 0])
        got = {s.request_id for s in found if s.crew_id is not None}
        ref_got = {int(i) for i, c in zip(frame["id"], ref, strict=True) if c is not None}
        print(f"\nsuggestions for {len(frame)} open requests, {len(crews)} crews, "
              f"{args.horizon_days}-day horizon (best of {args.repeat})")
        print(f"  read open unassigned (SQL)   {t_read * 1000:8.1f} ms")
        print(f"  suggest_crews (core)         {t_core * 1000:8.1f} ms   "
              f"{len(frame) / t_core:,.0f} requests/s")
        print(f"  suggest (read + core)        {t_full * 1000:8.1f} ms")
        print(f"  first-fit reference          {t_ref * 1000:8.1f} ms   "
              f"core/reference {t_core / t_ref:.2f}x")
        print(f"  assigned: suggest {len(got)}, first-fit {len(ref_got)}; of {len(overdue)} "
              f"overdue requests assigned: suggest {len(overdue & got)}, first-fit "
              f"{len(overdue & ref_got)}")
        print(f"  deterministic (shuffled rows, reversed crews): {again == found}; "
              f"store path equal to core: {full == found}")

        print(f"\nroute order, {args.stops} stops nearest each crew's depot "
              f"(best of {args.repeat} for the deterministic methods)")
        print(f"  {'crew':<8} {'greedy NN':>16} {'OR-Tools greedy descent':>30} "
              f"{'OR-Tools GLS 2 s':>22}")
        lon_all, lat_all = frame["lon"].to_numpy(float), frame["lat"].to_numpy(float)
        ratios = []
        for c in crews[:args.routes]:
            assert c.depot is not None
            dist = (lon_all - c.depot[0]) ** 2 + (lat_all - c.depot[1]) ** 2
            pick = np.argsort(dist, kind="stable")[:args.stops]
            lon, lat = lon_all[pick], lat_all[pick]
            t_nn, nn = best_of(lambda lon=lon, lat=lat, c=c:
                               nearest_neighbour_order(lon, lat, c.depot), args.repeat)
            t_gd, gd = best_of(lambda lon=lon, lat=lat, c=c: route_order(lon, lat, c.depot),
                               args.repeat)
            t = time.perf_counter()
            gls = route_order(lon, lat, c.depot, search="guided_local_search", time_limit_s=2)
            t_gls = time.perf_counter() - t
            ln, lg, ll = (route_length_m(o, lon, lat, c.depot) / 1000 for o in (nn, gd, gls))
            ratios.append((lg / ln, ll / ln))
            print(f"  {c.name:<8} {ln:6.1f} km {t_nn * 1000:5.1f} ms   {lg:6.1f} km "
                  f"{t_gd * 1000:7.0f} ms ({lg / ln:.3f})   {ll:6.1f} km {t_gls:4.1f} s "
                  f"({ll / ln:.3f})")
        r = np.array(ratios)
        print(f"  mean length vs nearest neighbour: greedy descent {r[:, 0].mean():.3f}, "
              f"GLS 2 s {r[:, 1].mean():.3f}")
        store.dispose()


if __name__ == "__main__":
    main()
