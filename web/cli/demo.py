"""``geo311 demo``: the shipped city, loaded and served."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from geo311.demo import prepare_demo
from geo311_web import state


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the data and stop.")
@with_appcontext
def demo(host: str, port: int, no_serve: bool) -> None:
    """Set up the database, load the shipped layers and requests, and serve."""
    s = state()
    prepare_demo(s.store, s.settings, s.context, click.echo)
    if no_serve:
        return
    from flask import current_app
    from werkzeug.serving import run_simple

    click.echo(f"serving on http://{host}:{port}/ (Ctrl+C stops)")
    run_simple(host, port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]


COMMANDS = (demo,)
