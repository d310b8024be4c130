"""How one CRM export's columns become geo311 fields: the import mapping (TOML).

A mapping names the source columns for each geo311 field, how source statuses map to
open/closed, which service code a source service name gets, how dates are written and
from which day a date is plausible.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from geo311.city import active_profile
from geo311.errors import InvalidRequest
from geo311.model import CLOSED, OPEN, DuplicateRule

MAPPINGS_PATH = Path(__file__).resolve().parent / "mappings"
FIELDS = (
    "id", "service_code", "service_name", "group", "description", "created", "closed", "status",
    "address", "zipcode", "lon", "lat", "x", "y", "parent_id", "updated",
)
REQUIRED_FIELDS = ("id", "created")

@dataclass(frozen=True)
class Mapping:
    """How one CRM export's columns become geo311 fields."""

    name: str
    columns: dict[str, str]
    status: dict[str, str]
    services: dict[str, dict[str, str]] = field(default_factory=dict)
    duplicate_rules: dict[str, DuplicateRule] = field(default_factory=dict)
    timezone: str = "UTC"
    date_format: str = "ISO8601"
    xy_crs: str | None = None
    source: str = ""
    description: str = ""
    #: (lon, lat) the CRM writes when it has no location (often City Hall): no location.
    placeholder: tuple[float, float] | None = None
    #: The first day the export can hold (``[dates] earliest``): earlier dates are stored
    #: but flagged as implausible (placeholders such as 2000-01-03, typing errors).
    earliest: date | None = None


def read_mapping(name_or_path: str | Path) -> Mapping:
    """A mapping by name (shipped in ``mappings/`` or listed by the city profile) or file.

    Examples
    --------
    >>> read_mapping(active_profile().mappings[0]).columns["id"]
    'sr_number'
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = MAPPINGS_PATH / f"{name_or_path}.toml"
    path = path if path.is_file() else active_profile().own_mapping(name_or_path) or path
    if not path.is_file():
        known = sorted(p.stem for p in MAPPINGS_PATH.glob("*.toml"))
        raise InvalidRequest(
            f"mapping {str(name_or_path)!r} is neither a shipped mapping {known} nor a file"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest(f"mapping {path}: not valid TOML: {exc}") from exc
    columns = raw.get("columns", {})
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise InvalidRequest(
            f"mapping {path}: [columns] has {unknown} but keys are expected to be in {FIELDS}"
        )
    missing = [f for f in REQUIRED_FIELDS if not columns.get(f)]
    if missing:
        raise InvalidRequest(f"mapping {path}: [columns] must name {missing}")
    if not (columns.get("service_code") or columns.get("service_name")):
        raise InvalidRequest(f"mapping {path}: [columns] must name service_code or service_name")
    status = raw.get("status", {})
    bad = {k: v for k, v in status.items() if v not in (OPEN, CLOSED)}
    if bad:
        raise InvalidRequest(
            f"mapping {path}: [status] values {bad} are expected to be 'open' or 'closed'"
        )
    if (columns.get("x") or columns.get("y")) and not raw.get("coordinates", {}).get("xy_crs"):
        raise InvalidRequest(f"mapping {path}: x/y columns need [coordinates] xy_crs")
    placeholder = raw.get("coordinates", {}).get("placeholder")
    if placeholder is not None and not (isinstance(placeholder, list) and len(placeholder) == 2
                                        and all(isinstance(v, int | float) for v in placeholder)):
        raise InvalidRequest(f"mapping {path}: [coordinates] placeholder was {placeholder!r} "
                             "but is expected to be [lon, lat]")
    earliest = raw.get("dates", {}).get("earliest")
    if isinstance(earliest, str):
        try:
            earliest = date.fromisoformat(earliest)
        except ValueError:
            pass
    if earliest is not None and not isinstance(earliest, date):
        raise InvalidRequest(f"mapping {path}: [dates] earliest was {earliest!r} but is "
                             "expected to be a date such as 2011-01-01")
    services = {
        k: (v if isinstance(v, dict) else {"code": str(v)})
        for k, v in raw.get("services", {}).items()
    }
    rules = {}
    for service_name, extra in services.items():
        if "dedup_radius_m" not in extra:
            continue
        try:
            rules[service_name] = DuplicateRule(
                radius_m=float(extra["dedup_radius_m"]),
                window_days=float(extra.get("dedup_window_days", 30)),
                scope=str(extra.get("dedup_scope", "service")),
                only_open=bool(extra.get("dedup_only_open", True)),
            )
        except (TypeError, ValueError, InvalidRequest) as exc:
            raise InvalidRequest(
                f"mapping {path}: [services] {service_name!r} has a bad duplicate rule: {exc}"
            ) from exc
    return Mapping(
        name=raw.get("name", path.stem), columns={k: v for k, v in columns.items() if v},
        status=status, services=services, duplicate_rules=rules,
        timezone=raw.get("timezone", "UTC"),
        date_format=raw.get("dates", {}).get("format", "ISO8601"),
        xy_crs=raw.get("coordinates", {}).get("xy_crs"), source=raw.get("source", path.stem),
        description=raw.get("description", ""),
        placeholder=tuple(float(v) for v in placeholder) if placeholder else None,  # type: ignore[arg-type]
        earliest=earliest,
    )
