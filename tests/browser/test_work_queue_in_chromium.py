"""The work queue in headless Chromium: filters and a bulk change by keyboard, axe-core clean."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from geo311.accounts import create_user
from tests.conftest import STAFF_PASSWORD
from tests.prepared import starts_from
from tests.queue_seed import queue_rows, seed_queue

pytestmark = pytest.mark.browser

starts_from("layered", "queue_url", module=__name__)


@pytest.fixture
def queue_url(store, backend_url):
    seed_queue(store, n=24)
    create_user(store, "ann", STAFF_PASSWORD, "agent")
    return backend_url


def _no_serious_violations(page):
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious",
                                                                             "critical")]
    assert bad == [], results.generate_report()


def _tab_to(page, element_id, most=80):
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} was not reached with Tab")


def _shown(page):
    return [int(i) for i in page.locator("#queue tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.id)")]


def test_filters_by_keyboard_and_bulk_error_on_the_page(serve, page, queue_url, store):
    base = serve(queue_url)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.goto(f"{base}/staff/requests")
    rows = queue_rows(store)
    assert sorted(_shown(page)) == sorted(r["id"] for r in rows)
    _no_serious_violations(page)

    _tab_to(page, "f-q")
    page.keyboard.type("pothole")
    _tab_to(page, "f-status")
    page.keyboard.type("open")  # a select takes the typed option
    assert page.eval_on_selector("#f-status", "s => s.value") == "open"
    _tab_to(page, "apply-filters")
    page.keyboard.press("Enter")
    page.wait_for_url("**status=open**")
    assert "q=pothole" in page.url
    wanted = {r["id"] for r in rows if r["status"] == "open" and "pothole" in r["description"]}
    assert wanted and set(_shown(page)) == wanted
    links = page.locator("#queue tbody a").evaluate_all("a => a.map(x => x.getAttribute('href'))")
    assert links == [f"/staff/requests/{i}" for i in _shown(page)]
    _no_serious_violations(page)

    # a bulk assignment to nobody known: the message on the page, nothing changed
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "ids":
            break
    first = int(page.evaluate("document.activeElement.value"))
    page.keyboard.press("Space")
    assert page.locator(f"#queue input[value='{first}']").is_checked()
    _tab_to(page, "bulk-assignee")
    page.keyboard.type("nobody-here")
    _tab_to(page, "bulk-assign-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#form-error")
    assert "expected to be an active staff user" in page.inner_text("#form-error")
    assert queue_rows(store) == rows
    _no_serious_violations(page)
    assert not errors, errors
