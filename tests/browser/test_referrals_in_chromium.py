"""Referral pages in Chromium: axe-core, and a flagged referral sent again by keyboard."""

from datetime import timedelta

import pytest

from geo311.accounts import create_user
from geo311.store.rows import now_utc
from tests.browser.accessibility import axe_clean
from tests.conftest import STAFF_PASSWORD

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror=alert(1)>'



def test_flagged_referral_is_sent_again_by_keyboard(serve, page, store, backend_url):
    row = store.referrals.add({
        "status": "pending", "service_code": "SDR", "service_name": "Fly Dumping Complaint",
        "jurisdiction_id": "1724582", "jurisdiction_name": "Evanston",
        "agency_id": "evanston-311", "agency_name": "Evanston 311", "how": "open311",
        "lon": -87.6816, "lat": 42.048, "description": HOSTILE})
    (claimed,) = store.referrals.claim(now_utc(), limit=5, stopped_after=timedelta(minutes=10))
    store.referrals.mark_failed(claimed["id"], f"HTTP 400: {HOSTILE}")
    create_user(store, "desk-agent", STAFF_PASSWORD, "agent")
    base = serve(backend_url)

    page.goto(f"{base}/referrals/{row['reference']}")
    axe_clean(page)
    assert "Could not be passed on yet" in page.inner_text("#referral-status")
    assert "onerror" not in page.inner_text("main")

    page.goto(f"{base}/login")
    page.fill("input[name=username]", "desk-agent")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/staff/intake*")
    page.goto(f"{base}/staff/referrals")
    page.wait_for_selector(f"#flagged-{row['reference']}")
    axe_clean(page)
    assert page.locator("img[onerror]").count() == 0  # the error text is shown as text
    assert HOSTILE in page.inner_text(f"#flagged-{row['reference']}")
    label = f"Send {row['reference']} again"
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.textContent") \
                == label:
            break
    else:
        raise AssertionError("the Send again button was not reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#referral-counts")
    page.wait_for_function("!document.querySelector('[id^=flagged-R]')")
    assert store.referrals.get(row["reference"])["status"] == "pending"
