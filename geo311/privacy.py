"""What the public may see of a request: never a reporter, and sensitive places masked.

A sensitive service (``services.sensitive``) is shown only at the centre of the H3
cell its point falls in, without its address or description, which could name the
place. Any other request's description and status notes are shown with phone numbers,
email addresses and ID numbers replaced by tokens (``geo311.redaction``): residents
type them into descriptions. Every public output (pages, JSON, Open311, OGC API,
public exports) goes through these functions; staff read the stored text.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from geo311.hotspots import snap_to_cell_centres
from geo311.model import ServiceRequest
from geo311.redaction import MAYBE_IDENTIFIER, redact_text

#: Free-text fields the public sees redacted.
FREE_TEXT = ("description", "status_notes")

#: How far a masked point can lie from the true one. The widest cell of the mask's
#: resolution measures 221 m from centre to vertex, so a search box widened by this
#: holds the true point of every masked point inside the unwidened box.
MASK_SHIFT_MAX_M = 250.0


def mask_request(r: ServiceRequest, sensitive: Set[str]) -> ServiceRequest:
    """A request as the public may see it: free text redacted, a sensitive point snapped.

    Examples
    --------
    >>> mask_request(r, {"DV"}).address  # doctest: +SKIP
    ''
    >>> mask_request(r, set()).description  # doctest: +SKIP
    'call me at [phone removed]'
    """
    if r.service_code not in sensitive:
        description, notes = redact_text(r.description), redact_text(r.status_notes)
        if description == r.description and notes == r.status_notes:
            return r
        return replace(r, description=description, status_notes=notes)
    lon, lat = r.lon, r.lat
    if lon is not None and lat is not None:
        lon, lat = masked_point(lon, lat)
    return replace(r, lon=lon, lat=lat, address="", description="",
                   status_notes=redact_text(r.status_notes))


def redact_record(record: dict[str, Any]) -> dict[str, Any]:
    """An Open311 record with its ``description`` and ``status_notes`` redacted."""
    out = dict(record)
    for field in FREE_TEXT:
        if out.get(field):
            out[field] = redact_text(out[field])
    return out


def mask_record(record: dict[str, Any]) -> dict[str, Any]:
    """A sensitive request's Open311 record (``long``, ``lat``, ``address``, ``description``)."""
    out = redact_record(record)
    if out.get("long") is not None and out.get("lat") is not None:
        out["long"], out["lat"] = masked_point(out["long"], out["lat"])
    out["address"] = out["description"] = None
    return out


def masked_point(lon: float, lat: float) -> tuple[float, float]:
    """Where the public sees a sensitive request: the centre of its cell, to 6 decimals."""
    xs, ys = snap_to_cell_centres([lon], [lat])
    return round(float(xs[0]), 6), round(float(ys[0]), 6)


def shown_points(codes: Sequence[str], lon: Sequence[float] | np.ndarray,
                 lat: Sequence[float] | np.ndarray, sensitive: Set[str]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Where the public sees each point: sensitive services' at their cell centre.

    Public spatial filters decide on these, so sliding a search area over a masked
    request cannot find where it really is.

    Examples
    --------
    >>> shown_points(["DV"], [-87.64123], [41.88456], {"DV"})  # doctest: +SKIP
    (array([-87.641...]), array([41.884...]))
    """
    xs, ys = np.array(lon, dtype=float), np.array(lat, dtype=float)
    hidden = np.isin(np.asarray(codes, dtype=object), list(sensitive)) \
        & ~(np.isnan(xs) | np.isnan(ys))
    if hidden.any():
        cx, cy = snap_to_cell_centres(xs[hidden], ys[hidden])
        xs[hidden], ys[hidden] = np.round(cx, 6), np.round(cy, 6)
    return xs, ys


def redact_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A public frame with its free-text columns (``description``, ``status_notes``) redacted."""
    columns = [c for c in FREE_TEXT if c in frame.columns]
    if frame.empty or not columns:
        return frame
    out = frame.copy()
    for column in columns:
        values = out[column]
        # Most text holds nothing an identifier needs (a digit, "@", "at"): found in one
        # vectorised pass, so only the rest goes through the full search.
        maybe = values.astype("string").str.contains(MAYBE_IDENTIFIER, na=False).to_numpy(bool)
        if maybe.any():
            values = values.astype(object).copy()
            values[maybe] = [redact_text(v) for v in values[maybe]]
            out[column] = values
    return out


def mask_frame(frame: pd.DataFrame, sensitive: Set[str], *, lon: str = "long",
               lat: str = "lat") -> pd.DataFrame:
    """A public frame: free text redacted, sensitive rows masked (``service_code``, lon, lat)."""
    frame = redact_frame(frame)
    if not sensitive or frame.empty:
        return frame
    rows = frame["service_code"].isin(list(sensitive)).to_numpy()
    located = rows & frame[lon].notna().to_numpy() & frame[lat].notna().to_numpy()
    if not rows.any():
        return frame
    out = frame.copy()
    if located.any():
        xs, ys = snap_to_cell_centres(out.loc[located, lon].to_numpy(float),
                                      out.loc[located, lat].to_numpy(float))
        out.loc[located, lon] = np.round(xs, 6)
        out.loc[located, lat] = np.round(ys, 6)
    for column in ("address", "description"):
        if column in out.columns:
            out.loc[rows, column] = ""
    return out
