"""Errors the core raises, each with the HTTP status an adapter should use."""

from __future__ import annotations


class Geo311Error(Exception):
    """Base error: ``status`` is the HTTP status, ``code`` a short machine name."""

    status = 500
    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(Geo311Error):
    """A setting has a bad value; the message names the variable and the value."""

    code = "config"


class InvalidRequest(Geo311Error):
    """Input that cannot be accepted as it is (bad field, file, row or value)."""

    status = 400
    code = "invalid"


class LayerError(InvalidRequest):
    """A boundary layer file cannot be read or used."""

    code = "invalid_layer"


class NotFound(Geo311Error):
    """The thing asked for does not exist."""

    status = 404
    code = "not_found"


class Conflict(Geo311Error):
    """The request conflicts with what is stored (a one-time link used a second time)."""

    status = 409
    code = "conflict"


class OutsideServiceArea(Geo311Error):
    """A location lies outside the city's service area."""

    status = 422
    code = "outside_service_area"



class SchemaOutdated(Geo311Error):
    """The database was made by an older geo311 and not yet upgraded with ``init-db``."""

    status = 503
    code = "schema_outdated"


class Unauthorized(Geo311Error):
    """No staff login, or a wrong name or password."""

    status = 401
    code = "unauthorized"


class Forbidden(Geo311Error):
    """Logged in without the role this needs, or an API client without a valid key."""

    status = 403
    code = "forbidden"


class TooManyAttempts(Geo311Error):
    """Too many failed logins from one address for one name: locked for a while."""

    status = 429
    code = "too_many_attempts"


class TooManyRequests(Geo311Error):
    """A client sent more than its share; ``retry_after_s`` says when to try again."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
