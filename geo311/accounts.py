"""Staff accounts: roles, hashed passwords (scrypt) and login throttling."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from geo311.errors import InvalidRequest, TooManyAttempts, Unauthorized

if TYPE_CHECKING:
    from geo311.store import Store

LOGGER = logging.getLogger(__name__)

#: Staff roles; ``admin`` may do everything. ``agent`` answers residents at the 311 centre;
#: ``records`` answers public-records requests and keeps legal holds and retention;
#: ``emergency`` (emergency managers) posts area notices.
ROLES = ("agent", "dispatcher", "planner", "gis", "records", "emergency", "admin")
MIN_PASSWORD_LENGTH = 10
#: Failed logins of one name from one address allowed within the window before a lockout.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
#: scrypt cost (n, r, p) of new hashes, stored in the hash as ``scrypt:n:r:p$salt$hex``.
SCRYPT_COST = (2**15, 8, 1)
_SALT_CHARS = string.ascii_letters + string.digits


def hash_password(password: str) -> str:
    """A salted scrypt hash, as ``scrypt:32768:8:1$<salt>$<hex>``.

    The format is the one Werkzeug writes, so hashes stored before still verify.

    Examples
    --------
    >>> hash_password("correct horse battery").startswith("scrypt:32768:8:1$")
    True
    """
    salt = "".join(secrets.choice(_SALT_CHARS) for _ in range(16))
    n, r, p = SCRYPT_COST
    return f"scrypt:{n}:{r}:{p}${salt}${_digest(f'scrypt:{n}:{r}:{p}', salt, password)}"


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches a stored ``method$salt$hex`` hash (scrypt or pbkdf2).

    Examples
    --------
    >>> verify_password(hash_password("correct horse battery"), "correct horse battery")
    True
    """
    try:
        method, salt, expected = stored.split("$", 2)
        return hmac.compare_digest(_digest(method, salt, password), expected)
    except ValueError:
        return False


def _digest(method: str, salt: str, password: str) -> str:
    name, *args = method.split(":")
    if name == "scrypt":
        n, r, p = (int(a) for a in args) if args else SCRYPT_COST
        return hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p,
                              maxmem=132 * n * r * p).hex()
    if name == "pbkdf2":
        hash_name = args[0] if args else "sha256"
        iterations = int(args[1]) if len(args) > 1 else 1_000_000
        return hashlib.pbkdf2_hmac(hash_name, password.encode(), salt.encode(),
                                   iterations).hex()
    raise ValueError(f"unknown password hash method {name!r}")


#: Checked against when the name is unknown, so both cases take as long.
_DUMMY_HASH = hash_password("not a password")


@dataclass(frozen=True)
class StaffUser:
    """A logged-in member of staff."""

    id: int
    username: str
    role: str
    active: bool = True
    session_generation: int = 0

    def may(self, *roles: str) -> bool:
        """True when the user has one of ``roles`` (admin has them all)."""
        return self.role == "admin" or self.role in roles


def check_password(password: str) -> None:
    """Refuse passwords that are too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"the password has {len(password)} characters but at least "
            f"{MIN_PASSWORD_LENGTH} are required")
    if len(password) > 1024:
        raise InvalidRequest("the password is longer than 1024 characters")


def create_user(store: Store, username: str, password: str, role: str, *,
                actor: str = "system") -> StaffUser:
    """Add a staff account with a scrypt-hashed password.

    Examples
    --------
    >>> create_user(store, "ada", "correct horse battery", "dispatcher")  # doctest: +SKIP
    """
    username = username.strip()
    if not username or len(username) > 100 or not username.isprintable():
        raise InvalidRequest(f"user name {username!r} is expected to be 1-100 printable "
                             "characters")
    if role not in ROLES:
        raise InvalidRequest(f"role was {role!r} but is expected to be in {ROLES}")
    check_password(password)
    user_id = store.accounts.add_user(username, hash_password(password),
                             role, actor=actor)
    LOGGER.info("created user %s (%s)", username, role)
    return StaffUser(user_id, username, role)


def set_password(store: Store, username: str, password: str, *,
                 actor: str = "system") -> None:
    """Replace a user's password."""
    check_password(password)
    store.accounts.set_user_password(username, hash_password(password),
                            actor=actor)


def set_role(store: Store, username: str, role: str, *, actor: str = "system") -> None:
    """Give an account another role; its sessions end, so the new role applies at once."""
    if role not in ROLES:
        raise InvalidRequest(f"role was {role!r} but is expected to be in {ROLES}")
    store.accounts.set_user_role(username, role, actor=actor)


def load_user(store: Store, user_id: int, generation: int | None = None) -> StaffUser | None:
    """An active account by id (for the session), or None.

    With ``generation``, None too when the account's sessions were ended after the
    session was signed (logout, password or role change, disabling).
    """
    row = store.accounts.user(user_id=user_id)
    if row is None or not row["active"]:
        return None
    if generation is not None and generation != row["session_generation"]:
        return None
    return StaffUser(row["id"], row["username"], row["role"], bool(row["active"]),
                     int(row["session_generation"]))


def authenticate(store: Store, username: str, password: str, address: str, *,
                 now: datetime | None = None) -> StaffUser:
    """Check a login; raise ``Unauthorized`` or, after repeated failures, ``TooManyAttempts``.

    Failures count per user name and client address: after ``MAX_FAILURES`` within
    ``FAILURE_WINDOW`` every attempt is refused, without checking the password, until
    the oldest of them is ``FAILURE_WINDOW`` old. Each attempt is counted before its
    password is checked, in one locked step, so simultaneous attempts cannot slip past
    the limit.
    """
    now = now or datetime.now(UTC)
    username = username.strip()[:100]
    recent = store.accounts.claim_login_attempt(username, address, now - FAILURE_WINDOW,
                                                MAX_FAILURES)
    if recent:
        until = recent[-MAX_FAILURES] + FAILURE_WINDOW
        wait = int((until - now).total_seconds() // 60) + 1
        raise TooManyAttempts(f"too many failed logins; try again in {wait} minutes")
    row = store.accounts.user(username)
    ok = verify_password(row["password_hash"] if row else _DUMMY_HASH, password)
    if row is None or not ok or not row["active"]:
        LOGGER.info("failed login for %r from %s", username, address)
        raise Unauthorized("wrong user name or password")
    store.accounts.record_login(username, address, ok=True)
    return StaffUser(row["id"], row["username"], row["role"], True,
                     int(row["session_generation"]))
