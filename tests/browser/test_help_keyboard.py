"""The help page and the report form's service finder in Chromium: keyboard only, axe-core."""

from datetime import date

import pytest

from geo311.model import Article
from tests.browser.accessibility import axe_clean

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def _tab_to(page, element_id, most=40):
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} was not reached with Tab")



@pytest.mark.both_backends
def test_help_by_keyboard_is_accessible_and_escapes(serve, page, kb_store, backend_url):
    kb_store.kb.save([Article(slug="hostile", title=f"Rodent notes {XSS}", owner="x",
                              public=True, review_by=date(2030, 1, 1), body=f"Text {XSS}",
                              keywords="rodent")])
    base = serve(backend_url)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/help")
    axe_clean(page)
    _tab_to(page, "help-q")
    page.keyboard.type("propety tax bill")  # a typo
    page.keyboard.press("Enter")
    page.wait_for_selector("#help-results")
    assert "/help?q=" in page.url
    axe_clean(page)
    for _ in range(40):  # through the header and the search form to the first result
        page.keyboard.press("Tab")
        if page.evaluate("!!document.activeElement.closest('#help-results')"):
            break
    assert page.evaluate("document.activeElement.textContent") == \
        "Property tax bills and assessments"
    page.keyboard.press("Enter")
    page.wait_for_selector("#article")
    assert page.url.endswith("/help/property-tax")
    assert "Cook County Assessor" in page.inner_text("#article")
    axe_clean(page)

    page.goto(base + "/help?q=rodent+notes")
    page.wait_for_selector("#help-results")
    page.click("#help-results a[href='/help/hostile']")
    page.wait_for_selector("#article")
    assert XSS in page.inner_text("#article h1")  # shown as text
    assert page.evaluate("window.__xss") is None and not errors


def test_report_form_service_finder_by_keyboard(serve, page, kb_store, backend_url):
    base = serve(backend_url)
    page.goto(base + "/")
    page.wait_for_selector("#service-finder:not([hidden])")
    codes = page.eval_on_selector_all("#report-service option", "os => os.map(o => o.value)")
    assert "SEF" not in codes and "SGA" in codes
    groups = page.eval_on_selector_all("#report-service optgroup", "gs => gs.map(g => g.label)")
    assert groups == sorted(groups) and "Animals" in groups
    page.focus("#service-search")
    page.keyboard.type("grafitti on my garage")
    page.wait_for_selector("button.service-match")
    assert page.get_attribute("button.service-match", "data-code") == "GRAF"
    page.keyboard.press("Enter")  # takes the best match and does not submit the report
    assert page.eval_on_selector("#report-service", "s => s.value") == "GRAF"
    assert page.evaluate("document.activeElement.id") == "report-service"
    assert "Graffiti Removal Request" in page.inner_text("#service-search-status")

    page.fill("#service-search", "")
    page.focus("#service-search")
    page.keyboard.type("broken trash can")
    page.wait_for_selector("button.service-match[data-code='SIE']")
    page.keyboard.press("Tab")  # to the first match
    assert page.evaluate("document.activeElement.dataset.code") == "SIE"
    page.keyboard.press("Enter")
    assert page.eval_on_selector("#report-service", "s => s.value") == "SIE"
    axe_clean(page, context="#report")
