"""``geo311 city``: check a city profile file, show the active one."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from geo311.city import CityProfile, check_profile
from geo311.errors import ConfigError
from geo311.jurisdictions import read_routing, routing_path
from geo311_web import state


@click.group("city", cls=AppGroup)
def city_group() -> None:
    """The city profile: what geo311 knows of the city it serves."""


@city_group.command("check", with_appcontext=False)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def city_check(path: Path) -> None:
    """Validate a profile file and print its findings; exit 1 on errors."""
    problems, profile = check_profile(path)
    for problem in problems:
        click.echo(f"error: {problem}")
    if profile is None:
        raise SystemExit(1)
    click.echo(f"{path}: valid profile of {profile.name}, {profile.state} "
               f"({len(profile.place_names)} place names, {len(profile.zip_codes)} ZIP codes, "
               f"{len(profile.neighbourhoods)} neighbourhoods, "
               f"{'numbering rules' if profile.grid else 'no numbering rules'}, "
               f"{'a demo' if profile.demo else 'no demo'})")
    routing = routing_path(path)
    if routing is not None:  # the profile's routing table, checked with it
        try:
            table = read_routing(routing)
        except ConfigError as exc:
            click.echo(f"error: {exc.message}")
            raise SystemExit(1) from exc
        click.echo(f"{routing}: valid routing table ({len(table.agencies)} agencies, "
                   f"{len(table.routes)} routes, forwarding "
                   f"{'on' if table.forward else 'off'}, neighbours in layer "
                   f"{table.jurisdiction_layer!r})")


@city_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def city_show(as_json: bool) -> None:
    """Show the active city profile (GEO311_CITY)."""
    profile = state().settings.profile
    summary = describe(profile)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        click.echo(f"{key}: {value}")


def describe(profile: CityProfile) -> dict[str, object]:
    """The profile as plain values, for people and scripts."""
    cal = profile.calendar()
    grid = profile.grid
    return {
        "name": profile.name, "state": profile.state, "file": str(profile.path),
        "timezone": profile.timezone, "place_names": list(profile.place_names),
        "zip_codes": list(profile.zip_codes),
        "neighbourhoods": {n.name: list(n.zip_codes) or
                           [f"{n.layer}:{d}" for d in n.districts] for n in profile.neighbourhoods},
        "calendar": {"name": cal.name, "state_holidays": cal.state_holidays,
                     "holiday_rules": len(cal.holiday_rules),
                     "closures": [d.isoformat() for d in sorted(cal.dates)],
                     "hours": [cal.day_start.isoformat("minutes"),
                               cal.day_end.isoformat("minutes")]},
        "catalogue": profile.catalogue, "mappings": list(profile.mappings),
        "service_area_layer": profile.service_area_layer,
        "numbering": None if grid is None else {
            "even_side_ns": grid.even_side_ns, "even_side_ew": grid.even_side_ew,
            "cross_street_every": grid.cross_street_every,
            "numbers_per_mile": grid.numbers_per_mile},
        "map": {"centre": list(profile.map_centre) if profile.map_centre else None,
                "zoom": profile.map_zoom},
        "branding": {"name": profile.branding.name, "logo": profile.branding.logo,
                     "colours": dict(profile.branding.colours),
                     "contact": profile.branding.contact},
        "demo": None if profile.demo is None else {
            "references": list(profile.demo.references),
            "requests": [{"file": f, "mapping": m} for f, m in profile.demo.requests]},
    }


COMMANDS = (city_group,)
