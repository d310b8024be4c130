"""``geo311 layers``: boundary layers for GIS staff (load, versions, diff, activation)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from geo311.layers import activate_version, describe_layer, diff_version, load_layer, retire_layer
from geo311_web import state


@click.group("layers", cls=AppGroup)
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
@click.option("--id-rule", "id_rule", multiple=True,
              help="How the file writes its ids: digits, strip_zeros, upper, alnum or "
                   "regex:PATTERN (repeat for several steps, applied in order).")
@click.option("--title", default="", help="Human title of the layer.")
@click.option("--role", type=click.Choice(["district", "service_area", "jurisdiction"]),
              default="district")
@click.option("--no-activate", is_flag=True, help="Store the version without using it.")
@click.option("--force", is_flag=True, help="Activate even if some features were rejected.")
def layers_load(path: Path, name: str, id_field: str | None, name_field: str | None,
                crs: str | None, source_layer: str | None, id_rule: tuple[str, ...],
                title: str, role: str,
                no_activate: bool, force: bool) -> None:
    """Load a boundary file (shapefile folder/.shp/.zip, GeoJSON, GeoPackage, KML)."""
    s = state()
    s.store.schema.init()
    result = load_layer(
        s.store, path, name=name, title=title, role=role, id_field=id_field,
        name_field=name_field, crs=crs, layer=source_layer, id_rule=list(id_rule) or None,
        activate=not no_activate, force=force,
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
    for f in report.findings:
        click.echo(f"  district {f['district_id']}: {f['kind'].replace('_', ' ')} "
                   f"({f['detail']})")
    if result.activated:
        click.echo(f"  active; {result.reassigned} stored requests assigned")
    elif not report.valid and not no_activate:
        why = ("some districts look impossible" if report.findings else
               "some features were rejected")
        click.echo(f"  NOT activated: {why} (fix the file or use --force)")
    else:
        click.echo("  stored inactive")


@layers.command("list")
def layers_list() -> None:
    """List layers and their versions."""
    for v in state().store.layers.versions():
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
@click.option("--force", is_flag=True,
              help="Activate although the report lists districts no city has.")
def layers_activate(name: str, version: int, replaces: str | None, force: bool) -> None:
    """Activate a version: open requests move to it, closed ones keep their district."""
    s = state()
    v, moved, diff = activate_version(s.store, name, version, actor="cli", replaces=replaces,
                                      boundary_tolerance_m=s.settings.boundary_tolerance_m,
                                      force=force)
    click.echo(f"{v.layer} version {v.version} is active; {moved} requests assigned, "
               f"{diff.open_changed} open requests changed district, "
               f"{diff.closed_kept} closed requests kept theirs"
               + (f"; {replaces} retired" if replaces else "")
               + (f"; crews follow: {', '.join(m['crew'] for m in diff.crews)}"
                  if diff.crews else ""))


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


COMMANDS = (layers,)
