"""Search quality on resident phrasings: the right answer first for 90%, in the top 3 for 98%.

The phrasings (tests/data/kb_phrasings.toml) expect a service, answered by the service
or an article about it, or a general article, answered by that article.
"""

import tomllib
from pathlib import Path

from geo311.knowledge import search_kb

PHRASINGS = tomllib.loads((Path(__file__).parent.parent / "data/kb_phrasings.toml")
                          .read_text(encoding="utf-8"))["phrasing"]


def _answers(item, hit):
    if "article" in item:
        return hit.kind == "article" and hit.ref == item["article"]
    return hit.service_code == item["service"]


def test_phrasings_cover_the_catalogue_with_typos_and_synonyms(kb_store):
    assert len(PHRASINGS) >= 100
    codes = {s.code for s in kb_store.catalogue.services() if s.accepting}
    wanted = {p["service"] for p in PHRASINGS if "service" in p}
    assert wanted <= codes
    assert len(wanted) >= 50, "most of the catalogue is asked for"
    slugs = {a.slug for a in kb_store.kb.articles(public_only=True)}
    assert {p["article"] for p in PHRASINGS if "article" in p} <= slugs


def test_top1_at_least_90_and_top3_at_least_98_percent(kb_store):
    top1 = top3 = 0
    misses = []
    for item in PHRASINGS:
        hits = search_kb(kb_store, item["text"], 3)
        ok = [_answers(item, h) for h in hits]
        top1 += bool(ok and ok[0])
        top3 += any(ok)
        if not any(ok):
            misses.append((item["text"], [(h.kind, h.ref) for h in hits]))
    n = len(PHRASINGS)
    assert top1 / n >= 0.90, (top1 / n, misses)
    assert top3 / n >= 0.98, (top3 / n, misses)
