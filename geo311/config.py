"""Settings: one frozen value, read from ``GEO311_*`` variables only when asked."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geo311.city import SHIPPED_ROOT, CityProfile, active_profile, load_profile
from geo311.errors import ConfigError
from geo311.jurisdictions import routing_path

#: Remote geocoders a city may switch on as a fallback (``geo311.geocoding.remote``).
REMOTE_GEOCODERS = ("nominatim", "census")

#: Secrets published in documentation and tutorials: anyone could sign a session with them.
KNOWN_WEAK_SECRETS = frozenset({
    "dev", "development", "secret", "secret-key", "secret_key", "secretkey", "changeme",
    "change-me", "change_me", "password", "default", "test", "testing", "flask", "geo311",
    "your-secret-key", "super-secret", "supersecret", "please-change-me",
})
MIN_SECRET_LENGTH = 16
#: The file in the instance folder holding the generated secret (owner-only).
SECRET_FILE = "secret_key"

#: Root of a source checkout (tests and benchmarks read its files); in an installed
#: geo311 it is site-packages and holds no data: use ``SHIPPED_ROOT`` for that.
PROJECT_ROOT = Path(__file__).resolve().parent.parent




def _flag(raw: str) -> bool:
    """A yes/no variable: 1/true/yes/on or 0/false/no/off (empty: no)."""
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(raw)


@dataclass(frozen=True)
class Settings:
    """Everything geo311 needs to know about its city and its storage.

    ``database_url`` empty means a SpatiaLite file in ``instance_path``. ``city`` is a
    shipped profile name or a profile file (``GEO311_CITY``; empty: the default city);
    ``timezone`` empty means the city profile's.
    """

    database_url: str = ""
    instance_path: Path = field(default_factory=lambda: Path.cwd() / "instance")
    city: str = ""
    timezone: str = ""
    layers_path: Path = SHIPPED_ROOT / "layers"
    data_path: Path = SHIPPED_ROOT / "shapefiles"
    service_area_layer: str = ""
    boundary_tolerance_m: float = 15.0
    max_upload_bytes: int = 50 * 1024 * 1024
    max_unzipped_bytes: int = 500 * 1024 * 1024
    tile_url: str = ""
    secret_key: str = ""  # empty: generated once into the instance folder
    remote_geocoder: str = ""  # off; "nominatim" or "census" (optional, needs the network)
    # Mail to reporters (``geo311 notify run``): an SMTP server, the sender, and the public
    # address of this site for the links in messages. No host: nothing is sent.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = ""
    public_url: str = ""
    # Who handles what (``geo311.jurisdictions``): a routing file; empty: the city
    # profile's ``routing.toml``, if it has one.
    routing_file: str = ""

    def __post_init__(self) -> None:
        if not self.timezone:
            object.__setattr__(self, "timezone", self.profile.timezone)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"GEO311_TIMEZONE was {self.timezone!r} but is expected to be an IANA "
                "time zone such as 'America/New_York'"
            ) from exc
        if self.remote_geocoder not in ("", *REMOTE_GEOCODERS):
            raise ConfigError(
                f"GEO311_REMOTE_GEOCODER was {self.remote_geocoder!r} but is expected to be "
                f"empty (off) or one of {REMOTE_GEOCODERS}"
            )
        if self.secret_key and (self.secret_key.strip().lower() in KNOWN_WEAK_SECRETS
                                or len(self.secret_key) < MIN_SECRET_LENGTH):
            raise ConfigError(
                "GEO311_SECRET_KEY is a published or short value: anyone could forge staff "
                f"sessions with it; use at least {MIN_SECRET_LENGTH} random characters "
                "(python -c 'import secrets; print(secrets.token_hex(32))'), or unset it "
                "to have one generated in the instance folder"
            )
        if self.boundary_tolerance_m < 0:
            raise ConfigError(
                f"GEO311_BOUNDARY_TOLERANCE_M was {self.boundary_tolerance_m} "
                "but is expected to be >= 0"
            )

    def __repr__(self) -> str:
        # The SMTP password and the secret key stay out of logs and tracebacks.
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            hidden = f.name in ("smtp_password", "secret_key") and value
            parts.append(f"{f.name}={'***' if hidden else repr(value)}")
        shown = ", ".join(parts)
        return f"Settings({shown})"

    @property
    def profile(self) -> CityProfile:
        """The city profile: ``city`` if set, else the one ``GEO311_CITY`` selects."""
        return load_profile(self.city) if self.city else active_profile()

    @property
    def routing_path(self) -> Path | None:
        """The routing file in use: ``routing_file``, else the profile's, else None."""
        return routing_path(self.profile.path, self.routing_file)

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

    def session_secret(self) -> str:
        """The key signing staff sessions: ``secret_key``, else one kept in the instance folder.

        Never a known value: when none is set, a random secret is generated on first
        start into ``instance/secret_key`` (owner-only), and every later start (and every
        worker) reads the same file. The file is written aside and linked into place,
        so two workers starting at once agree on one secret.
        """
        if self.secret_key:
            return self.secret_key
        folder = Path(self.instance_path)
        path = folder / SECRET_FILE
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            draft = folder / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass  # another process was first: use its secret
            finally:
                draft.unlink()
        found = path.read_text().strip()
        if len(found) < MIN_SECRET_LENGTH or found.lower() in KNOWN_WEAK_SECRETS:
            raise ConfigError(f"{path} holds a short or published secret; delete it to have "
                              "a new one generated")
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return found

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
                elif kind == "bool":
                    values[f.name] = _flag(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                expected = "yes or no (true/false, 1/0, on/off)" if kind == "bool" else \
                    f"a{'n' if kind == 'int' else ''} {kind}"
                raise ConfigError(f"{var} was {raw!r} but is expected to be {expected}") from exc
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
