"""Finding the dataset in what GIS staff deliver: a folder, loose files or a zip, safely.

A zip is unpacked member by member into a temporary folder, refusing links, paths
that leave the folder, and archives that unpack beyond a size limit; a shapefile
must come with its parts; ``checksum`` identifies a delivery by its content.
"""

from __future__ import annotations

import hashlib
import logging
import re
import stat
import tempfile
import zipfile
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path, PurePosixPath
from typing import Any

import geopandas as gpd
import pyogrio

from geo311.errors import LayerError

LOGGER = logging.getLogger(__name__)

#: What each accepted file extension holds, for messages.
FORMATS = {
    ".shp": "ESRI Shapefile",
    ".zip": "zipped ESRI Shapefile",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".kml": "KML",
}
SUPPORTED_FORMATS = (
    "an ESRI Shapefile (a folder, a .shp with its .shx, .dbf and .prj, or a .zip of them), "
    "GeoJSON (.geojson, .json), GeoPackage (.gpkg) or KML (.kml)"
)
#: The shapefile parts GDAL reads data from; spatial indexes (.qix, .sbn) are left out.
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
_REQUIRED_PARTS = {".shx": "shape index", ".dbf": "attribute table"}
_CHUNK_BYTES = 1 << 20


def checksum(path: str | Path) -> str:
    """Fingerprint a boundary file so a reloaded layer can be recognised.

    A plain file gives the sha256 of its bytes. A shapefile gives one digest over its parts
    (.shp .shx .dbf .prj .cpg), ordered by file name, whether it is passed as the .shp, its
    folder or a zip of it, so re-zipping does not change it. Call it on files `read_layer`
    accepted: it does not re-check zip sizes.

    Examples
    --------
    >>> len(checksum("shapefiles/wards_2023/wards_2023.shp"))
    64
    """
    path = Path(path)
    if not path.exists():
        raise LayerError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".shp":
        folder, stem = (path, None) if path.is_dir() else (path.parent, path.stem)
        parts = sorted(
            p.name
            for p in folder.iterdir()
            if p.is_file()
            and p.suffix.lower() in SHAPEFILE_PARTS
            and (stem is None or p.stem == stem)
        )
        return _combined_digest((name, (folder / name).open("rb")) for name in parts)
    if suffix == ".zip" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = sorted(
                (PurePosixPath(info.filename).name, info.filename)
                for info in archive.infolist()
                if not info.is_dir()
                and not _is_junk(info.filename)
                and PurePosixPath(info.filename).suffix.lower() in SHAPEFILE_PARTS
            )
            return _combined_digest((name, archive.open(member)) for name, member in members)
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _combined_digest(members: Iterable[tuple[str, Any]]) -> str:
    """Hash each member's name and content digest, so moving bytes between files counts."""
    digest = hashlib.sha256()
    for name, handle in members:
        with handle:
            inner = hashlib.file_digest(handle, "sha256").digest()
        digest.update(name.encode("utf-8") + b"\0" + inner)
    return digest.hexdigest()


# --- finding the dataset -------------------------------------------------------------------


def locate_dataset(
    path: Path, layer: str | None, have_crs: bool, max_unzipped_bytes: int, stack: ExitStack
) -> tuple[Path, str | None]:
    """Return the file GDAL should open and the layer in it; unzip into a scratch folder."""
    if not path.exists():
        raise LayerError(f"{path} does not exist")
    if path.is_dir():
        shp = _pick_shapefile(path, path.iterdir(), layer)
        _check_shapefile_parts(path, shp, have_crs)
        return shp, None
    suffix = path.suffix.lower()
    if suffix == ".zip":
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="geo311-layer-")))
        _extract_zip(path, folder, max_unzipped_bytes)
        shp = _pick_shapefile(path, folder.rglob("*"), layer)
        _check_shapefile_parts(path, shp, have_crs)
        return shp, None
    if suffix == ".shp":
        _check_shapefile_parts(path, path, have_crs)
        return path, None
    if suffix in FORMATS:
        if suffix == ".kml" and not {"KML", "LIBKML"} & set(pyogrio.list_drivers()):
            raise LayerError(f"{path}: this GDAL build has no KML driver; convert it to GeoJSON")
        return path, _pick_layer(path, layer)
    raise LayerError(
        f"{path} is not a boundary file geo311 can read (extension "
        f"{suffix or 'none'!r}); expected {SUPPORTED_FORMATS}"
    )


def _is_junk(name: str) -> bool:
    """Whether a zip member is macOS metadata (``__MACOSX/``, ``._x.shp``), not data."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return "__MACOSX" in parts or PurePosixPath(name).name.startswith("._")


def _pick_shapefile(shown: Path, candidates: Iterable[Path], layer: str | None) -> Path:
    shapefiles = sorted(
        p
        for p in candidates
        if p.is_file() and p.suffix.lower() == ".shp" and not _is_junk(p.as_posix())
    )
    if not shapefiles:
        raise LayerError(f"{shown} holds no .shp file; expected {SUPPORTED_FORMATS}")
    if layer is not None:
        chosen = [p for p in shapefiles if p.stem.lower() == layer.lower()]
        if not chosen:
            raise LayerError(
                f"{shown} has no shapefile named {layer!r}; it has: "
                + ", ".join(p.stem for p in shapefiles)
            )
        return chosen[0]
    if len(shapefiles) > 1:
        raise LayerError(
            f"{shown} holds {len(shapefiles)} shapefiles ("
            + ", ".join(p.stem for p in shapefiles)
            + "); choose one with --layer"
        )
    return shapefiles[0]


def _check_shapefile_parts(shown: Path, shp: Path, have_crs: bool) -> None:
    present = {p.suffix.lower() for p in shp.parent.iterdir() if p.stem == shp.stem}
    label = f"{shown}" if shown == shp else f"{shown}: shapefile {shp.name}"
    for suffix, what in _REQUIRED_PARTS.items():
        if suffix not in present:
            raise LayerError(f"{label} is missing its {suffix} ({what}); send all its files")
    if ".prj" not in present and not have_crs:
        raise LayerError(
            f"{label} has no .prj, so its coordinate system is unknown; include the .prj or "
            "pass --crs EPSG:XXXX (for example --crs EPSG:3435, Illinois East, US feet)"
        )


def _extract_zip(archive: Path, folder: Path, max_unzipped_bytes: int) -> None:
    """Unpack ``archive`` into ``folder``, refusing anything that could escape or explode."""
    if not zipfile.is_zipfile(archive):
        raise LayerError(f"{archive} has a .zip extension but is not a zip archive")
    root = folder.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member(archive, info)
            files = [i for i in members if not i.is_dir()]
            declared = sum(i.file_size for i in files)
            if declared > max_unzipped_bytes:
                raise LayerError(
                    f"{archive} would expand to {declared:,} bytes, more than the "
                    f"{max_unzipped_bytes:,} allowed"
                )
            written = 0
            for info in files:
                target = root.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
                if not target.resolve().is_relative_to(root):
                    raise LayerError(f"{archive}: entry {info.filename!r} points outside the zip")
                target.parent.mkdir(parents=True, exist_ok=True)
                # zipfile stops at each declared size; counting keeps the limit whatever
                # the archive claims
                with zf.open(info) as source, target.open("wb") as sink:
                    while chunk := source.read(_CHUNK_BYTES):
                        written += len(chunk)
                        if written > max_unzipped_bytes:
                            raise LayerError(
                                f"{archive} expands to more than the {max_unzipped_bytes:,} "
                                "bytes allowed"
                            )
                        sink.write(chunk)
    except (zipfile.BadZipFile, NotImplementedError, EOFError) as exc:
        raise LayerError(f"{archive} is a damaged or unsupported zip archive: {exc}") from exc


def _check_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise LayerError(f"{archive}: entry {info.filename!r} is an absolute path; refused")
    if ".." in name.split("/"):
        raise LayerError(f"{archive}: entry {info.filename!r} points outside the zip; refused")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise LayerError(f"{archive}: entry {info.filename!r} is a symbolic link; refused")
    if info.flag_bits & 0x1:
        raise LayerError(f"{archive}: entry {info.filename!r} is encrypted; send it unencrypted")


def _pick_layer(path: Path, layer: str | None) -> str | None:
    try:
        listed = pyogrio.list_layers(path)
    except (RuntimeError, ValueError) as exc:  # pyogrio's errors are RuntimeErrors
        raise LayerError(
            f"{path} could not be read as {FORMATS[path.suffix.lower()]}: {exc}"
        ) from exc
    names = [str(name) for name, geometry_type in listed if geometry_type is not None]
    if layer is not None:
        if layer not in names:
            raise LayerError(
                f"{path} has no layer {layer!r}; its layers are: {', '.join(names) or 'none'}"
            )
        return layer
    if not names:
        raise LayerError(f"{path} has no layer with geometries")
    if len(names) > 1:
        raise LayerError(
            f"{path} holds {len(names)} layers ({', '.join(names)}); choose one with --layer"
        )
    return names[0]


def read_frame(shown: Path, dataset: Path, layer: str | None) -> gpd.GeoDataFrame:
    """Read one layer of a dataset; GDAL's failures become a ``LayerError`` naming the file."""
    kind = FORMATS.get(dataset.suffix.lower(), "a GIS file")
    try:
        frame = pyogrio.read_dataframe(dataset, layer=layer)
    except (RuntimeError, ValueError) as exc:  # pyogrio's errors are RuntimeErrors
        raise LayerError(f"{shown} could not be read as {kind}: {exc}") from exc
    if not isinstance(frame, gpd.GeoDataFrame):
        raise LayerError(f"{shown} has no geometry column (read as {kind})")
    return frame
