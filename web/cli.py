"""The ``geo311`` command: each command is a few lines calling one core function."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

import click
from flask.cli import FlaskGroup
from tqdm import tqdm

from geo311.config import PROJECT_ROOT
from geo311.errors import Geo311Error
from geo311.export import LAYER_FORMATS, REQUEST_FORMATS, export_layer, export_requests
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
    version = store.init_schema()
    click.echo(f"schema version {version} ready at {store.engine.url.render_as_string()}")


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
def import_cmd(path: Path, mapping_name: str, geocode: str, dedup: bool,
               rejects: Path | None) -> None:
    """Import requests exported by a legacy CRM."""
    s = state()
    s.store.init_schema()
    mapping = read_mapping(mapping_name)
    with tqdm(desc=path.name, unit=" rows", disable=None) as bar:
        summary = import_file(s.store, s.context(), path, mapping, geocode=geocode,
                              dedup=dedup, progress=bar.update)
    for line in summary.lines():
        click.echo(line)
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
    for rel, mapping in DEMO_IMPORTS:
        summary = import_file(s.store, s.context(), s.settings.data_path / rel,
                              read_mapping(mapping))
        click.echo(summary.lines()[0])
        click.echo("  " + summary.lines()[1])
    if no_serve:
        return
    from flask import current_app
    from werkzeug.serving import run_simple

    click.echo(f"serving on http://{host}:{port}/ (Ctrl+C stops)")
    run_simple(host, port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]


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
