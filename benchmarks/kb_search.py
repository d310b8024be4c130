"""Knowledge-base search quality: geo311's search against a plain SQL ``LIKE`` search.

    python benchmarks/kb_search.py                       # SpatiaLite in a temporary file
    python benchmarks/kb_search.py --postgis URL         # and PostGIS too
    python benchmarks/kb_search.py --misses              # list what each search got wrong

Loads the shipped Chicago catalogue and starter knowledge base, runs every phrasing of
``tests/data/kb_phrasings.toml`` and prints top-1 and top-3 for both searches on each
backend. A phrasing expecting a service is answered by the service or an article about
it; one expecting an article by that article. The ``LIKE`` search ranks the public
entries by how many of the query's words (3 letters or more) appear in the title,
keywords, department or body, the title breaking ties.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from sqlalchemy import case, literal, or_, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo311.catalogue import load_catalogue, read_catalogue  # noqa: E402
from geo311.kb_ranking import words  # noqa: E402
from geo311.knowledge import load_kb, search_kb  # noqa: E402
from geo311.store import Store, open_store  # noqa: E402
from geo311.store import tables as t  # noqa: E402

PHRASINGS = ROOT / "tests/data/kb_phrasings.toml"


def read_phrasings(path: Path = PHRASINGS) -> list[dict[str, str]]:
    return tomllib.loads(path.read_text(encoding="utf-8"))["phrasing"]


def answers(item: dict[str, str], kind: str, ref: str, service_code: str) -> bool:
    if "article" in item:
        return kind == "article" and ref == item["article"]
    return service_code == item["service"]


def like_search(store: Store, query: str, limit: int) -> list[tuple[str, str, str]]:
    k = t.kb_index.c
    terms = [w for w in words(query) if len(w) >= 3]
    if not terms:
        return []
    fields = (k.title, k.keywords, k.department, k.body)
    hits = sum((case((or_(*(f.ilike(f"%{w}%") for f in fields)), 1), else_=0) for w in terms),
               literal(0))
    in_title = sum((case((k.title.ilike(f"%{w}%"), 1), else_=0) for w in terms), literal(0))
    stmt = (select(k.kind, k.ref, k.service_code).where(k.public).where(hits > 0)
            .order_by(hits.desc(), in_title.desc(), k.id).limit(limit))
    with store.db.connect() as conn:
        return [(r.kind, r.ref, r.service_code or "") for r in conn.execute(stmt)]


def evaluate(store: Store, phrasings: list[dict[str, str]], show_misses: bool):
    scores = {}
    for name in ("geo311", "LIKE"):
        top1 = top3 = 0
        started = time.perf_counter()
        for item in phrasings:
            if name == "geo311":
                found = [(h.kind, h.ref, h.service_code) for h in search_kb(store, item["text"], 3)]
            else:
                found = like_search(store, item["text"], 3)
            ok = [answers(item, *f) for f in found]
            top1 += bool(ok[:1] and ok[0])
            top3 += any(ok)
            if show_misses and not (ok[:1] and ok[0]):
                print(f"  {name} miss: {item['text']!r} -> {found} (want "
                      f"{item.get('service') or item.get('article')})")
        elapsed = time.perf_counter() - started
        scores[name] = (top1 / len(phrasings), top3 / len(phrasings),
                        1000 * elapsed / len(phrasings))
    return scores


def prepared(url: str) -> Store:
    store = open_store(url)
    store.schema.drop()
    store.schema.init()
    load_catalogue(store, read_catalogue("chicago"), source="chicago")
    load_kb(store, "chicago")
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgis", help="a PostGIS URL whose geo311 tables may be dropped")
    parser.add_argument("--misses", action="store_true")
    parser.add_argument("--phrasings", type=Path, default=PHRASINGS,
                        help="another phrasings file (benchmarks/kb_phrasings_fresh.toml)")
    args = parser.parse_args()
    phrasings = read_phrasings(args.phrasings)
    print(f"{len(phrasings)} phrasings from {args.phrasings}")
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"spatialite": f"sqlite:///{tmp}/kb.sqlite"}
        if args.postgis:
            urls["postgis"] = args.postgis
        print(f"{'backend':<11} {'search':<7} {'top-1':>6} {'top-3':>6} {'ms/query':>9}")
        for backend, url in urls.items():
            store = prepared(url)
            for name, (top1, top3, ms) in evaluate(store, phrasings, args.misses).items():
                print(f"{backend:<11} {name:<7} {top1:6.1%} {top3:6.1%} {ms:9.1f}")
            store.schema.drop()  # leave an empty database, as found for the tests
            store.schema.init()
            store.dispose()


if __name__ == "__main__":
    main()
