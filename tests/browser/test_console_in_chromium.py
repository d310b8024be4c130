"""The staff console in Chromium: each action through the page, and axe-core on it."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from geo311.accounts import create_user
from geo311.intake import Context, submit
from geo311.model import NewRequest, Reporter, Service
from tests.conftest import STAFF_PASSWORD
from tests.prepared import starts_from

pytestmark = pytest.mark.browser
XSS = "<script>window.__xss=1</script>"

starts_from("layered", "console_url", module=__name__)


@pytest.fixture
def console_url(store, backend_url):
    """Two reports of one missed pick-up (a group of two) and a call-taker."""
    store.catalogue.upsert([
        Service("SCC", "Missed Garbage Pick-Up", "Sanitation", sla_days=4,
                agency="Streets and Sanitation"),
        Service("PHF", "Pothole in Street", "Streets", sla_days=3, agency="CDOT")])
    ctx = Context.from_store(store)
    first = submit(store, ctx, NewRequest("SCC", -87.65, 41.85, description="Bins not emptied",
                                          reporter=Reporter(first_name="Maria",
                                                            phone="312-555-0199")))
    second = submit(store, ctx, NewRequest("SCC", -87.65, 41.85))
    assert second.duplicate_of == first.id
    create_user(store, "zora", STAFF_PASSWORD, "agent")
    return backend_url, first.id, second.id


def _serious(page):
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, results.generate_report()


def _submit(page, form):
    with page.expect_navigation():
        page.click(f"#{form}-form button")
    assert page.locator("#form-error").count() == 0, page.inner_text("#form-error")


@pytest.mark.both_backends
def test_every_console_action_through_the_page(serve, page, console_url, store):
    url, first, second = console_url
    base = serve(url)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "zora")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.goto(f"{base}/staff/requests/{first}")
    assert "312-555-0199" in page.inner_text("#reporters")
    assert page.locator("#group a").count() == 1
    _serious(page)

    # status change with a public and an internal note
    page.select_option("#status-form select[name=status]", "closed")
    page.fill("#status-form textarea[name=public_note]", f"Collected {XSS}")
    page.fill("#status-form textarea[name=internal_note]", "Truck 12 skipped the alley")
    _submit(page, "status")
    assert page.inner_text("#console-status") == "closed"
    assert store.requests.get(first).status == "closed"
    assert f"Collected {XSS}" in page.inner_text("#notes")  # shown as text
    assert "Truck 12" in page.inner_text("#notes")

    # reopen with a reason
    page.fill("#reopen-form input[name=reason]", "Resident called back")
    _submit(page, "reopen")
    assert page.inner_text("#console-status") == "open"
    assert "why: Resident called back" in page.inner_text("#history")

    # forward: another service and department, a new due time
    due_before = store.requests.get(first).expected_datetime
    page.select_option("#forward-form select[name=service_code]", "PHF")
    page.fill("#forward-form input[name=reason]", "It is a pothole")
    _submit(page, "forward")
    assert "PHF" in page.inner_text("#service") and "CDOT" in page.inner_text("#agency")
    forwarded = store.requests.get(first)
    assert forwarded.service_code == "PHF" and forwarded.expected_datetime != due_before
    assert "3 business days" in page.inner_text("#sla-clock")

    # unmerge the duplicate from its own console, reached through the group list
    with page.expect_navigation():
        page.click(f"#group a[href='/staff/requests/{second}']")
    page.fill("#unmerge-form input[name=reason]", "Another address")
    _submit(page, "unmerge")
    assert store.requests.get(second).duplicate_of is None
    assert "Not in a group" in page.inner_text("#group")

    # close with a resolution
    page.goto(f"{base}/staff/requests/{first}")
    page.fill("#close-form textarea[name=resolution]", "Pothole filled")
    _submit(page, "close")
    assert page.inner_text("#console-status") == "closed"
    assert store.requests.get(first).status_notes == "Pothole filled"
    _serious(page)

    # a note by keyboard alone: type, Tab past the visibility choice, Enter on the button
    page.focus("#note-form textarea[name=body]")
    page.keyboard.type("Checked by phone")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert [(n.visibility, n.body) for n in store.notes.of(first)][-1] == (
        "internal", "Checked by phone")

    # on a phone the console fits the screen's width
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.querySelector('.console').scrollWidth") <= 390

    # the resident's page: public notes as the city's, nothing internal
    page.goto(f"{base}/requests/{first}")
    public = page.inner_text("main")
    assert "Pothole filled" in public and "City staff" in public
    assert "Truck 12" not in public and "zora" not in public
    assert page.evaluate("window.__xss") is None and not errors
