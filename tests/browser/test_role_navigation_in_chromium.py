"""Role-based navigation in Chromium: each role logs in with the keyboard and lands on its page."""

import pytest

from geo311.accounts import create_user
from tests.conftest import STAFF_PASSWORD
from tests.prepared import starts_from

pytestmark = pytest.mark.browser

starts_from("layered", "staff_url", module=__name__)

#: Start page and navigation of each role, as a user of that role should find them.
ROLES = {
    "planner": ("/hotspots", {"KPI"}),
    "gis": ("/gis/", {"GIS"}),
    "dispatcher": ("/dispatch", {"Desk", "Requests", "Referrals", "Dispatch", "Work orders", "SLA",
                                  "KPI"}),
    "agent": ("/staff/intake", {"Desk", "Requests", "Referrals"}),
    "records": ("/staff/holds", {"Records", "Holds"}),
    "emergency": ("/staff/notices", {"Notices"}),
}


@pytest.fixture
def staff_url(store, backend_url):
    for role in ROLES:
        create_user(store, f"{role}-nav", STAFF_PASSWORD, role)
    return backend_url


@pytest.mark.parametrize("role", sorted(ROLES))
def test_role_lands_on_its_start_page_with_only_its_links(serve, page, staff_url, role):
    base = serve(staff_url)
    start, links = ROLES[role]
    page.goto(f"{base}/login")
    page.focus("input[name=username]")
    page.keyboard.type(f"{role}-nav")
    page.keyboard.press("Tab")
    page.keyboard.type(STAFF_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}{start}*")
    page.wait_for_selector("#staff-name")
    shown = set(page.locator("nav a.staff-link").all_inner_texts())
    assert shown == links
    for label in sorted(shown):  # every link offered opens (no 403 behind a link)
        with page.expect_navigation() as opened:
            page.click(f"nav a.staff-link:text-is('{label}')")
        assert opened.value.status == 200, (role, label, opened.value.status)
