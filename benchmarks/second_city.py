"""A second real city from its own files: import summary and districts against its own labels.

Loads the city's shipped layer definitions, service catalogue and 311 sample into a fresh
SpatiaLite store, as `geo311 layers load`, `geo311 services load` and `geo311 import` do,
then compares the district geo311 assigned to each request with the label the City wrote
in the same export (read with a declared id rule, as the layer's own ids are), separately
for street addresses and intersections, and lists what is left.

    python benchmarks/second_city.py            # Boston, July 2015
    python benchmarks/second_city.py --keep /tmp/boston.sqlite
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.catalogue import load_catalogue, read_catalogue  # noqa: E402
from geo311.city import load_profile  # noqa: E402
from geo311.district_ids import normalise_ids, parse_id_rule  # noqa: E402
from geo311.gazetteer import geocoder_for, load_reference  # noqa: E402
from geo311.geodesy import haversine_m  # noqa: E402
from geo311.imports import import_file, read_mapping  # noqa: E402
from geo311.intake import Context  # noqa: E402
from geo311.layerdefs import read_layer_definitions  # noqa: E402
from geo311.layers import load_definitions  # noqa: E402
from geo311.store import open_store  # noqa: E402


@dataclass(frozen=True)
class CityFiles:
    """What one city ships, and which export columns hold its own labels."""

    layers: Path
    catalogue: str
    requests: Path
    mapping: str
    id_column: str
    #: layer name -> (export column with the City's label, id rule to read that label)
    labels: dict[str, tuple[str, tuple[str, ...]]]
    #: export column saying what the location is, and its values for the two kinds
    kind_column: str
    kinds: dict[str, str]
    #: the city's profile, its geocoding references (held out from the sample) and the
    #: export columns of the address as written and of the City's own point
    profile: str
    references: tuple[Path, ...]
    address_column: str
    lon_column: str
    lat_column: str
    placeholder: tuple[float, float] | None


BOSTON = CityFiles(
    layers=ROOT / "layers/boston",
    catalogue="boston",
    requests=ROOT / "shapefiles/boston/requests/boston_311_2015-07_all_types.csv.gz",
    mapping="boston-311",
    id_column="CASE_ENQUIRY_ID",
    labels={
        "boston_wards": ("ward", ("digits",)),  # "Ward 5", "05", "5"
        "boston_police_districts": ("police_district", ("alnum", "upper")),  # "C-11", "C11"
    },
    kind_column="Property_Type",
    kinds={"Address": "street addresses", "Intersection": "intersections"},
    profile="boston",
    references=(
        ROOT / "shapefiles/boston/geocoding/boston_address_points_311_2015_without_july.csv.gz",
        ROOT / "shapefiles/boston/geocoding/boston_intersections_311_2015_without_july.csv.gz",
    ),
    address_column="Location",
    lon_column="LONGITUDE",
    lat_column="LATITUDE",
    placeholder=(-71.0587, 42.3594),
)


def build_store(city: CityFiles, url: str) -> tuple[object, list[str]]:
    """Load layers, catalogue and requests; return the store and the report lines."""
    store = open_store(url)
    store.schema.init()
    lines = []
    started = time.perf_counter()
    definitions = read_layer_definitions(city.layers, city.layers.parent)
    for d, result in load_definitions(store, definitions, loaded_by="benchmark"):
        assert result is not None
        r = result.report
        actions = Counter(p.action for p in r.problems)
        lines.append(
            f"layer {d.name} ({d.role}, id rule {r.id_rule}): {r.feature_count} features -> "
            f"{result.version.feature_count} districts; {actions.get('dissolved', 0)} dissolved, "
            f"{actions.get('repaired', 0)} repaired, {actions.get('rejected', 0)} rejected; "
            f"overlaps {r.overlap_count} ({r.overlap_area_m2:,.0f} m²), gaps {r.gap_count} "
            f"({r.gap_area_m2:,.0f} m²)"
            + (f"; beyond {r.service_area}: {len(r.outside)} districts "
               f"({r.outside_area_m2:,.0f} m²)" if r.service_area else ""))
    lines.append(f"layers loaded in {time.perf_counter() - started:.1f} s")
    added, _ = load_catalogue(store, read_catalogue(city.catalogue), source=city.catalogue,
                              actor="benchmark")
    lines.append(f"catalogue {city.catalogue}: {added} services")
    started = time.perf_counter()
    summary = import_file(store, Context.from_store(store), city.requests,
                          read_mapping(city.mapping))
    lines += summary.lines()
    lines.append(f"import took {time.perf_counter() - started:.1f} s")
    reasons = Counter(reason.split(": ", 1)[-1] for _, reason in summary.rejected)
    lines += [f"  rejected {n}: {reason}" for reason, n in reasons.most_common(10)]
    return store, lines


def agreement(city: CityFiles, store) -> pd.DataFrame:
    """One row per (layer, kind): requests compared, agreeing, and the share."""
    source = pd.read_csv(city.requests, dtype=str, keep_default_na=False)
    stored = {r.external_id: r for r in store.requests.query(limit=10**6)}
    rows = []
    for layer, (column, steps) in city.labels.items():
        rule = parse_id_rule(list(steps))
        for value, kind in city.kinds.items():
            part = source[(source[city.kind_column] == value) & (source[column] != "")]
            labels = normalise_ids(part[column].tolist(), rule, column)
            pairs = [(stored[i], lab) for i, lab in zip(part[city.id_column], labels, strict=True)]
            located = [(r, lab) for r, lab in pairs if r.lon is not None]
            agree = sum(r.districts.get(layer) == lab for r, lab in located)
            rows.append({"layer": layer, "kind": kind, "labelled": len(pairs),
                         "located": len(located), "agree": agree,
                         "share": agree / len(located) if located else float("nan")})
    return pd.DataFrame(rows)


def disagreements(city: CityFiles, store, layer: str) -> pd.DataFrame:
    """Each disagreement with its distance to the nearest edge of the layer (metres)."""
    column, steps = city.labels[layer]
    rule = parse_id_rule(list(steps))
    source = pd.read_csv(city.requests, dtype=str, keep_default_na=False)
    source = source[source[column] != ""]
    stored = {r.external_id: r for r in store.requests.query(limit=10**6)}
    out = []
    for row, lab in zip(source.itertuples(), normalise_ids(source[column].tolist(), rule),
                        strict=True):
        r = stored[getattr(row, city.id_column)]
        if r.lon is not None and r.districts.get(layer) != lab:
            out.append({"kind": getattr(row, city.kind_column), "city": lab,
                        "geo311": r.districts.get(layer), "lon": r.lon, "lat": r.lat})
    frame = pd.DataFrame(out)
    if frame.empty:
        return frame
    features = store.layers.features(layer)
    edges = shapely.union_all(shapely.boundary(features.geometry.to_numpy()))
    utm = features.estimate_utm_crs()
    edges_utm = gpd.GeoSeries([edges], crs=4326).to_crs(utm).iloc[0]
    pts = gpd.GeoSeries(gpd.points_from_xy(frame.lon, frame.lat), crs=4326).to_crs(utm)
    frame["edge_m"] = shapely.distance(edges_utm, pts.to_numpy())
    own = features.set_index("district_id").geometry.to_crs(utm)
    frame["city_district_m"] = [
        float(shapely.distance(own[lab], p)) if lab in own.index else np.inf
        for lab, p in zip(frame.city, pts, strict=True)]
    return frame


def geocoding(city: CityFiles, store) -> list[str]:
    """Geocode each address as the City wrote it; compare with the City's own point."""
    lines = []
    for path in city.references:
        kind, n = load_reference(store, path, actor="benchmark")
        lines.append(f"reference {path.name}: {n} {kind}")
    geocoder, _ = geocoder_for(store, load_profile(city.profile))
    source = pd.read_csv(city.requests, dtype=str, keep_default_na=False)
    lon = pd.to_numeric(source[city.lon_column], errors="coerce")
    lat = pd.to_numeric(source[city.lat_column], errors="coerce")
    usable = lon.notna() & (source[city.address_column] != "")
    if city.placeholder is not None:
        usable &= ~(((lon - city.placeholder[0]).abs() < 5e-5)
                    & ((lat - city.placeholder[1]).abs() < 5e-5))
    for value, kind in city.kinds.items():
        rows = source[usable & (source[city.kind_column] == value)]
        started = time.perf_counter()
        found = geocoder.geocode_many(rows[city.address_column].tolist())
        took = time.perf_counter() - started
        ok = found["lon"].notna().to_numpy()
        err = np.full(len(rows), np.inf)
        err[ok] = haversine_m(found["lon"].to_numpy(float)[ok], found["lat"].to_numpy(float)[ok],
                              lon[rows.index].to_numpy()[ok], lat[rows.index].to_numpy()[ok])
        lines.append(f"{kind}: {len(rows)} with the City's point; within 100 m "
                     f"{np.mean(err <= 100):.2%}, within 50 m {np.mean(err <= 50):.2%}, "
                     f"unmatched {np.mean(~ok):.2%}, median {np.median(err):.1f} m "
                     f"({len(rows) / took:,.0f} addresses/s)")
        matches = found["match"].to_numpy()
        for match in pd.unique(matches):
            sub = err[matches == match]
            lines.append(f"  {match:<14} {len(sub):>5}  within 100 m {np.mean(sub <= 100):.2%}")
        reasons = Counter(_reason(r) for r in found.loc[~ok, "reason"])
        lines += [f"  unmatched {n:>5}: {reason}" for reason, n in reasons.most_common(8)]
        far = (err > 100) & ok
        if far.any():
            worst = np.flatnonzero(far)[:5]
            lines.append("  placed over 100 m away, e.g.: " + "; ".join(
                f"{rows[city.address_column].iat[i]!r} {err[i]:,.0f} m" for i in worst))
    return lines


def _reason(text: str) -> str:
    """A refusal without its address, to count refusals by kind."""
    return text.split(": ", 1)[-1] if ": " in text else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="SpatiaLite file to build (kept afterwards).")
    args = parser.parse_args()
    city = BOSTON
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "city.sqlite"
        path.unlink(missing_ok=True)
        store, lines = build_store(city, f"sqlite:///{path}")
        print("\n".join(lines))
        print()
        table = agreement(city, store)
        for r in table.itertuples():
            print(f"{r.layer:<26} {r.kind:<17} {r.agree:>5} / {r.located:<5} = {r.share:.2%}"
                  f"   ({r.labelled - r.located} labelled but without a location)")
        for layer in city.labels:
            frame = disagreements(city, store, layer)
            if frame.empty:
                continue
            bins = pd.cut(frame.edge_m, [0, 1, 5, 15, 50, np.inf], right=False)
            print(f"\n{layer}: {len(frame)} disagreements; distance to the nearest edge: "
                  + ", ".join(f"{b} {n}" for b, n in bins.value_counts(sort=False).items()))
            near = frame.city_district_m <= 10
            print(f"  the City's own district lies within 10 m of the point for {int(near.sum())}"
                  f" of them ({frame[near].groupby('kind').size().to_dict()}); farther: "
                  + "; ".join(f"{r.kind} {r.lon:.4f},{r.lat:.4f} city {r.city} geo311 {r.geo311}"
                              f" ({r.city_district_m:,.0f} m)"
                              for r in frame[~near].sort_values("city_district_m").itertuples()))
        print()
        print("\n".join(geocoding(city, store)))
        store.dispose()


if __name__ == "__main__":
    main()
