"""``geo311 demo``: a shipped city (or a city profile's files), loaded and served."""

from __future__ import annotations

import os
import threading
from dataclasses import replace

import click
from flask.cli import with_appcontext

from geo311.city import load_profile, profile_path
from geo311.demo import prepare_demo
from geo311.errors import ConfigError
from geo311.open311_service import refresh_stored_records
from geo311.referral import load_routing
from geo311_web import state


@click.command("demo")
@click.option("--city", "city", default="",
              help="A shipped city profile's name or a profile file (default: GEO311_CITY, "
                   "else the default city).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the data and stop.")
@with_appcontext
def demo(city: str, host: str, port: int, no_serve: bool) -> None:
    """Set up the database, load the city's layers, references and requests, and serve."""
    s = state()
    if city:
        try:
            path = str(profile_path(city).resolve())
            profile = load_profile(path)
        except ConfigError as exc:
            raise click.ClickException(exc.message.replace("GEO311_CITY", "--city")) from exc
        old = s.settings.profile
        tz = profile.timezone if s.settings.timezone == old.timezone else s.settings.timezone
        s.settings = replace(s.settings, city=path, timezone=tz)
        s.reset_context()
        # SLA clocks and crews on "the city's calendar" read GEO311_CITY.
        os.environ["GEO311_CITY"] = path
    prepare_demo(s.store, s.settings, s.context, click.echo, records=no_serve)
    if no_serve:
        return
    from flask import current_app
    from werkzeug.serving import run_simple

    # The map is served at once; Open311 records are built meanwhile (a reader that
    # comes first builds the ones it needs itself).
    routing = load_routing(s.settings.routing_path)
    threading.Thread(target=lambda: click.echo(refresh_stored_records(s.store, s.settings.zone,
                                                                      routing)),
                     name="records", daemon=True).start()
    click.echo(f"serving on http://{host}:{port}/ (Ctrl+C stops)")
    run_simple(host, port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]


COMMANDS = (demo,)
