"""Records: retention of personal data and free text, and legal holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from flask.cli import AppGroup
from tqdm import tqdm

from geo311.holds import hold_detail, parse_ids, place_hold, read_query_file, release_hold
from geo311.open311_service import refresh_stored_records
from geo311.retention import DEFAULT_BATCH, MAX_BATCH, run_retention
from geo311_web import state


@click.group("retention", cls=AppGroup)
def retention() -> None:
    """Retention rules of the catalogue: remove contact details, free text and media when due."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Count what each rule would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Count the years up to this day (UTC) instead of now.")
@click.option("--batch-size", default=DEFAULT_BATCH, show_default=True,
              type=click.IntRange(1, MAX_BATCH),
              help="Closed requests read and changed per transaction.")
def retention_run(dry_run: bool, as_json: bool, as_of: datetime | None, batch_size: int) -> None:
    """Apply the retention rules in batches (audited, resumable; held requests are skipped)."""
    s = state()
    total = s.store.retention.closed_count()
    with tqdm(total=total, desc="retention", unit=" requests", disable=None) as bar:
        report = run_retention(s.store, as_of=as_of.replace(tzinfo=UTC) if as_of else None,
                               dry_run=dry_run, batch_size=batch_size, progress=bar.update,
                               actor="cli", media=s.media)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    for line in report.lines():
        click.echo(line)
    if report.changed_anything():
        click.echo(refresh_stored_records(s.store, s.settings.zone))


@click.group("holds", cls=AppGroup)
def holds() -> None:
    """Legal holds: requests kept from retention and deletion until released."""


@holds.command("add")
@click.option("--reason", required=True, help="The matter, claim or request the hold serves.")
@click.option("--ids", "ids_text", metavar="1,2", help="Request ids, separated by commas.")
@click.option("--query", "query_path", type=click.Path(exists=True, dir_okay=False,
                                                       path_type=Path),
              help="A TOML file with a [query] table (service, district, dates, text, "
                   "reporter email or phone).")
@click.option("--owner", default="cli", show_default=True,
              help="Who is responsible for the hold (audited).")
def holds_add(reason: str, ids_text: str | None, query_path: Path | None, owner: str) -> None:
    """Place a hold on requests by id or by search; audited."""
    if (ids_text is None) == (query_path is None):
        raise click.UsageError("give exactly one of --ids or --query")
    s = state()
    if query_path is not None:
        hold = place_hold(s.store, reason=reason, owner=owner, zone=s.settings.zone,
                          query=read_query_file(query_path))
    else:
        hold = place_hold(s.store, reason=reason, owner=owner, zone=s.settings.zone,
                          ids=parse_ids(ids_text or ""))
    click.echo(f"hold {hold.id} placed on {hold.request_count} requests by {hold.owner}: "
               f"{hold.reason}")


@holds.command("release")
@click.argument("hold_id", type=int)
@click.option("--by", default="cli", show_default=True, help="Who releases it (audited).")
def holds_release(hold_id: int, by: str) -> None:
    """Release a hold; audited."""
    hold = release_hold(state().store, hold_id, by=by)
    click.echo(f"hold {hold.id} released ({hold.request_count} requests)")


@holds.command("list")
@click.option("--all", "show_all", is_flag=True, help="Released holds too.")
@click.option("--json", "as_json", is_flag=True, help="Print the holds as JSON.")
def holds_list(show_all: bool, as_json: bool) -> None:
    """List holds, newest first."""
    found = state().store.holds.holds(active_only=not show_all)
    if as_json:
        click.echo(json.dumps([hold_detail(h) for h in found], indent=2))
        return
    if not found:
        click.echo("no holds" if show_all else "no active holds")
    for h in found:
        released = (f"released {h.released:%Y-%m-%d} by {h.released_by}" if h.released
                    else "active")
        click.echo(f"{h.id:>5}  {h.created:%Y-%m-%d}  {h.request_count:>7} requests  "
                   f"{h.owner:<16} {released:<28} {h.reason}")


COMMANDS = (retention, holds)
