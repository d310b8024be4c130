"""The boundary layers the project ships, declared one TOML file each in ``layers/``.

A definition says where the layer's file is and how to read it; loading it into the database
and activating it is the store's business.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyproj import CRS
from pyproj.exceptions import CRSError

from geo311.district_ids import parse_id_rule
from geo311.errors import LayerError

LOGGER = logging.getLogger(__name__)

#: ``service_area`` marks the one layer whose union is the city; ``district`` layers give
#: requests their districts; a ``jurisdiction`` layer holds the city's neighbours, for
#: referrals (``geo311.referral``): it gives no districts and is never activated.
ROLES = ("service_area", "district", "jurisdiction")
_REQUIRED = ("name", "title", "source", "id_field", "role")
_OPTIONAL = ("name_field", "crs", "active", "description", "layer", "id_rule")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class LayerDefinition:
    """One shipped layer; ``source`` is absolute, ``crs`` only set for files without one.

    ``layer`` picks a layer of a GeoPackage or KML; ``id_rule`` lists the steps of the
    declared rule for the file's ids (``geo311.district_ids``), empty to keep them as written.
    """

    name: str
    title: str
    source: Path
    id_field: str
    name_field: str | None
    role: str
    crs: str | None
    active: bool
    description: str
    layer: str | None = None
    id_rule: tuple[str, ...] = ()


def read_layer_definitions(layers_path: Path, root: Path) -> list[LayerDefinition]:
    """Read and check every ``*.toml`` in ``layers_path``; sources are relative to ``root``.

    The service area comes first, then the others by file name.

    Examples
    --------
    >>> from geo311.config import SHIPPED_ROOT
    >>> [d.name for d in read_layer_definitions(SHIPPED_ROOT / "layers", SHIPPED_ROOT)][0]
    'community_areas'
    """
    if not layers_path.is_dir():
        raise LayerError(f"layer definitions folder {layers_path} does not exist")
    definitions = [_read_definition(file, root) for file in sorted(layers_path.glob("*.toml"))]
    service_areas = [d.name for d in definitions if d.role == "service_area"]
    if len(service_areas) > 1:
        raise LayerError(
            f"{layers_path}: only one layer may have role 'service_area', but "
            f"{', '.join(service_areas)} do"
        )
    return sorted(definitions, key=lambda d: d.role != "service_area")


def _read_definition(file: Path, root: Path) -> LayerDefinition:
    try:
        data: dict[str, Any] = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LayerError(f"{file} is not valid TOML: {exc}") from exc
    unknown = [key for key in data if key not in _REQUIRED + _OPTIONAL]
    if unknown:
        raise LayerError(
            f"{file}: unknown key {unknown[0]!r}; the keys are: {', '.join(_REQUIRED + _OPTIONAL)}"
        )
    for key in _REQUIRED:
        if key not in data:
            raise LayerError(f"{file}: missing key {key!r}")
    for key in (*_REQUIRED, "name_field", "crs", "description", "layer"):
        value = data.get(key)
        if key in data and (
            not isinstance(value, str) or not (value.strip() or key == "description")
        ):
            raise LayerError(
                f"{file}: {key!r} was {value!r} but is expected to be a non-empty string"
            )
    if not isinstance(data.get("active", True), bool):
        raise LayerError(
            f"{file}: 'active' was {data['active']!r} but is expected to be true or false"
        )

    name = data["name"]
    if not _NAME.fullmatch(name) or name != file.stem:
        raise LayerError(
            f"{file}: 'name' was {name!r} but is expected to be the file's name, {file.stem!r} "
            "(lower case letters, digits and _)"
        )
    if data["role"] not in ROLES:
        raise LayerError(
            f"{file}: 'role' was {data['role']!r} but is expected to be in {list(ROLES)}"
        )
    crs = data.get("crs")
    if crs is not None:
        try:
            CRS.from_user_input(crs)
        except CRSError as exc:
            raise LayerError(
                f"{file}: 'crs' was {crs!r} but is expected to be a coordinate system such as "
                "EPSG:3435"
            ) from exc
    id_rule = parse_id_rule(data.get("id_rule"), f"{file}: 'id_rule'")
    source = Path(data["source"])
    source = (source if source.is_absolute() else root / source).resolve()
    if not source.exists():
        raise LayerError(
            f"{file}: 'source' {data['source']!r} does not exist (looked for {source})"
        )
    return LayerDefinition(
        name=name,
        title=data["title"],
        source=source,
        id_field=data["id_field"],
        name_field=data.get("name_field"),
        role=data["role"],
        crs=crs,
        active=data.get("active", True),
        description=data.get("description", "").strip(),
        layer=data.get("layer"),
        id_rule=id_rule.steps,
    )
