"""The storage interface the rest of geo311 talks to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from geo311.model import DuplicateSearch, NewRequest, Placement, ServiceRequest


class RequestStore(Protocol):
    """What intake, maps and exports need from a database of requests."""

    def add(
        self, new: NewRequest, placement: Placement, *, duplicates: DuplicateSearch | None = None
    ) -> ServiceRequest:
        """Store one new request with its reporter and districts, merging duplicates."""
        ...

    def get(self, request_id: int) -> ServiceRequest:
        """One request by id; raise ``NotFound``."""
        ...

    def near(
        self, lon: float, lat: float, radius_m: float, *, service_code: str | None = None,
        status: str | None = "open", limit: int = 50,
    ) -> list[tuple[ServiceRequest, float]]:
        """Requests within ``radius_m`` metres, nearest first, with their distance."""
        ...

    def query(
        self, *, service_codes: Sequence[str] | None = None, status: str | None = None,
        start: datetime | None = None, end: datetime | None = None,
        bbox: tuple[float, float, float, float] | None = None, limit: int = 1000,
        offset: int = 0,
    ) -> list[ServiceRequest]:
        """Requests matching filters, newest first."""
        ...

    def mark_duplicate(self, child_id: int, parent_id: int, *, actor: str = "system") -> None:
        """Link a request to the group of an earlier one."""
        ...
