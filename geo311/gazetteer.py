"""The store's gazetteer: addresses learned from trusted requests, and its geocoder.

Reference layers are read from files by ``geo311.geocoding.references`` and kept in
the store; this service learns address points from imported history and builds (and
keeps) one geocoder per database over what the store holds.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pandas as pd
from sqlalchemy.engine import Engine

from geo311.geocoding.cascade import Geocoder
from geo311.geocoding.references import POINT_COLUMNS, learned_points, read_reference
from geo311.geocoding.side import CHICAGO_GRID, AddressGrid
from geo311.store import Store
from geo311.store.addresses import Addresses

LEARNED_SOURCE = "requests"


def learn_addresses(store: Store, *, since: datetime | None = None,
                    actor: str = "system") -> int:
    """Store the address points of requests whose coordinates are trusted.

    Imported history carries the City's own geocodes (``geocode_match`` ``source``);
    each distinct address becomes one point at the median of its requests' points,
    replacing what was learned before. With ``since``, only requests from then on are
    read and their addresses are added to (or replace) the points learned before.
    Returns the number of learned points stored.

    Examples
    --------
    >>> learn_addresses(store)  # doctest: +SKIP
    26287
    """
    points = learned_points(store.addresses.trusted(since=since))
    if since is not None:
        known = store.addresses.reference_frames()["points"]
        known = known[known["source"] == LEARNED_SOURCE][list(POINT_COLUMNS)]
        points = pd.concat([points, known], ignore_index=True).drop_duplicates(
            "address", keep="first")
    return store.addresses.replace_reference("points", points, LEARNED_SOURCE, actor=actor)


_GEOCODERS: dict[str, tuple[tuple[int, ...], Geocoder]] = {}
_GEOCODERS_LOCK = threading.Lock()


class ReferenceStore(Protocol):
    """What building a geocoder needs of a store."""

    @property
    def addresses(self) -> Addresses:
        """The store's ``addresses``."""

    @property
    def engine(self) -> Engine:
        """The store's ``engine`` (its URL names the geocoder's cache entry)."""


def geocoder_for(store: ReferenceStore, *, city: str = "CHICAGO", state: str = "IL",
                 grid: AddressGrid = CHICAGO_GRID) -> tuple[Geocoder, tuple[int, ...]]:
    """The geocoder over ``store``'s reference layers and its key, built once per change.

    Building reads every reference row (seconds for a whole city), so the last
    geocoder of each database is kept until a reference layer changes.
    """
    key = store.addresses.reference_key()
    name = store.engine.url.render_as_string(hide_password=True)
    with _GEOCODERS_LOCK:
        cached = _GEOCODERS.get(name)
        if cached is not None and cached[0] == key:
            return cached[1], key
        frames = store.addresses.reference_frames()
        zipcodes = set(frames["intersections"]["zipcode"]) | set(frames["points"]["zipcode"])
        geocoder = Geocoder(frames["points"], frames["intersections"], frames["centerlines"],
                            grid=grid, zipcodes=zipcodes, city=city, state=state)
        _GEOCODERS[name] = (key, geocoder)
        return geocoder, key


def load_reference(store: Store, path: str | Path, kind: str | None = None,
                   columns: dict[str, str] | None = None, *, source: str = "",
                   actor: str = "system") -> tuple[str, int]:
    """Read a reference file and replace the rows of its source; return (kind, rows stored).

    OSM streets are stored as centrelines. ``source`` defaults to the file name.

    Examples
    --------
    >>> load_reference(store, "chicago_street_intersections.csv.gz")  # doctest: +SKIP
    ('intersections', 47046)
    """
    path = Path(path)
    kind, frame = read_reference(path, kind, columns)
    table = "centerlines" if kind == "osm" else kind
    return kind, store.addresses.replace_reference(table, frame, source or path.name, actor=actor)
