"""Referrals to neighbouring jurisdictions: forward them (``geo311 referrals run [--once]``)."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

import click
from flask.cli import AppGroup
from tqdm import tqdm

from geo311.referral import ForwardPolicy, forward_due, load_routing, run_worker
from geo311.store.referrals import STATES
from geo311_web import state


@click.group("referrals", cls=AppGroup)
def referrals() -> None:
    """Reports outside the city, referred or forwarded to the neighbour that handles them."""


def _policy(max_attempts: int | None) -> ForwardPolicy:
    table = load_routing(state().settings.routing_path)
    return ForwardPolicy(max_attempts=max_attempts or (table.max_attempts if table else 6))


@referrals.command("run")
@click.option("--once", is_flag=True, help="Forward what is due and exit (for cron).")
@click.option("--poll", "poll_s", default=30.0, show_default=True,
              type=click.FloatRange(0.1), help="Seconds between passes when looping.")
@click.option("--max-attempts", default=None, type=click.IntRange(1),
              help="Tries before a referral is flagged for staff (default: the routing "
                   "file's max_attempts).")
def referrals_run(once: bool, poll_s: float, max_attempts: int | None) -> None:
    """Post due referrals to the neighbours' Open311 endpoints, retrying with backoff."""
    s = state()
    policy = _policy(max_attempts)
    if once:
        with tqdm(desc="referrals", unit=" reports", disable=None) as bar:
            summary = forward_due(s.store, load_routing(s.settings.routing_path), policy,
                                  progress=bar.update)
        click.echo(summary.line())
        for error in summary.errors:
            click.echo(f"  {error}")
        return
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    click.echo(f"forwarding referrals every {poll_s:g} s; Ctrl-C stops")
    try:
        run_worker(s.store, lambda: load_routing(s.settings.routing_path), policy,
                   poll_s=poll_s, stop=stop, report=lambda summary: click.echo(summary.line()))
    except KeyboardInterrupt:
        stop.set()
    click.echo("stopped")


@referrals.command("list")
@click.option("--status", type=click.Choice(STATES), help="Only referrals in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="One JSON list.")
def referrals_list(status: str | None, limit: int, as_json: bool) -> None:
    """Referrals, newest first, with the counts by state."""
    store = state().store
    rows = store.referrals.rows(status=status, limit=limit)
    if as_json:
        keep = ("reference", "created", "status", "service_code", "jurisdiction_name",
                "agency_name", "attempts", "remote_id", "last_error")
        click.echo(json.dumps([{k: str(r[k]) if k == "created" else r[k] for k in keep}
                               for r in rows], indent=2))
        return
    counts = store.referrals.counts()
    click.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))
    for r in rows:
        remote = f" remote {r['remote_id']}" if r["remote_id"] else ""
        error = f" — {r['last_error'][:80]}" if r["status"] in ("failed", "pending") \
            and r["last_error"] else ""
        click.echo(f"{r['reference']:<8} {r['status']:<9} {r['service_code']:<8} "
                   f"{r['jurisdiction_name']} -> {r['agency_name']} "
                   f"(tries {r['attempts']}){remote}{error}")


@referrals.command("retry")
@click.argument("reference")
def referrals_retry(reference: str) -> None:
    """Send a flagged (failed) referral again, from its first try."""
    found = state().store.referrals.retry(reference, actor="cli")
    click.echo(f"{found['reference']} is {found['status']} again")


COMMANDS = (referrals,)
