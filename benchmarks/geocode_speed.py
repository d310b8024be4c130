"""Geocoding speed: batch addresses/s beside usaddress's raw parse rate, and single lookups.

Reference as in ``geocode_accuracy.py`` (2011–2012 history + shipped points +
intersections). The batch is the 2013 requests' addresses in file order, repeats
included, as a bulk import meets them: ``geocode_many`` from cold caches (parse and
geocode caches cleared), then again warm. ``usaddress.parse`` runs over the same list
in the same process, uncached, as the reference rate. Single lookups time
``Geocoder.geocode`` one address at a time: cold (each address new to the process) and
warm (repeated, as live intake meets popular addresses).

    python benchmarks/geocode_speed.py
"""

from __future__ import annotations

import time

import numpy as np
import usaddress
from geocode_references import build, sanitation

from geo311.geocoding.parsing import _parse_cached, _token_features


def clear(geocoder) -> None:
    _parse_cached.cache_clear()
    _token_features.cache_clear()
    geocoder.clear_caches()


def main() -> None:
    requests = sanitation()
    history = requests[requests["Creation_Date"] < "2013-01-01"]
    batch = requests.loc[requests["Creation_Date"] >= "2013-01-01", "Street_Address"].tolist()
    geocoder, _ = build(history)
    distinct = len(set(batch))
    print(f"batch: {len(batch)} addresses of 2013, {distinct} distinct "
          f"({1 - distinct / len(batch):.0%} repeats)")

    t, c = time.perf_counter(), time.process_time()
    for text in batch:
        usaddress.parse(text)
    raw = len(batch) / (time.perf_counter() - t)
    raw_cpu = len(batch) / (time.process_time() - c)
    print(f"usaddress.parse, uncached        {raw:>10,.0f} addresses/s "
          f"({raw_cpu:,.0f}/s of CPU time)")

    clear(geocoder)
    t, c = time.perf_counter(), time.process_time()
    geocoder.geocode_many(batch)
    cold = len(batch) / (time.perf_counter() - t)
    cold_cpu = len(batch) / (time.process_time() - c)
    print(f"geocode_many, cold caches      {cold:>10,.0f} "
          f"addresses/s ({cold / raw:.2f}x usaddress; {cold_cpu:,.0f}/s of CPU time)")
    t = time.perf_counter()
    geocoder.geocode_many(batch)
    warm = len(batch) / (time.perf_counter() - t)
    print(f"geocode_many, warm (re-import) {warm:>10,.0f} "
          f"addresses/s ({warm / raw:.2f}x usaddress)")

    clear(geocoder)
    singles = list(dict.fromkeys(batch))[:3000]  # each new to the process
    cold_ms = []
    for text in singles:
        t = time.perf_counter()
        geocoder.geocode(text)
        cold_ms.append((time.perf_counter() - t) * 1000)
    warm_ms = []
    for text in singles:
        t = time.perf_counter()
        geocoder.geocode(text)
        warm_ms.append((time.perf_counter() - t) * 1000)
    parse_ms = []
    for text in singles:
        t = time.perf_counter()
        usaddress.parse(text)
        parse_ms.append((time.perf_counter() - t) * 1000)
    for name, ms in (("single geocode, cold", cold_ms), ("single geocode, warm", warm_ms),
                     ("single usaddress.parse", parse_ms)):
        print(f"{name:<26} p50 {np.percentile(ms, 50):.3f} ms  p95 {np.percentile(ms, 95):.3f} ms"
              f"  p99 {np.percentile(ms, 99):.3f} ms")


if __name__ == "__main__":
    main()
