"""The knowledge base as stored: articles with their versions, synonyms, the search index."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from geo311.errors import NotFound
from geo311.model import Article, KbDocument
from geo311.store import tables as t
from geo311.store.audit import write_audit
from geo311.store.database import Database

LOGGER = logging.getLogger(__name__)
#: ``schema_info`` key of the search index's generation, new at every rebuild.
KB_GENERATION = "kb_generation"
_ARTICLE_FIELDS = ("title", "body", "keywords", "script", "owner", "public", "review_by")


class KnowledgeBase:
    """Articles, their earlier versions, the synonym table and the full-text index."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- articles ------------------------------------------------------------------------

    def save(self, articles: Sequence[Article], synonyms: dict[str, str] | None = None, *,
             actor: str = "system") -> dict[str, list[str]]:
        """Add or change articles in one transaction; a changed one gets a new version.

        The version it replaces is kept in ``kb_article_versions``. ``synonyms``, when
        given, replaces the synonym table. Returns the slugs ``added``, ``changed`` and
        ``unchanged``.
        """
        done: dict[str, list[str]] = {"added": [], "changed": [], "unchanged": []}
        now = datetime.now(UTC)
        a = t.kb_articles.c
        with self.db.begin() as conn:
            stored = {r["slug"]: r for r in conn.execute(select(t.kb_articles)).mappings()}
            for art in articles:
                values = _article_values(art)
                old = stored.get(art.slug)
                if old is None:
                    conn.execute(insert(t.kb_articles).values(
                        slug=art.slug, version=1, updated=now, updated_by=actor, **values))
                    done["added"].append(art.slug)
                elif _article_from_row(old).content() == art.content():
                    done["unchanged"].append(art.slug)
                else:
                    conn.execute(insert(t.kb_article_versions).values(
                        {k: old[k] for k in (*_ARTICLE_FIELDS, "slug", "version",
                                              "service_code", "updated", "updated_by")}))
                    conn.execute(update(t.kb_articles).where(a.slug == art.slug).values(
                        version=old["version"] + 1, updated=now, updated_by=actor, **values))
                    done["changed"].append(art.slug)
            if synonyms is not None:
                conn.execute(delete(t.kb_synonyms))
                if synonyms:
                    conn.execute(insert(t.kb_synonyms), [
                        {"phrase": p, "meaning": m} for p, m in synonyms.items()])
            write_audit(conn, "kb_loaded", "kb", "articles",
                        {k: len(v) for k, v in done.items()}, actor)
            self._reindex(conn)
        return done

    def articles(self, *, public_only: bool = False) -> list[Article]:
        """Every article (or only the public ones), by slug."""
        stmt = select(t.kb_articles).order_by(t.kb_articles.c.slug)
        if public_only:
            stmt = stmt.where(t.kb_articles.c.public)
        with self.db.connect() as conn:
            return [_article_from_row(r) for r in conn.execute(stmt).mappings()]

    def article(self, slug: str, *, public_only: bool = False) -> Article:
        """One article; raise ``NotFound`` (also for an internal one when ``public_only``)."""
        stmt = select(t.kb_articles).where(t.kb_articles.c.slug == slug)
        if public_only:
            stmt = stmt.where(t.kb_articles.c.public)
        with self.db.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFound(f"there is no article {slug!r} in the knowledge base")
        return _article_from_row(row)

    def versions(self, slug: str) -> list[Article]:
        """Every version of an article, oldest first, the current one last."""
        current = self.article(slug)
        v = t.kb_article_versions.c
        with self.db.connect() as conn:
            rows = conn.execute(select(t.kb_article_versions).where(v.slug == slug)
                                .order_by(v.version)).mappings().all()
        return [_article_from_row(r) for r in rows] + [current]

    def overdue(self, today: date) -> list[Article]:
        """Articles whose review-by date is before ``today``, most overdue first."""
        a = t.kb_articles.c
        with self.db.connect() as conn:
            rows = conn.execute(select(t.kb_articles).where(a.review_by < today)
                                .order_by(a.review_by, a.slug)).mappings().all()
        return [_article_from_row(r) for r in rows]

    def synonyms(self) -> dict[str, str]:
        """The synonym table: a resident's phrase and what it means in the catalogue's words."""
        s = t.kb_synonyms.c
        with self.db.connect() as conn:
            return dict(conn.execute(select(s.phrase, s.meaning).order_by(s.phrase)).all())

    def known_service_codes(self) -> set[str]:
        """Service codes an article may be about (every stored service)."""
        with self.db.connect() as conn:
            return set(conn.execute(select(t.services.c.code)).scalars())

    # -- the search index ----------------------------------------------------------------

    def reindex(self) -> int:
        """Rebuild the search index from the articles and the accepting services."""
        with self.db.begin() as conn:
            return self._reindex(conn)

    def _reindex(self, conn: Connection) -> int:
        s, a = t.services.c, t.kb_articles.c
        conn.execute(delete(t.kb_index))
        rows: list[dict[str, Any]] = [
            {"kind": "service", "ref": r.code, "title": r.name, "keywords": r.keywords,
             "body": r.description, "service_code": r.code, "department": r.group,
             "public": True}
            for r in conn.execute(select(s.code, s.name, s.keywords, s.description, s.group)
                                  .where(s.active).where(s.accepting))
        ]
        rows += [
            {"kind": "article", "ref": r.slug, "title": r.title, "keywords": r.keywords,
             "body": r.body, "service_code": r.service_code, "department": "",
             "public": r.public}
            for r in conn.execute(select(a.slug, a.title, a.keywords, a.body, a.service_code,
                                         a.public))
        ]
        if rows:
            conn.execute(insert(t.kb_index), rows)
        self.db.dialect.rebuild_kb_index(conn)
        # A random token, not a counter: a database made again at the same URL must not
        # match what a process kept of the one before.
        conn.execute(delete(t.schema_info).where(t.schema_info.c.key == KB_GENERATION))
        conn.execute(insert(t.schema_info).values(key=KB_GENERATION, value=uuid.uuid4().hex))
        LOGGER.info("knowledge-base index rebuilt: %s entries", len(rows))
        return len(rows)

    def index_key(self) -> str:
        """The index's generation: a new random token at every rebuild (every saved change)."""
        with self.db.connect() as conn:
            found = conn.execute(select(t.schema_info.c.value)
                                 .where(t.schema_info.c.key == KB_GENERATION)).scalar()
        return str(found or "")

    def documents(self, *, public_only: bool) -> list[KbDocument]:
        """Every indexed entry (the vocabulary and idf of the search come from them)."""
        k = t.kb_index.c
        stmt = select(k.id, k.kind, k.ref, k.title, k.keywords, k.body, k.service_code,
                      k.department).order_by(k.id)
        if public_only:
            stmt = stmt.where(k.public)
        with self.db.connect() as conn:
            return [KbDocument(r.id, r.kind, r.ref, r.title, r.keywords, r.body,
                               r.service_code or "", r.department)
                    for r in conn.execute(stmt)]

    def match(self, search_words: Sequence[str], *, public_only: bool,
              limit: int) -> list[tuple[int, float]]:
        """Index entries holding any of ``search_words``: ``(id, rank)``, best first.

        The backend's full-text search (FTS5 bm25 or ts_rank, the title weighted most).
        """
        if not search_words:
            return []
        with self.db.connect() as conn:
            return self.db.dialect.kb_match(conn, list(search_words), public_only, limit)


def _article_values(a: Article) -> dict[str, Any]:
    return {"title": a.title, "body": a.body, "keywords": a.keywords, "script": a.script,
            "service_code": a.service_code or None, "owner": a.owner, "public": a.public,
            "review_by": a.review_by}


def _article_from_row(r: Any) -> Article:
    return Article(slug=r["slug"], title=r["title"], body=r["body"],
                   service_code=r["service_code"] or "", owner=r["owner"],
                   public=bool(r["public"]), review_by=r["review_by"], keywords=r["keywords"],
                   script=r["script"], version=r["version"])
