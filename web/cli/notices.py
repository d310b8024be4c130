"""Area notices from the command line: ``geo311 notices add | end | list | acknowledge``."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from geo311.model import SEVERITIES
from geo311.notices import (
    LANGUAGES,
    acknowledge_requests,
    area_from_districts,
    area_from_file,
    end_notice,
    parse_time,
    post_notice,
)
from geo311.store.outbox import DEFAULT_LANGUAGE
from geo311.store.rows import now_utc
from geo311_web import state
from geo311_web.maps import local_time


@click.group("notices", cls=AppGroup)
def notices() -> None:
    """Area notices: a message for an area, optionally suspending services there."""


def _codes(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


@notices.command("add")
@click.option("--message", required=True, help="The message, in the city's default language.")
@click.option("--message-in", "translations", nargs=2, multiple=True,
              metavar="LANG TEXT",
              help=f"The message in another language ({', '.join(LANGUAGES)}).")
@click.option("--severity", required=True, type=click.Choice(SEVERITIES),
              help="CAP severity.")
@click.option("--area", "area_file", type=click.Path(exists=True, dir_okay=False),
              help="A GeoJSON or KML file holding the area's polygon(s).")
@click.option("--layer", help="An active layer whose districts make the area.")
@click.option("--districts", help="District ids of --layer, comma-separated (1,2).")
@click.option("--start", help="When it starts (ISO 8601, city time unless zoned; default now).")
@click.option("--end", help="When it ends (default: until `notices end`).")
@click.option("--suspend", default="", help="Service codes refused inside the area, CODE,CODE.")
def notices_add(message: str, translations: tuple[tuple[str, str], ...], severity: str,
                area_file: str | None, layer: str | None, districts: str | None,
                start: str | None, end: str | None, suspend: str) -> None:
    """Post a notice for an area (a file, or districts of a layer); audited."""
    if bool(area_file) == bool(layer):
        raise click.UsageError("give the area as --area FILE or as --layer L --districts 1,2")
    if layer and not districts:
        raise click.UsageError("--layer needs --districts (comma-separated ids)")
    s = state()
    zone = s.settings.timezone
    area = area_from_file(area_file) if area_file else \
        area_from_districts(s.store, layer or "", _codes(districts or ""))
    messages = {DEFAULT_LANGUAGE: message, **dict(translations)}
    notice = post_notice(
        s.store, messages=messages, severity=severity, area=area,
        starts=parse_time(start, zone, name="--start") if start else None,
        ends=parse_time(end, zone, name="--end") if end else None,
        suspend=_codes(suspend), actor="cli")
    until = f"until {local_time(notice.ends, s.settings.zone)}" if notice.ends else "until ended"
    click.echo(f"notice {notice.id} posted: {notice.severity}, {notice.area_desc}, "
               f"from {local_time(notice.starts, s.settings.zone)} {until}"
               f"{'; suspends ' + ', '.join(notice.suspended) if notice.suspended else ''}")


@notices.command("end")
@click.argument("notice_id", type=int)
def notices_end(notice_id: int) -> None:
    """End a notice now; audited."""
    notice = end_notice(state().store, notice_id, actor="cli")
    click.echo(f"notice {notice.id} ended")


@notices.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per notice.")
def notices_list(as_json: bool) -> None:
    """Every notice, newest first, with its state (in force, upcoming, ended)."""
    s = state()
    now = now_utc()
    for n in s.store.notices.all():
        status = "in force" if n.active(now) else ("upcoming" if n.starts > now else "ended")
        if as_json:
            click.echo(json.dumps({
                "id": n.id, "status": status, "severity": n.severity, "area": n.area_desc,
                "starts": n.starts.isoformat(), "ends": n.ends.isoformat() if n.ends else None,
                "suspended": list(n.suspended), "messages": n.messages,
                "acknowledged": len(s.store.notices.acknowledged(n.id))}, ensure_ascii=False))
            continue
        until = local_time(n.ends, s.settings.zone) if n.ends else "until ended"
        click.echo(f"{n.id:>4}  {status:<8}  {n.severity:<8}  "
                   f"{local_time(n.starts, s.settings.zone)} – {until}  {n.area_desc}  "
                   f"suspends: {', '.join(n.suspended) or 'none'}  "
                   f"{n.message(DEFAULT_LANGUAGE)[:60]!r}")


@notices.command("acknowledge")
@click.argument("notice_id", type=int)
@click.option("--services", required=True, help="Service codes, CODE,CODE.")
@click.option("--note", required=True, help="The public note every reporter reads.")
def notices_acknowledge(notice_id: int, services: str, note: str) -> None:
    """Acknowledge the open requests of services in a notice's area and window; audited."""
    done = acknowledge_requests(state().store, notice_id, _codes(services), note, actor="cli")
    click.echo(done.line)


COMMANDS = (notices,)
