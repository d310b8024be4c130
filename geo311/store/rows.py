"""What every repository shares: the clock, the id range, search boxes and row frames."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from geo311.model import DuplicateSearch

#: The largest id the integer id columns hold; a larger id names nothing stored.
MAX_ID = 2**31 - 1

#: Clock slack when a live report's time is read only after its candidates.
_CLOCK_SLACK = timedelta(minutes=1)


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def degree_box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box that surely holds every point within ``radius_m`` of (lon, lat)."""
    dlat = radius_m / 111_000.0 * 1.01
    dlon = dlat / max(np.cos(np.radians(min(abs(lat) + dlat, 89.9))), 1e-6)
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def candidate_span(
    search: DuplicateSearch, requested: datetime | None
) -> tuple[datetime, datetime | None, datetime | None]:
    """``since, until, open_after`` bounds that keep every candidate ``decide`` may pick."""
    if requested is not None:
        return (requested - timedelta(days=search.window_days), requested,
                requested if search.only_open else None)
    now = now_utc()
    return (now - timedelta(days=search.window_days) - _CLOCK_SLACK, None,
            now - _CLOCK_SLACK if search.only_open else None)


def stored_ids(ids: Sequence[int]) -> list[int]:
    """The ids a request can have: one outside the id column's range does not exist."""
    return [int(i) for i in ids if 0 < int(i) <= MAX_ID]


def to_frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """Rows to a frame column-wise (pandas probes every Row object otherwise: 10x slower)."""
    if not rows:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(dict(zip(columns, zip(*rows, strict=True), strict=True)))


def as_utc(value: Any) -> datetime:
    """A time read by an aggregate (SQLite gives text, naive or aware) as aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
