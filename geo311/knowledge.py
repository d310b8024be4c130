"""The knowledge base: what call-takers and residents are told, kept as files and searched.

A city keeps its knowledge base in version control as a directory: one markdown file per
article, ``<slug>.md``, with TOML front matter between ``+++`` lines, and ``synonyms.toml``
(a resident's phrase = what it means in the catalogue's words). ``geo311 kb load PATH``
checks every file before storing anything; ``geo311 kb export PATH`` writes the same
files back, byte for byte. Shipped knowledge bases sit beside their catalogue
(``catalogues/NAME-kb``).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from geo311.errors import InvalidRequest
from geo311.kb_ranking import QueryPlan, Vocabulary, plan_query, rank
from geo311.model import Article, KbHit
from geo311.store import Store

LOGGER = logging.getLogger(__name__)

CATALOGUES = Path(__file__).parent / "catalogues"
SYNONYMS_FILE = "synonyms.toml"
FRONT = "+++"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
#: Front-matter keys, in the order export writes them.
_KEYS = ("title", "service_code", "owner", "public", "review_by", "keywords", "script")
_REQUIRED = ("title", "owner", "public", "review_by")
#: The most results a search returns, and how many candidates the index is asked for.
MAX_LIMIT = 50
CANDIDATES = 200


@dataclass(frozen=True)
class KnowledgeFiles:
    """A knowledge base as read from files: articles and the synonym table."""

    articles: tuple[Article, ...]
    synonyms: dict[str, str] | None  # None: the directory has no synonyms.toml


def kb_path(name_or_path: str | Path) -> Path:
    """A shipped knowledge base by its catalogue's name, else a directory or file path."""
    shipped = CATALOGUES / f"{name_or_path}-kb"
    if isinstance(name_or_path, str) and "/" not in name_or_path and shipped.is_dir():
        return shipped
    path = Path(name_or_path)
    if not path.exists():
        raise InvalidRequest(f"knowledge base {str(name_or_path)!r} is neither a directory, "
                             "a file, nor a shipped knowledge base")
    return path


def read_kb(name_or_path: str | Path, service_codes: set[str]) -> KnowledgeFiles:
    """Read and check a knowledge-base directory (or one article file).

    Every problem is named with its file and field; ``service_codes`` are the codes an
    article may be about.

    Examples
    --------
    >>> kb = read_kb(load_profile().catalogue, {"SGA", "PHF"})  # doctest: +SKIP
    """
    path = kb_path(name_or_path)
    files = sorted(path.glob("*.md")) if path.is_dir() else [path]
    if not files:
        raise InvalidRequest(f"{path} holds no article files (<slug>.md)")
    articles = tuple(parse_article(f.stem, f.read_text(encoding="utf-8"), f.name,
                                   service_codes) for f in files)
    synonyms = None
    syn = path / SYNONYMS_FILE if path.is_dir() else None
    if syn is not None and syn.exists():
        synonyms = parse_synonyms(syn.read_text(encoding="utf-8"), syn.name)
    return KnowledgeFiles(articles, synonyms)


def parse_article(slug: str, text: str, where: str, service_codes: set[str]) -> Article:
    """One article file: TOML front matter between ``+++`` lines, then the body."""
    if not _SLUG.match(slug):
        raise InvalidRequest(f"{where}: the file name (the slug) {slug!r} must be lower-case "
                             "letters, digits and hyphens")
    lines = text.split("\n")
    if not lines or lines[0].strip() != FRONT or FRONT not in [x.strip() for x in lines[1:]]:
        raise InvalidRequest(f"{where}: expected TOML front matter between {FRONT} lines "
                             "at the top")
    end = 1 + [x.strip() for x in lines[1:]].index(FRONT)
    try:
        meta = tomllib.loads("\n".join(lines[1:end]))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest(f"{where}: front matter cannot be read: {exc}") from exc
    unknown = sorted(set(meta) - set(_KEYS))
    if unknown:
        raise InvalidRequest(f"{where}: unknown fields {unknown}; known: {list(_KEYS)}")
    for key in _REQUIRED:
        if key not in meta:
            raise InvalidRequest(f"{where}: field {key!r} is missing")
    title = meta["title"]
    if not isinstance(title, str) or not title.strip():
        raise InvalidRequest(f"{where}: field 'title' is empty")
    review_by = meta["review_by"]
    if isinstance(review_by, str):
        try:
            review_by = date.fromisoformat(review_by)
        except ValueError:
            pass
    if not isinstance(review_by, date) or hasattr(review_by, "hour"):
        raise InvalidRequest(f"{where}: field 'review_by' was {meta['review_by']!r} but is "
                             "expected to be a date such as 2027-01-31")
    if not isinstance(meta["public"], bool):
        raise InvalidRequest(f"{where}: field 'public' was {meta['public']!r} but is expected "
                             "to be true or false")
    code = meta.get("service_code", "")
    if code and code not in service_codes:
        raise InvalidRequest(f"{where}: field 'service_code' {code!r} is not in the service "
                             "catalogue")
    for key in ("owner", "keywords", "script", "service_code"):
        if not isinstance(meta.get(key, ""), str):
            raise InvalidRequest(f"{where}: field {key!r} is expected to be text")
    body = "\n".join(lines[end + 1:]).strip("\n").rstrip()
    return Article(slug=slug, title=title.strip(), body=body, service_code=code,
                   owner=meta["owner"], public=meta["public"], review_by=review_by,
                   keywords=meta.get("keywords", ""), script=meta.get("script", ""))


def parse_synonyms(text: str, where: str) -> dict[str, str]:
    """The synonym table: ``[synonyms]`` of phrase = meaning."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequest(f"{where} cannot be read: {exc}") from exc
    table = data.get("synonyms")
    if not isinstance(table, dict):
        raise InvalidRequest(f"{where}: expected a [synonyms] table of phrase = meaning")
    for phrase, meaning in table.items():
        if not isinstance(meaning, str) or not meaning.strip() or not phrase.strip():
            raise InvalidRequest(f"{where}: synonym {phrase!r} needs a meaning (text)")
    return {p.strip().lower(): m.strip() for p, m in table.items()}


def article_text(a: Article) -> str:
    """An article as its file: what ``parse_article`` reads back to the same article."""
    meta = {"title": a.title, "service_code": a.service_code, "owner": a.owner,
            "public": a.public, "review_by": a.review_by, "keywords": a.keywords,
            "script": a.script}
    out = [FRONT]
    for key in _KEYS:
        value = meta[key]
        if value == "" and key in ("service_code", "keywords", "script"):
            continue
        out.append(f"{key} = {_toml_value(value)}")
    out += [FRONT, "", a.body, ""] if a.body else [FRONT, ""]
    return "\n".join(out)


def synonyms_text(synonyms: dict[str, str]) -> str:
    """The synonym table as its file."""
    head = ["# A phrase residents use = what it means in the catalogue's words.",
            "[synonyms]"]
    return "\n".join(head + [f"{_toml_value(p)} = {_toml_value(m)}"
                             for p, m in sorted(synonyms.items())]) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return json.dumps(str(value), ensure_ascii=False)


def load_kb(store: Store, name_or_path: str | Path, *, actor: str = "system"
            ) -> dict[str, list[str]]:
    """Check and store a knowledge base; nothing is stored when any file is wrong.

    A changed article gets a new version; its earlier one is kept.
    """
    files = read_kb(name_or_path, store.kb.known_service_codes())
    slugs = [a.slug for a in files.articles]
    if len(set(slugs)) != len(slugs):
        raise InvalidRequest(f"article slugs appear more than once: {sorted(slugs)}")
    done = store.kb.save(files.articles, files.synonyms, actor=actor)
    LOGGER.info("knowledge base %s: %s", name_or_path, {k: len(v) for k, v in done.items()})
    return done


def export_kb(store: Store, directory: Path) -> int:
    """Write every article and the synonym table as files; return how many articles."""
    directory.mkdir(parents=True, exist_ok=True)
    articles = store.kb.articles()
    for a in articles:
        (directory / f"{a.slug}.md").write_text(article_text(a), encoding="utf-8")
    (directory / SYNONYMS_FILE).write_text(synonyms_text(store.kb.synonyms()), encoding="utf-8")
    return len(articles)


def search_kb(store: Store, query: str, limit: int = 10, *, public_only: bool = True
              ) -> list[KbHit]:
    """Services and articles answering a resident's words, best first.

    ``public_only`` (the default, for residents and the API) leaves internal articles out.

    Examples
    --------
    >>> [h.service_code for h in search_kb(store, "rats in the alley", 3)]  # doctest: +SKIP
    ['SGA', 'SGA', 'SFA']
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit was {limit} but is expected to be within 1-{MAX_LIMIT}")
    plan, vocabulary, docs = _plan(store, query, public_only)
    found = store.kb.match(plan.search_words, public_only=public_only, limit=CANDIDATES)
    return rank(plan, [(docs[i], r) for i, r in found if i in docs], vocabulary, limit)


def _plan(store: Store, query: str, public_only: bool
          ) -> tuple[QueryPlan, Vocabulary, dict[int, Any]]:
    if len(query) > 500:
        raise InvalidRequest(f"the query is {len(query)} characters; at most 500 are read")
    docs, synonyms, vocabulary = _indexed(store, public_only)
    return plan_query(query, synonyms, vocabulary), vocabulary, docs


#: The index as search reads it, per database and audience, with its ``index_key``.
_INDEXED: dict[tuple[str, bool], tuple[str, Any]] = {}
_INDEXED_LOCK = threading.Lock()


def _indexed(store: Store, public_only: bool
             ) -> tuple[dict[int, Any], dict[str, str], Vocabulary]:
    """The indexed documents, synonyms and vocabulary, re-read when the index was rebuilt."""
    slot = (store.engine.url.render_as_string(), public_only)
    key = store.kb.index_key()
    with _INDEXED_LOCK:
        kept = _INDEXED.get(slot)
    if kept is not None and kept[0] == key:
        return kept[1]  # type: ignore[no-any-return]
    docs = {d.id: d for d in store.kb.documents(public_only=public_only)}
    synonyms = store.kb.synonyms()
    value = (docs, synonyms, Vocabulary.of(list(docs.values()), synonyms))
    with _INDEXED_LOCK:
        _INDEXED[slot] = (key, value)
    return value


def overdue_articles(store: Store, today: date, owner: str = "") -> list[Article]:
    """Articles past their review-by date (of ``owner`` when given), most overdue first."""
    return [a for a in store.kb.overdue(today) if not owner or a.owner == owner]
