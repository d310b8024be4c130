"""Bulk import of requests exported by a legacy CRM, through a declarative mapping.

A mapping (TOML) names the source columns for each geo311 field, how source
statuses map to open/closed, and which service code a source service name
gets. Rows are read, checked and stored in chunks; a bad row is reported with
its line number and reason and never stops the import.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

from geo311.districts import assign_by_address
from geo311.errors import InvalidRequest
from geo311.geocoding.cascade import Geocoder
from geo311.import_mapping import REQUIRED_FIELDS, Mapping
from geo311.import_mapping import read_mapping as read_mapping  # callers import it from here
from geo311.intake import Context, regroup_duplicates
from geo311.model import CLOSED, OPEN, Service
from geo311.sla import fill_expected
from geo311.store import Store

LOGGER = logging.getLogger(__name__)

GEOCODE_MODES = ("never", "missing", "always")
#: ``import_flags`` of a request whose date is before the mapping's earliest / ahead.
DATE_BEFORE_EARLIEST, DATE_IN_FUTURE = "date_before_earliest", "date_in_future"
CHUNK_ROWS = 100_000


@dataclass
class ImportSummary:
    """What an import did, for the closing report."""

    path: str
    rows_read: int = 0
    stored: int = 0
    updated: int = 0
    unchanged: int = 0
    repeated_in_file: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    unassigned: Counter[str] = field(default_factory=Counter)
    boundary_cases: Counter[str] = field(default_factory=Counter)
    outside_service_area: int = 0
    without_location: int = 0
    flagged: Counter[str] = field(default_factory=Counter)  # implausible dates, by flag
    services_created: list[str] = field(default_factory=list)
    first_requested: datetime | None = None
    duplicates: int = 0
    expected_set: int = 0  # requests given an SLA due time
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        """Throughput of the whole import."""
        return self.rows_read / self.seconds if self.seconds else 0.0

    def lines(self, max_rejects: int = 20) -> list[str]:
        """The summary as printable lines."""
        out = [
            f"{self.path}: {self.rows_read} rows read in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s)",
            f"stored {self.stored}, updated {self.updated}, unchanged {self.unchanged}, "
            f"rejected {len(self.rejected)}, repeated ids in file {self.repeated_in_file} "
            "(last row kept)",
            f"without location {self.without_location}, outside service area "
            f"{self.outside_service_area}",
        ]
        if self.flagged:
            out.append("flagged (stored, marked on the request): " + ", ".join(
                f"{n} {flag.replace('_', ' ')}" for flag, n in sorted(self.flagged.items())))
        if self.services_created:
            out.append(f"services added to the catalogue: {', '.join(self.services_created)}")
        for layer in sorted(set(self.unassigned) | set(self.boundary_cases)):
            out.append(f"layer {layer}: unassigned {self.unassigned[layer]}, "
                       f"boundary cases {self.boundary_cases[layer]}")
        for line, reason in self.rejected[:max_rejects]:
            out.append(f"rejected: {reason}" if reason.startswith("line") else
                       f"rejected line {line}: {reason}")
        if len(self.rejected) > max_rejects:
            out.append(f"... and {len(self.rejected) - max_rejects} more rejected rows")
        out.extend(self.notes)
        return out


def write_rejects(path: str | Path, rejected: list[tuple[int, str]]) -> None:
    """Write rejected lines and their reasons as CSV (``line,reason``) for the sender."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("line,reason\n")
        for line_no, reason in rejected:
            fh.write(f'{line_no},"{reason.replace(chr(34), chr(34) * 2)}"\n')


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by caller


def read_rows(
    path: Path, mapping: Mapping, rejected: list[tuple[int, str]]
) -> Iterator[pd.DataFrame]:
    """Yield chunks of mapped source columns (strings) with a ``line`` column.

    Rows with the wrong number of fields are rejected here with their line.
    """
    try:
        handle = _open_text(path)
    except OSError as exc:
        raise InvalidRequest(f"{path}: cannot be read: {exc.strerror}") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise InvalidRequest(f"{path}: the file is empty") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"{path}: not a readable CSV file: {exc}") from exc
        except _GZIP_ERRORS as exc:
            raise _damaged_gzip(path, exc) from exc
        wanted = dict(mapping.columns)
        absent = {f: c for f, c in wanted.items() if c not in header}
        required_absent = [f for f in absent if f in REQUIRED_FIELDS or f in (
            "service_code", "service_name") and not (
            wanted.get("service_code") in header or wanted.get("service_name") in header)]
        if required_absent:
            raise InvalidRequest(
                f"{path}: column(s) {[absent[f] for f in required_absent]} named by mapping "
                f"{mapping.name!r} are not in the header; it has {header}"
            )
        for f in absent:
            wanted.pop(f)
        positions = {f: header.index(c) for f, c in wanted.items()}
        width = len(header)
        kept: list[list[str]] = []
        lines: list[int] = []
        line_no = reader.line_num
        try:
            for row in reader:
                start_line, line_no = line_no + 1, reader.line_num
                if not row:
                    continue
                if len(row) != width:
                    rejected.append((start_line, f"line {start_line}: has {len(row)} fields "
                                                 f"but the header has {width}"))
                    continue
                kept.append(row)
                lines.append(start_line)
                if len(kept) >= CHUNK_ROWS:
                    yield _chunk(kept, lines, positions)
                    kept, lines = [], []
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"{path}: line {line_no + 1}: not valid CSV: {exc}") from exc
        except _GZIP_ERRORS as exc:
            raise _damaged_gzip(path, exc) from exc
        if kept:
            yield _chunk(kept, lines, positions)


def _count_lines(path: Path) -> int:
    """Lines in a (gzipped) file, to size a bulk load before reading it.

    Reading it whole first also finds a truncated or damaged gzip file before
    anything is stored.
    """
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as raw:
            return sum(block.count(b"\n") for block in iter(lambda: raw.read(1 << 20), b""))
    except _GZIP_ERRORS as exc:
        raise _damaged_gzip(path, exc) from exc
    except OSError as exc:
        raise InvalidRequest(f"{path}: cannot be read: {exc.strerror}") from exc


#: What reading a cut-off or corrupted gzip stream raises.
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _damaged_gzip(path: Path, exc: Exception) -> InvalidRequest:
    return InvalidRequest(f"{path} is a truncated or damaged gzip file: {exc}")


def _chunk(rows: list[list[str]], lines: list[int], positions: dict[str, int]) -> pd.DataFrame:
    columns = list(zip(*rows, strict=True))
    return pd.DataFrame({"line": lines, **{f: columns[i] for f, i in positions.items()}})


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name.strip()).strip("-").upper()[:64] or "UNKNOWN"


class _Rows:
    """One chunk being checked: keeps the rows still alive and their reasons."""

    def __init__(self, raw: pd.DataFrame, rejected: list[tuple[int, str]]) -> None:
        self.raw = raw
        self.ok = np.ones(len(raw), dtype=bool)
        self.rejected = rejected
        self._text: dict[str, pd.Series] = {}

    def reject(self, bad: np.ndarray, message: Callable[[int], str]) -> None:
        bad = bad & self.ok
        for i in np.flatnonzero(bad):
            line = int(self.raw["line"].iat[i])
            self.rejected.append((line, f"line {line}: {message(int(i))}"))
        self.ok &= ~bad

    def text(self, name: str) -> pd.Series:
        if name not in self._text:
            if name in self.raw:
                self._text[name] = self.raw[name].fillna("").astype(str).str.strip()
            else:
                self._text[name] = pd.Series("", index=self.raw.index, dtype=object)
        return self._text[name]


def _saying(message: str) -> Callable[[int], str]:
    """The same rejection message for every row."""
    return lambda i: message


def _parse_times(rows: _Rows, fld: str, mapping: Mapping, column: str) -> pd.Series:
    values = rows.text(fld)
    fmt = mapping.date_format
    parsed = pd.to_datetime(values.where(values != ""), format=fmt, errors="coerce")
    rows.reject(
        ((values != "") & parsed.isna()).to_numpy(),
        lambda i: f"{column} {values.iat[i]!r} is not a date in the format {fmt!r}",
    )
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize(
            mapping.timezone, ambiguous=np.ones(len(parsed), dtype=bool),
            nonexistent="shift_forward",
        )
    return parsed.dt.tz_convert("UTC")


def _parse_number(rows: _Rows, fld: str, column: str) -> np.ndarray:
    values = rows.text(fld)
    numbers = pd.to_numeric(values.where(values != ""), errors="coerce")
    rows.reject(
        ((values != "") & numbers.isna()).to_numpy(),
        lambda i: f"{column} {values.iat[i]!r} is not a number",
    )
    return numbers.to_numpy(dtype=float, copy=True)


def prepare_chunk(
    raw: pd.DataFrame, mapping: Mapping, rejected: list[tuple[int, str]],
    transformer: Transformer | None,
) -> pd.DataFrame:
    """Check and convert one chunk of source rows into store columns.

    Returns only the rows that passed; each failure is appended to ``rejected``.
    """
    rows = _Rows(raw, rejected)
    col = mapping.columns
    # No database text column holds a NUL (PostgreSQL refuses it, SQLite cuts text at it).
    for fld in raw.columns.drop("line"):
        has_nul = raw[fld].str.contains("\x00", regex=False).fillna(False).to_numpy(bool)
        rows.reject(has_nul, _saying(f"{col[fld]} contains a NUL byte"))
    external_id = rows.text("id")
    rows.reject((external_id == "").to_numpy(), lambda i: f"{col['id']} is empty")

    created = _parse_times(rows, "created", mapping, col["created"])
    rows.reject(created.isna().to_numpy(), lambda i: f"{col['created']} is empty")
    closed = (_parse_times(rows, "closed", mapping, col["closed"]) if "closed" in raw
              else pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]"))
    # The source's last change, else its close, else its creation: never the import time.
    changed = (_parse_times(rows, "updated", mapping, col["updated"]) if "updated" in raw
               else pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]"))
    updated = changed.fillna(closed).fillna(created)

    source_status = rows.text("status")
    if "status" in raw:
        status = source_status.map(mapping.status)
        known = sorted(mapping.status)
        rows.reject(
            status.isna().to_numpy(),
            lambda i: f"{col['status']} {source_status.iat[i]!r} is not in the mapping's "
                      f"[status] table {known}",
        )
        status = status.fillna(OPEN)
    else:
        status = pd.Series(np.where(closed.notna(), CLOSED, OPEN), index=raw.index)

    lon = _parse_number(rows, "lon", col.get("lon", "lon"))
    lat = _parse_number(rows, "lat", col.get("lat", "lat"))
    if transformer is not None and "x" in raw and "y" in raw:
        x = _parse_number(rows, "x", col["x"])
        y = _parse_number(rows, "y", col["y"])
        use_xy = (np.isnan(lon) | np.isnan(lat)) & ~(np.isnan(x) | np.isnan(y)) & (x != 0)
        if use_xy.any():
            lon[use_xy], lat[use_xy] = transformer.transform(x[use_xy], y[use_xy])
    zero = (lon == 0) & (lat == 0)
    if (spot := mapping.placeholder) is not None:  # the CRM's "no location", to 1e-4 degree
        zero |= (np.abs(lon - spot[0]) < 5e-5) & (np.abs(lat - spot[1]) < 5e-5)
    lon[zero], lat[zero] = np.nan, np.nan
    one_missing = np.isnan(lon) != np.isnan(lat)
    out_of_range = (np.abs(lon) > 180) | (np.abs(lat) > 90)  # False where NaN
    impossible = one_missing | out_of_range
    rows.reject(impossible, lambda i: f"impossible coordinates lon={lon[i]!r}, lat={lat[i]!r}")

    name = rows.text("service_name")
    code = rows.text("service_code")
    codes_by_name = {
        n: mapping.services.get(n, {}).get("code", "") or _slug(n) for n in name.unique()
    }
    code = code.where(code != "", name.map(codes_by_name))
    rows.reject(((code == "") | (code == "UNKNOWN")).to_numpy(),
                lambda i: "no service code or service name")

    frame = pd.DataFrame({
        "line": raw["line"].to_numpy(),
        "external_id": external_id.to_numpy(dtype=object),
        "external_parent_id": rows.text("parent_id").replace("", None).to_numpy(dtype=object),
        "source": mapping.source,
        "service_code": code.to_numpy(dtype=object),
        "service_name": name.where(name != "", code).to_numpy(dtype=object),
        "group": rows.text("group").to_numpy(dtype=object),
        "status": status.to_numpy(dtype=object),
        "status_notes": source_status.to_numpy(dtype=object),
        "description": rows.text("description").to_numpy(dtype=object),
        "address": rows.text("address").to_numpy(dtype=object),
        "zipcode": _zipcodes(rows.text("zipcode")).to_numpy(dtype=object),
        "geocode_match": np.where(np.isnan(lon), "none", "source"),
        "outside_service_area": False,
        "import_flags": _date_flags(created, mapping),
        "requested_datetime": created.to_numpy(),
        "updated_datetime": updated.to_numpy(),
        "closed_datetime": closed.to_numpy(),
        "lon": lon,
        "lat": lat,
    })
    frame["requested_datetime"] = pd.to_datetime(frame["requested_datetime"], utc=True)
    frame["closed_datetime"] = pd.to_datetime(frame["closed_datetime"], utc=True)
    frame["updated_datetime"] = pd.to_datetime(frame["updated_datetime"], utc=True)
    return frame[rows.ok].reset_index(drop=True)


def _date_flags(created: pd.Series, mapping: Mapping) -> np.ndarray:
    """Why a row's date is implausible (None: it is not): stored with the request."""
    flags = np.full(len(created), None, dtype=object)
    if mapping.earliest is not None:
        start = pd.Timestamp(mapping.earliest).tz_localize(mapping.timezone)
        flags[(created < start).to_numpy(bool)] = DATE_BEFORE_EARLIEST
    future = created > pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)
    flags[future.to_numpy(bool)] = DATE_IN_FUTURE
    return flags


def _zipcodes(text: pd.Series) -> pd.Series:
    """ZIPs as written, less what spreadsheets do: ``2108.0`` is 02108 (lost zero, float)."""
    return text.str.replace(r"\.0$", "", regex=True).str.replace(
        r"^(\d{3,4})$", lambda m: m[1].zfill(5), regex=True)


def import_file(
    store: Store, ctx: Context, path: str | Path, mapping: Mapping, *,
    geocode: str = "never", dedup: bool = False,
    progress: Callable[[int], None] | None = None, bulk_min_rows: int | None = None,
) -> ImportSummary:
    """Import a CRM export: check rows, assign districts, store in chunks.

    Re-importing the same file is idempotent (rows are matched on
    ``external_id``). Returns the summary; rejected rows are listed in it.
    ``bulk_min_rows`` overrides the store's size from which a load suspends
    index upkeep (``Store.bulk_load``).

    Examples
    --------
    >>> summary = import_file(store, ctx, "requests.csv", read_mapping("311.toml"))
    ... # doctest: +SKIP
    """
    if geocode not in GEOCODE_MODES:
        raise InvalidRequest(f"geocode was {geocode!r} but is expected to be in {GEOCODE_MODES}")
    path = Path(path)
    summary = ImportSummary(path=str(path))
    if geocode != "never" and ctx.geocoder is None:
        raise InvalidRequest(f"--geocode {geocode} needs a geocoder; the context has none")
    matches: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    transformer = (Transformer.from_crs(mapping.xy_crs, "EPSG:4326", always_xy=True)
                   if mapping.xy_crs else None)
    started = time.perf_counter()
    with store.requests.bulk_load(_count_lines(path), bulk_min_rows):
        for raw in read_rows(path, mapping, summary.rejected):
            summary.rows_read += len(raw)
            frame = prepare_chunk(raw, mapping, summary.rejected, transformer)
            if geocode != "never" and ctx.geocoder is not None:
                geocode_chunk(ctx.geocoder, frame, geocode, matches, failures)
            _store_chunk(store, ctx, frame, mapping, summary)
            if progress is not None:
                progress(len(raw))
    summary.expected_set = fill_expected(store)  # SLA due times of the new rows
    if geocode != "never":
        kinds = ", ".join(f"{m} {n}" for m, n in matches.most_common())
        summary.notes.append(
            f"--geocode {geocode}: {sum(matches.values())} addresses geocoded"
            + (f" ({kinds})" if kinds else "")
            + f"; {sum(failures.values())} could not be placed")
        summary.notes += [f"  not placed ({n}): {why}" for why, n in failures.most_common(5)]
    if dedup and summary.first_requested is not None:  # after the indexes are back
        _, summary.duplicates, changed = regroup_duplicates(
            store, since=summary.first_requested, actor="import")
        summary.notes.append(
            f"duplicates: {summary.duplicates} requests since "
            f"{summary.first_requested:%Y-%m-%d} are in a group ({changed} links changed)")
    summary.rejected.sort()
    summary.seconds = time.perf_counter() - started
    LOGGER.info("imported %s: %s stored, %s updated, %s rejected", path, summary.stored,
                summary.updated, len(summary.rejected))
    store.audit.add("import", "file", path.name, {
        "mapping": mapping.name, "rows_read": summary.rows_read, "stored": summary.stored,
        "updated": summary.updated, "rejected": len(summary.rejected),
    }, actor="import")
    return summary


def geocode_chunk(geocoder: Geocoder, frame: pd.DataFrame, mode: str,
                  matches: Counter[str], failures: Counter[str]) -> None:
    """Geocode a checked chunk's addresses in place (``missing``: rows without a point).

    With ``always`` a row the geocoder cannot place keeps its source coordinates.
    """
    lon = frame["lon"].to_numpy(dtype=float, copy=True)
    lat = frame["lat"].to_numpy(dtype=float, copy=True)
    has_address = (frame["address"] != "").to_numpy()
    todo = has_address & (np.isnan(lon) if mode == "missing" else True)
    if not todo.any():
        return
    found = geocoder.geocode_many(frame["address"].to_numpy()[todo].tolist())
    ok = (found["match"] != "none").to_numpy()
    rows = np.flatnonzero(todo)
    lon[rows[ok]] = found["lon"].to_numpy()[ok]
    lat[rows[ok]] = found["lat"].to_numpy()[ok]
    match = frame["geocode_match"].to_numpy(dtype=object, copy=True)
    match[rows[ok]] = found["match"].to_numpy(dtype=object)[ok]
    frame["lon"], frame["lat"], frame["geocode_match"] = lon, lat, match
    matches.update(found["match"][ok])
    failures.update(found["reason"][~ok])


def _store_chunk(
    store: Store, ctx: Context, frame: pd.DataFrame, mapping: Mapping, summary: ImportSummary
) -> None:
    """Assign districts to one checked chunk and write it; counts go into ``summary``."""
    repeated = frame["external_id"].duplicated(keep="last").to_numpy()
    summary.repeated_in_file += int(repeated.sum())
    frame = frame[~repeated].reset_index(drop=True)
    summary.services_created += store.catalogue.ensure(_services_in(frame, mapping))
    if len(frame):
        first = frame["requested_datetime"].min().to_pydatetime()
        if summary.first_requested is None or first < summary.first_requested:
            summary.first_requested = first
    located = ~np.isnan(frame["lon"].to_numpy())
    summary.without_location += int((~located).sum())
    summary.flagged.update(f for f in frame["import_flags"] if isinstance(f, str) and f)
    districts = {}
    if len(frame):
        assigned = assign_by_address(ctx.index, frame["lon"].to_numpy(), frame["lat"].to_numpy(),
                                     frame["address"].tolist(), grid=ctx.grid)
        for layer in ctx.index.layers:
            a = assigned[layer.name]
            districts[layer.version_id] = (a.district_id, a.boundary_case)
            summary.unassigned[layer.name] += int((pd.isna(a.district_id) & located).sum())
            summary.boundary_cases[layer.name] += int(np.asarray(a.boundary_case).sum())
        if ctx.service_area:
            outside = located & pd.isna(assigned[ctx.service_area].district_id)
            frame["outside_service_area"] = outside
            summary.outside_service_area += int(outside.sum())
    result = store.requests.add_many(frame.drop(columns=["line", "service_name", "group"]),
                                     districts)
    summary.stored += result.stored
    summary.updated += result.updated
    summary.unchanged += result.unchanged


def _services_in(frame: pd.DataFrame, mapping: Mapping) -> list[Service]:
    firsts = frame.drop_duplicates("service_code")
    out = []
    for row in firsts.itertuples(index=False):
        extra = mapping.services.get(row.service_name, {})
        out.append(Service(
            code=row.service_code, name=row.service_name,
            group=extra.get("group", row.group or ""),
            duplicate_rule=mapping.duplicate_rules.get(row.service_name),
            sla_days=_number(extra.get("sla_days")), sla_hours=_number(extra.get("sla_hours")),
        ))
    return out


def _number(value: object) -> float | None:
    """A mapping's SLA amount as a number (None when absent)."""
    if value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"SLA amount {value!r} in the mapping is not a number") from exc
