"""Navigation by role: each role lands on its own start page and sees only links it may use."""

import re

import pytest

from geo311.accounts import ROLES, create_user
from geo311_web.navigation import STAFF_PAGES
from tests.conftest import STAFF_PASSWORD, csrf_ready
from tests.prepared import starts_from

#: The staff pages need district layers to show anything.
starts_from("layered", "with_layers", module=__name__)

#: Where a user of each role should be after logging in (the pages the issue names).
EXPECTED_START = {"agent": "/staff/intake", "dispatcher": "/dispatch", "planner": "/hotspots", "gis": "/gis/",
                  "records": "/staff/holds", "emergency": "/staff/notices",
                  "admin": "/dispatch"}


@pytest.fixture
def with_layers(app, prepared):
    """The app's store with the shipped district layers loaded."""
    return app.extensions["geo311"].store


def _staff_links(html: str) -> set[str]:
    return set(re.findall(r'<a href="([^"]+)" class="staff-link">', html))


@pytest.mark.parametrize("role", ROLES)
def test_each_role_lands_on_its_start_page_and_sees_only_pages_it_may_open(app, with_layers,
                                                                          role):
    store = app.extensions["geo311"].store
    create_user(store, f"nav-{role}", STAFF_PASSWORD, role)
    client = csrf_ready(app, app.test_client())
    r = client.post("/login", data={"username": f"nav-{role}", "password": STAFF_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == EXPECTED_START[role]
    assert client.get(r.headers["Location"]).status_code == 200

    shown = _staff_links(client.get("/").get_data(as_text=True))
    assert shown, role
    with app.test_request_context():
        from flask import url_for
        every = {url_for(p.endpoint) for p in STAFF_PAGES}
    assert shown <= every
    for url in every:  # the page itself decides; the navigation must agree with it
        status = client.get(url).status_code
        assert status == (200 if url in shown else 403), (role, url, status)


def test_a_planner_is_not_offered_dispatch(app, with_layers):
    create_user(app.extensions["geo311"].store, "plan", STAFF_PASSWORD, "planner")
    client = csrf_ready(app, app.test_client())
    client.post("/login", data={"username": "plan", "password": STAFF_PASSWORD})
    html = client.get("/hotspots").get_data(as_text=True)
    assert ">KPI</a>" in html and ">Dispatch</a>" not in html and ">GIS</a>" not in html


def test_anonymous_visitors_see_no_staff_links(client):
    html = client.get("/").get_data(as_text=True)
    assert not _staff_links(html) and "Staff login" in html
