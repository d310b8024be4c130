"""What a query string says, read one way on every page: a day, a point on Earth."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from geo311.errors import InvalidRequest


def day(args: Mapping[str, str], name: str) -> date | None:
    """``args[name]`` as a day (``YYYY-MM-DD``), None when absent or empty."""
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{name} was {raw!r} but is expected as YYYY-MM-DD") from exc


def point(args: Mapping[str, str]) -> tuple[float, float]:
    """``(lon, lat)`` from ``lat`` and ``long``, both required and on Earth."""
    try:
        lat, lon = float(args["lat"]), float(args["long"])
    except (KeyError, ValueError):
        raise InvalidRequest("lat and long are required and must be numbers") from None
    if not (abs(lat) <= 90 and abs(lon) <= 180):
        raise InvalidRequest(f"lat {lat} and long {lon} are not a place on Earth")
    return lon, lat
