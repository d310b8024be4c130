"""Staff login: sessions (Flask-Login), roles, CSRF on forms, secure cookies.

Every path under ``STAFF_PREFIXES`` needs a login, whatever its view says; a view
narrows that to roles with ``role_required``. The Open311 API (blueprint
``open311``, ``/open311/``) and JSON bodies sent to ``/api/`` are exempt from the
CSRF check: they authenticate otherwise, and a browser cannot send JSON across
sites without the server's consent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Flask,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from geo311.accounts import ROLES, StaffUser, authenticate, load_user
from geo311.errors import Forbidden, TooManyAttempts, Unauthorized
from geo311_web import state
from geo311_web.navigation import start_page

LOGGER = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()

#: Paths that always need a staff login (role checks come on top, per view).
STAFF_PREFIXES = ("/dispatch", "/kpi", "/gis", "/planner", "/staff", "/admin",
                  "/api/dispatch", "/api/staff", "/api/gis", "/api/planner", "/api/kpi")
#: Paths and blueprints that authenticate without a session, so skip the CSRF check
#: (``notify``: the signed unsubscribe link is the credential, and mail clients post
#: RFC 8058 one-click requests with no session).
CSRF_EXEMPT_BLUEPRINTS = ("open311", "notify")
CSRF_EXEMPT_PREFIXES = ("/open311/",)

F = TypeVar("F", bound=Callable[..., Any])


class SessionUser(UserMixin):  # type: ignore[misc]
    """The Flask-Login face of a staff account."""

    def __init__(self, staff: StaffUser) -> None:
        self.staff = staff

    def get_id(self) -> str:
        """What the session keeps: the account id and its session generation."""
        return f"{self.staff.id}:{self.staff.session_generation}"

    @property
    def username(self) -> str:
        """The account name."""
        return self.staff.username

    @property
    def role(self) -> str:
        """The account role."""
        return self.staff.role


def current_staff() -> StaffUser | None:
    """The logged-in staff member of this request, or None."""
    if not current_user or not current_user.is_authenticated:
        return None
    return cast(SessionUser, current_user).staff


def actor() -> str:
    """The name audit entries carry for this request."""
    staff = current_staff()
    return staff.username if staff else "anonymous"


def _wants_json() -> bool:
    return (request.path.startswith(("/api/", "/open311/")) or request.is_json
            or request.accept_mimetypes.best == "application/json")


def _refuse_anonymous() -> Response:
    """401 for the API; a redirect to the login page for pages."""
    if _wants_json() or request.method != "GET":
        raise Unauthorized("log in as staff to use this")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def require_role(*roles: str) -> Response | None:
    """None when the logged-in staff member has one of ``roles`` (or is admin).

    Otherwise the login redirect (pages) or raise 401/403; for a blueprint's
    ``before_request`` hook, which guards every route of the blueprint at once.
    """
    staff = current_staff()
    if staff is None:
        return _refuse_anonymous()
    if not staff.may(*roles):
        raise Forbidden(f"this needs the role {' or '.join(roles)}; "
                        f"{staff.username} is {staff.role}")
    return None


def role_required(*roles: str) -> Callable[[F], F]:
    """Allow a view to staff with one of ``roles`` (admin always): 401/redirect, else 403.

    Examples
    --------
    >>> @bp.get("/gis/upload")  # doctest: +SKIP
    ... @role_required("gis")
    ... def upload(): ...
    """
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"roles {unknown} are not in {ROLES}")

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            refused = require_role(*roles)
            if refused is not None:
                return refused
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return cast(F, wrapped)

    return decorate


def _safe_next(target: str | None) -> str | None:
    """Only local paths are followed after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    """Staff login form."""
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next_url=next_url, error=None)
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    address = request.remote_addr or ""
    try:
        staff = authenticate(state().store, username, password, address)
    except (Unauthorized, TooManyAttempts) as exc:
        return render_template("login.html", next_url=next_url, error=exc.message,
                               username=username), exc.status
    login_user(SessionUser(staff))
    LOGGER.info("%s logged in from %s", staff.username, address)
    return redirect(next_url or start_page(staff))


@bp.post("/logout")
def logout() -> Response:
    """End the staff session."""
    staff = current_staff()
    if staff is not None:  # every copy of every session of this account ends here
        state().store.accounts.end_sessions(staff.id, actor=staff.username)
    logout_user()
    flash("logged out")
    return redirect(url_for("pages.index"))


def _csrf_exempt() -> bool:
    if request.blueprint in CSRF_EXEMPT_BLUEPRINTS or request.path.startswith(
            CSRF_EXEMPT_PREFIXES):
        return True
    return request.path.startswith("/api/") and request.is_json


def init_app(app: Flask) -> None:
    """Install login, the staff-path guard, CSRF and cookie settings on ``app``."""
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # checked below, with the exemptions
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)  # a dispatcher's shift
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["REMEMBER_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config.get("SESSION_COOKIE_SECURE"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    csrf.init_app(app)

    @login_manager.user_loader
    def _load(user_id: str) -> SessionUser | None:
        account, _, generation = user_id.partition(":")
        if not (account.isdigit() and generation.isdigit()) or len(user_id) > 30 \
                or int(account) > 2**31 - 1:
            return None  # sessions signed before generations existed, or junk
        staff = load_user(state().store, int(account), int(generation))
        return SessionUser(staff) if staff else None

    @app.before_request
    def _guard() -> Response | None:
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and not _csrf_exempt():
            csrf.protect()
        if request.path.startswith(STAFF_PREFIXES) and current_staff() is None:
            return _refuse_anonymous()
        return None

    @app.context_processor
    def _staff() -> dict[str, Any]:
        return {"staff": current_staff()}

    app.register_blueprint(bp)
