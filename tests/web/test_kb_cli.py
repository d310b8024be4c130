"""``geo311 kb``: load, export, search (the JSON contract) and the overdue-review list."""

import json

import pytest

from geo311.catalogue import load_catalogue, read_catalogue
from geo311.knowledge import kb_path
from geo311_web.cli import cli


def run(runner, *args):
    return runner.invoke(cli, list(map(str, args)))


@pytest.mark.both_backends
def test_load_search_export_review(runner, app, tmp_path):
    store = app.extensions["geo311"].store
    load_catalogue(store, read_catalogue("chicago"), source="chicago")
    loaded = run(runner, "kb", "load", "chicago")
    assert loaded.exit_code == 0, loaded.output
    shipped = sorted(kb_path("chicago").glob("*.md"))
    assert f"{len(shipped)} added" in loaded.output

    out = run(runner, "kb", "search", "rats in my alley", "--limit", "3", "--json")
    assert out.exit_code == 0, out.output
    hits = json.loads(out.output)
    assert 1 <= len(hits) <= 3
    assert hits[0]["service_code"] == "SGA"
    for h in hits:
        assert h["kind"] in ("service", "article") and h["title"]
        if h["kind"] == "service":
            assert h["service_code"]
    text = run(runner, "kb", "search", "pot hole").output
    assert "Pothole" in text

    exported = run(runner, "kb", "export", tmp_path / "kb")
    assert exported.exit_code == 0 and f"{len(shipped)} articles" in exported.output
    for f in shipped:
        assert (tmp_path / "kb" / f.name).read_text() == f.read_text()

    review = run(runner, "kb", "review", "--json")
    assert review.exit_code == 0, review.output
    overdue = json.loads(review.output)
    # The shipped escalation policy was due for review on 2026-09-30.
    assert any(r["slug"] == "escalation-policy" and r["days_overdue"] > 0 for r in overdue)
    assert all(r["review_by"] < "2027-06-30" for r in overdue)


def test_internal_articles_stay_out_unless_asked(runner, kb_store):
    public = json.loads(run(runner, "kb", "search", "escalate to a supervisor", "--json").output)
    assert "escalation-policy" not in {h.get("slug") for h in public}
    staff = run(runner, "kb", "search", "escalate to a supervisor", "--json", "--internal")
    assert "escalation-policy" in {h.get("slug") for h in json.loads(staff.output)}


def test_bad_article_is_a_clean_error_and_stores_nothing(runner, kb_store, tmp_path):
    (tmp_path / "new-one.md").write_text('+++\nowner = "x"\npublic = true\n'
                                         "review_by = 2027-01-01\n+++\nbody\n")
    out = run(runner, "kb", "load", tmp_path)
    assert out.exit_code == 1
    assert "Error: new-one.md: field 'title' is missing" in out.output
    assert "new-one" not in {a.slug for a in kb_store.kb.articles()}


def test_limit_is_checked(runner, kb_store):
    out = run(runner, "kb", "search", "rats", "--limit", "0", "--json")
    assert out.exit_code == 2 and "--limit" in out.output
