"""Following a request by email without an account, with double opt-in.

A resident types an address on the tracking page; the address receives one message
asking it to confirm (``follow`` in the outbox) and nothing else until it does. From
then on it hears of the request what its reporters hear, and its messages carry the
same one-click unsubscribe.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from email_validator import EmailNotValidError, validate_email

from geo311.errors import InvalidRequest, NotFound
from geo311.notifications import language_of, read_follow_token
from geo311.store.followers import Follower, Followers
from geo311.store.outbox import Outbox

LOGGER = logging.getLogger(__name__)


class FollowStore(Protocol):
    """What following needs of the store: the followers and the outbox."""

    followers: Followers
    outbox: Outbox


def ask_to_follow(store: FollowStore, request_id: int, email: str, language: str = "") -> bool:
    """Ask to follow a request: checks the address and mails it a confirmation link.

    Returns whether a message was queued; a page should say the same either way (see
    ``Followers.ask``). Raises ``InvalidRequest`` for an address that cannot receive mail
    and ``NotFound`` for an unknown request.

    Examples
    --------
    >>> ask_to_follow(store, 7, "ann@example.org", "es")  # doctest: +SKIP
    True
    """
    text = email.strip()
    if len(text) > 254:
        raise InvalidRequest("email has more than 254 characters")
    try:
        address = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidRequest(f"email is not an address mail can be sent to: {exc}") from exc
    return store.followers.ask(request_id, address, language_of(language))


def follow_request_of(store: FollowStore, token: str, secret: str) -> dict[str, Any]:
    """The confirmation message a link names; ``NotFound`` unless it is one."""
    row = store.outbox.get(read_follow_token(token, secret))
    if row is None or row["kind"] != "follow":
        raise NotFound("this confirmation link does not exist")
    return row


def confirm_follow(store: FollowStore, token: str, secret: str) -> Follower:
    """Confirm the follow a mailed link names (idempotent: a second click changes nothing)."""
    row = follow_request_of(store, token, secret)
    return store.followers.confirm(int(row["request_id"]), str(row["email"]))
