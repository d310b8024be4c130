"""Requests and the catalogue: import, export, duplicate groups, services, public records."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click
from flask.cli import AppGroup, with_appcontext
from tqdm import tqdm

from geo311.catalogue import load_catalogue, read_catalogue
from geo311.export import (
    LAYER_FORMATS,
    REQUEST_FORMATS,
    RequestFilter,
    export_layer,
    export_requests,
)
from geo311.imports import GEOCODE_MODES, import_file, read_mapping, write_rejects
from geo311.intake import regroup_duplicates
from geo311.open311_service import refresh_stored_records
from geo311.referral import load_routing
from geo311_web import state


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mapping", "mapping_name", required=True,
              help="Shipped mapping name (see the city profile's mappings) or a TOML file.")
@click.option("--geocode", type=click.Choice(GEOCODE_MODES), default="never", show_default=True)
@click.option("--dedup/--no-dedup", default=False, show_default=True)
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write rejected lines and reasons to this CSV.")
@click.option("--bulk-min-rows", type=click.IntRange(min=1), envvar="GEO311_BULK_MIN_ROWS",
              help="On PostGIS, a load of at least this many rows (and at least the stored "
                   "count) rebuilds the indexes once at its end [default: 100000].")
@with_appcontext
def import_cmd(path: Path, mapping_name: str, geocode: str, dedup: bool,
               rejects: Path | None, bulk_min_rows: int | None) -> None:
    """Import requests exported by a legacy CRM."""
    s = state()
    s.store.schema.init()
    mapping = read_mapping(mapping_name)
    with tqdm(desc=path.name, unit=" rows", disable=None) as bar:
        summary = import_file(s.store, s.context(), path, mapping, geocode=geocode,
                              dedup=dedup, progress=bar.update, bulk_min_rows=bulk_min_rows)
    for line in summary.lines():
        click.echo(line)
    click.echo(refresh_stored_records(s.store, s.settings.zone,
                                      load_routing(s.settings.routing_path)))
    if rejects is not None:
        write_rejects(rejects, summary.rejected)


@click.command("dedup")
@click.option("--recompute", is_flag=True, required=True,
              help="Recluster stored requests in time order with each service's rule.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Only requests from this date (earlier ones keep their groups).")
@with_appcontext
def dedup_cmd(recompute: bool, since: datetime | None) -> None:
    """Merge duplicate requests into groups, as live intake does."""
    s = state()
    when = since.replace(tzinfo=s.settings.zone) if since else None
    total, children, changed = regroup_duplicates(s.store, since=when, actor="cli")
    click.echo(f"{total} requests reclustered: {children} are duplicates in a group; "
               f"{changed} links changed")


@click.group("groups", cls=AppGroup)
def groups() -> None:
    """Staff corrections to duplicate groups (each one audited)."""


@groups.command("unmerge")
@click.argument("request_id", type=int)
def groups_unmerge(request_id: int) -> None:
    """Take a request out of its group."""
    state().store.duplicates.unmerge(request_id, actor="cli")
    click.echo(f"request {request_id} is a group of its own")


@groups.command("move")
@click.argument("request_id", type=int)
@click.option("--into", "into_id", type=int, required=True, help="A request of the group.")
def groups_move(request_id: int, into_id: int) -> None:
    """Move a request into the group of another."""
    store = state().store
    store.duplicates.mark(request_id, into_id, actor="cli")
    group = store.requests.get(request_id).duplicate_of
    click.echo(f"request {request_id} is now in group {group}")


@groups.command("merge")
@click.argument("first_id", type=int)
@click.argument("second_id", type=int)
def groups_merge(first_id: int, second_id: int) -> None:
    """Join the groups of two requests under the older one."""
    root = state().store.duplicates.merge_groups(first_id, second_id, actor="cli")
    click.echo(f"groups merged into {root}")


@click.group("export", cls=AppGroup)
def export() -> None:
    """Export requests or layers as files."""


@export.command("requests")
@click.option("--format", "fmt", type=click.Choice(REQUEST_FORMATS), default="csv")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--include-private", is_flag=True,
              help="Add reporters' personal data (staff only).")
@click.option("--from", "start", type=click.DateTime(), help="Requested on or after (UTC).")
@click.option("--to", "end", type=click.DateTime(), help="Requested on or before (UTC).")
@click.option("--service", "services", multiple=True, help="Service code (repeatable).")
@click.option("--status", type=click.Choice(["open", "closed"]))
@click.option("--district", "districts", multiple=True, metavar="LAYER:ID",
              help="District of an active layer (repeatable; several of one layer: any).")
def export_requests_cmd(fmt: str, output: Path, include_private: bool, start: datetime | None,
                        end: datetime | None, services: tuple[str, ...], status: str | None,
                        districts: tuple[str, ...]) -> None:
    """Export requests (all, or those the filters take), one row each, with districts."""
    pairs = []
    for text in districts:
        layer, sep, district = text.partition(":")
        if not sep or not layer or not district:
            raise click.BadParameter(f"{text!r} is not LAYER:ID", param_hint="--district")
        pairs.append((layer, district))
    where = RequestFilter(service_codes=services, status=status, districts=pairs,
                          start=start.replace(tzinfo=UTC) if start else None,
                          end=end.replace(tzinfo=UTC) if end else None)
    started = time.perf_counter()
    with tqdm(desc=output.name, unit=" rows", disable=None) as bar:
        n = export_requests(state().store, output, fmt, include_private=include_private,
                            where=where, progress=bar.update)
    took = time.perf_counter() - started
    click.echo(f"wrote {n} requests to {output} in {took:.1f} s "
               f"({output.stat().st_size / 1e6:,.1f} MB)")


@export.command("layer")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(LAYER_FORMATS), default="shp")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", type=int, help="Version (default: active).")
def export_layer_cmd(name: str, fmt: str, output: Path, version: int | None) -> None:
    """Export a boundary layer (shp is written as a .zip)."""
    n = export_layer(state().store, name, output, fmt, version=version)
    click.echo(f"wrote {n} districts of {name} to {output}")


@click.group("services", cls=AppGroup)
def services_group() -> None:
    """The service catalogue: load a city's file, list what is offered."""


@services_group.command("load")
@click.argument("path")
def services_load(path: str) -> None:
    """Check and load a catalogue (TOML or JSON file, or a shipped name, as the city profile's)."""
    s = state()
    s.store.schema.init()
    services = read_catalogue(path)
    added, updated = load_catalogue(s.store, services, source=str(path), actor="cli")
    click.echo(f"loaded {len(services)} services from {path}: {added} added, {updated} updated")


@services_group.command("list")
def services_list() -> None:
    """List the active services."""
    for sv in state().store.catalogue.services():
        sla = f"{sv.sla_days:g} d" if sv.sla_days else "-"
        click.echo(f"{sv.code:<10} {sv.name[:44]:<44} {sv.group[:22]:<22} SLA {sla:<6} "
                   f"{len(sv.attributes)} questions")


@click.command("sensitive")
@click.argument("service_code")
@click.option("--off", is_flag=True, help="Show the service's exact locations again.")
@with_appcontext
def sensitive(service_code: str, off: bool) -> None:
    """Mark a service as sensitive: public maps show its locations only approximately."""
    state().store.catalogue.set_sensitive(service_code, not off, actor="cli")
    click.echo(f"{service_code}: {'exact locations public' if off else 'locations masked'}")


@click.group("records", cls=AppGroup)
def records_group() -> None:
    """The public records GET requests serves, stored per request."""


@records_group.command("refresh")
def records_refresh() -> None:
    """Build every missing or stale record now (readers otherwise build them lazily)."""
    s = state()
    s.store.schema.init()
    click.echo(refresh_stored_records(s.store, s.settings.zone,
                                      load_routing(s.settings.routing_path)))


COMMANDS = (import_cmd, dedup_cmd, groups, export, services_group, sensitive, records_group)
