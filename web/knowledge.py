"""The public help page and the knowledge-base search API (public articles only)."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from werkzeug.wrappers import Response

from geo311.errors import InvalidRequest
from geo311.knowledge import MAX_LIMIT, search_kb
from geo311_web import state

bp = Blueprint("help", __name__)
DEFAULT_LIMIT = 10


def _limit() -> int:
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError as exc:
        raise InvalidRequest(f"limit was {raw!r} but is expected to be a whole number "
                             f"within 1-{MAX_LIMIT}") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit was {limit} but is expected to be within 1-{MAX_LIMIT}")
    return limit


def blocks(body: str) -> list[tuple[str, list[str]]]:
    """An article body as paragraphs and bullet lists (``- item`` lines), text kept as text."""
    out: list[tuple[str, list[str]]] = []
    for chunk in body.split("\n\n"):
        lines = [x.strip() for x in chunk.strip().split("\n") if x.strip()]
        if not lines:
            continue
        if all(x.startswith(("- ", "* ")) for x in lines):
            out.append(("ul", [x[2:].strip() for x in lines]))
        else:
            out.append(("p", [" ".join(lines)]))
    return out


@bp.get("/api/kb/search")
def api_search() -> Response:
    """Ranked services and public articles for a resident's words."""
    query = request.args.get("q")
    if query is None:
        raise InvalidRequest("q is required: the words to search for")
    hits = search_kb(state().store, query, _limit())
    return jsonify([h.as_json() for h in hits])


@bp.get("/help")
def help_page() -> str:
    """Search the public knowledge base; without a query, list its articles."""
    store = state().store
    query = request.args.get("q", "").strip()
    hits = search_kb(store, query, _limit()) if query else []
    articles = [] if query else store.kb.articles(public_only=True)
    return render_template("help.html", query=query, hits=hits, articles=articles)


@bp.get("/help/<slug>")
def help_article(slug: str) -> str:
    """One public article; an internal one is not found."""
    store = state().store
    article = store.kb.article(slug, public_only=True)
    service = None
    if article.service_code:
        service = next((s for s in store.catalogue.services()
                        if s.code == article.service_code and s.accepting), None)
    return render_template("help_article.html", a=article, blocks=blocks(article.body),
                           service=service)
