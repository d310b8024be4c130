"""Staff accounts and roles: every staff route refuses anonymous users, roles, CSRF, throttling."""

import re

import pytest
from flask.testing import FlaskClient

from geo311.accounts import MAX_FAILURES, create_user
from geo311_web.auth import STAFF_PREFIXES
from geo311_web.cli import cli
from tests.conftest import STAFF_PASSWORD, csrf_ready

#: Backend-specific paths throughout: every test here runs on PostGIS too.
pytestmark = pytest.mark.both_backends

ARGS = {"int": "1", "float": "1.0", "string": "x", "path": "x", "default": "x"}


def staff_rules(app):
    """Every (url, method) of the app under a staff prefix, with placeholder arguments."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(STAFF_PREFIXES):
            continue
        url = re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?\w+>",
                     lambda m: ARGS.get(m.group(1) or "default", "x"), rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((url, method, rule.endpoint))
    return out


def test_every_staff_route_refuses_anonymous_users(app, client):
    rules = staff_rules(app)
    urls = {u for u, _, _ in rules}
    assert {"/dispatch", "/kpi", "/dispatch/suggestions", "/api/dispatch/sla"} <= urls
    for url, method, _endpoint in rules:
        r = client.open(url, method=method)
        if url.startswith("/api/") or method != "GET":
            assert r.status_code == 401, (url, method, r.status_code)
        else:
            assert r.status_code == 302, (url, method, r.status_code)
            assert "/login?next=" in r.headers["Location"], (url, r.headers["Location"])


def test_every_role_guarded_view_sits_under_a_staff_prefix(app):
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, "required_roles", None):
            assert rule.rule.startswith(STAFF_PREFIXES), rule.rule


def test_public_pages_need_no_login(client):
    for url in ("/", "/layers", "/healthz", "/login"):
        assert client.get(url).status_code == 200, url


def test_api_answers_401_as_json(client):
    r = client.get("/api/dispatch/sla")
    assert r.status_code == 401
    assert r.get_json()[0]["code"] == 401


def test_roles_get_403_outside_their_role(staff_client):
    planner, dispatcher, gis, admin = (staff_client(r) for r in
                                       ("planner", "dispatcher", "gis", "admin"))
    assert planner.get("/dispatch").status_code == 403
    assert planner.get("/api/dispatch/sla").status_code == 403
    assert gis.get("/kpi").status_code == 403
    assert dispatcher.get("/api/dispatch/crews").status_code == 200
    assert admin.get("/api/dispatch/crews").status_code == 200
    body = planner.get("/dispatch").get_data(as_text=True)
    assert "planner" in body and "dispatcher" in body


def test_passwords_are_hashed_with_scrypt(app):
    store = app.extensions["geo311"].store
    create_user(store, "ada", STAFF_PASSWORD, "dispatcher")
    row = store.accounts.user("ada")
    assert row["password_hash"].startswith("scrypt:")
    assert STAFF_PASSWORD not in row["password_hash"]


def test_login_form_logs_in_and_out_and_refuses_open_redirects(app, client):
    create_user(app.extensions["geo311"].store, "ada", STAFF_PASSWORD, "dispatcher")
    bad = client.post("/login", data={"username": "ada", "password": "wrong password"})
    assert bad.status_code == 401 and "wrong user name or password" in bad.get_data(as_text=True)
    r = client.post("/login", data={"username": "ada", "password": STAFF_PASSWORD,
                                    "next": "//evil.example/x"})
    assert r.status_code == 302 and r.headers["Location"] == "/dispatch"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/api/dispatch/crews").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/api/dispatch/crews").status_code == 401


def test_secure_cookie_is_configurable(app, client):
    app.config["SESSION_COOKIE_SECURE"] = True
    create_user(app.extensions["geo311"].store, "ada", STAFF_PASSWORD, "admin")
    r = client.post("/login", data={"username": "ada", "password": STAFF_PASSWORD},
                    base_url="https://localhost")
    assert "Secure" in r.headers["Set-Cookie"]


def test_login_throttled_per_name_and_address(app, client):
    create_user(app.extensions["geo311"].store, "ada", STAFF_PASSWORD, "admin")
    for _ in range(MAX_FAILURES):
        assert client.post("/login", data={"username": "ada", "password": "nope"}).status_code \
            == 401
    locked = client.post("/login", data={"username": "ada", "password": STAFF_PASSWORD})
    assert locked.status_code == 429 and "try again in" in locked.get_data(as_text=True)
    other = csrf_ready(app, app.test_client())
    other.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert other.post("/login", data={"username": "ada", "password": STAFF_PASSWORD}
                      ).status_code == 302


def test_disabled_accounts_lose_their_session(app, staff_client):
    c = staff_client("dispatcher", "bob")
    assert c.get("/dispatch/crews").status_code == 200
    app.extensions["geo311"].store.accounts.set_user_active("bob", False)
    assert c.get("/dispatch/crews").status_code == 302
    again = csrf_ready(app, app.test_client())
    assert again.post("/login", data={"username": "bob", "password": STAFF_PASSWORD}
                      ).status_code == 401


def test_forms_need_a_csrf_token_but_json_api_and_open311_do_not(app, staff_client):
    c = staff_client("dispatcher")
    bare = FlaskClient(app, use_cookies=True)
    bare._cookies = c._cookies  # the same logged-in session, but no CSRF header
    r = bare.post("/dispatch/crews", data={"name": "N", "layer": "x"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert bare.post("/api/dispatch/work-orders", data={"crew_id": "1"}).status_code == 400
    json_post = bare.post("/api/dispatch/work-orders", json={"crew_id": 1, "request_ids": "x"})
    assert json_post.status_code == 400
    assert "request_ids is expected to be a list" in json_post.get_data(as_text=True)
    # Open311 clients authenticate with api_key, not cookies: no CSRF check, the
    # API's own answer (403 without a key), in its own error format.
    o = bare.post("/open311/v2/requests.json", data={"service_code": "SCB"})
    assert o.status_code == 403 and "CSRF" not in o.get_data(as_text=True)
    assert o.get_json()[0]["code"] == 403


def run(runner, *args, input=None):
    return runner.invoke(cli, list(map(str, args)), input=input)


def test_users_cli(runner, app):
    out = run(runner, "users", "create", "carol", "--role", "planner", "--password-stdin",
              input=STAFF_PASSWORD + "\n")
    assert out.exit_code == 0, out.output
    assert "created carol (planner)" in out.output
    prompted = run(runner, "users", "create", "dave", "--role", "gis",
                   input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    listing = run(runner, "users", "list").output
    assert re.search(r"carol\s+planner\s+active", listing)
    assert run(runner, "users", "disable", "carol").exit_code == 0
    assert re.search(r"carol\s+planner\s+disabled", run(runner, "users", "list").output)
    short = run(runner, "users", "create", "eve", "--role", "admin", "--password-stdin",
                input="short\n")
    assert short.exit_code == 1 and "at least 10" in short.output
    assert run(runner, "users", "create", "eve", "--role", "boss", "--password-stdin",
               input=STAFF_PASSWORD + "\n").exit_code == 2
    assert run(runner, "users", "create", "eve", "--role", "admin", "--password",
               STAFF_PASSWORD).exit_code == 2
    dup = run(runner, "users", "create", "carol", "--role", "admin", "--password-stdin",
              input=STAFF_PASSWORD + "\n")
    assert dup.exit_code == 1 and "exists already" in dup.output
    actions = [e["action"] for e in app.extensions["geo311"].store.audit.entries("user")]
    assert actions.count("user_created") == 2 and "user_disabled" in actions


@pytest.mark.parametrize("role", ["agent", "dispatcher", "planner", "gis", "admin"])
def test_staff_client_fixture_logs_in_each_role(staff_client, role):
    c = staff_client(role)
    assert f"({role})" in c.get("/").get_data(as_text=True)
