"""Geocoding: reference layers (address points, intersections, centrelines) and batch CSVs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext

from geo311.gazetteer import learn_references, load_reference
from geo311.geocoding.batch import geocode_csv
from geo311.geocoding.references import KINDS
from geo311_web import state

_COLUMN_ROLES = ("address", "number", "street", "pre_dir", "zip", "lon", "lat", "street_1",
                 "street_2")


@click.group("addresses", cls=AppGroup)
def addresses() -> None:
    """Geocoding references: address points, intersections, centrelines, OSM."""


@addresses.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(KINDS), help="What the file holds (default: detected).")
@click.option("--source", default="", help="Name kept on every row (default: the file name).")
@click.option("--address-column", help="Full address column (points).")
@click.option("--number-column", help="House number column (points).")
@click.option("--street-column", help="Street name column (points, centrelines).")
@click.option("--pre-dir-column", help="Street pre-direction column (points).")
@click.option("--zip-column", help="ZIP code column.")
@click.option("--lon-column", help="Longitude column (default: detected, else the geometry).")
@click.option("--lat-column", help="Latitude column.")
@click.option("--street-1-column", help="First street column (intersections).")
@click.option("--street-2-column", help="Second street column (intersections).")
def addresses_load(path: Path, kind: str | None, source: str, **columns: str | None) -> None:
    """Load a reference file; reloading a source replaces its rows."""
    s = state()
    s.store.schema.init()
    chosen = {role: columns.get(f"{role}_column") or "" for role in _COLUMN_ROLES}
    kind, n = load_reference(s.store, path, kind, chosen, source=source, actor="cli")
    click.echo(f"loaded {n} {kind} from {path.name} (source {source or path.name!r})")


@addresses.command("learn")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Only requests from this date.")
def addresses_learn(since: datetime | None) -> None:
    """Learn address points and intersections from stored requests with trusted coordinates."""
    s = state()
    when = since.replace(tzinfo=s.settings.zone) if since else None
    points, crossings = learn_references(s.store, since=when, actor="cli")
    click.echo(f"learned {points} address points and {crossings} intersections from stored "
               "requests")


@addresses.command("list")
def addresses_list() -> None:
    """List the stored reference sources."""
    for kind, source, n in state().store.addresses.reference_sources():
        click.echo(f"{kind:<14} {n:>7}  {source}")


@click.command("geocode")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--address-column", required=True, help="Column holding the addresses.")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def geocode_cmd(path: Path, address_column: str, output: Path) -> None:
    """Geocode a CSV: every input column plus lat, long and the geocode's match, score, reason."""
    geocoder = state().context().geocoder
    if geocoder is None:
        raise click.ClickException("no geocoder: load references with 'geo311 addresses load'")
    counts = geocode_csv(geocoder, path, output, address_column)
    total = sum(counts.values())
    click.echo(f"wrote {total} rows to {output}: "
               + ", ".join(f"{m} {n}" for m, n in sorted(counts.items())))


COMMANDS = (addresses, geocode_cmd)
