"""Public-records (FOIA) packages: ``geo311 disclosure export QUERY.toml --output PATH.zip``."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import AppGroup
from tqdm import tqdm

from geo311.disclosure import build_package, count_matching, read_query
from geo311_web import state


@click.group("disclosure", cls=AppGroup)
def disclosure() -> None:
    """Public-records requests answered as packages (records staff)."""


@disclosure.command("export")
@click.argument("query_path", metavar="QUERY.toml",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", required=True, metavar="PATH.zip",
              type=click.Path(dir_okay=False, path_type=Path), help="Where to write the zip.")
def disclosure_export(query_path: Path, output: Path) -> None:
    """Build the records package of a saved search: redacted CSV, GeoJSON, log, manifest."""
    s = state()
    query = read_query(query_path)
    total = count_matching(s.store, query, s.settings.zone)
    started = time.perf_counter()
    with tqdm(total=total, desc=query.reference, unit=" requests", disable=None) as bar:
        summary = build_package(s.store, query, output, zone=s.settings.zone,
                                progress=bar.update, actor="cli")
    took = time.perf_counter() - started
    for line in summary.lines():
        click.echo(line)
    click.echo(f"wrote {output} ({summary.bytes:,} bytes, sha256 {summary.sha256}) "
               f"in {took:.2f} s")


COMMANDS = (disclosure,)
