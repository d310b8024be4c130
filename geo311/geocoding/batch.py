"""Geocoding a whole CSV file of addresses, offline, with the geocoder's answers beside it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geo311.errors import InvalidRequest
from geo311.geocoding.cascade import Geocoder
from geo311.geocoding.references import open_binary

GEOCODE_COLUMNS = ("lat", "long", "geocode_match", "geocode_score", "geocode_reason")


def geocode_csv(geocoder: Geocoder, source: str | Path, output: str | Path,
                address_column: str) -> dict[str, int]:
    """Geocode a CSV's address column; write every input column plus ``GEOCODE_COLUMNS``.

    Returns how many rows got each match type.

    Examples
    --------
    >>> geocode_csv(geocoder, "in.csv", "out.csv", "Street_Address")  # doctest: +SKIP
    {'exact': 812, 'interpolated': 170, 'none': 18}
    """
    source = Path(source)
    try:
        with open_binary(source) as fh:
            table = pd.read_csv(fh, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as exc:
        raise InvalidRequest(f"{source}: not a readable CSV file: {exc}") from exc
    if address_column not in table.columns:
        raise InvalidRequest(f"{source}: no column {address_column!r}; it has "
                             f"{list(table.columns)}")
    clash = [c for c in GEOCODE_COLUMNS if c in table.columns]
    if clash:
        raise InvalidRequest(f"{source}: already has column(s) {clash}; rename them first")
    found = geocoder.geocode_many(table[address_column].tolist())
    table["lat"] = found["lat"].round(7)
    table["long"] = found["lon"].round(7)
    table["geocode_match"] = found["match"]
    table["geocode_score"] = found["score"]
    table["geocode_reason"] = found["reason"]
    table.to_csv(output, index=False)
    return {str(k): int(v) for k, v in found["match"].value_counts().items()}
