"""Dispatchers' commands: SLA targets and clocks, crews and work orders."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from geo311.dispatch import (
    WORK_STATUSES,
    Crew,
    create_crew,
    create_work_order,
    edit_crew,
    order_route,
    set_work_order_status,
    suggest,
)
from geo311.dispatch import accept as accept_suggestions
from geo311.sla import (
    PAUSE_REASONS,
    describe_target,
    remaining_words,
    set_target,
    sla_board,
)
from geo311.sla import as_dict as sla_as_dict
from geo311.sla import pause as sla_pause
from geo311.sla import resume as sla_resume
from geo311_web import state


@click.group("sla", cls=AppGroup)
def sla_group() -> None:
    """Service level agreements: targets, due times, the breached and at-risk list."""


@sla_group.command("set")
@click.argument("service_code")
@click.option("--business-days", type=float, help="Target in business days.")
@click.option("--business-hours", type=float, help="Target in business hours.")
@click.option("--days", type=float, help="Target in calendar days (every day counts).")
@click.option("--hours", type=float, help="Target in hours, day and night.")
@click.option("--calendar", default="",
              help="Calendar name or TOML file (default: the city profile's).")
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
    updated, n = set_target(state().store, service_code, unit, amount, calendar=calendar,
                            actor="cli")
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
        click.echo(f"#{b.request_id:<9} {b.service_code:<12} {b.state:<9} due {due}  "
                   f"{remaining_words(b.remaining_s)}")
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


@click.group("crews", cls=AppGroup)
def crews_group() -> None:
    """Field crews: their districts, service groups and capacity."""


@crews_group.command("create")
@click.argument("name")
@click.option("--layer", required=True, help="Dispatch layer of the home districts.")
@click.option("--districts", default="", help="Home district ids, comma-separated (all).")
@click.option("--groups", default="", help="Service groups, comma-separated (all).")
@click.option("--capacity", default=8, show_default=True, type=int, help="Stops a day.")
@click.option("--calendar", default="",
              help="Calendar name or TOML file (default: the city profile's).")
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


@crews_group.command("edit")
@click.argument("name")
@click.option("--name", "new_name", help="New name.")
@click.option("--layer", help="Dispatch layer of the home districts.")
@click.option("--districts", help="Home district ids, comma-separated ('' for all).")
@click.option("--groups", help="Service groups, comma-separated ('' for all).")
@click.option("--capacity", type=int, help="Stops a day.")
@click.option("--calendar", help="Calendar name or TOML file.")
@click.option("--depot", help="Depot as LAT,LON ('' for none).")
@click.option("--active/--inactive", default=None, help="Take the crew into or out of use.")
def crews_edit(name: str, new_name: str | None, layer: str | None, districts: str | None,
               groups: str | None, capacity: int | None, calendar: str | None,
               depot: str | None, active: bool | None) -> None:
    """Change a crew (id or name); options left out stay as they are."""
    changes: dict[str, object] = {k: v for k, v in (
        ("name", new_name), ("layer", layer), ("capacity_per_day", capacity),
        ("calendar", calendar), ("active", active)) if v is not None}
    if districts is not None:
        changes["districts"] = _csv(districts)
    if groups is not None:
        changes["service_groups"] = _csv(groups)
    if depot is not None:
        changes["depot"] = _lat_lon(depot)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    crew = edit_crew(state().store, _crew_key(name), actor="cli", **changes)
    depot_text = f"{crew.depot_lat},{crew.depot_lon}" if crew.depot else "none"
    click.echo(f"crew {crew.id} {crew.name}: {crew.layer} districts "
               f"{','.join(crew.districts) or 'all'}; groups "
               f"{','.join(crew.service_groups) or 'all'}; {crew.capacity_per_day} stops a day; "
               f"calendar {crew.calendar}; depot {depot_text}; "
               f"{'active' if crew.active else 'inactive'}")


def _lat_lon(text: str) -> tuple[float, float] | None:
    """``LAT,LON`` from the command line as ``(lon, lat)``; '' for none."""
    if not text.strip():
        return None
    parts = text.split(",")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is expected as LAT,LON, e.g. 41.88,-87.63",
                                 param_hint="--depot") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise click.BadParameter(f"{text!r} is not a LAT,LON pair", param_hint="--depot")
    return (lon, lat)


@crews_group.command("list")
def crews_list() -> None:
    """List crews with their open stops."""
    store = state().store
    loads = store.dispatch.crew_loads()
    for c in store.dispatch.crews(active_only=False):
        click.echo(f"{c.id:<4} {c.name:<24} {c.layer:<20} {','.join(c.districts) or 'all':<20} "
                   f"{','.join(c.service_groups) or 'all':<20} "
                   f"{loads.get(c.id or 0, 0)}/{c.capacity_per_day} a day"
                   + ("" if c.active else "  (inactive)"))


@click.group("dispatch", cls=AppGroup)
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
            left = remaining_words(None if s.hours_left is None else s.hours_left * 3600)
            click.echo(f"#{s.request_id:<9} crew {s.crew_id or '-':<4} "
                       f"{s.scheduled_date or '':<10} {left:<10} {s.reason}")
    if accept:
        picks = [(s.request_id, s.crew_id, s.scheduled_date)
                 for s in found if s.crew_id and s.scheduled_date]
        made = accept_suggestions(store, picks, actor="cli")
        click.echo(f"{len(picks)} suggestions accepted on {len(made)} work orders "
                   "(one per crew and day)")


def _crew_key(crew: str) -> int | str:
    """A crew given on the command line: its id if all digits, else its name."""
    return int(crew) if crew.isdigit() else crew


@dispatch_group.command("assign")
@click.argument("request_ids", nargs=-1, type=int, required=True)
@click.option("--crew", required=True, help="Crew id or name.")
@click.option("--date", "day", help="Day (YYYY-MM-DD, default today).")
def dispatch_assign(request_ids: tuple[int, ...], crew: str, day: str | None) -> None:
    """Put requests (their groups) on one new work order of a crew."""
    order = create_work_order(state().store, _crew_key(crew), list(request_ids), scheduled=day,
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
    orders = order_route(state().store, _crew_key(crew), day, actor="cli")
    for o in orders:
        click.echo(f"{o.route_position or '-':>3}. work order {o.id} requests "
                   f"{list(o.request_ids)}")


COMMANDS = (sla_group, crews_group, dispatch_group)
