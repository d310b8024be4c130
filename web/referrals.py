"""Referrals: the public page of one (its reference), and the staff page of them all."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from werkzeug.wrappers import Response

from geo311_web import state
from geo311_web.auth import actor, role_required

bp = Blueprint("referrals", __name__)

#: What each state tells a resident following a referral.
STATUS_WORDS = {
    "referred": "You were referred to them: please report it to them.",
    "pending": "Waiting to be passed on to them.",
    "sending": "Being passed on to them.",
    "forwarded": "Passed on to them.",
    "failed": "Could not be passed on yet; the city's staff are looking into it.",
}


@bp.get("/referrals/<reference>")
def referral(reference: str) -> str:
    """Where a referred report went: the neighbour, the agency and its request number."""
    found = state().store.referrals.get(reference)
    return render_template("referral.html", r=found, words=STATUS_WORDS[found["status"]])


@bp.get("/staff/referrals")
@role_required("agent", "dispatcher")
def referral_list() -> str:
    """Every referral, newest first; the flagged ones (failed) first of all."""
    store = state().store
    flagged = store.referrals.rows(status="failed", limit=500)
    recent = store.referrals.rows(limit=200)
    return render_template("referrals.html", flagged=flagged, recent=recent,
                           counts=store.referrals.counts())


@bp.post("/staff/referrals/<reference>/retry")
@role_required("agent", "dispatcher")
def retry(reference: str) -> Response:
    """Send a flagged referral again."""
    state().store.referrals.retry(reference, actor=actor())
    return redirect(url_for("referrals.referral_list"))
