"""The city profile: everything that is the city's and not geo311's, read from one TOML file.

geo311 names no city in its code. A profile says the city's name, state, place names
and ZIP codes (what the geocoder accepts), its time zone and business calendar, its
catalogue and mappings, its layers, its house-numbering rules (or none), where the
map opens, its branding and the files its demo loads. Five keys are required
(``name``, ``state``, ``timezone``, ``place_names``, ``zip_codes``); every other key
is optional. Paths in a profile are relative to the profile file.

Shipped profiles live in ``geo311/cities/NAME/city.toml``; ``GEO311_CITY`` (a shipped
name or a path) selects one, and ``default_city()`` is used when it is unset.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geo311.business_calendar import WEEKDAYS, BusinessCalendar, read_calendar
from geo311.errors import ConfigError
from geo311.geocoding.side import AddressGrid

#: Where the shipped profiles are: ``cities/NAME/city.toml``.
CITIES_PATH = Path(__file__).resolve().parent / "cities"
#: The profile used when ``GEO311_CITY`` is unset (named in ``cities/default_city.txt``).
DEFAULT_CITY_FILE = CITIES_PATH / "default_city.txt"
#: A ``[demo]`` folder written so: the data shipped with geo311.
SHIPPED = "shipped"


def _shipped_root() -> Path:
    """The folder holding ``layers/`` and ``shapefiles/``: the package ``geo311_data``.

    An installed geo311 ships them as ``geo311_data`` (pyproject maps it to the
    checkout's root, so an editable install finds the checkout's folders); a checkout
    used without installing it has them at its root.
    """
    spec = find_spec("geo311_data")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "layers").is_dir():
            return Path(location).resolve()
    return Path(__file__).resolve().parent.parent


#: Where the shipped ``layers/`` and ``shapefiles/`` are, installed or in a checkout;
#: layer definitions name their files relative to it (``shapefiles/wards_2023/...``),
#: and a profile names them as ``shipped/layers/...``.
SHIPPED_ROOT = _shipped_root()
#: The keys every profile has; all others are optional.
REQUIRED_KEYS = ("name", "state", "timezone", "place_names", "zip_codes")
OPTIONAL_KEYS = ("title", "neighbourhoods", "calendar", "catalogue", "mappings", "layers",
                 "service_area_layer", "numbering", "map", "branding", "demo")
#: The two-letter codes of the states, DC and the territories the holidays library knows.
STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR UM VI".split())
_ZIP = re.compile(r"\d{5}")
_NEIGHBOURHOOD_KEYS = ("name", "zip_codes", "layer", "districts")
_CALENDAR_KEYS = ("file", "closures", "hours", "workdays", "state_holidays")
_NUMBERING_KEYS = ("even_side_ns", "even_side_ew", "cross_street_every", "numbers_per_mile")
_MAP_KEYS = ("centre", "zoom")
_BRANDING_KEYS = ("name", "logo", "colours", "contact")
_DEMO_KEYS = ("layers", "data", "catalogue", "references", "requests", "learn")


@dataclass(frozen=True)
class Neighbourhood:
    """A name residents write instead of the city's, and the part of the city it covers.

    The part is given by ZIP codes, or by districts of a named layer, or both.
    """

    name: str
    zip_codes: tuple[str, ...] = ()
    layer: str = ""
    districts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Branding:
    """How the city's pages present it: name, logo, colours and contact."""

    name: str = ""
    logo: str = ""
    colours: tuple[tuple[str, str], ...] = ()  # (role, "#rrggbb"), e.g. ("primary", ...)
    contact: str = ""


@dataclass(frozen=True)
class DemoFiles:
    """The shipped files ``geo311 demo`` loads for a city.

    ``layers`` (layer definitions) and ``data`` are folders, or ``SHIPPED`` for the
    data shipped with geo311 (``GEO311_LAYERS_PATH`` and ``GEO311_DATA_PATH``);
    ``layers`` empty loads none. ``references`` and request files are relative to
    ``data``.
    """

    layers: str = ""
    data: str = ""
    catalogue: str = ""
    references: tuple[str, ...] = ()
    requests: tuple[tuple[str, str], ...] = ()  # (file, mapping name or path)
    learn: bool = True


@dataclass(frozen=True)
class CityProfile:
    """One city, as its profile file describes it (see the module docstring)."""

    name: str
    state: str
    timezone: str
    place_names: tuple[str, ...]
    zip_codes: tuple[str, ...]
    path: Path | None = None
    title: str = ""
    neighbourhoods: tuple[Neighbourhood, ...] = ()
    calendar_file: Path | None = None
    closures: tuple[date, ...] = ()
    hours: tuple[time, time] = (time(8, 30), time(16, 30))
    workdays: frozenset[int] = frozenset(range(5))
    state_holidays: bool = True
    catalogue: str = ""
    mappings: tuple[str, ...] = ()
    layers: Path | None = None
    service_area_layer: str = ""
    grid: AddressGrid | None = None
    map_centre: tuple[float, float] | None = None  # (lat, lon), as Leaflet takes it
    map_zoom: int = 11
    branding: Branding = field(default_factory=Branding)
    demo: DemoFiles | None = None

    @property
    def places(self) -> frozenset[str]:
        """Every place name the geocoder accepts, upper case: the city's and its neighbourhoods'."""
        return frozenset(p.upper() for p in (*self.place_names,
                                             *(n.name for n in self.neighbourhoods)))

    @property
    def slug(self) -> str:
        """The profile's short name: its folder for a shipped one, else the city's name."""
        if self.path is not None and self.path.name == "city.toml":
            return self.path.parent.name
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    @property
    def remote_suffix(self) -> str:
        """What a remote geocoder query ends with: ``Springfield, MA``."""
        return f"{self.name}, {self.state}"

    def own_mapping(self, name: str | Path) -> Path | None:
        """A mapping file the profile lists, known by its name ("springfield-311"), if any."""
        return next((Path(f) for f in self.mappings
                     if Path(f).stem == str(name) and Path(f).suffix and Path(f).is_file()), None)

    def neighbourhood(self, name: str) -> Neighbourhood | None:
        """The neighbourhood written ``name`` (any case), if the profile has it."""
        key = " ".join(name.upper().split())
        return next((n for n in self.neighbourhoods if n.name.upper() == key), None)

    def geocoder_options(self) -> dict[str, Any]:
        """The city's part of a ``Geocoder``: name, state, places, neighbourhoods, grid.

        Examples
        --------
        >>> sorted(load_profile().geocoder_options())
        ['city', 'grid', 'neighbourhoods', 'places', 'state']
        """
        return {"city": self.name, "state": self.state, "places": self.place_names,
                "neighbourhoods": {n.name: n.zip_codes for n in self.neighbourhoods},
                "grid": self.grid}

    def calendar(self) -> BusinessCalendar:
        """The city's business calendar: its calendar file, else the state's public holidays.

        Closure dates of the profile are added to either.
        """
        found = self.__dict__.get("_calendar")
        if found is None:
            found = _calendar_of(self)
            object.__setattr__(self, "_calendar", found)  # asked for every SLA clock
        return found


def read_profile(path: str | Path) -> CityProfile:
    """Read and validate a city profile file; errors name the file and the key.

    Examples
    --------
    >>> p = read_profile(profile_path(default_city()))
    >>> len(p.state), p.timezone == p.calendar().timezone
    (2, True)
    """
    problems, profile = check_profile(path)
    if profile is None:
        raise ConfigError(problems[0])
    return profile


def check_profile(path: str | Path) -> tuple[list[str], CityProfile | None]:
    """Every problem of a profile file (each naming the file and key), and the profile if none."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot be read: {exc}"], None
    except tomllib.TOMLDecodeError as exc:
        return [f"{path}: not valid TOML: {exc}"], None
    reader = _Reader(path, raw)
    profile = reader.profile()
    return reader.problems, (profile if not reader.problems else None)


def profile_path(name_or_path: str | Path) -> Path:
    """The file of a shipped profile by name (``springfield``), else ``name_or_path`` itself."""
    text = str(name_or_path)
    shipped = CITIES_PATH / text / "city.toml"
    if "/" not in text and not text.endswith(".toml") and shipped.is_file():
        return shipped
    path = Path(text)
    if path.is_dir() and (path / "city.toml").is_file():
        return path / "city.toml"
    if not path.is_file():
        raise ConfigError(f"GEO311_CITY was {text!r} but is neither a shipped city "
                          f"{shipped_cities()} nor a profile file")
    return path


def shipped_cities() -> list[str]:
    """The names of the shipped profiles."""
    return sorted(p.parent.name for p in CITIES_PATH.glob("*/city.toml"))


@functools.lru_cache(maxsize=1)
def default_city() -> str:
    """The shipped profile used when ``GEO311_CITY`` is unset."""
    return DEFAULT_CITY_FILE.read_text(encoding="utf-8").strip()


def load_profile(name_or_path: str | Path = "") -> CityProfile:
    """A shipped profile by name or a profile file by path; empty means ``default_city()``."""
    return _named(str(name_or_path))


@functools.lru_cache(maxsize=32)
def _named(name_or_path: str) -> CityProfile:
    # Asked for every SLA clock on "the city's calendar": resolved once per name.
    return _load(str(profile_path(name_or_path or default_city()).resolve()))


@functools.lru_cache(maxsize=16)
def _load(path: str) -> CityProfile:
    return read_profile(path)


def active_profile(environ: Mapping[str, str] | None = None) -> CityProfile:
    """The profile ``GEO311_CITY`` selects (read when asked, never at import)."""
    env = os.environ if environ is None else environ
    return load_profile(env.get("GEO311_CITY", "").strip())


@functools.lru_cache(maxsize=16)
def _calendar_of(profile: CityProfile) -> BusinessCalendar:
    if profile.calendar_file is not None:
        base = read_calendar(profile.calendar_file)
        return BusinessCalendar(
            name=base.name, timezone=base.timezone, workdays=base.workdays,
            day_start=base.day_start, day_end=base.day_end, holiday_rules=base.holiday_rules,
            dates=base.dates | frozenset(profile.closures), title=base.title,
            state_holidays=base.state_holidays)
    return BusinessCalendar(
        name=profile.slug, timezone=profile.timezone, workdays=profile.workdays,
        day_start=profile.hours[0], day_end=profile.hours[1], dates=frozenset(profile.closures),
        title=f"{profile.title or profile.name} business days",
        state_holidays=profile.state if profile.state_holidays else "")


class _Reader:
    """Reads a parsed profile, collecting every problem instead of stopping at the first."""

    def __init__(self, path: Path, raw: dict[str, Any]) -> None:
        self.path = path
        self.base = path.resolve().parent
        self.raw = raw
        self.problems: list[str] = []
        self.profile_layers: Path | None = None

    def bad(self, key: str, message: str) -> None:
        self.problems.append(f"{self.path}: `{key}` {message}")

    def text(self, table: Mapping[str, Any], key: str, where: str = "",
             required: bool = False) -> str:
        full = f"{where}{key}"
        if key not in table:
            if required:
                self.bad(full, "is missing (every profile has name, state, timezone, "
                               "place_names and zip_codes)")
            return ""
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            self.bad(full, f"was {value!r} but is expected to be non-empty text")
            return ""
        return value.strip()

    def texts(self, table: Mapping[str, Any], key: str, where: str = "",
              required: bool = False) -> tuple[str, ...]:
        full = f"{where}{key}"
        if key not in table:
            if required:
                self.bad(full, "is missing (every profile has name, state, timezone, "
                               "place_names and zip_codes)")
            return ()
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip()
                                                  for v in value):
            self.bad(full, f"was {value!r} but is expected to be a list of non-empty texts")
            return ()
        return tuple(v.strip() for v in value)

    def zips(self, table: Mapping[str, Any], key: str, where: str = "",
             required: bool = False) -> tuple[str, ...]:
        raw = table.get(key)
        if isinstance(raw, list):
            raw = [str(v) if isinstance(v, int) else v for v in raw]
            table = {**table, key: raw}
        found = self.texts(table, key, where, required)
        wrong = [z for z in found if not _ZIP.fullmatch(z)]
        if wrong:
            self.bad(f"{where}{key}", f"has {wrong[:3]} but ZIP codes are five digits")
            return ()
        return found

    def table(self, key: str, known: tuple[str, ...]) -> dict[str, Any]:
        value = self.raw.get(key, {})
        if not isinstance(value, dict):
            self.bad(key, f"was {value!r} but is expected to be a table ([{key}])")
            return {}
        self.unknown(value, known, f"{key}.")
        return value

    def unknown(self, table: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
        for k in table:
            if k not in known:
                self.bad(f"{where}{k}", f"is not a profile key; the keys here are "
                                        f"{', '.join(known)}")

    def file(self, value: str, key: str) -> Path | None:
        shipped = value.startswith(f"{SHIPPED}/")  # in geo311's own data, wherever installed
        path = (SHIPPED_ROOT / value[len(SHIPPED) + 1:] if shipped else self.base / value).resolve()
        if not path.exists():
            self.bad(key, f"names {value!r} but {path} does not exist")
            return None
        return path

    def profile(self) -> CityProfile | None:
        raw = self.raw
        self.unknown(raw, REQUIRED_KEYS + OPTIONAL_KEYS, "")
        name = self.text(raw, "name", required=True)
        state = self.text(raw, "state", required=True).upper()
        if state and state not in STATES:
            self.bad("state", f"was {raw['state']!r} but is expected to be a state's two "
                              "letters, such as 'MA'")
        timezone = self.text(raw, "timezone", required=True)
        if timezone:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                self.bad("timezone", f"was {timezone!r} but is expected to be an IANA time "
                                     "zone such as 'America/New_York'")
        places = self.texts(raw, "place_names", required=True)
        zips = self.zips(raw, "zip_codes", required=True)
        if "place_names" in raw and not places and not any("place_names" in p
                                                             for p in self.problems):
            self.bad("place_names", "is empty: give at least the city's own name")
        extra: dict[str, Any] = {}
        extra["title"] = self.text(raw, "title") if "title" in raw else ""
        extra["neighbourhoods"] = self.neighbourhoods()
        extra.update(self.calendar_keys())
        catalogue = self.text(raw, "catalogue")
        if catalogue:
            extra["catalogue"] = self.named_or_file(catalogue, "catalogue")
        extra["mappings"] = tuple(self.named_or_file(m, "mappings")
                                  for m in self.texts(raw, "mappings"))
        layers = self.text(raw, "layers")
        extra["layers"] = self.profile_layers = self.file(layers, "layers") if layers else None
        extra["service_area_layer"] = self.text(raw, "service_area_layer")
        extra["grid"] = self.numbering()
        extra.update(self.map_keys())
        extra["branding"] = self.branding()
        extra["demo"] = self.demo()
        if self.problems:
            return None
        return CityProfile(name=name, state=state, timezone=timezone, place_names=places,
                           zip_codes=zips, path=self.path.resolve(), **extra)

    def named_or_file(self, value: str, key: str) -> str:
        """A shipped name stays a name; a path is made absolute against the profile."""
        if "/" not in value and not value.endswith((".toml", ".json")):
            return value
        found = self.file(value, key)
        return str(found) if found else value

    def neighbourhoods(self) -> tuple[Neighbourhood, ...]:
        value = self.raw.get("neighbourhoods", [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.bad("neighbourhoods", "is expected to be a list of tables "
                                       "([[neighbourhoods]] with name and zip_codes)")
            return ()
        out = []
        for i, n in enumerate(value):
            where = f"neighbourhoods[{i}]."
            self.unknown(n, _NEIGHBOURHOOD_KEYS, where)
            nb = Neighbourhood(name=self.text(n, "name", where, required=True),
                               zip_codes=self.zips(n, "zip_codes", where),
                               layer=self.text(n, "layer", where),
                               districts=self.texts(n, "districts", where))
            if not nb.zip_codes and not nb.districts:
                self.bad(f"{where}name", f"{nb.name!r} covers nothing: give zip_codes, or "
                                         "layer and districts")
            if bool(nb.layer) != bool(nb.districts):
                self.bad(f"{where}layer", "and `districts` go together")
            out.append(nb)
        return tuple(out)

    def calendar_keys(self) -> dict[str, Any]:
        cal = self.table("calendar", _CALENDAR_KEYS)
        out: dict[str, Any] = {}
        if "file" in cal:
            value = self.text(cal, "file", "calendar.")
            found = self.file(value, "calendar.file") if value else None
            if found is not None:
                try:
                    read_calendar(found)
                except Exception as exc:  # noqa: BLE001 - reported as a finding
                    self.bad("calendar.file", f"cannot be used: {exc}")
                out["calendar_file"] = found
        try:
            out["closures"] = tuple(date.fromisoformat(str(d)) for d in cal.get("closures", []))
        except (TypeError, ValueError) as exc:
            self.bad("calendar.closures", f"is expected to be a list of dates: {exc}")
        if "hours" in cal:
            try:
                start, end = (time.fromisoformat(h) for h in cal["hours"])
                if end <= start:
                    raise ValueError("the hours end before they start")
                out["hours"] = (start, end)
            except (TypeError, ValueError) as exc:
                self.bad("calendar.hours", f"was {cal['hours']!r} but is expected to be two "
                                           f"times such as ['08:30', '16:30']: {exc}")
        if "workdays" in cal:
            days = self.texts(cal, "workdays", "calendar.")
            wrong = [d for d in days if d.lower()[:3] not in WEEKDAYS]
            if wrong:
                self.bad("calendar.workdays", f"has {wrong} but days are {WEEKDAYS}")
            else:
                out["workdays"] = frozenset(WEEKDAYS.index(d.lower()[:3]) for d in days)
        if "state_holidays" in cal:
            if not isinstance(cal["state_holidays"], bool):
                self.bad("calendar.state_holidays", "is expected to be true or false")
            else:
                out["state_holidays"] = cal["state_holidays"]
        return out

    def numbering(self) -> AddressGrid | None:
        if "numbering" not in self.raw:
            return None
        grid = self.table("numbering", _NUMBERING_KEYS)
        try:
            return AddressGrid(**grid)
        except (ConfigError, TypeError) as exc:
            self.bad("numbering", f"is not a usable numbering rule: {exc}")
            return None

    def map_keys(self) -> dict[str, Any]:
        m = self.table("map", _MAP_KEYS)
        out: dict[str, Any] = {}
        if "centre" in m:
            c = m["centre"]
            if (not isinstance(c, list) or len(c) != 2
                    or not all(isinstance(v, int | float) for v in c)
                    or not (-90 <= c[0] <= 90 and -180 <= c[1] <= 180)):
                self.bad("map.centre", f"was {c!r} but is expected to be [lat, lon]")
            else:
                out["map_centre"] = (float(c[0]), float(c[1]))
        if "zoom" in m:
            z = m["zoom"]
            if not isinstance(z, int) or not 1 <= z <= 19:
                self.bad("map.zoom", f"was {z!r} but is expected to be a whole number 1-19")
            else:
                out["map_zoom"] = z
        return out

    def branding(self) -> Branding:
        b = self.table("branding", _BRANDING_KEYS)
        colours = b.get("colours", {})
        if not isinstance(colours, dict) or not all(
                isinstance(v, str) and re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", v)
                for v in colours.values()):
            self.bad("branding.colours", f"was {colours!r} but is expected to be a table of "
                                         "colours such as primary = '#1f4e79'")
            colours = {}
        return Branding(name=self.text(b, "name", "branding."),
                        logo=self.text(b, "logo", "branding."),
                        colours=tuple(sorted(colours.items())),
                        contact=self.text(b, "contact", "branding."))

    def demo(self) -> DemoFiles | None:
        if "demo" not in self.raw:
            return None
        d = self.table("demo", _DEMO_KEYS)
        folders: dict[str, str] = {}
        for key in ("layers", "data"):
            value = self.text(d, key, "demo.")
            found = self.file(value, f"demo.{key}") if value and value != SHIPPED else None
            folders[key] = (value if value == SHIPPED else str(found) if found
                            else str(self.profile_layers or "") if key == "layers"
                            else str(self.base))
        requests = []
        for i, r in enumerate(d.get("requests", [])):
            if not isinstance(r, dict) or set(r) != {"file", "mapping"}:
                self.bad(f"demo.requests[{i}]", f"was {r!r} but is expected to be a table "
                                                "with file and mapping")
                continue
            mapping = str(r["mapping"])
            if "/" in mapping or mapping.endswith(".toml"):
                found = self.file(mapping, f"demo.requests[{i}].mapping")
                mapping = str(found) if found else mapping
            requests.append((str(r["file"]), mapping))
        catalogue = self.text(d, "catalogue", "demo.")
        learn = d.get("learn", True)
        if not isinstance(learn, bool):
            self.bad("demo.learn", "is expected to be true or false")
            learn = True
        return DemoFiles(layers=folders["layers"], data=folders["data"],
                         catalogue=self.named_or_file(catalogue, "demo.catalogue")
                         if catalogue else "",
                         references=self.texts(d, "references", "demo."),
                         requests=tuple(requests), learn=learn)
