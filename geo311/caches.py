"""Every cache geo311 keeps, where it lives, and what makes it stale.

Nothing here has to be invalidated by hand: each cache is keyed by, or checked
against, something that changes with the data it holds.

Stored Open311 records
    ``public_records`` (``geo311/store/records.py``): each request's public record as
    JSON with the request's ``revision`` and a stamp (records generation, time zone,
    record format). Database triggers raise the revision when a shown column is
    written and the generation when services, layers, layer versions or a recorded
    request's districts change; a reader that meets an older record rebuilds it.
    ``geo311 records refresh`` (``open311_service.refresh_stored_records``) builds
    stale ones in advance.

Intake context
    ``geo311_web.Geo311.context()`` keeps one ``intake.Context`` (district index, service
    area, geocoder, routing table and neighbours), rebuilt when
    ``store.addresses.context_key()`` changes: the ids of the active layer versions and
    of every jurisdiction layer version, or the reference key (last geocoding audit id
    and the highest id of each reference table).

Base map streets
    ``web/basemap.py`` keeps one ``basemap.StreetIndex`` per app
    (``app.extensions["geo311.basemap"]``), keyed by ``store.addresses.reference_key()``:
    loading or replacing a geocoding reference (centrelines, intersections) rebuilds it.
    Its district labels (``app.extensions["geo311.basemap_labels"]``) are keyed by the
    layer version they were read from: activating another version rebuilds them.

Geocoder per database
    ``gazetteer.geocoder_for`` keeps the last ``Geocoder`` of each database URL, rebuilt
    when ``store.addresses.reference_key()`` changes (a reference layer loaded or replaced)
    or another city profile is asked for. Each ``Geocoder`` keeps up to 256 geocoders
    over the references of one ZIP code set (an address's ZIP code or neighbourhood),
    built on first use and living as long as it does.

Hotspot rows
    ``hotspot_index.HotspotIndex`` (one per app, ``app.extensions["geo311.hotspot_rows"]``)
    holds every located request's map columns, caught up to the newest audit-log id
    (``store.audit.last_change()``): requests named by newer entries or updated since are
    re-read; a bulk change or a service marked sensitive reloads it all.

Hotspot results
    ``web/hotspots.py`` (a ``ResultCache`` per app, ``app.extensions["geo311.hotspots"]``;
    least recently used, 64 entries): computed cells,
    district summaries and map parts keyed by the view's filters and the newest
    audit-log id; district shapes and study cells by layer version id.

KPI rows
    ``kpi_index.KpiIndex`` (one per app, ``app.extensions["geo311.kpi_rows"]``): every
    request's service, status, times and group role, and its district per layer version
    asked for, caught up to the newest audit-log id like the hotspot rows (requests named
    by newer entries or updated since are re-read); a bulk change, or any change to
    services, layers or the schema (an SLA set for a service moves many due times),
    reloads it all.

KPI tables
    ``web/kpi.py`` (a ``ResultCache`` per app, ``app.extensions["geo311.kpi"]``, 32
    entries): the district, service, trend and previous-period tables of a view, keyed
    by layer version id, dates, period and the newest audit-log id.

Open311 catalogue
    ``open311_service.Catalogue`` (one per app, ``app.extensions["open311_catalogue"]``):
    the active services, re-read after ``ttl_s`` (5 s); a code it lacks is looked up in
    the store at once, so only a changed or retired service is seen late.

Area notices
    ``notices._UNENDED``: per database URL, the notices not yet ended (in force or to come)
    with their areas prepared for point tests, which every report (``intake.submit``) and
    every public page with a place reads. Checked on each use against
    ``store.notices.version()``: the number of notices, the newest id and creation time,
    and the newest audit entry about a notice (posting and ending write one), so a notice
    posted or ended by any process is seen by the next read; notices whose start or end
    passes are sorted out by the clock on each read. A notice changed by hand in SQL
    without an audit entry is seen at the next post or end.
Routing table
    ``referral._TABLES``: the last routing file read (``referral.load_routing``), keyed by
    its path and modification time, so an edited file is read again at the next report
    or page that needs it. The intake context's neighbour index (the jurisdiction
    layer's newest version) is rebuilt with the context, whose key holds every version
    of a jurisdiction layer: loading a new one rebuilds it. A routing file that names
    another jurisdiction layer is seen at the next rebuild.

Knowledge-base index
    ``knowledge._INDEXED``: per database URL and audience (public or staff), the indexed
    documents, synonyms and vocabulary search reads, with ``store.kb.index_key()``: the
    index's generation in ``schema_info``, a new random token at every rebuild (an
    article or the synonyms saved, a catalogue loaded), so the next search re-reads it.

``functools.lru_cache``
    Pure functions of their arguments, never stale: ``addresses._token_features`` and
    ``addresses._parse_cached`` (address parsing), ``geocode._number_and_direction``,
    ``sla._holidays`` (a calendar's holidays of a year, with its state's public
    holidays), ``kb_ranking.stem`` (a word's English stem).
    ``business_calendar._load_calendar`` keeps each calendar file as first
    read (restart to see an edited shipped calendar); ``city._named`` and ``city._load``
    each city profile (by the name or path given, and by file), ``city.default_city``
    the default's name and ``city._calendar_of`` each profile's calendar likewise
    (restart after editing a profile).
    Each ``Geocoder`` caches its answers (``Geocoder.geocode``, ``clear_caches()``)
    and lives as long as its references do.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class ResultCache:
    """Results keyed by a view and the data's version: exact while the key does not move.

    Least recently used entries go first; safe to share between a server's threads.
    """

    def __init__(self, size: int = 64) -> None:
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The cached value of ``key``, built (outside the lock) when missing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value
