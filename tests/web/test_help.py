"""The public help page, /api/kb/search, and the report form's service picker."""

from datetime import date

import pytest

from geo311.model import Article

HOSTILE = '<script>alert("kb")</script><img src=x onerror=alert(1)>'


@pytest.mark.both_backends
def test_api_search_contract(client, kb_store):
    r = client.get("/api/kb/search?q=garbage+cart&limit=4")
    assert r.status_code == 200 and r.mimetype == "application/json"
    hits = r.get_json()
    assert 1 <= len(hits) <= 4
    assert hits[0]["service_code"] == "SIE"
    for h in hits:
        assert h["kind"] in ("service", "article") and isinstance(h["title"], str)
        if h["kind"] == "service":
            assert h["service_code"]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("query", ["limit=0&q=x", "limit=abc&q=x", "limit=51&q=x", "limit=3"])
def test_api_search_refuses_bad_arguments(client, kb_store, query):
    r = client.get(f"/api/kb/search?{query}")
    assert r.status_code == 400
    assert r.get_json()[0]["code"] == 400


def test_internal_articles_never_reach_the_public(client, staff_client, kb_store):
    internal = [a for a in kb_store.kb.articles() if not a.public]
    assert internal
    for a in internal:
        found = client.get(f"/api/kb/search?q={a.title}&limit=50").get_json()
        assert a.slug not in {h.get("slug") for h in found}
        assert f"/help/{a.slug}" not in client.get(f"/help?q={a.title}").get_data(as_text=True)
        assert client.get(f"/help/{a.slug}").status_code == 404
        # Staff browsing the public page see the public part only too.
        assert staff_client("admin").get(f"/help/{a.slug}").status_code == 404
    listing = client.get("/help").get_data(as_text=True)
    assert all(a.title not in listing for a in internal)


def test_call_taker_scripts_are_not_public(client, kb_store):
    a = kb_store.kb.article("rats-and-rodents")
    page = client.get("/help/rats-and-rodents").get_data(as_text=True)
    assert a.script and a.script not in page
    assert "rats-and-rodents" in client.get("/help?q=rats").get_data(as_text=True)
    found = client.get("/api/kb/search?q=rats").get_json()
    assert all("script" not in h for h in found)


def test_help_page_escapes_hostile_text(client, kb_store):
    kb_store.kb.save([Article(slug="hostile", title=f"Rats {HOSTILE}", owner="x", public=True,
                              review_by=date(2030, 1, 1), body=f"Body {HOSTILE}\n\n- {HOSTILE}",
                              keywords="rats")])
    for url in ("/help/hostile", "/help?q=rats", f"/help?q={HOSTILE}", "/help"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page, url
    page = client.get("/help/hostile").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;kb&#34;)&lt;/script&gt;" in page
    assert client.get("/api/kb/search?q=rats&limit=50").get_json()  # JSON is data, not markup


def test_help_page_search_and_article(client, kb_store):
    page = client.get("/help?q=stret+light+out").get_data(as_text=True)
    assert 'id="help-results"' in page and "Street Light Out Complaint" in page
    assert "/?service_code=SFD#report" in page
    assert 'id="no-results"' in client.get("/help?q=zzzzqqq").get_data(as_text=True)
    article = client.get("/help/property-tax").get_data(as_text=True)
    assert "Cook County Assessor" in article
    assert client.get("/help/no-such-article").status_code == 404
    assert 'href="/help"' in client.get("/help").get_data(as_text=True)  # in the nav


def test_report_form_offers_accepting_services_by_department(client, kb_store):
    page = client.get("/").get_data(as_text=True)
    assert 'value="SEF"' not in page and "NO LONGER BEING ACCEPTED" not in page
    assert '<optgroup label="Animals">' in page and '<optgroup label="Trees">' in page
    offered = {s.code for s in kb_store.catalogue.services() if s.accepting}
    assert all(f'value="{code}"' in page for code in offered)
    assert 'id="service-search"' in page
    chosen = client.get("/?service_code=SGA").get_data(as_text=True)
    assert 'value="SGA" data-keywords="rats, rodents, mice, baiting" selected' in chosen


def test_no_longer_accepted_service_is_refused_on_post(client, kb_store):
    r = client.post("/report", data={"service_code": "SEF", "lat": "41.88", "long": "-87.63"})
    assert r.status_code == 400
    assert "no longer accepts requests" in r.get_data(as_text=True)
