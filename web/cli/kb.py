"""The knowledge base: load and export its files, search it, list what needs review."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from geo311.knowledge import MAX_LIMIT, export_kb, load_kb, overdue_articles, search_kb
from geo311_web import state


@click.group("kb", cls=AppGroup)
def kb() -> None:
    """The knowledge base of articles and call-taker scripts."""


@kb.command("load")
@click.argument("path")
def kb_load(path: str) -> None:
    """Check and store articles from a directory of markdown files (or a shipped name)."""
    store = state().store
    store.schema.init()
    done = load_kb(store, path, actor="cli")
    click.echo(", ".join(f"{len(v)} {k}" for k, v in done.items()) + f" articles from {path}")


@kb.command("export")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
def kb_export(path: Path) -> None:
    """Write every article and the synonym table as files, for version control."""
    count = export_kb(state().store, path)
    click.echo(f"{count} articles written to {path}")


@kb.command("search")
@click.argument("query")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, MAX_LIMIT))
@click.option("--json", "as_json", is_flag=True, help="The ranked list as JSON.")
@click.option("--internal", is_flag=True, help="Include internal articles (staff only).")
def kb_search(query: str, limit: int, as_json: bool, internal: bool) -> None:
    """Search services and articles as residents put it."""
    hits = search_kb(state().store, query, limit, public_only=not internal)
    if as_json:
        click.echo(json.dumps([h.as_json() for h in hits], ensure_ascii=False))
        return
    for i, h in enumerate(hits, 1):
        code = f" [{h.service_code}]" if h.service_code else ""
        click.echo(f"{i:2}. {h.kind:7} {h.title}{code}")


@kb.command("review")
@click.option("--owner", default="", help="Only the articles of this owner.")
@click.option("--json", "as_json", is_flag=True)
def kb_review(owner: str, as_json: bool) -> None:
    """Articles past their review-by date, most overdue first."""
    s = state()
    today = datetime.now(s.settings.zone).date()
    found = overdue_articles(s.store, today, owner)
    rows = [{"slug": a.slug, "title": a.title, "owner": a.owner, "public": a.public,
             "review_by": a.review_by.isoformat(), "days_overdue": (today - a.review_by).days,
             "version": a.version} for a in found]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("no article is past its review-by date")
    for r in rows:
        click.echo(f"{r['review_by']}  {r['days_overdue']:4} days overdue  {r['slug']}  "
                   f"({r['owner']}): {r['title']}")


COMMANDS = (kb,)
