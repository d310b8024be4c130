"""Following a request from its tracking page in Chromium: keyboard only, axe-core, on a phone."""

import pytest

from geo311.model import NewRequest, Placement, Service
from tests.browser.accessibility import axe_clean

pytestmark = pytest.mark.browser



def test_follow_by_keyboard_on_a_phone(serve, page, store, backend_url):
    store.catalogue.upsert([Service("SCB", "Sanitation Code Violation", "Sanitation")])
    r = store.requests.add(NewRequest("SCB", -87.65, 41.85), Placement(-87.65, 41.85, "reported"))
    base = serve(backend_url)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/requests/{r.id}")
    axe_clean(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "follow-email":
            break
    else:
        raise AssertionError("the follow form was not reached with Tab")
    page.keyboard.type("not an address")
    page.keyboard.press("Enter")  # the browser's own check keeps the page
    assert store.followers.of_request(r.id) == []
    page.fill("#follow-email", "")
    page.focus("#follow-email")
    page.keyboard.type("kim@example.org")
    page.keyboard.press("Enter")
    page.wait_for_selector("#follow-asked")
    axe_clean(page)
    assert "kim" not in page.content()
    [follower] = store.followers.of_request(r.id)
    assert (follower.email, follower.status) == ("kim@example.org", "pending")
