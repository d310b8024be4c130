"""Exports of requests and layers as files GIS tools open directly.

Public exports never carry personal data; ``include_private`` adds the
reporter columns for staff.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pyogrio
import shapely

from geo311.errors import InvalidRequest

if TYPE_CHECKING:
    from geo311.store.layers import Layers
    from geo311.store.requests import Requests

LOGGER = logging.getLogger(__name__)
REQUEST_FORMATS = ("csv", "geojson", "gpkg", "parquet")
LAYER_FORMATS = ("shp", "geojson", "gpkg")
_DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "shp": "ESRI Shapefile"}
#: GeoParquet 1.1 file metadata: WKB points, no ``crs`` (the specification's default,
#: OGC:CRS84, is longitude/latitude on WGS 84, as stored).
GEOPARQUET_META = {"version": "1.1.0", "primary_column": "geometry",
                   "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"]}}}
_INTEGER_COLUMNS = ("service_request_id", "duplicate_of", "reporter_count")


@dataclass(frozen=True)
class RequestFilter:
    """Which requests an export takes: services, status, requested between, districts."""

    service_codes: Sequence[str] = ()
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    #: ``(layer, district id)`` of active layers; several of one layer are alternatives
    districts: Sequence[tuple[str, str]] = ()


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
    store: ExportStore, path: str | Path, fmt: str = "csv", *, include_private: bool = False,
    where: RequestFilter | None = None, progress: Callable[[int], object] | None = None,
    chunk_rows: int = 50_000,
) -> int:
    """Write the requests (all, or those ``where`` takes) with their district per layer.

    One row per request, a ``district_<layer>`` column per active layer. Returns the
    number of rows written. GeoParquet (``parquet``) keeps times as UTC timestamps and
    ids as integers, for the tools planners read archives with.

    Examples
    --------
    >>> export_requests(store, "requests.csv", "csv")  # doctest: +SKIP
    """
    _check_format(fmt, REQUEST_FORMATS)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(path)
    where = where or RequestFilter()
    written = 0
    writer: pq.ParquetWriter | pa_csv.CSVWriter | None = None
    frames = store.requests.export_frames(
        include_private=include_private, chunk_rows=chunk_rows,
        service_codes=where.service_codes,
        status=where.status, start=where.start, end=where.end, districts=where.districts)
    for frame in frames:
        if progress is not None:
            progress(len(frame))
        if fmt in ("csv", "parquet"):  # written by Arrow, a chunk at a time
            table = _arrow_table(frame, geometry=fmt == "parquet")
            if fmt == "csv":
                table = _csv_table(table)
            if writer is None:
                writer = (pq.ParquetWriter(tmp, table.schema, compression="zstd")
                          if fmt == "parquet" else pa_csv.CSVWriter(tmp, table.schema))
            writer.write_table(table)
            written += len(frame)
            continue
        frame = _as_text_times(frame)
        geo = gpd.GeoDataFrame(
            frame, geometry=gpd.points_from_xy(frame["long"], frame["lat"]), crs="EPSG:4326"
        )
        pyogrio.write_dataframe(geo, tmp, driver=_DRIVERS[fmt], layer="requests",
                                append=written > 0)
        written += len(frame)
    if writer is not None:
        writer.close()
    if written == 0:
        tmp.unlink(missing_ok=True)
        raise InvalidRequest("there are no requests to export" if where == RequestFilter()
                             else "no request matches the export's filters")
    tmp.replace(path)
    LOGGER.info("exported %s requests to %s", written, path)
    return written


def _arrow_table(frame: pd.DataFrame, *, geometry: bool = True) -> pa.Table:
    """One chunk as Arrow with fixed types, so every chunk shares the file's schema."""
    fields, arrays = [], []
    for col in frame.columns:
        values = frame[col]
        if col.endswith("_datetime"):
            arr = pa.array(pd.to_datetime(values, utc=True), type=pa.timestamp("us", tz="UTC"))
        elif col in _INTEGER_COLUMNS:
            arr = pa.array(pd.to_numeric(values).astype("Int64"), type=pa.int64())
        elif col in ("lat", "long"):
            arr = pa.array(pd.to_numeric(values).astype(float), type=pa.float64(),
                           from_pandas=True)
        elif col == "outside_service_area":
            arr = pa.array(values.astype(bool), type=pa.bool_())
        else:
            arr = _text_array(values)
        fields.append(pa.field(col, arr.type))
        arrays.append(arr)
    if not geometry:
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    lon, lat = frame["long"].to_numpy(float), frame["lat"].to_numpy(float)
    located = ~(np.isnan(lon) | np.isnan(lat))
    points = np.full(len(frame), None, dtype=object)
    points[located] = shapely.points(lon[located], lat[located])
    fields.append(pa.field("geometry", pa.binary()))
    arrays.append(pa.array(shapely.to_wkb(points), type=pa.binary()))
    schema = pa.schema(fields, metadata={b"geo": json.dumps(GEOPARQUET_META).encode()})
    return pa.Table.from_arrays(arrays, schema=schema)


def _text_array(values: pd.Series) -> pa.Array:
    """A text column as Arrow strings, in one conversion when it holds only text."""
    try:
        return pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers among the text: each as text
        return pa.array([None if v is None or v is pd.NA or (isinstance(v, float)
                                                             and np.isnan(v))
                         else str(v) for v in values], type=pa.string())


def _csv_table(table: pa.Table) -> pa.Table:
    """The CSV's columns: ISO 8601 UTC times ("…Z"), True/False, no geometry (lat, long)."""
    columns, names = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name == "geometry":
            continue
        if pa.types.is_timestamp(column.type):
            whole = column.cast(pa.timestamp("s", tz="UTC"), safe=False)  # %S: no fraction
            column = pc.strftime(whole, format="%Y-%m-%dT%H:%M:%SZ")
        elif pa.types.is_boolean(column.type):
            column = pc.if_else(column, "True", "False")
        columns.append(column)
        names.append(name)
    return pa.table(columns, names=names)


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
