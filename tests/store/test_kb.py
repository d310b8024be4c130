"""The knowledge base as stored: versions, checked loading, exact export, search, review."""

from datetime import date

import pytest
from sqlalchemy import func, select

from geo311.catalogue import load_catalogue, read_catalogue
from geo311.errors import InvalidRequest
from geo311.knowledge import (
    KnowledgeFiles,
    article_text,
    export_kb,
    kb_path,
    load_kb,
    overdue_articles,
    read_kb,
    search_kb,
)
from geo311.model import Article
from geo311.store import tables as t

SHIPPED = kb_path("chicago")


def _count(store, table):
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_shipped_knowledge_base_loads_with_general_and_service_articles(kb_store):
    articles = kb_store.kb.articles()
    files = sorted(p.stem for p in SHIPPED.glob("*.md"))
    assert [a.slug for a in articles] == files and len(files) >= 30
    general = {a.slug for a in articles if not a.service_code}
    assert {"hours-and-contact", "track-your-request", "emergencies-call-911",
            "property-tax"} <= general
    about = {a.service_code for a in articles if a.service_code}
    assert {"SGA", "PHF", "SFD", "GRAF", "SIE", "SCC", "SKA"} <= about
    assert all(a.script for a in articles if a.service_code), "each service article has a script"
    internal = [a.slug for a in articles if not a.public]
    assert internal, "the starter knowledge base has internal articles too"
    assert kb_store.kb.synonyms()["rats"]


def test_export_is_byte_for_byte_the_loaded_files(kb_store, tmp_path):
    count = export_kb(kb_store, tmp_path / "out")
    assert count == len(list(SHIPPED.glob("*.md")))
    for shipped in SHIPPED.iterdir():
        assert (tmp_path / "out" / shipped.name).read_bytes() == shipped.read_bytes(), shipped.name


def test_changed_article_gets_a_new_version_and_keeps_the_old(kb_store, tmp_path):
    export_kb(kb_store, tmp_path)
    path = tmp_path / "potholes.md"
    old = path.read_text()
    path.write_text(old.replace("usually within a week", "usually within 3 business days"))
    done = load_kb(kb_store, tmp_path, actor="editor")
    assert done["changed"] == ["potholes"] and not done["added"]
    assert len(done["unchanged"]) == len(list(tmp_path.glob("*.md"))) - 1
    versions = kb_store.kb.versions("potholes")
    assert [v.version for v in versions] == [1, 2]
    assert "within a week" in versions[0].body and "3 business days" in versions[1].body
    # Loading the same files again changes nothing.
    again = load_kb(kb_store, tmp_path)
    assert not again["changed"] and kb_store.kb.article("potholes").version == 2
    # The new text is what search reads.
    export_kb(kb_store, tmp_path / "again")
    assert (tmp_path / "again" / "potholes.md").read_text() == path.read_text()


@pytest.mark.parametrize(("edit", "field"), [
    (lambda s: s.replace('title = "Potholes in the street"\n', ""), "'title'"),
    (lambda s: s.replace("review_by = 2027-06-30", 'review_by = "next spring"'), "'review_by'"),
    (lambda s: s.replace("review_by = 2027-06-30", "review_by = 2027-02-30"), "potholes.md"),
    (lambda s: s.replace('service_code = "PHF"', 'service_code = "NOPE"'), "'service_code'"),
    (lambda s: s.replace("public = true", 'public = "yes"'), "'public'"),
    (lambda s: s.replace("owner =", "owner_name ="), "owner_name"),
])
def test_bad_file_is_named_with_its_field_and_nothing_is_stored(store, tmp_path, edit, field):
    load_catalogue(store, read_catalogue("chicago"), source="chicago")
    for f in SHIPPED.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    path = tmp_path / "potholes.md"
    path.write_text(edit(path.read_text()))
    with pytest.raises(InvalidRequest) as err:
        load_kb(store, tmp_path)
    assert "potholes.md" in err.value.message and field in err.value.message
    assert _count(store, t.kb_articles) == 0 and _count(store, t.kb_synonyms) == 0


def test_round_trip_of_awkward_text(kb_store, tmp_path):
    odd = Article(slug="odd-one", title='Quotes "here" and \\ back\\slash', body="Line 1\n\n- a\n- b",
                  owner="Ünïcode Team", public=False, review_by=date(2026, 1, 2),
                  keywords="x, y", script='Say "hello"\tthen wait')
    parsed = read_kb(_write(tmp_path, odd), kb_store.kb.known_service_codes())
    assert isinstance(parsed, KnowledgeFiles)
    assert parsed.articles[0].content() == odd.content()


def _write(tmp_path, article):
    path = tmp_path / f"{article.slug}.md"
    path.write_text(article_text(article), encoding="utf-8")
    return path


def test_search_contract_and_ranking_on_the_shipped_base(kb_store):
    hits = search_kb(kb_store, "rats in the alley", 5)
    assert hits[0].service_code == "SGA"
    for h in hits:
        item = h.as_json()
        assert item["kind"] in ("service", "article") and item["title"]
        if h.kind == "service":
            assert item["service_code"] == h.ref
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert search_kb(kb_store, "grafitti", 1)[0].service_code == "GRAF"  # a typo
    assert search_kb(kb_store, "pot hole", 1)[0].service_code in ("PHF", "PHB")  # two words
    assert search_kb(kb_store, "broken garbage can", 1)[0].service_code == "SIE"  # a synonym
    assert search_kb(kb_store, "zzzz qqqq", 5) == []


def test_internal_articles_are_found_only_when_asked(kb_store):
    internal = [a for a in kb_store.kb.articles() if not a.public]
    for a in internal:
        public = search_kb(kb_store, a.title, 50)
        assert a.slug not in {h.ref for h in public if h.kind == "article"}
        staff = search_kb(kb_store, a.title, 5, public_only=False)
        assert a.slug in {h.ref for h in staff if h.kind == "article"}
    assert all(a.public for a in kb_store.kb.articles(public_only=True))


def test_services_no_longer_accepting_are_not_searchable(kb_store):
    sef = next(s for s in read_catalogue("chicago") if s.code == "SEF")
    assert not sef.accepting
    found = search_kb(kb_store, "tree trim request", 10)
    assert ("service", "SEF") not in {(h.kind, h.ref) for h in found}
    # The article explaining that 311 no longer takes it is found instead.
    assert found[0].ref == "tree-trimming-no-longer-accepted"


def test_overdue_review_list(kb_store):
    today = date(2026, 12, 7)
    overdue = overdue_articles(kb_store, today)
    expected = sorted((a.review_by, a.slug) for a in kb_store.kb.articles()
                      if a.review_by < today)
    assert [(a.review_by, a.slug) for a in overdue] == expected and expected
    assert overdue_articles(kb_store, date(2000, 1, 1)) == []
    mine = overdue_articles(kb_store, date(2030, 1, 1), owner="311 Training")
    assert mine and {a.owner for a in mine} == {"311 Training"}


def test_full_text_index_follows_changes(kb_store, tmp_path):
    assert not search_kb(kb_store, "quokka", 3)
    kb_store.kb.save([Article(slug="quokkas", title="Quokka sightings", owner="x", public=True,
                              review_by=date(2030, 1, 1), body="Quokkas are not native here.")])
    assert [h.ref for h in search_kb(kb_store, "quokka", 3)] == ["quokkas"]
    matched = kb_store.kb.match(["quokka"], public_only=True, limit=5)
    assert len(matched) == 1


def test_a_live_report_for_a_service_no_longer_accepting_is_refused(kb_store):
    from geo311.intake import submit
    from geo311.model import NewRequest

    before = kb_store.requests.count()
    with pytest.raises(InvalidRequest, match="no longer accepts requests"):
        submit(kb_store, None, NewRequest("SEF", lon=-87.63, lat=41.88))
    assert kb_store.requests.count() == before
    assert kb_store.catalogue.service("SEF").name.startswith("Tree Trim")  # still stored
