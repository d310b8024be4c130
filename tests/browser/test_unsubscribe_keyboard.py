"""The unsubscribe page in Chromium: keyboard only, axe-core, no address beyond the masked one."""

import pytest

from geo311.model import NewRequest, Placement, Reporter, Service
from geo311.notifications import unsubscribe_token
from tests.browser.accessibility import axe_clean

pytestmark = pytest.mark.browser
SECRET = "unsubscribe-test-secret-0123456789"



def test_unsubscribe_by_keyboard(serve, page, store, backend_url):
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation")])
    r = store.requests.add(NewRequest("SCB", -87.65, 41.85,
                                      reporter=Reporter(email="maria.lopez@example.org")),
                           Placement(-87.65, 41.85, "reported"))
    [row] = store.outbox.rows(r.id)
    base = serve(backend_url, GEO311_SECRET_KEY=SECRET)
    page.goto(f"{base}/unsubscribe/{unsubscribe_token(row['id'], SECRET)}")
    axe_clean(page)
    assert "m***@example.org" in page.inner_text("main")
    assert "maria" not in page.content()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "unsubscribe":
            break
    else:
        raise AssertionError("the Unsubscribe button was not reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#unsubscribed")
    assert "no more messages" in page.inner_text("#unsubscribed")
    axe_clean(page)
    assert store.outbox.is_unsubscribed("maria.lopez@example.org")
    assert store.outbox.rows(r.id)[0]["status"] == "unsubscribed"
