"""The store's gazetteer: addresses learned from trusted requests, and its geocoder.

Reference layers are read from files by ``geo311.geocoding.references`` and kept in
the store; this service learns address points from imported history and builds (and
keeps) one geocoder per database over what the store holds.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pandas as pd
import shapely
from sqlalchemy.engine import Engine

from geo311.city import CityProfile, active_profile
from geo311.errors import NotFound
from geo311.geocoding.cascade import Geocoder
from geo311.geocoding.references import (
    INTERSECTION_COLUMNS,
    POINT_COLUMNS,
    learned_intersections,
    learned_points,
    read_reference,
)
from geo311.store import Store
from geo311.store.addresses import Addresses
from geo311.store.layers import Layers

LOGGER = logging.getLogger(__name__)

LEARNED_SOURCE = "requests"


def learn_addresses(store: Store, *, since: datetime | None = None,
                    actor: str = "system") -> int:
    """Store the address points of requests whose coordinates are trusted.

    Imported history carries the city's own geocodes (``geocode_match`` ``source``);
    each distinct address becomes one point at the median of its requests' points,
    replacing what was learned before. With ``since``, only requests from then on are
    read and their addresses are added to (or replace) the points learned before.
    Returns the number of learned points stored; ``learn_references`` also learns
    intersections.

    Examples
    --------
    >>> learn_addresses(store)  # doctest: +SKIP
    26287
    """
    return learn_references(store, since=since, actor=actor)[0]


def learn_references(store: Store, *, since: datetime | None = None,
                     actor: str = "system") -> tuple[int, int]:
    """Learn address points and intersections from trusted history; (points, intersections).

    A request whose address is an intersection ("MAIN ST & ELM ST", "INTERSECTION of
    A & B") and whose point is trusted teaches where those streets cross: one point per
    pair of streets (whichever order they were written in), the median of its requests'.

    Examples
    --------
    >>> learn_references(store)  # doctest: +SKIP
    (26287, 1840)
    """
    trusted = store.addresses.trusted(since=since)
    points = learned_points(trusted)
    crossings = learned_intersections(trusted)
    if since is not None:
        frames = store.addresses.reference_frames()
        known = frames["points"]
        known = known[known["source"] == LEARNED_SOURCE][list(POINT_COLUMNS)]
        points = pd.concat([points, known], ignore_index=True).drop_duplicates(
            "address", keep="first")
        old = frames["intersections"]
        old = old[old["source"] == LEARNED_SOURCE][list(INTERSECTION_COLUMNS)]
        crossings = pd.concat([crossings, old], ignore_index=True).drop_duplicates(
            ["street_1", "street_2"], keep="first")
    n_points = store.addresses.replace_reference("points", points, LEARNED_SOURCE, actor=actor)
    n_crossings = store.addresses.replace_reference("intersections", crossings, LEARNED_SOURCE,
                                                    actor=actor)
    return n_points, n_crossings


#: Per database URL: (reference key, ((profile file, layer versions), geocoder)).
_GEOCODERS: dict[str, tuple[tuple[int, ...], tuple[tuple[Path | None, tuple[int, ...]],
                                                   Geocoder]]] = {}
_GEOCODERS_LOCK = threading.Lock()


class ReferenceStore(Protocol):
    """What building a geocoder needs of a store."""

    @property
    def addresses(self) -> Addresses:
        """The store's ``addresses``."""

    @property
    def layers(self) -> Layers:
        """The store's ``layers`` (neighbourhoods given as districts)."""

    @property
    def engine(self) -> Engine:
        """The store's ``engine`` (its URL names the geocoder's cache entry)."""


def geocoder_for(store: ReferenceStore, profile: CityProfile | None = None,
                 ) -> tuple[Geocoder, tuple[int, ...]]:
    """The geocoder over ``store``'s reference layers and its key, built once per change.

    ``profile`` (default: the active city, ``GEO311_CITY``) gives the accepted place
    names, state, ZIP codes, neighbourhoods and numbering rules. Building reads every
    reference row (seconds for a whole city), so the last geocoder of each database is
    kept until a reference layer changes.
    """
    profile = profile or active_profile()
    key = store.addresses.reference_key()
    name = store.engine.url.render_as_string(hide_password=True)
    layers = sorted({n.layer for n in profile.neighbourhoods if n.layer})
    versions = tuple(v.id for v in store.layers.versions(active_only=True)
                     if v.layer in layers) if layers else ()
    with _GEOCODERS_LOCK:
        cached = _GEOCODERS.get(name)
        if cached is not None and cached[0] == key and cached[1][0] == (profile.path, versions):
            return cached[1][1], key
        frames = store.addresses.reference_frames()
        geocoder = geocoder_over(frames, profile, neighbourhood_areas(store, profile))
        _GEOCODERS[name] = (key, ((profile.path, versions), geocoder))
        return geocoder, key


def neighbourhood_areas(store: ReferenceStore, profile: CityProfile
                        ) -> dict[str, shapely.Geometry]:
    """The area of each neighbourhood given as districts of a layer: their union.

    A layer that is not loaded, or districts it lacks, give no area (logged).
    """
    areas = {}
    for n in profile.neighbourhoods:
        if not n.layer:
            continue
        try:
            features = store.layers.features(n.layer)
        except NotFound:
            LOGGER.warning("neighbourhood %s: layer %s is not loaded", n.name, n.layer)
            continue
        chosen = features[features["district_id"].astype(str).isin(n.districts)]
        if chosen.empty:
            LOGGER.warning("neighbourhood %s: layer %s has none of the districts %s",
                           n.name, n.layer, list(n.districts))
            continue
        areas[n.name] = shapely.union_all(list(chosen.geometry.values))
    return areas


def geocoder_over(frames: dict[str, pd.DataFrame], profile: CityProfile,
                  areas: dict[str, shapely.Geometry] | None = None) -> Geocoder:
    """A geocoder over reference frames (``points``, ``intersections``, ``centerlines``) for a city.

    The city's ZIP codes are its profile's and those its references carry; ``areas``
    are the neighbourhoods given as districts of a layer (``neighbourhood_areas``).

    Examples
    --------
    >>> from geo311.city import load_profile
    >>> g = geocoder_over({"points": pd.DataFrame({"house_number": [29],
    ...     "pre_dir": [""], "street_name": ["MAIN"], "suffix": ["ST"], "zipcode": ["01103"],
    ...     "lon": [-72.59], "lat": [42.10]})}, load_profile())
    >>> g.geocode("29 MAIN ST").match
    'exact'
    """
    zipcodes = set(profile.zip_codes)
    for kind in ("points", "intersections"):
        frame = frames.get(kind)
        if frame is not None and "zipcode" in frame:
            zipcodes |= set(frame["zipcode"].dropna().astype(str))
    return Geocoder(frames.get("points"), frames.get("intersections"), frames.get("centerlines"),
                    zipcodes=zipcodes, areas=areas, **profile.geocoder_options())


def load_reference(store: Store, path: str | Path, kind: str | None = None,
                   columns: dict[str, str] | None = None, *, source: str = "",
                   actor: str = "system") -> tuple[str, int]:
    """Read a reference file and replace the rows of its source; return (kind, rows stored).

    OSM streets are stored as centrelines. ``source`` defaults to the file name.

    Examples
    --------
    >>> load_reference(store, "street_intersections.csv.gz")  # doctest: +SKIP
    ('intersections', 47046)
    """
    path = Path(path)
    kind, frame = read_reference(path, kind, columns)
    table = "centerlines" if kind == "osm" else kind
    return kind, store.addresses.replace_reference(table, frame, source or path.name, actor=actor)
