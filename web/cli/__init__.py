"""The ``geo311`` command: each command is a few lines calling one core function.

Commands are grouped by who uses them: ``layers`` (GIS staff), ``requests`` (import,
export, duplicates, the catalogue and public records), ``staff`` (accounts and API
keys), ``dispatch`` (SLAs, crews, work orders), ``geocoding``, ``city`` (the city
profile), ``notify`` (mail to residents), ``disclosure`` (public-records packages),
``notices`` (area notices), ``referrals`` (reports passed on to neighbours),
``records`` (retention and legal holds) and ``demo``.
"""

from __future__ import annotations

import logging

import click
from flask.cli import FlaskGroup

from geo311.errors import Geo311Error
from geo311_web import create_app, state
from geo311_web.cli import (
    city,
    demo,
    disclosure,
    dispatch,
    geocoding,
    kb,
    layers,
    notices,
    notify,
    records,
    referrals,
    requests,
    staff,
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
    added = store.schema.upgrade()
    click.echo(f"schema version {store.db.schema_version()} ready at "
               f"{store.engine.url.render_as_string()}")
    for what in added:
        click.echo(f"  added {what}")


for _module in (layers, requests, staff, dispatch, geocoding, kb, demo, city, notify,
                disclosure, notices, referrals, records):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
