"""Sessions that cannot be forged or outlive their end, and a lockout that cannot be raced."""

import stat
import threading

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from geo311.accounts import MAX_FAILURES, authenticate, create_user, set_password
from geo311.config import Settings
from geo311.errors import ConfigError, TooManyAttempts, Unauthorized
from geo311_web import create_app
from geo311_web.cli import cli
from tests.conftest import STAFF_PASSWORD, csrf_ready

#: Backend-specific paths throughout: every test here runs on PostGIS too.
pytestmark = pytest.mark.both_backends


def _cookie_for(secret: str, session: dict) -> str:
    """A session cookie signed with ``secret``, as an attacker who knows it would make."""
    forger = Flask("forger")
    forger.secret_key = secret
    return SecureCookieSessionInterface().get_signing_serializer(forger).dumps(session)


def _session_cookie(client) -> str:
    return client.get_cookie("session").value


def _with_cookie(app, value: str):
    c = app.test_client()
    c.set_cookie("session", value)
    return c


def test_unset_secret_key_is_generated_once_into_the_instance_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    first = create_app(Settings(database_url=url, instance_path=tmp_path / "instance"))
    path = tmp_path / "instance" / "secret_key"
    secret = path.read_text()
    assert first.secret_key == secret and len(secret) >= 64 and secret != "dev"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = create_app(Settings(database_url=url, instance_path=tmp_path / "instance"))
    assert second.secret_key == secret  # every start and every worker share it
    other = create_app(Settings(database_url=url, instance_path=tmp_path / "elsewhere"))
    assert other.secret_key != secret  # random, not derived from anything public


@pytest.mark.parametrize("weak", ["dev", "DEV", "changeme", "secret", "short-but-real"])
def test_known_weak_secret_keys_are_refused(weak, tmp_path):
    with pytest.raises(ConfigError, match="GEO311_SECRET_KEY"):
        Settings(secret_key=weak, instance_path=tmp_path)
    with pytest.raises(ConfigError, match="GEO311_SECRET_KEY"):
        Settings.from_env({"GEO311_SECRET_KEY": weak})
    assert Settings(secret_key="k" * 16).session_secret() == "k" * 16


def test_forged_session_cookie_signed_with_dev_is_refused(app):
    store = app.extensions["geo311"].store
    admin = create_user(store, "ada", STAFF_PASSWORD, "admin")
    for user_id in (f"{admin.id}:0", str(admin.id)):
        forged = _with_cookie(app, _cookie_for("dev", {"_user_id": user_id, "_fresh": True}))
        assert forged.get("/api/dispatch/crews").status_code == 401
        assert forged.get("/gis/").status_code == 302
    # The same cookie signed with the server's own secret is accepted: the refusal above
    # is the secret's doing, not a malformed cookie's.
    genuine = _with_cookie(app, _cookie_for(app.secret_key,
                                            {"_user_id": f"{admin.id}:0", "_fresh": True}))
    assert genuine.get("/api/dispatch/crews").status_code == 200


def _logged_in(app, name: str):
    c = csrf_ready(app, app.test_client())
    r = c.post("/login", data={"username": name, "password": STAFF_PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)
    assert c.get("/api/dispatch/crews").status_code == 200
    return c


def test_session_cookie_copied_before_logout_is_refused_after_it(app):
    create_user(app.extensions["geo311"].store, "ada", STAFF_PASSWORD, "admin")
    c = _logged_in(app, "ada")
    elsewhere = _logged_in(app, "ada")  # the same person on another device
    copied = _with_cookie(app, _session_cookie(c))
    assert copied.get("/api/dispatch/crews").status_code == 200
    assert c.post("/logout").status_code == 302
    assert copied.get("/api/dispatch/crews").status_code == 401
    assert copied.get("/dispatch").status_code == 302
    assert elsewhere.get("/api/dispatch/crews").status_code == 401
    assert _logged_in(app, "ada").get("/api/dispatch/crews").status_code == 200
    actions = [e["action"] for e in app.extensions["geo311"].store.audit.entries("user")]
    assert "sessions_ended" in actions


@pytest.mark.parametrize("change", ["password", "disable", "role"])
def test_password_change_disabling_and_role_change_end_every_session(app, change):
    store = app.extensions["geo311"].store
    create_user(store, "bob", STAFF_PASSWORD, "dispatcher")
    c = _logged_in(app, "bob")
    copied = _with_cookie(app, _session_cookie(c))
    if change == "password":
        set_password(store, "bob", "another long password")
    elif change == "disable":
        store.accounts.set_user_active("bob", False)
    else:
        result = app.test_cli_runner().invoke(cli, ["users", "role", "bob", "planner"])
        assert result.exit_code == 0 and "bob is now planner" in result.output
        assert store.accounts.user("bob")["role"] == "planner"
    for client in (c, copied):
        assert client.get("/api/dispatch/crews").status_code == 401


def test_thirty_simultaneous_wrong_logins_check_at_most_five_passwords(store):
    create_user(store, "ada", STAFF_PASSWORD, "admin")
    start = threading.Barrier(30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        start.wait()
        try:
            authenticate(store, "ada", "wrong password", "10.0.0.9")
            said = "accepted"
        except Unauthorized:
            said = "checked"
        except TooManyAttempts:
            said = "locked"
        with lock:
            outcomes.append(said)

    threads = [threading.Thread(target=attempt) for _ in range(30)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert outcomes.count("checked") == MAX_FAILURES, outcomes
    assert outcomes.count("locked") == 30 - MAX_FAILURES
    # The right password is refused too while locked, and another address is not.
    with pytest.raises(TooManyAttempts):
        authenticate(store, "ada", STAFF_PASSWORD, "10.0.0.9")
    assert authenticate(store, "ada", STAFF_PASSWORD, "10.0.0.10").username == "ada"


def test_a_successful_login_clears_the_failures_it_reserved(store):
    create_user(store, "ada", STAFF_PASSWORD, "admin")
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(Unauthorized):
            authenticate(store, "ada", "wrong password", "10.0.0.9")
    authenticate(store, "ada", STAFF_PASSWORD, "10.0.0.9")
    for _ in range(MAX_FAILURES):  # the count starts again from nothing
        with pytest.raises(Unauthorized):
            authenticate(store, "ada", "wrong password", "10.0.0.9")
    with pytest.raises(TooManyAttempts):
        authenticate(store, "ada", "wrong password", "10.0.0.9")
