"""Mail to residents: deliver the outbox (``notify run [--once]``), queue area digests."""

from __future__ import annotations

import signal
import threading
from datetime import datetime, timedelta
from typing import Any

import click
from flask.cli import AppGroup
from tqdm import tqdm

from geo311.area_alerts import deliver_area_mail, queue_digests
from geo311.notifications import (
    DeliveryPolicy,
    Mailer,
    deliver_due,
    run_worker,
)
from geo311_web import state


@click.group("notify", cls=AppGroup)
def notify() -> None:
    """Notifications to residents: receipts and status changes of their requests."""


@notify.command("run")
@click.option("--once", is_flag=True, help="Deliver what is due and exit (for cron).")
@click.option("--poll", "poll_s", default=30.0, show_default=True,
              type=click.FloatRange(0.1), help="Seconds between passes when looping.")
@click.option("--per-address", default=10, show_default=True, type=click.IntRange(1),
              help="Messages one address may receive per hour; more wait.")
@click.option("--max-attempts", default=6, show_default=True, type=click.IntRange(1),
              help="Tries before a temporary failure becomes a permanent one.")
def notify_run(once: bool, poll_s: float, per_address: int, max_attempts: int) -> None:
    """Send due notifications over SMTP (GEO311_SMTP_*), retrying temporary failures."""
    s = state()
    mailer = Mailer.from_settings(s.settings)
    policy = DeliveryPolicy(per_address=per_address, max_attempts=max_attempts,
                            window=timedelta(hours=1))
    if once:
        with tqdm(desc="notifications", unit=" messages", disable=None) as bar:
            summary = deliver_due(s.store, mailer, policy, progress=bar.update)
            summary.add(deliver_area_mail(s.store, mailer, policy, progress=bar.update))
        click.echo(summary.line())
        return
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    click.echo(f"delivering notifications every {poll_s:g} s; Ctrl-C stops")
    try:
        run_worker(s.store, mailer, policy, poll_s=poll_s, stop=stop,
                   report=lambda summary: click.echo(summary.line()),
                   more=[lambda: deliver_area_mail(s.store, mailer, policy)])
    except KeyboardInterrupt:
        stop.set()
    click.echo("stopped")


@notify.command("digest")
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The local day to summarise (default: yesterday in GEO311_TIMEZONE).")
def notify_digest(day: datetime | None) -> None:
    """Queue each confirmed area alert's digest of a day (run daily from cron; idempotent)."""
    s = state()
    zone = s.settings.zone
    which = day.date() if day else datetime.now(zone).date() - timedelta(days=1)
    with tqdm(desc=f"area digests of {which}", unit=" subscriptions", disable=None) as bar:
        summary = queue_digests(s.store, which, zone, progress=bar.update)
    click.echo(summary.line())


COMMANDS = (notify,)
