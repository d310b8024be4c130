"""Settings: one frozen value, read from ``GEO311_*`` variables only when asked."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geo311.errors import ConfigError

#: Remote geocoders a city may switch on as a fallback (``geo311.remote``).
REMOTE_GEOCODERS = ("nominatim", "census")

#: Root of a source checkout: shipped layers, shapefiles and samples live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Everything geo311 needs to know about its city and its storage.

    ``database_url`` empty means a SpatiaLite file in ``instance_path``.
    """

    database_url: str = ""
    instance_path: Path = field(default_factory=lambda: Path.cwd() / "instance")
    timezone: str = "America/Chicago"
    layers_path: Path = PROJECT_ROOT / "layers"
    data_path: Path = PROJECT_ROOT / "shapefiles"
    service_area_layer: str = ""
    boundary_tolerance_m: float = 15.0
    max_upload_bytes: int = 50 * 1024 * 1024
    max_unzipped_bytes: int = 500 * 1024 * 1024
    tile_url: str = ""
    secret_key: str = "dev"
    remote_geocoder: str = ""  # off; "nominatim" or "census" (optional, needs the network)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"GEO311_TIMEZONE was {self.timezone!r} but is expected to be an IANA "
                "time zone such as 'America/Chicago'"
            ) from exc
        if self.remote_geocoder not in ("", *REMOTE_GEOCODERS):
            raise ConfigError(
                f"GEO311_REMOTE_GEOCODER was {self.remote_geocoder!r} but is expected to be "
                f"empty (off) or one of {REMOTE_GEOCODERS}"
            )
        if self.boundary_tolerance_m < 0:
            raise ConfigError(
                f"GEO311_BOUNDARY_TOLERANCE_M was {self.boundary_tolerance_m} "
                "but is expected to be >= 0"
            )

    @property
    def zone(self) -> ZoneInfo:
        """The city's time zone, for reading local times from legacy data."""
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``instance/geo311.sqlite`` (SpatiaLite)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.instance_path) / 'geo311.sqlite'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``GEO311_<FIELD>`` variables; raise ``ConfigError`` naming a bad one."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            var = f"GEO311_{f.name.upper()}"
            if var not in env:
                continue
            raw = env[var]
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            try:
                if kind == "Path":
                    values[f.name] = Path(raw)
                elif kind == "int":
                    values[f.name] = int(raw)
                elif kind == "float":
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ConfigError(
                    f"{var} was {raw!r} but is expected to be a{'n' if kind == 'int' else ''} "
                    f"{kind}"
                ) from exc
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
