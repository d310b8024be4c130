"""Exports of requests and layers as files GIS tools open directly.

Public exports never carry personal data; ``include_private`` adds the
reporter columns for staff.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import geopandas as gpd
import pandas as pd
import pyogrio

from geo311.errors import InvalidRequest

if TYPE_CHECKING:
    from geo311.store.layers import Layers
    from geo311.store.requests import Requests

LOGGER = logging.getLogger(__name__)
REQUEST_FORMATS = ("csv", "geojson", "gpkg")
LAYER_FORMATS = ("shp", "geojson", "gpkg")
_DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}

class ExportStore(Protocol):
    """What this module needs of a store."""

    @property
    def layers(self) -> Layers:
        """The store's ``layers``."""

    @property
    def requests(self) -> Requests:
        """The store's ``requests``."""


def _partial(path: Path) -> Path:
    """A sibling to write first, so a failed export never leaves a half file at ``path``."""
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    partial.unlink(missing_ok=True)
    return partial


def _check_format(fmt: str, allowed: tuple[str, ...]) -> None:
    if fmt not in allowed:
        raise InvalidRequest(f"format was {fmt!r} but is expected to be in {list(allowed)}")


def export_requests(
    store: ExportStore, path: str | Path, fmt: str = "csv", *, include_private: bool = False
) -> int:
    """Write every request, one row each, with a ``district_<layer>`` column per active layer.

    Returns the number of rows written.

    Examples
    --------
    >>> export_requests(store, "requests.csv", "csv")  # doctest: +SKIP
    """
    _check_format(fmt, REQUEST_FORMATS)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(path)
    written = 0
    for frame in store.requests.export_frames(include_private=include_private):
        frame = _as_text_times(frame)
        if fmt == "csv":
            frame.to_csv(tmp, mode="a", header=written == 0, index=False)
        else:
            geo = gpd.GeoDataFrame(
                frame, geometry=gpd.points_from_xy(frame["long"], frame["lat"]), crs="EPSG:4326"
            )
            pyogrio.write_dataframe(geo, tmp, driver=_DRIVERS[fmt], layer="requests",
                                    append=written > 0)
        written += len(frame)
    if written == 0:
        raise InvalidRequest("there are no requests to export")
    tmp.replace(path)
    LOGGER.info("exported %s requests to %s", written, path)
    return written


def _as_text_times(frame: pd.DataFrame) -> pd.DataFrame:
    """ISO 8601 times with the UTC offset, the same in every format."""
    for col in [c for c in frame.columns if c.endswith("_datetime")]:
        times = pd.to_datetime(frame[col], utc=True)
        frame[col] = times.dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(times.notna(), None)
    return frame


def export_layer(
    store: ExportStore, name: str, path: str | Path, fmt: str = "shp", *, version: int | None = None
) -> int:
    """Write a layer version (default: the active one) as a zipped shapefile, GeoJSON or GPKG."""
    _check_format(fmt, LAYER_FORMATS)
    features = store.layers.features(name, version)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt != "shp":
        tmp = _partial(path)
        pyogrio.write_dataframe(features, tmp, driver=_DRIVERS[fmt], layer=name)
        tmp.replace(path)
        return len(features)
    with tempfile.TemporaryDirectory() as folder:
        shp = Path(folder) / f"{name}.shp"
        pyogrio.write_dataframe(features.rename(columns={"district_id": "district"}), shp,
                                driver="ESRI Shapefile", encoding="UTF-8")
        target = path if path.suffix == ".zip" else path.with_suffix(".zip")
        tmp = _partial(target)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(Path(folder).iterdir()):
                zf.write(part, part.name)
        shutil.move(tmp, target)
    return len(features)
