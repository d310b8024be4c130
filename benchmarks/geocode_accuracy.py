"""Geocoding accuracy without leakage, against the City's own points.

The reference is built from the 2011–2012 sanitation requests (as ``geo311 addresses
learn`` learns them), the shipped address points and the intersections. The 2013
requests' addresses are then geocoded, ignoring their coordinates, and compared with the
City's point. The same is done for the 2021 sample (reference: all of 2011–2013), whose
points the City placed differently. A plain exact-plus-interpolation gazetteer (the same
reference, no street-type resolution, no grid, no fuzzy matching) is run beside it.

    python benchmarks/geocode_accuracy.py
"""

from __future__ import annotations

import bisect
from collections import defaultdict

import numpy as np
import pandas as pd
from geocode_references import build, error_m, sample_2021, sanitation


def plain_gazetteer(history: pd.DataFrame, addresses: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Exact text match, else linear interpolation on the same street text: the floor."""
    split = history["Street_Address"].str.upper().str.split(" ", n=1, expand=True)
    frame = pd.DataFrame({"n": pd.to_numeric(split[0], errors="coerce"), "street": split[1],
                          "lon": history["lon"], "lat": history["lat"]}).dropna()
    exact = frame.groupby(["n", "street"])[["lon", "lat"]].median()
    streets: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for (n, street), row in exact.iterrows():
        streets[street].append((n, row.lon, row.lat))
    for v in streets.values():
        v.sort()
    lon = np.full(len(addresses), np.nan)
    lat = np.full(len(addresses), np.nan)
    for i, text in enumerate(addresses):
        parts = text.upper().split(" ", 1)
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        n, known = float(parts[0]), streets.get(parts[1], [])
        j = bisect.bisect_left(known, (n, -1e9, -1e9))
        if j < len(known) and known[j][0] == n:
            lon[i], lat[i] = known[j][1], known[j][2]
        elif 0 < j < len(known):
            (n0, x0, y0), (n1, x1, y1) = known[j - 1], known[j]
            t = (n - n0) / (n1 - n0)
            lon[i], lat[i] = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    return lon, lat


def report(name: str, err: np.ndarray, matches: pd.Series | None, reasons: pd.Series | None,
           ) -> None:
    print(f"\n{name}: {len(err)} requests")
    print(f"  within  50 m {np.mean(err <= 50):7.2%}")
    print(f"  within 100 m {np.mean(err <= 100):7.2%}")
    print(f"  within 200 m {np.mean(err <= 200):7.2%}")
    print(f"  median error {np.median(err):7.2f} m   unmatched {np.mean(np.isinf(err)):.2%}")
    if matches is not None:
        for match, share in matches.value_counts(normalize=True).items():
            sub = err[(matches == match).to_numpy()]
            within = np.mean(sub <= 100)
            med = np.median(sub)
            print(f"  {match:<13} {share:7.2%} of requests, {within:7.2%} within 100 m, "
                  f"median {med:.1f} m")
    if reasons is not None and len(reasons):
        print("  unmatched by reason (share of all requests):")
        kinds = reasons.str.replace(r"'[^']*'|\d+", "…", regex=True).str.slice(0, 70)
        for reason, n in kinds.value_counts().head(8).items():
            print(f"    {n / len(err):6.2%}  {reason}")


def run(label: str, history: pd.DataFrame, test: pd.DataFrame, address: str) -> None:
    geocoder, times = build(history)
    print(f"\n=== {label}: reference {len(history)} requests -> {times['learned']} learned "
          f"points + shipped points + intersections (learn {times['learn_s']:.1f} s, "
          f"read {times['read_s']:.1f} s, build {times['build_s']:.1f} s); {geocoder.size}")
    found = geocoder.geocode_many(test[address].tolist())
    err = error_m(found["lon"].to_numpy(), found["lat"].to_numpy(), test["lon"].to_numpy(),
                  test["lat"].to_numpy())
    report(f"{label} — geo311 geocoder", err, found["match"],
           found.loc[found["match"] == "none", "reason"])
    first = ~test[address].duplicated().to_numpy()
    if not first.all():
        report(f"{label} — geo311 geocoder, distinct addresses only ({first.sum()})",
               err[first], found["match"][first], None)
    plon, plat = plain_gazetteer(history, test[address].tolist())
    report(f"{label} — plain exact + interpolation gazetteer (floor)",
           error_m(plon, plat, test["lon"].to_numpy(), test["lat"].to_numpy()), None, None)


def main() -> None:
    requests = sanitation()
    history = requests[requests["Creation_Date"] < "2013-01-01"]
    later = requests[requests["Creation_Date"] >= "2013-01-01"]
    run("2013 sanitation requests", history, later, "Street_Address")
    run("2021 sample (all request types)", requests, sample_2021(), "street_address")


if __name__ == "__main__":
    main()
