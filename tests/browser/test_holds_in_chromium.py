"""The holds page in headless Chromium: a records officer places and releases holds by keyboard."""

import pytest

from geo311.accounts import create_user
from geo311.holds import find_requests
from geo311.model import RecordQuery
from tests import records_seed  # noqa: F401 - registers the records state
from tests.browser.accessibility import axe_clean
from tests.conftest import STAFF_PASSWORD
from tests.prepared import starts_from

pytestmark = pytest.mark.browser

starts_from("records", "holds_url", module=__name__)


@pytest.fixture
def holds_url(store, backend_url):
    create_user(store, "rita", STAFF_PASSWORD, "records")
    return backend_url



def _tab_to(page, element_id, most=120):
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} was not reached with Tab")


def test_place_count_and_release_holds_by_keyboard(serve, page, holds_url, store):
    from datetime import UTC

    base = serve(holds_url)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/login")
    page.focus("input[name=username]")
    page.keyboard.type("rita")
    page.keyboard.press("Tab")
    page.keyboard.type(STAFF_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/staff/holds")
    assert "No holds yet." in page.inner_text("#holds")
    axe_clean(page)

    _tab_to(page, "ids-ids")
    page.keyboard.type("2, 1")
    _tab_to(page, "ids-reason")
    page.keyboard.type("Claim 2026-114")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/staff/holds/*")
    assert page.locator("#hold-requests a").all_inner_texts() == ["1", "2"]
    assert "Claim 2026-114" in page.inner_text("#hold-facts")
    axe_clean(page)
    (hold,) = store.holds.holds()
    assert hold.owner == "rita" and store.holds.requests_of(hold.id) == [1, 2]

    _tab_to(page, f"release-{hold.id}")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/staff/holds")
    assert "released" in page.inner_text(f"#holds tr[data-id='{hold.id}'] .state")
    assert not store.holds.get(hold.id).active

    _tab_to(page, "s-text")
    page.keyboard.type("w test st")
    _tab_to(page, "s-phone")
    page.keyboard.type("312-555-0142")
    _tab_to(page, "preview-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#preview")
    expected = find_requests(store, RecordQuery(text="w test st", reporter_phone="312-555-0142"),
                             UTC)
    assert page.inner_text("#preview") == f"The search finds {len(expected)} requests."
    axe_clean(page)
    assert len(store.holds.holds()) == 1 and not errors, errors
