"""The records page in Chromium: a records request by keyboard, its preview and its package."""

import io
import zipfile

import pytest

from geo311.accounts import create_user
from tests.browser.accessibility import axe_clean
from tests.conftest import STAFF_PASSWORD
from tests.disclosure_seed import SECRETS
from tests.prepared import starts_from

pytestmark = pytest.mark.browser

starts_from("disclosure_seeded", "records_url", module=__name__)


@pytest.fixture
def records_url(store, backend_url):
    create_user(store, "rita", STAFF_PASSWORD, "records")
    return backend_url



def _tab_to(page, element_id, most=120):
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} was not reached with Tab")


def test_a_records_request_by_keyboard_preview_error_and_package(serve, page, records_url,
                                                                 store, prepared):
    base = serve(records_url)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/login")
    page.focus("input[name=username]")
    page.keyboard.type("rita")
    page.keyboard.press("Tab")
    page.keyboard.type(STAFF_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/staff/holds")  # records staff start on their holds
    page.click("nav a.staff-link:text-is('Records')")
    page.wait_for_url(f"{base}/staff/disclosures")
    axe_clean(page)

    # without a reference: the message, on the page, nothing built
    _tab_to(page, "preview-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#form-error")
    assert "reference is required" in page.inner_text("#form-error")
    axe_clean(page)

    page.focus("#d-reference")
    page.keyboard.type("FOIA-2026-77")
    _tab_to(page, "d-received")
    page.keyboard.type("11302026")  # month, day, year as Chromium's en-US date field reads it
    assert page.eval_on_selector("#d-received", "e => e.value") == "2026-11-30"
    _tab_to(page, "d-text")
    page.keyboard.type("pwned")
    _tab_to(page, "preview-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#preview-count")
    assert page.inner_text("#preview-count") == "1"
    assert page.eval_on_selector("#d-reference", "e => e.value") == "FOIA-2026-77"
    axe_clean(page)

    _tab_to(page, "download-button")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename == "FOIA-2026-77.zip"
    data = open(download.value.path(), "rb").read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {n: zf.read(n).decode() for n in zf.namelist()}
    assert '"requests": 1' in files["manifest.json"]
    assert not [s for s in SECRETS for t in files.values() if s.lower() in t.lower()]
    # the package's own summary reads well for everyone too
    page.set_content(files["summary.html"])
    assert page.inner_text("#request-count") == "1"
    axe_clean(page)
    assert not errors, errors
