"""The survey on close in Chromium on a phone: keyboard only, axe-core, the answer stored."""

import pytest

from geo311.model import NewRequest, Placement, Reporter, Service
from geo311.notifications import survey_token
from tests.browser.accessibility import axe_clean

pytestmark = pytest.mark.browser
SECRET = "survey-test-secret-0123456789abcdef"



def _tab_to(page, selector):
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement && document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} was not reached with Tab")


def test_survey_by_keyboard_on_a_phone(serve, page, store, backend_url):
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation")])
    r = store.requests.add(NewRequest("SCB", -87.65, 41.85,
                                      reporter=Reporter(email="maria.lopez@example.org",
                                                        language="pl")),
                           Placement(-87.65, 41.85, "reported"))
    store.requests.set_status(r.id, "closed", note="Done")
    closing = next(n for n in store.outbox.rows(r.id) if n["kind"] == "closed")
    base = serve(backend_url, GEO311_SECRET_KEY=SECRET)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/survey/{survey_token(closing['id'], SECRET)}")
    assert page.get_attribute("html", "lang") == "pl"
    axe_clean(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _tab_to(page, "input[name=rating]")
    for _ in range(3):  # arrow keys move through the radio group: 1 -> 4
        page.keyboard.press("ArrowDown")
    _tab_to(page, "#comment")
    page.keyboard.type("Szybko, dziękuję")
    _tab_to(page, "#send-survey")
    page.keyboard.press("Enter")
    page.wait_for_selector("#survey-done")
    axe_clean(page)
    [answer] = store.surveys.of_request(r.id)
    assert (answer.rating, answer.comment, answer.language) == (4, "Szybko, dziękuję", "pl")
