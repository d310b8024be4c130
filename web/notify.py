"""One-click unsubscribe from mail about one's requests (RFC 8058)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, make_response, render_template

from geo311.errors import InvalidRequest
from geo311.notifications import mask_address, read_unsubscribe_token
from geo311_web import state

bp = Blueprint("notify", __name__)


def _address(token: str) -> str:
    """The address a signed link stands for; a tampered or unknown link is a 400."""
    found = state().store.outbox.get(read_unsubscribe_token(token, current_app.secret_key or ""))
    if found is None:
        raise InvalidRequest("this unsubscribe link is not valid")
    return str(found["email"])


def _private(body: str) -> Response:
    # The link is a credential: keep it out of caches and other sites' referrer logs.
    response = make_response(body)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/unsubscribe/<token>")
def confirm(token: str) -> Response:
    """Ask before unsubscribing: mail scanners follow links, so a GET changes nothing."""
    address = _address(token)
    done = state().store.outbox.is_unsubscribed(address)
    return _private(render_template("unsubscribe.html", masked=mask_address(address),
                                    token=token, done=done))


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> Response:
    """Unsubscribe (the page's button, or a mail client's one-click POST)."""
    address = _address(token)
    state().store.outbox.unsubscribe(address)
    return _private(render_template("unsubscribe.html", masked=mask_address(address),
                                    token=token, done=True))
