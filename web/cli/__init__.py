"""The ``geo311`` command: each command is a few lines calling one core function."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import replace
from datetime import datetime, tzinfo
from pathlib import Path

import click
from flask.cli import FlaskGroup
from tqdm import tqdm

from geo311.accounts import ROLES, create_user, set_password, set_role
from geo311.catalogue import load_catalogue, read_catalogue
from geo311.config import PROJECT_ROOT
from geo311.dispatch import (
    WORK_STATUSES,
    Crew,
    create_crew,
    create_work_order,
    order_route,
    set_work_order_status,
    suggest,
)
from geo311.dispatch import accept as accept_suggestions
from geo311.errors import Geo311Error
from geo311.export import LAYER_FORMATS, REQUEST_FORMATS, export_layer, export_requests
from geo311.gazetteer import KINDS, geocode_csv, learn_addresses, read_reference
from geo311.imports import GEOCODE_MODES, import_file, read_mapping
from geo311.intake import regroup_duplicates
from geo311.layerdefs import read_layer_definitions
from geo311.layers import (
    activate_version,
    describe_layer,
    diff_version,
    load_definitions,
    load_layer,
    retire_layer,
)
from geo311.sla import PAUSE_REASONS, describe_target, fill_expected, load_calendar, sla_board
from geo311.sla import as_dict as sla_as_dict
from geo311.sla import pause as sla_pause
from geo311.sla import resume as sla_resume
from geo311.sla import target_for as sla_target
from geo311.store.clients import api_keys, create_api_key, revoke_api_key
from geo311.store.records import refresh_records
from geo311.store.sql import SQLStore
from web import create_app, state

#: The shipped request samples the demo imports (under GEO311_DATA_PATH), with their mapping.
DEMO_IMPORTS = (
    ("requests/chicago_311_sanitation_code_complaints_2011_2013.csv.gz", "chicago-311-legacy"),
    ("requests/chicago_311_all_types_2021-01-01_to_02_sample.csv.gz", "chicago-311"),
)


class _Geo311Group(FlaskGroup):
    """Turns core errors into clean command-line errors."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Geo311Error as exc:
            raise click.ClickException(exc.message) from exc


@click.group(cls=_Geo311Group, create_app=create_app, add_version_option=False)
@click.option("--verbose", "-v", is_flag=True, help="Log decisions (INFO).")
def cli(verbose: bool) -> None:
    """geo311: a GIS-centric 311 service (SpatiaLite by default, PostGIS in production)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


@cli.command("init-db")
def init_db() -> None:
    """Create or upgrade the database schema."""
    store = state().store
    added = store.upgrade_schema()
    click.echo(f"schema version {store.schema_version()} ready at "
               f"{store.engine.url.render_as_string()}")
    for what in added:
        click.echo(f"  added {what}")


@cli.group()
def layers() -> None:
    """Boundary layers: load, list and show."""


@layers.command("load")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, help="Layer name, e.g. wards_2023.")
@click.option("--id-field", help="Field holding the district id (default: detected).")
@click.option("--name-field", help="Field holding the district name.")
@click.option("--crs", help="CRS of a file that declares none, e.g. EPSG:3435.")
@click.option("--layer", "source_layer",
              help="Layer of a GeoPackage or KML, or shapefile of a folder or zip.")
@click.option("--title", default="", help="Human title of the layer.")
@click.option("--role", type=click.Choice(["district", "service_area"]), default="district")
@click.option("--no-activate", is_flag=True, help="Store the version without using it.")
@click.option("--force", is_flag=True, help="Activate even if some features were rejected.")
def layers_load(path: Path, name: str, id_field: str | None, name_field: str | None,
                crs: str | None, source_layer: str | None, title: str, role: str,
                no_activate: bool, force: bool) -> None:
    """Load a boundary file (shapefile folder/.shp/.zip, GeoJSON, GeoPackage, KML)."""
    s = state()
    s.store.init_schema()
    result = load_layer(
        s.store, path, name=name, title=title, role=role, id_field=id_field,
        name_field=name_field, crs=crs, layer=source_layer, activate=not no_activate, force=force,
        loaded_by="cli", max_unzipped_bytes=s.settings.max_unzipped_bytes,
        boundary_tolerance_m=s.settings.boundary_tolerance_m,
        service_area=s.settings.service_area_layer,
    )
    v, report = result.version, result.report
    click.echo(f"loaded {v.layer} version {v.version}: {v.feature_count} districts "
               f"from {v.source_file} ({v.source_crs})")
    for p in report.problems:
        click.echo(f"  feature {p.feature} ({p.district_id}): {p.problem} -> {p.action}")
    click.echo(f"  overlaps {report.overlap_count} ({report.overlap_area_m2:,.0f} m²), "
               f"gaps {report.gap_count} ({report.gap_area_m2:,.0f} m²)")
    if report.service_area:
        click.echo(f"  beyond service area {report.service_area}: {len(report.outside)} "
                   f"districts ({report.outside_area_m2:,.0f} m²)")
    if result.activated:
        click.echo(f"  active; {result.reassigned} stored requests assigned")
    elif not report.valid and not no_activate:
        click.echo("  NOT activated: some features were rejected (fix the file or use --force)")
    else:
        click.echo("  stored inactive")


@layers.command("list")
def layers_list() -> None:
    """List layers and their versions."""
    for v in state().store.layer_versions():
        click.echo(f"{v.layer:<24} v{v.version:<3} {v.status:<9} {v.role:<13} "
                   f"{v.feature_count:>4} districts  {v.source_file}")


@layers.command("show")
@click.argument("name")
@click.option("--version", "version", type=int, help="Version (default: active).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def layers_show(name: str, version: int | None, as_json: bool) -> None:
    """Show a layer: features, extent, source CRS, validity, gaps and overlaps."""
    info = describe_layer(state().store, name, version)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    for key, value in info.items():
        if key not in ("problems", "overlaps", "gaps", "outside"):
            click.echo(f"{key:<18} {value}")
    for p in info["problems"]:
        click.echo(f"problem            feature {p['feature']} ({p['district_id']}): "
                   f"{p['problem']} -> {p['action']}")
    for o in info["overlaps"][:10]:
        click.echo(f"overlap            {' & '.join(o['ids'])}: {o['area_m2']:,.0f} m² "
                   f"at {o['lon']}, {o['lat']}")
    for g in info["gaps"][:10]:
        click.echo(f"gap                by {', '.join(g['ids'])}: {g['area_m2']:,.0f} m² "
                   f"at {g['lon']}, {g['lat']}")
    for o in info["outside"][:10]:
        click.echo(f"beyond area        {o['district_id']}: {o['outside_m2']:,.0f} m² "
                   f"({o['share']:.1%}) at {o['lon']}, {o['lat']}")


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mapping", "mapping_name", required=True,
              help="Shipped mapping name (chicago-311-legacy, chicago-311) or a TOML file.")
@click.option("--geocode", type=click.Choice(GEOCODE_MODES), default="never", show_default=True)
@click.option("--dedup/--no-dedup", default=False, show_default=True)
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write rejected lines and reasons to this CSV.")
@click.option("--bulk-min-rows", type=click.IntRange(min=1), envvar="GEO311_BULK_MIN_ROWS",
              help="On PostGIS, a load of at least this many rows (and at least the stored "
                   "count) rebuilds the indexes once at its end [default: 100000].")
def import_cmd(path: Path, mapping_name: str, geocode: str, dedup: bool,
               rejects: Path | None, bulk_min_rows: int | None) -> None:
    """Import requests exported by a legacy CRM."""
    s = state()
    s.store.init_schema()
    mapping = read_mapping(mapping_name)
    with tqdm(desc=path.name, unit=" rows", disable=None) as bar:
        summary = import_file(s.store, s.context(), path, mapping, geocode=geocode,
                              dedup=dedup, progress=bar.update, bulk_min_rows=bulk_min_rows)
    for line in summary.lines():
        click.echo(line)
    _refresh_records(s.store, s.settings.zone)
    if rejects is not None:
        with open(rejects, "w", encoding="utf-8") as fh:
            fh.write("line,reason\n")
            for line_no, reason in summary.rejected:
                fh.write(f'{line_no},"{reason.replace(chr(34), chr(34) * 2)}"\n')


@cli.command("dedup")
@click.option("--recompute", is_flag=True, required=True,
              help="Recluster stored requests in time order with each service's rule.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Only requests from this date (earlier ones keep their groups).")
def dedup_cmd(recompute: bool, since: datetime | None) -> None:
    """Merge duplicate requests into groups, as live intake does."""
    s = state()
    when = since.replace(tzinfo=s.settings.zone) if since else None
    total, children, changed = regroup_duplicates(s.store, since=when, actor="cli")
    click.echo(f"{total} requests reclustered: {children} are duplicates in a group; "
               f"{changed} links changed")


@cli.group("groups")
def groups() -> None:
    """Staff corrections to duplicate groups (each one audited)."""


@groups.command("unmerge")
@click.argument("request_id", type=int)
def groups_unmerge(request_id: int) -> None:
    """Take a request out of its group."""
    state().store.unmerge(request_id, actor="cli")
    click.echo(f"request {request_id} is a group of its own")


@groups.command("move")
@click.argument("request_id", type=int)
@click.option("--into", "into_id", type=int, required=True, help="A request of the group.")
def groups_move(request_id: int, into_id: int) -> None:
    """Move a request into the group of another."""
    store = state().store
    store.mark_duplicate(request_id, into_id, actor="cli")
    click.echo(f"request {request_id} is now in group {store.get(request_id).duplicate_of}")


@groups.command("merge")
@click.argument("first_id", type=int)
@click.argument("second_id", type=int)
def groups_merge(first_id: int, second_id: int) -> None:
    """Join the groups of two requests under the older one."""
    root = state().store.merge_groups(first_id, second_id, actor="cli")
    click.echo(f"groups merged into {root}")


@cli.group("export")
def export() -> None:
    """Export requests or layers as files."""


@export.command("requests")
@click.option("--format", "fmt", type=click.Choice(REQUEST_FORMATS), default="csv")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--include-private", is_flag=True,
              help="Add reporters' personal data (staff only).")
def export_requests_cmd(fmt: str, output: Path, include_private: bool) -> None:
    """Export every request, one row each, with its district per active layer."""
    n = export_requests(state().store, output, fmt, include_private=include_private)
    click.echo(f"wrote {n} requests to {output}")


@export.command("layer")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(LAYER_FORMATS), default="shp")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", type=int, help="Version (default: active).")
def export_layer_cmd(name: str, fmt: str, output: Path, version: int | None) -> None:
    """Export a boundary layer (shp is written as a .zip)."""
    n = export_layer(state().store, name, output, fmt, version=version)
    click.echo(f"wrote {n} districts of {name} to {output}")


@cli.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the data and stop.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Set up the database, load the shipped layers and requests, and serve."""
    s = state()
    s.store.init_schema()
    click.echo(f"database: {s.store.engine.url.render_as_string()}")
    definitions = read_layer_definitions(s.settings.layers_path, PROJECT_ROOT)
    for d, result in load_definitions(s.store, definitions, loaded_by="demo",
                                      boundary_tolerance_m=s.settings.boundary_tolerance_m):
        state_text = ("already loaded" if result is None else
                      f"version {result.version.version}, "
                      f"{'active' if result.activated else 'inactive'}")
        click.echo(f"layer {d.name}: {state_text}")
    added, updated = load_catalogue(s.store, read_catalogue("chicago"), source="chicago",
                                    actor="demo")
    click.echo(f"service catalogue chicago: {added} services added, {updated} updated")
    for line in load_demo_references(s.store, s.settings.data_path):
        click.echo(line)
    for rel, mapping in DEMO_IMPORTS:
        summary = import_file(s.store, s.context(), s.settings.data_path / rel,
                              read_mapping(mapping))
        click.echo(summary.lines()[0])
        click.echo("  " + summary.lines()[1])
    click.echo(f"geocoding: learned {learn_addresses(s.store, actor='demo')} address points "
               "from the imported history")
    _refresh_records(s.store, s.settings.zone)
    if no_serve:
        return
    from flask import current_app
    from werkzeug.serving import run_simple

    click.echo(f"serving on http://{host}:{port}/ (Ctrl+C stops)")
    run_simple(host, port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]


# --- dispatch: staff accounts, SLAs, crews and work orders ------------------------------


@cli.group("users")
def users() -> None:
    """Staff accounts (dispatcher, planner, gis, admin)."""


@users.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
def users_create(name: str, role: str, password_stdin: bool) -> None:
    """Create a staff account; the password is prompted for (or read from stdin)."""
    store = state().store
    store.init_schema()
    password = _read_password(password_stdin)
    user = create_user(store, name, password, role, actor="cli")
    click.echo(f"created {user.username} ({user.role})")


@users.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
def users_password(name: str, password_stdin: bool) -> None:
    """Set a new password for a staff account."""
    set_password(state().store, name, _read_password(password_stdin), actor="cli")
    click.echo(f"password of {name} changed")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("list")
def users_list() -> None:
    """List staff accounts."""
    for u in state().store.users():
        last = u["last_login"].isoformat(timespec="minutes") if u["last_login"] else "never"
        click.echo(f"{u['username']:<24} {u['role']:<11} "
                   f"{'active' if u['active'] else 'disabled':<9} last login {last}")


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable a staff account (it can no longer log in)."""
    state().store.set_user_active(name, False, actor="cli")
    click.echo(f"{name} disabled")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
def users_role(name: str, role: str) -> None:
    """Give a staff account another role (its open sessions end)."""
    set_role(state().store, name, role, actor="cli")
    click.echo(f"{name} is now {role}")


@users.command("enable")
@click.argument("name")
def users_enable(name: str) -> None:
    """Enable a disabled staff account again."""
    state().store.set_user_active(name, True, actor="cli")
    click.echo(f"{name} enabled")


@cli.group("sla")
def sla_group() -> None:
    """Service level agreements: targets, due times, the breached and at-risk list."""


@sla_group.command("set")
@click.argument("service_code")
@click.option("--business-days", type=float, help="Target in business days.")
@click.option("--business-hours", type=float, help="Target in business hours.")
@click.option("--days", type=float, help="Target in calendar days (every day counts).")
@click.option("--hours", type=float, help="Target in hours, day and night.")
@click.option("--calendar", default="", help="Calendar name or TOML file (default chicago).")
def sla_set(service_code: str, business_days: float | None, business_hours: float | None,
            days: float | None, hours: float | None, calendar: str) -> None:
    """Set a service's SLA target and recompute the due times of its requests."""
    given = {k: v for k, v in (("business_days", business_days),
                               ("business_hours", business_hours), ("days", days),
                               ("hours", hours)) if v is not None}
    if len(given) != 1:
        raise click.UsageError("give exactly one of --business-days, --business-hours, "
                               "--days, --hours")
    (unit, amount), = given.items()
    store = state().store
    service = store.service(service_code)
    if calendar:
        load_calendar(calendar)
    updated = replace(
        service, sla_days=amount if unit in ("business_days", "days") else None,
        sla_hours=amount if unit in ("business_hours", "hours") else None,
        sla_clock="business" if unit.startswith("business") else "24x7",
        sla_calendar=calendar or service.sla_calendar)
    sla_target(updated)  # validates the amount
    store.upsert_services([updated])
    store.audit("sla_set", "service", service_code, {"unit": unit, "amount": amount}, "cli")
    n = fill_expected(store, codes=[service_code], recompute=True)
    click.echo(f"{service_code}: {describe_target(updated)}; due times of {n} requests set")


@sla_group.command("list")
@click.option("--at-risk/--breached-only", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sla_list(at_risk: bool, as_json: bool) -> None:
    """Open requests past their due time (and at risk), most urgent first."""
    states = ("breached", "at_risk") if at_risk else ("breached",)
    board = sla_board(state().store, states=states)
    if as_json:
        click.echo(json.dumps([sla_as_dict(b) for b in board], indent=2))
        return
    for b in board:
        due = b.due.isoformat(timespec="minutes") if b.due else "-"
        left = (b.remaining_s or 0) / 3600
        click.echo(f"#{b.request_id:<9} {b.service_code:<12} {b.state:<9} due {due}  "
                   f"{left:+.1f} h")
    click.echo(f"{len(board)} requests")


@sla_group.command("pause")
@click.argument("request_id", type=int)
@click.option("--reason", type=click.Choice(PAUSE_REASONS), default="waiting_for_resident",
              show_default=True)
def sla_pause_cmd(request_id: int, reason: str) -> None:
    """Stop a request's SLA clock."""
    sla_pause(state().store, request_id, reason, actor="cli")
    click.echo(f"request {request_id}: clock stopped ({reason})")


@sla_group.command("resume")
@click.argument("request_id", type=int)
def sla_resume_cmd(request_id: int) -> None:
    """Start a paused request's SLA clock again."""
    due = sla_resume(state().store, request_id, actor="cli")
    click.echo(f"request {request_id}: clock running, due {due.isoformat() if due else '-'}")


@cli.group("crews")
def crews_group() -> None:
    """Field crews: their districts, service groups and capacity."""


@crews_group.command("create")
@click.argument("name")
@click.option("--layer", required=True, help="Dispatch layer of the home districts.")
@click.option("--districts", default="", help="Home district ids, comma-separated (all).")
@click.option("--groups", default="", help="Service groups, comma-separated (all).")
@click.option("--capacity", default=8, show_default=True, type=int, help="Stops a day.")
@click.option("--calendar", default="chicago", show_default=True)
@click.option("--depot", nargs=2, type=float, help="Depot LON LAT (route start).")
def crews_create(name: str, layer: str, districts: str, groups: str, capacity: int,
                 calendar: str, depot: tuple[float, float] | None) -> None:
    """Add a crew."""
    crew = create_crew(state().store, Crew(
        name=name, layer=layer, districts=_csv(districts), service_groups=_csv(groups),
        capacity_per_day=capacity, calendar=calendar,
        depot_lon=depot[0] if depot else None, depot_lat=depot[1] if depot else None),
        actor="cli")
    click.echo(f"crew {crew.id} {crew.name}: {len(crew.districts) or 'all'} districts of "
               f"{crew.layer}, {crew.capacity_per_day} stops a day")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


@crews_group.command("list")
def crews_list() -> None:
    """List crews with their open stops."""
    store = state().store
    loads = store.crew_loads()
    for c in store.crews():
        click.echo(f"{c.id:<4} {c.name:<24} {c.layer:<20} {','.join(c.districts) or 'all':<20} "
                   f"{','.join(c.service_groups) or 'all':<20} "
                   f"{loads.get(c.id or 0, 0)}/{c.capacity_per_day} a day")


@cli.group("dispatch")
def dispatch_group() -> None:
    """Work orders: suggest crews, assign, order routes, close."""


@dispatch_group.command("suggest")
@click.option("--layer", required=True, help="Dispatch layer.")
@click.option("--district", help="Only this district.")
@click.option("--accept", is_flag=True, help="Create the suggested work orders.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def dispatch_suggest(layer: str, district: str | None, accept: bool, as_json: bool) -> None:
    """Suggest a crew for each open unassigned request, most urgent first."""
    store = state().store
    found = suggest(store, layer, district=district)
    if as_json:
        click.echo(json.dumps([s.__dict__ for s in found], indent=2))
    else:
        for s in found:
            left = "no SLA" if s.hours_left is None else f"{s.hours_left:+.1f} h"
            click.echo(f"#{s.request_id:<9} crew {s.crew_id or '-':<4} "
                       f"{s.scheduled_date or '':<10} {left:<10} {s.reason}")
    if accept:
        made = accept_suggestions(store, [(s.request_id, s.crew_id, s.scheduled_date)
                                          for s in found if s.crew_id and s.scheduled_date],
                                  actor="cli")
        click.echo(f"{len(made)} work orders created")


@dispatch_group.command("assign")
@click.argument("request_ids", nargs=-1, type=int, required=True)
@click.option("--crew", required=True, help="Crew id or name.")
@click.option("--date", "day", help="Day (YYYY-MM-DD, default today).")
def dispatch_assign(request_ids: tuple[int, ...], crew: str, day: str | None) -> None:
    """Put requests (their groups) on one new work order of a crew."""
    key: int | str = int(crew) if crew.isdigit() else crew
    order = create_work_order(state().store, key, list(request_ids), scheduled=day,
                              actor="cli")
    click.echo(f"work order {order.id}: requests {list(order.request_ids)} "
               f"on {order.scheduled_date}")


@dispatch_group.command("status")
@click.argument("order_id", type=int)
@click.argument("status", type=click.Choice(WORK_STATUSES))
@click.option("--resolution", default="", help="Resolution note (needed for done).")
def dispatch_status(order_id: int, status: str, resolution: str) -> None:
    """Move a work order on; done closes its requests with the resolution note."""
    order = set_work_order_status(state().store, order_id, status, resolution=resolution,
                                  actor="cli")
    click.echo(f"work order {order.id} {order.status}")


@dispatch_group.command("route")
@click.option("--crew", required=True, help="Crew id or name.")
@click.option("--date", "day", help="Day (YYYY-MM-DD, default today).")
def dispatch_route(crew: str, day: str | None) -> None:
    """Order a crew's stops of a day (OR-Tools, straight-line distance)."""
    key: int | str = int(crew) if crew.isdigit() else crew
    orders = order_route(state().store, key, day, actor="cli")
    for o in orders:
        click.echo(f"{o.route_position or '-':>3}. work order {o.id} requests "
                   f"{list(o.request_ids)}")
# --- service catalogue and API keys ---


@cli.group("services")
def services_group() -> None:
    """The service catalogue: load a city's file, list what is offered."""


@services_group.command("load")
@click.argument("path")
def services_load(path: str) -> None:
    """Check and load a catalogue (TOML or JSON file, or a shipped name: chicago)."""
    s = state()
    s.store.init_schema()
    services = read_catalogue(path)
    added, updated = load_catalogue(s.store, services, source=str(path), actor="cli")
    click.echo(f"loaded {len(services)} services from {path}: {added} added, {updated} updated")


@services_group.command("list")
def services_list() -> None:
    """List the active services."""
    for sv in state().store.services():
        sla = f"{sv.sla_days:g} d" if sv.sla_days else "-"
        click.echo(f"{sv.code:<10} {sv.name[:44]:<44} {sv.group[:22]:<22} SLA {sla:<6} "
                   f"{len(sv.attributes)} questions")


@cli.group("records")
def records_group() -> None:
    """The public records GET requests serves, stored per request."""


@records_group.command("refresh")
def records_refresh() -> None:
    """Build every missing or stale record now (readers otherwise build them lazily)."""
    s = state()
    s.store.init_schema()
    _refresh_records(s.store, s.settings.zone)


def _refresh_records(store: SQLStore, zone: tzinfo) -> None:
    started = time.perf_counter()
    built, current = refresh_records(store, zone)
    click.echo(f"public records: {built} built, {current} already current "
               f"({time.perf_counter() - started:.1f} s)")


@cli.group("api-keys")
def api_keys_group() -> None:
    """API keys for clients that POST requests (only a hash is stored)."""


@api_keys_group.command("create")
@click.argument("name")
def api_keys_create(name: str) -> None:
    """Make a key; it is printed once, alone on the last line."""
    s = state()
    s.store.init_schema()
    key = create_api_key(s.store, name, actor="cli")
    click.echo(f"API key {name!r} created; store it now, it cannot be shown again:")
    click.echo(key)


@api_keys_group.command("revoke")
@click.argument("name")
def api_keys_revoke(name: str) -> None:
    """Refuse a key from now on."""
    revoke_api_key(state().store, name, actor="cli")
    click.echo(f"API key {name!r} revoked")


@api_keys_group.command("list")
def api_keys_list() -> None:
    """List keys by name with their state (never the keys)."""
    for k in api_keys(state().store):
        when = f"revoked {k.revoked:%Y-%m-%d %H:%M}" if k.revoked else "active"
        click.echo(f"{k.name:<30} created {k.created:%Y-%m-%d %H:%M}  {when}")
# --- geocoding: reference layers and batch geocoding ---------------------------------

#: The shipped geocoding references the demo loads (under GEO311_DATA_PATH).
DEMO_REFERENCES = (
    "geocoding/chicago_address_points_food_inspections_business_licenses.csv.gz",
    "geocoding/chicago_street_intersections.csv.gz",
    "geocoding/chicago_osm_hermosa_avondale_2012.osm.gz",
)
_COLUMN_ROLES = ("address", "number", "street", "pre_dir", "zip", "lon", "lat", "street_1",
                 "street_2")


@cli.group("addresses")
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
    s.store.init_schema()
    chosen = {role: columns.get(f"{role}_column") or "" for role in _COLUMN_ROLES}
    kind, frame = read_reference(path, kind, chosen)
    table = "centerlines" if kind == "osm" else kind
    n = s.store.replace_reference(table, frame, source or path.name, actor="cli")
    click.echo(f"loaded {n} {kind} from {path.name} (source {source or path.name!r})")


@addresses.command("learn")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Only requests from this date.")
def addresses_learn(since: datetime | None) -> None:
    """Learn address points from stored requests with trusted coordinates."""
    s = state()
    when = since.replace(tzinfo=s.settings.zone) if since else None
    n = learn_addresses(s.store, since=when, actor="cli")
    click.echo(f"learned {n} address points from stored requests")


@addresses.command("list")
def addresses_list() -> None:
    """List the stored reference sources."""
    for kind, source, n in state().store.reference_sources():
        click.echo(f"{kind:<14} {n:>7}  {source}")


@cli.command("geocode")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--address-column", required=True, help="Column holding the addresses.")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def geocode_cmd(path: Path, address_column: str, output: Path) -> None:
    """Geocode a CSV: every input column plus lat, long and the geocode's match, score, reason."""
    geocoder = state().context().geocoder
    if geocoder is None:
        raise click.ClickException("no geocoder: load references with 'geo311 addresses load'")
    counts = geocode_csv(geocoder, path, output, address_column)
    total = sum(counts.values())
    click.echo(f"wrote {total} rows to {output}: "
               + ", ".join(f"{m} {n}" for m, n in sorted(counts.items())))


def load_demo_references(store: SQLStore, data_path: Path) -> list[str]:
    """Load the shipped geocoding references not loaded yet; one line per file."""
    loaded = {source for _, source, _ in store.reference_sources()}
    lines = []
    for rel in DEMO_REFERENCES:
        path = data_path / rel
        if path.name in loaded:
            lines.append(f"geocoding {path.name}: already loaded")
            continue
        kind, frame = read_reference(path)
        n = store.replace_reference("centerlines" if kind == "osm" else kind, frame, path.name,
                                    actor="demo")
        lines.append(f"geocoding {path.name}: {n} {kind}")
    return lines
# --- maps (hotspots, citizen map) ---


@cli.command("sensitive")
@click.argument("service_code")
@click.option("--off", is_flag=True, help="Show the service's exact locations again.")
def sensitive(service_code: str, off: bool) -> None:
    """Mark a service as sensitive: public maps show its locations only approximately."""
    state().store.set_service_sensitive(service_code, not off, actor="cli")
    click.echo(f"{service_code}: {'exact locations public' if off else 'locations masked'}")
# --- GIS staff: layer diff, activation and retirement -----------------------------------


@layers.command("diff")
@click.argument("name")
@click.option("--version", "version", type=int, required=True, help="Version to compare.")
@click.option("--replaces", help="Compare with the active version of this other layer.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def layers_diff(name: str, version: int, replaces: str | None, as_json: bool) -> None:
    """Dry run: which open requests would change district if this version were activated."""
    s = state()
    diff = diff_version(s.store, name, version, replaces=replaces,
                        boundary_tolerance_m=s.settings.boundary_tolerance_m)
    if as_json:
        click.echo(json.dumps(diff.to_dict(), indent=2))
        return
    for line in diff.lines():
        click.echo(line)


@layers.command("activate")
@click.argument("name")
@click.option("--version", "version", type=int, required=True, help="Version to activate.")
@click.option("--replaces", help="Retire this other layer in the same transaction.")
def layers_activate(name: str, version: int, replaces: str | None) -> None:
    """Activate a version: open requests move to it, closed ones keep their district."""
    s = state()
    v, moved, diff = activate_version(s.store, name, version, actor="cli", replaces=replaces,
                                boundary_tolerance_m=s.settings.boundary_tolerance_m)
    click.echo(f"{v.layer} version {v.version} is active; {moved} requests assigned, "
               f"{diff.open_changed} open requests changed district, "
               f"{diff.closed_kept} closed requests kept theirs"
               + (f"; {replaces} retired" if replaces else ""))


@layers.command("retire")
@click.argument("name")
@click.option("--service-area", "service_area",
              help="Active layer that becomes the service area (when retiring it).")
@click.option("--force", is_flag=True, help="Retire the service-area layer without a successor.")
def layers_retire(name: str, service_area: str | None, force: bool) -> None:
    """Take a layer out of use; requests keep the districts they got from it."""
    s = state()
    retired = retire_layer(s.store, name, actor="cli", service_area=service_area, force=force,
                           configured_service_area=s.settings.service_area_layer)
    click.echo(f"{name} retired (version {', '.join(map(str, retired))})"
               + (f"; service area is now {service_area}" if service_area else ""))
