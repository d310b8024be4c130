"""Each located request's map columns in memory, caught up from the audit log.

A hotspot view then filters and counts a million rows in numpy instead of scanning
them in the database; a view narrowed to one district is counted in SQL instead.
The index is exact at the audit entry it was last caught up to (``marker``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from geo311.hotspots import RequestFilter, cell_counts_of, filter_parents, parent_cells
from geo311.store import Store

#: Seconds in a week, the bin of emerging hotspots.
WEEK_S = 604800


class HotspotIndex:
    """The map columns of every located request, kept in step with the audit log.

    Rows are compact (numbers only: a service is its number in ``vocabulary``, a status
    whether it is open). The bulk is sorted by cell, so counting is one pass; requests
    that arrive later wait in a small tail until it grows. Catching up reads only the
    requests named by new audit entries or updated since the last catch-up (less a
    margin for late commits); a bulk change (an audit entry on requests without an id)
    or a service marked sensitive (its cells move) reloads everything. ``loads`` counts
    the full loads.

    Examples
    --------
    >>> index = HotspotIndex()
    >>> index.counts(store, store.audit.last_change(), RequestFilter(), 8)  # doctest: +SKIP
                     cell  requests  reporters
    0  613196571708669951         3          4
    """

    MARGIN_S = 30.0
    MAX_ENTRIES = 5000
    MAX_TAIL = 20_000

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []
        self.vocabulary: dict[str, int] = {}
        self.marker = -1
        self.synced = 0.0
        self.loads = 0
        self._lock = threading.Lock()

    def rows(self, store: Store, marker: int) -> tuple[list[pd.DataFrame], dict[str, int]]:
        """The parts (bulk, tail) and the service vocabulary, caught up to audit ``marker``."""
        with self._lock:
            if self.parts and marker == self.marker:
                return self.parts, self.vocabulary
            started = time.time()
            entries = [] if not self.parts else store.audit.since(self.marker,
                                                                  self.MAX_ENTRIES + 1)
            if not self.parts or len(entries) > self.MAX_ENTRIES or any(
                    (e["entity"] == "request" and not e["entity_id"])
                    or e["action"] == "service_sensitive" for e in entries):
                self.vocabulary = {}
                rows = self._compact(store.hotspots.rows())
                rows = rows.sort_values("cell", kind="stable", ignore_index=True)
                self.parts = [rows, rows[:0]]
                self.loads += 1
            else:
                since = datetime.fromtimestamp(self.synced - self.MARGIN_S, UTC)
                changed = store.hotspots.rows(since=since, ids=sorted(named_requests(entries)))
                self.parts = caught_up(self.parts, self._compact(changed), self.MAX_TAIL)
            self.marker, self.synced = marker, started
            return self.parts, self.vocabulary

    def counts(self, store: Store, marker: int, where: RequestFilter,
               resolution: int) -> pd.DataFrame:
        """Requests and reporters per cell (``cell, requests, reporters``), sorted by cell."""
        if where.district_id is not None:
            return store.hotspots.counts(resolution, where)
        parts, vocabulary = self.rows(store, marker)
        counts = [cell_counts_of(part, filter_parents(part, where, vocabulary), resolution)
                  for part in parts if len(part)]
        if not counts:
            return pd.DataFrame({"cell": [], "requests": [], "reporters": []}, dtype=np.int64)
        both = pd.concat(counts, ignore_index=True)
        return both.groupby("cell", as_index=False, sort=True)[["requests", "reporters"]].sum()

    def weekly(self, store: Store, marker: int, where: RequestFilter, resolution: int,
               origin: datetime) -> pd.DataFrame:
        """Reporters per cell and week since ``origin``: ``cell, week, reporters``."""
        if where.district_id is not None:
            return store.hotspots.weekly(resolution, where, origin)
        parts, vocabulary = self.rows(store, marker)
        pieces = []
        for frame in parts:
            keep = filter_parents(frame, where, vocabulary)
            pieces.append(pd.DataFrame({
                "cell": parent_cells(frame["cell"].to_numpy(np.int64)[keep], resolution),
                "week": ((frame["requested"].to_numpy(float)[keep] - origin.timestamp())
                         // WEEK_S).astype(np.int64),
                "reporters": frame["reporters"].to_numpy(np.int64)[keep]}))
        return pd.concat(pieces, ignore_index=True)

    def _compact(self, rows: pd.DataFrame) -> pd.DataFrame:
        for code in pd.unique(rows["service_code"]):
            self.vocabulary.setdefault(str(code), len(self.vocabulary))
        return pd.DataFrame({
            "id": rows["id"].to_numpy(np.int64), "cell": rows["cell"].to_numpy(np.int64),
            "reporters": rows["reporters"].to_numpy(np.int64),
            "service": rows["service_code"].map(self.vocabulary).to_numpy(np.int32),
            "open": (rows["status"] == "open").to_numpy(bool),
            "requested": rows["requested"].to_numpy(float),
            "parent": rows["parent"].to_numpy(bool),
        })


def named_requests(entries: Sequence[dict[str, Any]]) -> set[int]:
    """Ids of requests audit entries changed: each entry's own and any group it names.

    Examples
    --------
    >>> sorted(named_requests([{"entity": "request", "entity_id": "7",
    ...                         "detail": {"into": 3, "folded": [4, 5]}}]))
    [3, 4, 5, 7]
    """
    ids: set[int] = set()
    for e in entries:
        if e["entity"] != "request":
            continue
        values = [e["entity_id"], *[e["detail"].get(k) for k in ("into", "from", "folded")]]
        for v in values:
            for x in v if isinstance(v, list) else [v]:
                if x is not None and str(x).isdigit():
                    ids.add(int(x))
    return ids


def caught_up(parts: list[pd.DataFrame], changed: pd.DataFrame,
              max_tail: int) -> list[pd.DataFrame]:
    """Replace changed rows where they are; new ones join the tail (bulk re-sorted if needed).

    Parts are replaced, never edited, so a view reading the old ones is unaffected.

    Examples
    --------
    >>> bulk = pd.DataFrame({"id": [1, 2], "cell": [10, 20]})
    >>> bulk2, tail = caught_up([bulk, bulk[:0]], pd.DataFrame({"id": [3], "cell": [15]}), 5)
    >>> tail["id"].tolist(), bulk2 is bulk
    ([3], True)
    """
    if changed.empty:
        return parts
    bulk, tail = parts
    left = np.ones(len(changed), dtype=bool)
    resort = False
    out = []
    for i, part in enumerate((bulk, tail)):
        at = np.flatnonzero(np.isin(part["id"].to_numpy(), changed["id"].to_numpy()))
        if not len(at):
            out.append(part)
            continue
        src = pd.Index(changed["id"]).get_indexer(part["id"].to_numpy()[at])
        if i == 0 and (part["cell"].to_numpy()[at] != changed["cell"].to_numpy()[src]).any():
            resort = True  # a request moved: its row is no longer in cell order
        columns = {}
        for column in part.columns:
            values = part[column].to_numpy(copy=True)
            values[at] = changed[column].to_numpy()[src]
            columns[column] = values
        out.append(pd.DataFrame(columns))
        left[src] = False
    bulk, tail = out
    if left.any():
        tail = pd.concat([tail, changed[left]], ignore_index=True)
    if resort or len(tail) > max_tail:
        bulk = pd.concat([bulk, tail], ignore_index=True).sort_values(
            "cell", kind="stable", ignore_index=True)
        tail = bulk[:0]
    return [bulk, tail]
