"""The call-taker desk in Chromium, keyboard only: an information contact, then a request
whose tracking number is read back; axe-core finds nothing serious."""

from datetime import date

import pytest
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import select

from geo311.intake import Context, submit
from geo311.model import Article, NewRequest, Reporter
from geo311.store import tables as t
from tests.call_centre import AGENT, DIVERSEY
from tests.conftest import STAFF_PASSWORD

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture
def desk_city(store):
    """Service area, catalogue, knowledge base, address points and the agent."""
    return store


def _tab_to(page, selector, most=80):
    """Press Tab until the focused element matches ``selector``."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
    raise AssertionError(f"{selector} was not reached with Tab")


def _focused(page, expression="document.activeElement.id"):
    return page.evaluate(expression)


def _serious(page, context=None):
    results = Axe().run(page, context=context)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, results.generate_report()


@pytest.mark.both_backends
def test_the_whole_call_by_keyboard(serve, page, desk_city, backend_url):
    ctx = Context.from_store(desk_city)
    earlier = submit(desk_city, ctx, NewRequest(
        "PHF", lon=DIVERSEY[0], lat=DIVERSEY[1], address=f"3415 W DIVERSEY AVE {XSS}",
        reporter=Reporter(first_name="Pat", phone="(312) 555-0100")))
    desk_city.kb.save([Article(slug="desk-hostile", title=f"Hostile notes {XSS}", owner="x",
                               public=False, review_by=date(2030, 1, 1), body=f"Body {XSS}",
                               keywords="hostile", script=f"Say {XSS}")])
    base = serve(backend_url)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # log in with the keyboard: an agent starts on the desk
    page.goto(base + "/login")
    _tab_to(page, "input[name=username]")
    page.keyboard.type(AGENT)
    page.keyboard.press("Tab")
    page.keyboard.type(STAFF_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/staff/intake")
    page.wait_for_selector("#desk-map.leaflet-container")
    _serious(page)

    # 1. the caller: their earlier request, its hostile address shown as text
    _tab_to(page, "#channel")
    page.keyboard.press("Tab")
    page.keyboard.type("Pat Lee")
    page.keyboard.press("Tab")
    page.keyboard.type("312.555.0100")
    page.keyboard.press("Enter")
    page.wait_for_selector("#caller-history li")
    history = page.inner_text("#caller-history")
    assert f"#{earlier.id}" in history and XSS in history
    assert "1 earlier request" in page.inner_text("#caller-status")

    # 2. the knowledge base, an internal article and its script; 3. logged as information
    _tab_to(page, "#kb-q")
    page.keyboard.type("hostile notes")
    page.keyboard.press("Enter")
    page.wait_for_selector("#kb-results button.kb-article")
    assert _focused(page, "document.activeElement.dataset.slug") == "desk-hostile"
    page.keyboard.press("Enter")
    page.wait_for_selector("#kb-article:not([hidden])")
    assert _focused(page) == "kb-article"
    assert page.inner_text("#kb-script") == f"Say {XSS}"
    assert page.is_visible("#kb-article-internal")
    _tab_to(page, "#kb-q")
    page.keyboard.press("Control+A")
    page.keyboard.type("property tax")
    page.keyboard.press("Enter")
    page.wait_for_selector("#kb-results button[data-slug='property-tax']")
    while _focused(page, "document.activeElement.dataset.slug") != "property-tax":
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('kb-article-title').textContent"
                           ".startsWith('Property tax')")
    assert page.inner_text("#kb-script")
    _tab_to(page, "#info-outcome")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.eval_on_selector("#info-outcome", "s => s.value") == "referred elsewhere"
    assert page.eval_on_selector("#info-topic", "i => i.value").startswith("Property tax")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('info-result').textContent"
                           ".startsWith('Contact logged')")
    [info] = desk_city.contacts.recent()
    assert (info.kind, info.outcome, info.request_id, info.agent) == \
        ("info", "referred elsewhere", None, AGENT)
    assert info.topic.startswith("Property tax")
    assert desk_city.requests.count() == 1

    # 4. a request: rats, by search; the required questions refused, then answered
    _tab_to(page, "#service-q")
    page.keyboard.type("rats in the alley")
    page.keyboard.press("Enter")
    page.wait_for_selector("#service-results button.service-choice")
    while _focused(page, "document.activeElement.dataset.code") != "SGA":
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector("#question-list select")
    assert page.inner_text("#service-chosen") == "Rodent Baiting/Rat Complaint"
    assert _focused(page) == "question-0"
    _tab_to(page, "#desk-map")
    page.keyboard.press("Enter")  # the report at the map's centre; its address looked up
    page.wait_for_function("document.getElementById('location-status').textContent"
                           ".startsWith('Placed on the map')")
    assert page.eval_on_selector("#lat", "i => i.value")
    _tab_to(page, "#address-q")
    page.keyboard.press("Control+A")
    page.keyboard.type("3415 W Diversey Ave")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('location-status').textContent"
                           ".startsWith('Located')")
    _tab_to(page, "#submit-request")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('request-error').textContent !== ''")
    said = page.inner_text("#request-error")
    assert "attribute[signs] is required" in said and _focused(page) == "request-error"
    assert desk_city.requests.count() == 1

    # answered now (a multi-value list and a list), the rats request is made and read back
    _tab_to(page, "#question-0")
    page.keyboard.press("ArrowDown")  # the first sign: rats
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # where: alley
    assert page.eval_on_selector("#question-1", "s => s.value") == "alley"
    _tab_to(page, "#submit-request")
    page.keyboard.press("Enter")
    page.wait_for_selector("#tracking-number")
    rats = max(r.id for r in desk_city.requests.query(limit=5))
    assert page.inner_text("#tracking-number") == f"Tracking number {rats}"
    assert desk_city.requests.answers(rats) == {"signs": ["rats"], "where": ["alley"]}
    assert desk_city.requests.get(rats).duplicate_of is None

    # the next caller: a pothole where one is reported, joining its group
    _tab_to(page, "#next-contact")
    page.keyboard.press("Enter")
    assert _focused(page) == "channel"
    assert page.inner_text("#service-chosen") == "none yet"
    page.keyboard.press("Tab")
    page.keyboard.type("Pat Lee")
    page.keyboard.press("Tab")
    page.keyboard.type("312.555.0100")
    _tab_to(page, "#service-q")
    page.keyboard.type("pot hole")
    page.keyboard.press("Enter")
    page.wait_for_selector("#service-results button.service-choice")
    while _focused(page, "document.activeElement.dataset.code") != "PHF":
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('service-chosen').textContent"
                           " === 'Pothole in Street Complaint'")
    assert "Illinois Department of Transportation" in page.inner_text("#questions")
    page.wait_for_function("document.activeElement.id === 'question-0'")  # lane, optional
    _tab_to(page, "#address-q")
    page.keyboard.type("Diversey and Kimball")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('location-status').textContent"
                           ".startsWith('Located')")
    page.wait_for_selector(f"#join-{earlier.id}")
    _tab_to(page, f"#join-{earlier.id}")
    page.keyboard.press("Enter")
    assert page.get_attribute(f"#join-{earlier.id}", "aria-pressed") == "true"
    assert f"join request #{earlier.id}" in page.inner_text("#join-status")
    _tab_to(page, "#description")
    page.keyboard.type("Deep pothole by the bus stop")
    _tab_to(page, "#submit-request")
    page.keyboard.press("Enter")

    # 5. read back: the number, in the live region, focused, linking to the console
    page.wait_for_function(f"document.getElementById('tracking-number')"
                           f" && !document.getElementById('tracking-number')"
                           f".textContent.endsWith(' {rats}')")
    made = max(r.id for r in desk_city.requests.query(limit=5))
    assert page.inner_text("#tracking-number") == f"Tracking number {made}"
    assert page.get_attribute("#readback-live", "aria-live") == "assertive"
    assert _focused(page) == "tracking-link"
    assert page.get_attribute("#tracking-link", "href") == f"/staff/requests/{made}"
    stored = desk_city.requests.get(made)
    assert stored.duplicate_of == earlier.id and stored.service_code == "PHF"
    assert stored.description == "Deep pothole by the bus stop"
    with desk_city.engine.connect() as conn:
        source = conn.execute(select(t.service_requests.c.source)
                              .where(t.service_requests.c.id == made)).scalar_one()
    assert source == "phone"
    assert desk_city.requests.reporters_of(made) == [
        Reporter(first_name="Pat Lee", phone="312.555.0100")]
    [contact] = desk_city.contacts.of_request(made)
    assert contact.agent == AGENT and contact.kind == "request"
    rows = page.locator("#recent-contacts tbody tr").all_inner_texts()
    assert len(rows) == 3 and rows[0].startswith("just now\trequest") and "info" in rows[2]
    _serious(page)

    assert page.evaluate("window.__xss") is None and not errors, errors
