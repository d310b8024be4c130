"""The reference both geocoding benchmarks build: history, address points, intersections."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.city import load_profile  # noqa: E402
from geo311.geocoding.cascade import Geocoder  # noqa: E402
from geo311.geocoding.references import learned_points, read_reference  # noqa: E402

SANITATION = ROOT / "shapefiles/requests/chicago_311_sanitation_code_complaints_2011_2013.csv.gz"
SAMPLE_2021 = ROOT / "shapefiles/requests/chicago_311_all_types_2021-01-01_to_02_sample.csv.gz"
GEOCODING = ROOT / "shapefiles/geocoding"
POINTS = GEOCODING / "chicago_address_points_food_inspections_business_licenses.csv.gz"
INTERSECTIONS = GEOCODING / "chicago_street_intersections.csv.gz"


def sanitation() -> pd.DataFrame:
    """The 2011-2013 requests with the City's point (rows without one dropped)."""
    frame = pd.read_csv(SANITATION, dtype=str, keep_default_na=False)
    frame["lon"] = pd.to_numeric(frame["Longitude"], errors="coerce")
    frame["lat"] = pd.to_numeric(frame["Latitude"], errors="coerce")
    return frame[frame["lon"].notna()].reset_index(drop=True)


def sample_2021() -> pd.DataFrame:
    frame = pd.read_csv(SAMPLE_2021, dtype=str, keep_default_na=False)
    frame["lon"] = pd.to_numeric(frame["longitude"], errors="coerce")
    frame["lat"] = pd.to_numeric(frame["latitude"], errors="coerce")
    return frame[frame["lon"].notna() & (frame["street_address"] != "")].reset_index(drop=True)


def build(history: pd.DataFrame) -> tuple[Geocoder, dict[str, float]]:
    """A geocoder over ``history`` (as ``addresses learn`` would learn it) + the shipped files."""
    times = {}
    t = time.perf_counter()
    learned = learned_points(pd.DataFrame({
        "address": history["Street_Address"], "zipcode": history["ZIP_Code"],
        "lon": history["lon"], "lat": history["lat"]}))
    times["learn_s"] = time.perf_counter() - t
    t = time.perf_counter()
    _, points = read_reference(POINTS)
    _, crossings = read_reference(INTERSECTIONS)
    times["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    geocoder = Geocoder(pd.concat([learned, points], ignore_index=True), crossings,
                        zipcodes=crossings["zipcode"], **load_profile("chicago").geocoder_options())
    times["build_s"] = time.perf_counter() - t
    times["learned"] = len(learned)
    return geocoder, times


def error_m(lon: np.ndarray, lat: np.ndarray, lon0: np.ndarray, lat0: np.ndarray) -> np.ndarray:
    """Metres between points (equirectangular; exact enough within a city); inf if missing."""
    kx = 111_320 * np.cos(np.radians(41.85))
    d = np.hypot((lon - lon0) * kx, (lat - lat0) * 110_574)
    return np.where(np.isnan(d), np.inf, d)
