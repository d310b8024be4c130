"""The Open311 POST flow and the stored records, as services of the core.

``create_request`` is the whole of POST Service Request once the HTTP body is read:
API key, rate limit, jurisdiction, parsing, the ``client_request_id`` replay guard and
intake. The web view only reads the body and writes the answer.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Any

from geo311 import open311
from geo311.errors import Forbidden, InvalidRequest, NotFound
from geo311.intake import Context, submit
from geo311.media import PhotoUpload, kept_photo
from geo311.model import Service, ServiceRequest
from geo311.open311_records import refresh_records
from geo311.store import Store
from geo311.store.accounts import ApiKey

#: The longest ``client_request_id`` a client may send.
MAX_CLIENT_REQUEST_ID = 200


class Catalogue:
    """The service catalogue as this process last read it, re-read every ``ttl_s`` seconds.

    Used to check a POST's answers and to name agencies; a code it does not hold is
    looked up in the store, so a newly loaded service is usable at once.
    """

    def __init__(self, store: Store, ttl_s: float = 5.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._services: dict[str, Service] = {}
        self._read = -math.inf
        self._lock = threading.Lock()

    def services(self) -> dict[str, Service]:
        """Every active service by code."""
        with self._lock:
            if time.monotonic() - self._read > self.ttl_s:
                self._services = {sv.code: sv for sv in self.store.catalogue.services()}
                self._read = time.monotonic()
            return self._services

    def service(self, code: str) -> Service:
        """One service; raise ``NotFound`` when the store has no such active service."""
        found = self.services().get(code)
        return found if found is not None else self.store.catalogue.service(code)


@dataclass(frozen=True)
class Created:
    """What a POST made: the stored request (or the earlier one a replay names)."""

    request: ServiceRequest
    service: Service
    extensions: bool
    replayed: bool = False

    def document(self) -> list[dict[str, Any]]:
        """The POST response document."""
        return open311.post_response(self.request, self.service, extensions=self.extensions)


def check_jurisdiction(params: open311.Params, served: str) -> None:
    """Refuse a ``jurisdiction_id`` other than the one served (none configured: any)."""
    given = open311.single_value(params, "jurisdiction_id")
    if served and given and given != served:
        raise NotFound(f"jurisdiction_id {given!r} was not found; this endpoint serves "
                       f"{served!r}")


def api_key_of(store: Store, params: open311.Params) -> ApiKey:
    """The active API key a POST carries; ``Forbidden`` when missing, unknown or revoked."""
    given = open311.single_value(params, "api_key")
    if not given:
        raise Forbidden("api_key is missing: POST requests needs an API key")
    key = store.accounts.find_api_key(given)
    if key is None:
        raise Forbidden("api_key is invalid or revoked -- can't proceed with create_request")
    return key


def create_request(store: Store, context: Callable[[], Context], catalogue: Catalogue,
                   params: open311.Params, *, rate_limit: tuple[int, float],
                   jurisdiction_id: str = "", language: str = "",
                   photo: PhotoUpload | None = None) -> Created:
    """POST Service Request: check the client, parse the submission, store it once.

    ``params`` are the query string and form together. A ``client_request_id`` seen
    before from the same key answers with the request it made instead of a new one;
    if intake fails, the id is released so the client may retry. ``rate_limit`` is
    (requests, seconds) per key; ``context`` is asked for only when intake runs;
    ``language`` (the client's Accept-Language match) is the reporter's, for mail;
    ``photo`` (the ``media`` file of a multipart POST) is checked, stripped and kept.

    Examples
    --------
    >>> created = create_request(store, lambda: ctx, Catalogue(store),
    ...                          {"api_key": [key], "service_code": ["SCB"],
    ...                           "lat": ["41.88"], "long": ["-87.63"]},
    ...                          rate_limit=(60, 60.0))  # doctest: +SKIP
    >>> created.request.id  # doctest: +SKIP
    1
    """
    key = api_key_of(store, params)
    store.accounts.check_rate(key.id, *rate_limit)
    check_jurisdiction(params, jurisdiction_id)
    extensions = open311.wants_extensions(params)
    code = open311.single_value(params, "service_code")
    if not code:
        raise InvalidRequest("service_code was not provided")
    service = catalogue.service(code)
    new = open311.parse_submission(params, service)
    if language:
        new = replace(new, reporter=replace(new.reporter, language=language))
    client_id = open311.single_value(params, "client_request_id")
    if len(client_id) > MAX_CLIENT_REQUEST_ID:
        raise InvalidRequest(f"client_request_id has more than {MAX_CLIENT_REQUEST_ID} "
                             "characters")
    if client_id:
        earlier = store.accounts.claim_submission(key.id, client_id)
        if earlier is not None:
            return Created(store.requests.get(earlier), service, extensions, replayed=True)
    try:
        with kept_photo(photo) as url:
            stored = submit(store, context(), replace(new, media_url=url) if url else new)
    except BaseException:
        if client_id:
            store.accounts.release_submission(key.id, client_id)
        raise
    if client_id:
        store.accounts.settle_submission(key.id, client_id, stored.id)
    return Created(stored, service, extensions)


def refresh_stored_records(store: Store, zone: tzinfo) -> str:
    """Build every missing or stale Open311 record now; the line that says how it went."""
    started = time.perf_counter()
    built, current = refresh_records(store, zone)
    return (f"public records: {built} built, {current} already current "
            f"({time.perf_counter() - started:.1f} s)")
